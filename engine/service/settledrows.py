"""A trial settlement as the kernel's output rows (issue 13 target 6): the one bill's
``out_bill`` row and its table's ``out_layer`` rows, with the strings around
them, read without a ``Settlement`` or a ``LayerResult`` per layer.

PreSettle's answer is written from these (``adapters.grpc.resultwire``), and Settle's for a
settlement made now by the columns path (``settlecols.settle_rows``). ``settlement()`` is
the same figures as the model (``engine.batch.settlement_of_rows``, the one reading of the
kernel's outputs), which the tests hold the rows' answer to.
"""

from __future__ import annotations

from datetime import date
from typing import NamedTuple

import numpy as np

from engine.batch import settlement_of_rows
from engine.bill import Person
from engine.policy.model import PolicyTable
from engine.result import Settlement


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

    def settlement(self) -> Settlement:
        """The same figures as the model."""
        return settlement_of_rows(
            self.bill.tolist(), self.layers.tolist(), self.table, self.bill_id, self.hospital, self.person,
            self.year, date.fromisoformat(self.discharge_date),
        )  # fmt: skip
