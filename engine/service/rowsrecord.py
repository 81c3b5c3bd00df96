"""The record of a settlement made now by the columns path, its ``Settlement`` model built from
the kernel's rows only when something reads it (issue 13 target 7).

A Settle over gRPC answers from the rows (``adapters.grpc.resultwire``) and writes its stored
result, columns, claims and ledger event from ``SettledRows.plain()``; nothing on that path
reads ``record.settlement``, so the model (~45 us a Settle) is not built. Any other reader (a
test, the memory store read back, ``settle``'s callers) gets the same model as before.

Its ``bill`` (the request as stored) may come the same way: as its compact JSON bytes
(``stored_json``, written from the columns: ``engine.service.storedjson``), which PostgreSQL's
store writes as they are; the dicts are made from them only when ``bill`` is read.
"""

from __future__ import annotations

import json
from dataclasses import fields
from functools import cached_property
from typing import Any

from engine.result import Settlement
from engine.service.ports import SettlementRecord
from engine.service.settledrows import SettledRows

_FIELDS = tuple(f.name for f in fields(SettlementRecord))
_KEYS = frozenset(_FIELDS) - {"settlement"} | {"_rows", "stored_json"}  # what ``of`` sets


class RowsRecord(SettlementRecord):
    """A ``SettlementRecord`` whose ``settlement`` is ``rows.settlement()``, built when first
    read. Equal to the plain record of the same fields (both ways round)."""

    _rows: SettledRows
    #: ``bill`` as compact JSON (UTF-8), if it was written so; else None (also on a copy made
    #: by ``dataclasses.replace``, which sets the fields alone: its ``bill`` is then the dicts)
    stored_json: bytes | None = None

    @classmethod
    def of(cls, rows: SettledRows, **values: Any) -> RowsRecord:
        """The record of ``values`` (every field but ``settlement``, and ``bill`` unless
        ``stored_json`` is among them: then ``bill`` is read from it when asked) and
        ``rows``."""
        rec = object.__new__(cls)
        d = rec.__dict__  # as the frozen dataclass's __init__ would set them, without it
        d.update(values)
        d["_rows"] = rows
        lazy_bill = d.setdefault("stored_json", None) is not None and "bill" not in d
        if d.keys() != (_KEYS - {"bill"} if lazy_bill else _KEYS):
            raise TypeError(f"RowsRecord.of: every field but settlement, not {sorted(values)}")
        return rec

    @property
    def rows(self) -> SettledRows:
        """The kernel's rows the settlement was made from (Settle's answer is written from
        them: ``adapters.grpc.resultwire``)."""
        return self._rows

    @cached_property
    def settlement(self) -> Settlement:
        return self._rows.settlement()

    @cached_property
    def bill(self) -> dict[str, Any]:
        assert self.stored_json is not None
        got: dict[str, Any] = json.loads(self.stored_json)
        return got

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SettlementRecord):
            return NotImplemented
        return all(getattr(self, f) == getattr(other, f) for f in _FIELDS)

    __hash__ = SettlementRecord.__hash__
