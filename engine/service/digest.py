"""The request digest a settle is made idempotent by (and the digest of rows stored before
issue 13).
"""

from __future__ import annotations

import hashlib
import json

from engine.bill import BillRequest
from engine.service import billcols


def digest(req: BillRequest) -> str:
    """The request digest (idempotency): sha256 of the canonical bytes of the normalized
    request (``billcols.digest_of``; no model dump, no JSON of the items)."""
    return billcols.digest_of(req)


def legacy_digest(bill: dict[str, object]) -> str:
    """The digest rows stored before issue 13 carry: sha256 of the sorted JSON of the stored
    request. Compared only when a stored digest differs from the new one (a retry across the
    upgrade is still recognized as the same request)."""
    canonical = json.dumps(bill, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()
