"""A bill message as columns (``engine.service.billcols.BillColumns``): one pass over the
repeated items, each item's fields read once into a row, then the rows turned into int64
columns with one numpy call; no dict or model per item."""

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
    # An optional int64 read as non-zero is given; a zero may be an absent one (HasField).
    rows = [
        (
            it.code, it.name, it.category,
            q if (q := it.qty_e4) or it.HasField("qty_e4") else NULL,
            it.unit_price, it.amount,
            c if (c := it.unit_price_cap) or it.HasField("unit_price_cap") else NULL,
            r if (r := it.selfpay_ratio) or it.HasField("selfpay_ratio") else NULL,
        )
        for it in items
    ]  # fmt: skip
    if rows:
        code, name, category, *ints = zip(*rows, strict=True)
        m = np.array(ints, dtype=np.int64)
    else:
        code = name = category = ()
        m = np.zeros((5, 0), dtype=np.int64)
    return BillColumns(
        id=b.id, hospital=b.hospital, region=b.region, person_id=b.person_id,
        hospital_level=b.hospital_level, admission_date=b.admission_date,
        discharge_date=b.discharge_date, code=list(code), name=list(name),
        category=list(category), qty_e4=m[0], unit_price=m[1], amount=m[2],
        unit_price_cap=m[3], selfpay_ratio=m[4],
    )  # fmt: skip
