"""The record of a settlement made now by the columns path, its ``Settlement`` model built from
the kernel's rows only when something reads it (issue 13 target 7).

A Settle over gRPC answers from the rows (``adapters.grpc.resultwire``) and writes its stored
result, columns, claims and ledger event from ``SettledRows.plain()``; nothing on that path
reads ``record.settlement``, so the model (~45 us a Settle) is not built. Any other reader (a
test, the memory store read back, ``settle``'s callers) gets the same model as before.
"""

from __future__ import annotations

from dataclasses import fields
from functools import cached_property
from typing import Any

from engine.result import Settlement
from engine.service.ports import SettlementRecord
from engine.service.settledrows import SettledRows

_FIELDS = tuple(f.name for f in fields(SettlementRecord))
_KEYS = frozenset(_FIELDS) - {"settlement"} | {"_rows"}  # what ``of`` sets


class RowsRecord(SettlementRecord):
    """A ``SettlementRecord`` whose ``settlement`` is ``rows.settlement()``, built when first
    read. Equal to the plain record of the same fields (both ways round)."""

    _rows: SettledRows

    @classmethod
    def of(cls, rows: SettledRows, **values: Any) -> RowsRecord:
        """The record of ``values`` (every field but ``settlement``) and ``rows``."""
        rec = object.__new__(cls)
        d = rec.__dict__  # as the frozen dataclass's __init__ would set them, without it
        d.update(values)
        d["_rows"] = rows
        if d.keys() != _KEYS:
            raise TypeError(f"RowsRecord.of: every field but settlement, not {sorted(values)}")
        return rec

    @cached_property
    def settlement(self) -> Settlement:
        return self._rows.settlement()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SettlementRecord):
            return NotImplemented
        return all(getattr(self, f) == getattr(other, f) for f in _FIELDS)

    __hash__ = SettlementRecord.__hash__
