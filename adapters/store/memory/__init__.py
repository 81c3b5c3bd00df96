"""An in-memory store behind the service ports: for tests, what-if runs and demos.

Not durable. Writes are staged in the unit of work and applied on commit; ``lock`` holds one
lock per key (person-year, household-year, policy region) until the unit of work ends, taken in
the global order, as the SQL store's row locks are (the rule: ``engine.service.ports``).
"""

from adapters.store.memory.uow import MemoryStore, MemoryUnitOfWork

__all__ = ["MemoryStore", "MemoryUnitOfWork"]
