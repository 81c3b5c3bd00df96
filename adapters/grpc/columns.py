"""A bill message as columns (``engine.service.billcols.BillColumns``): the items read from the
bill's wire bytes in one compiled pass (``adapters.grpc.billwire``), or, for bytes that pass
does not take, one pass over the repeated items through upb, each item's fields read once
into a row; no dict or model per item either way."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from adapters.grpc.billwire import item_columns, item_columns_plain
from engine.bill import check_items_count
from engine.service.billcols import BillColumns, BillFacts, ItemTexts


def bill_columns(b: Any) -> BillColumns:
    """The columns of a ``pb.Bill``; LimitExceeded before anything is read when the bill has
    too many items (as ``convert.bill_request``)."""
    items = b.items
    n = len(items)
    check_items_count(n)
    cols = item_columns(b, n)
    if cols is None:
        code, name, category, m = item_columns_plain(items)
        facts = None
    else:
        code, name, category, m, facts = cols
    head = (b.id, b.region, b.person_id, b.hospital_level, b.admission_date, b.discharge_date,
            b.hospital)  # fmt: skip
    return columns_of(head, ItemTexts(code, name, category), m, facts)


def columns_of(
    head: Sequence[str], texts: ItemTexts, m: np.ndarray, facts: BillFacts | None
) -> BillColumns:
    """``BillColumns`` of a bill's strings (``Bill`` fields 1-6 and 8, in that order), its
    items' strings, their (5, n) int matrix (``item_columns``) and the strings' facts."""
    return BillColumns(
        id=head[0], hospital=head[6], region=head[1], person_id=head[2],
        hospital_level=head[3], admission_date=head[4], discharge_date=head[5], texts=texts,
        qty_e4=m[0], unit_price=m[1], amount=m[2], unit_price_cap=m[3], selfpay_ratio=m[4],
        facts=facts,
    )  # fmt: skip
