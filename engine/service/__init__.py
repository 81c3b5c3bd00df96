"""Use cases of the settlement service (trial settlement, settlement, reversal, queries,
policy versions, person registry) behind small repository interfaces (``ports``)."""
