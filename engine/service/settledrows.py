"""A trial settlement as the kernel's output rows (issue 13 target 6): the one bill's
``out_bill`` row and its table's ``out_layer`` rows, with the strings around
them, read without a ``Settlement`` or a ``LayerResult`` per layer.

PreSettle's answer is written from these (``adapters.grpc.resultwire``), and Settle's for a
settlement made now by the columns path (``settlecols.settle_rows``). ``settlement()`` is
the same figures as the model (``engine.batch.settlement_of_rows``, the one reading of the
kernel's outputs), which the tests hold the rows' answer to; ``plain()`` is its ``to_dict()``
written from the rows (what Settle stores and digests: no model built on the columns path).
"""

from __future__ import annotations

from datetime import date
from typing import Any, NamedTuple

import numpy as np

from engine import kernel as K
from engine.batch import settlement_of_rows
from engine.bill import Person
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

    def settlement(self) -> Settlement:
        """The same figures as the model."""
        return settlement_of_rows(
            self.bill.tolist(), self.layers.tolist(), self.table, self.bill_id, self.hospital, self.person,
            self.year, date.fromisoformat(self.discharge_date),
        )  # fmt: skip

    def plain(self) -> dict[str, Any]:
        """``settlement().to_dict()`` from the rows, the same keys in the same order (so the
        stored JSON is the same bytes and the ledger's content digest the same), without the
        model: a Settle's stored result, its columns, claims and ledger event read this."""
        b = self.bill.tolist()
        person, t = self.person, self.table
        layers: list[dict[str, Any]] = []
        alerts: list[dict[str, Any]] = []
        funds_total = 0
        for layer, o in zip(t.layers, self.layers.tolist(), strict=False):
            vi = o[K.F_VARIANT]
            alert = bool(o[K.F_ALERT])
            pay = o[K.F_PAY]
            funds_total += pay
            selfpay_cum = o[K.F_ACC + 3]
            layers.append({
                "layer_id": layer.id, "kind": layer.kind, "fund_code": layer.fund_code,
                "settle_at": layer.settle_at, "scope": layer.scope, "reason": REASONS[o[K.F_REASON]],
                "variant": vi, "variant_label": layer.variants[vi].label if vi >= 0 else "",
                "base": o[K.F_BASE], "deductible": o[K.F_DED], "eligible": o[K.F_ELIGIBLE],
                "pay": pay, "relief": o[K.F_RELIEF], "cap": CAPS[o[K.F_CAP]],
                "account": {
                    "deductible_used": o[K.F_ACC], "eligible_cum": o[K.F_ACC + 1],
                    "paid": o[K.F_ACC + 2], "selfpay_cum": selfpay_cum,
                },
                "alert": alert, "name": layer.name, "name_zh": layer.name_zh,
            })  # fmt: skip
            if alert:
                alerts.append({
                    "person": person.id, "household": person.household, "layer": layer.id,
                    "year": self.year, "selfpay_cum": selfpay_cum, "relief": o[K.F_RELIEF],
                })  # fmt: skip
        return {
            "bill_id": self.bill_id, "hospital": self.hospital, "person_id": person.id,
            "household": person.household, "region": t.region.code, "policy": t.label,
            "year": self.year, "discharge_date": self.discharge_date, "admission_no": b[K.B_ADMNO],
            "buckets": {
                "total": b[K.B_TOTAL], "in_scope": b[K.B_IN_SCOPE], "pre_selfpay": b[K.B_PRE],
                "over_limit": b[K.B_OVER], "out_of_catalogue": b[K.B_OOC],
            },
            "layers": layers, "window_pay": b[K.B_WINDOW], "net_selfpay": b[K.B_NET],
            "admissions_after": b[K.B_ADMNO], "funds_total": funds_total, "alerts": alerts,
        }  # fmt: skip
