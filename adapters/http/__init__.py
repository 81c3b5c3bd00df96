"""The NHSA-shaped HTTP/JSON gateway over the settlement service (issue 11)."""
