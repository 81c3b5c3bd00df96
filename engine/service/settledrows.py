"""A trial settlement as the kernel's output rows (issue 13 target 6): the one bill's
``out_bill`` row and its table's ``out_layer`` rows, with the strings around
them, read without a ``Settlement`` or a ``LayerResult`` per layer.

PreSettle's answer is written from these (``adapters.grpc.resultwire``). ``settlement()`` is
the same figures as the model (``engine.batch.settlement_of_rows``, the one reading of the
kernel's outputs), which the tests hold the rows' answer to.
"""

from __future__ import annotations

from datetime import date
from typing import NamedTuple

import numpy as np

from engine import kernel as K
from engine.batch import settlement_of_rows
from engine.bill import Person
from engine.explain import bill_words, layer_words, tail_words
from engine.policy.model import PolicyTable
from engine.result import CAPS, REASONS, Settlement


class SettledRows(NamedTuple):
    """One bill settled: its strings, its kernel ``out_bill`` row (``bill``) and the
    ``out_layer`` rows of its table's layers, in layer order (``layers``)."""

    bill_id: str
    hospital: str
    person: Person
    table: PolicyTable
    year: int
    discharge_date: str  # ISO
    bill: np.ndarray  # int64 (N_BILL,)
    layers: np.ndarray  # int64 (layers of the table, N_FIELDS)

    def lines(self) -> list[tuple[str, str]]:
        """The explanation (English, Chinese), as ``engine.explain.explain`` of the
        settlement (without a table: a layer without a name is named by its id)."""
        ob = self.bill.tolist()
        out = [bill_words(
            ob[K.B_TOTAL], ob[K.B_IN_SCOPE], ob[K.B_PRE], ob[K.B_OVER], ob[K.B_OOC],
            ob[K.B_ADMNO],
        )]  # fmt: skip
        funds = 0
        for layer, o in zip(self.table.layers, self.layers.tolist(), strict=True):
            name = layer.name
            en, zh = (name, layer.name_zh or name) if name else (layer.id, layer.id)
            pay = o[K.F_PAY]
            out.append(layer_words(
                en, zh, layer.fund_code, layer.kind, layer.settle_at, REASONS[o[K.F_REASON]],
                CAPS[o[K.F_CAP]], o[K.F_BASE], o[K.F_DED], o[K.F_ELIGIBLE], pay,
                o[K.F_RELIEF], o[K.F_ACC + 3], bool(o[K.F_ALERT]),
            ))  # fmt: skip
            funds += pay
        out.append(tail_words(funds, ob[K.B_WINDOW], ob[K.B_NET]))
        return out

    def settlement(self) -> Settlement:
        """The same figures as the model."""
        return settlement_of_rows(
            self.bill.tolist(), self.layers.tolist(), self.table, self.bill_id, self.hospital, self.person,
            self.year, date.fromisoformat(self.discharge_date),
        )  # fmt: skip
