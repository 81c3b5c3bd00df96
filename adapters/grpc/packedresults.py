"""The figures of a packed answer (``PackedResults``) as columns, in either of its forms: the
repeated fields (encoded and decoded value by value) or, when the request asks for them
(``SettleStreamRequest.packed_results_le``), the little-endian bytes fields (``total_le``, ...,
``layer_key_i32``: one copy a column each way). ``fill`` writes one form, ``columns`` reads
either (clients and tests)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

#: the int64 columns: each is the repeated field NAME or the bytes field NAME_le
INT_COLUMNS = (
    "total",
    "in_scope",
    "pre_selfpay",
    "over_limit",
    "out_of_catalogue",
    "window_pay",
    "net_selfpay",
    "funds_total",
    "layer_offsets",
    "layer_pay",
    "layer_relief",
)


def fill(
    res: Any,
    ints: dict[str, np.ndarray],
    key: np.ndarray,
    key_ids: Sequence[str],
    key_funds: Sequence[str],
    le: bool,
) -> None:
    """Write ``ints`` (every name of INT_COLUMNS: int64 arrays) and the layer rows' ids and
    fund codes, given as ``key`` (an index per layer row) into the parallel ``key_ids`` and
    ``key_funds``, into ``res`` (a ``pb.PackedResults``): as bytes fields if ``le``, else as
    the repeated fields. The bill ids and settlement ids are the caller's."""
    if le:
        for name in INT_COLUMNS:
            setattr(res, f"{name}_le", np.ascontiguousarray(ints[name], dtype="<i8").tobytes())
        res.layer_key_i32 = np.ascontiguousarray(key, dtype="<i4").tobytes()
        res.layer_key_ids.extend(key_ids)
        res.layer_key_fund_codes.extend(key_funds)
        return
    for name in INT_COLUMNS:
        getattr(res, name).extend(np.asarray(ints[name], dtype=np.int64).tolist())
    key = np.asarray(key, dtype=np.int64)
    res.layer_ids.extend(np.asarray(list(key_ids), dtype=object)[key].tolist() if len(key) else [])
    res.fund_codes.extend(
        np.asarray(list(key_funds), dtype=object)[key].tolist() if len(key) else []
    )


def columns(res: Any) -> dict[str, Any]:
    """Every column of ``res`` (a ``pb.PackedResults``) whichever form it came in: the
    INT_COLUMNS as int64 arrays, ``layer_ids`` and ``fund_codes`` as lists of strings,
    ``bill_ids`` and ``settlement_ids`` as lists. ValueError naming a malformed bytes field."""
    out: dict[str, Any] = {}
    for name in INT_COLUMNS:
        raw = getattr(res, f"{name}_le")
        if raw and len(getattr(res, name)):
            raise ValueError(f"packed.{name}_le: given with packed.{name}; one form a column")
        if len(raw) % 8:
            raise ValueError(f"packed.{name}_le: {len(raw)} bytes, not a whole number of int64")
        out[name] = (
            np.frombuffer(raw, dtype="<i8").astype(np.int64)
            if raw
            else np.array(getattr(res, name), dtype=np.int64)
        )
    key = res.layer_key_i32
    if key:
        if len(key) % 4:
            raise ValueError(f"packed.layer_key_i32: {len(key)} bytes, not a whole number of int32")
        k = np.frombuffer(key, dtype="<i4").astype(np.int64)
        ids, funds = list(res.layer_key_ids), list(res.layer_key_fund_codes)
        if len(ids) != len(funds) or (len(k) and not 0 <= int(k.min()) <= int(k.max()) < len(ids)):
            raise ValueError(
                f"packed.layer_key_i32: indexes not into the {len(ids)} layer_key_ids and "
                f"{len(funds)} layer_key_fund_codes"
            )
        out["layer_ids"] = [ids[i] for i in k.tolist()]
        out["fund_codes"] = [funds[i] for i in k.tolist()]
    else:
        out["layer_ids"], out["fund_codes"] = list(res.layer_ids), list(res.fund_codes)
    out["bill_ids"] = list(res.bill_ids)
    out["settlement_ids"] = list(res.settlement_ids)
    return out
