"""A bill message as columns (``engine.service.billcols.BillColumns``): one pass per field
over the repeated items, straight into int64 arrays; no dict or model per item."""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.bill import check_items_count
from engine.service.billcols import NULL, BillColumns


def bill_columns(b: Any) -> BillColumns:
    """The columns of a ``pb.Bill``; LimitExceeded before anything is read when the bill has
    too many items (as ``convert.bill_request``)."""
    items = b.items
    check_items_count(len(items))
    i64 = np.int64
    return BillColumns(
        id=b.id, hospital=b.hospital, region=b.region, person_id=b.person_id,
        hospital_level=b.hospital_level, admission_date=b.admission_date,
        discharge_date=b.discharge_date,
        code=[it.code for it in items],
        name=[it.name for it in items],
        category=[it.category for it in items],
        qty_e4=np.array([it.qty_e4 if it.HasField("qty_e4") else NULL for it in items], i64),
        unit_price=np.array([it.unit_price for it in items], i64),
        amount=np.array([it.amount for it in items], i64),
        unit_price_cap=np.array(
            [it.unit_price_cap if it.HasField("unit_price_cap") else NULL for it in items], i64
        ),
        selfpay_ratio=np.array(
            [it.selfpay_ratio if it.HasField("selfpay_ratio") else NULL for it in items], i64
        ),
    )  # fmt: skip
