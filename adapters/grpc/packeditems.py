"""The offsets and item columns of a ``PackedBills`` message as numpy arrays, from any of its
forms: the packed repeated fields (varints, read element by element), the raw little-endian
int64 bytes fields (``amount_le``, ``category_i8``, ...: one ``np.frombuffer`` each) or the
narrow ones (``amount_i32``, ``selfpay_ratio_i16``, ...: half the bytes). A column given in two
forms, or a bytes field whose length is not a whole number of values, is refused naming it.

Every column is read as int64 (category int8), except that amounts sent narrow
(``amount_i32``) stay int32 (``prepare_columns`` widens them in its item check's read of them:
``engine.columnar.itemcheck.items_clean_runs``), and that quantities, caps and ratios that
all came narrow (each in its narrow field or not at all) stay int32, int32 and int16
(``KEEP_NARROW``): the widths of the Parquet columns ``onestop batch`` reads, which the kernel
and the item check have compiled variants for (``onestop warm``), and half or a quarter of the
bytes for ``prepare_columns`` to copy when it reorders the items. A message mixing widths among
these three is read all int64, so no width combination reaches a kernel that was not warmed.
A bytes column already in the dtype it is read as (categories, narrow quantities, caps and
ratios; on a little-endian machine the int64 forms too) is a read-only view of the message's
bytes, not a copy: ``engine.columnar`` reads such columns in place and copies each once."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.errors import InputError, Problem

#: column -> (its int64 bytes field, the values' dtype on the wire); category is int8 there
RAW = {
    "item_offsets": ("item_offsets_le", "<i8"),
    "category": ("category_i8", "i1"),
    "qty_e4": ("qty_e4_le", "<i8"),
    "amount": ("amount_le", "<i8"),
    "unit_price_cap": ("unit_price_cap_le", "<i8"),
    "selfpay_ratio": ("selfpay_ratio_le", "<i8"),
    "unit_price": ("unit_price_le", "<i8"),
}

#: columns kept in their narrow width when all of them came narrow or not at all
KEEP_NARROW = {"qty_e4": np.int32, "unit_price_cap": np.int32, "selfpay_ratio": np.int16}

#: column -> (its narrow bytes field, dtype): for values that fit (``pack_bills(narrow=True)``)
NARROW = {
    "item_offsets": ("item_offsets_i32", "<i4"),
    "qty_e4": ("qty_e4_i32", "<i4"),
    "amount": ("amount_i32", "<i4"),
    "unit_price_cap": ("unit_price_cap_i32", "<i4"),
    "selfpay_ratio": ("selfpay_ratio_i16", "<i2"),
    "unit_price": ("unit_price_i32", "<i4"),
}


def bytes_forms(name: str) -> list[tuple[str, str]]:
    """The bytes fields a column may come in, with their dtypes (int64 form first)."""
    return [RAW[name], *([NARROW[name]] if name in NARROW else [])]


@dataclass(frozen=True)
class PackedItems:
    """int64 offsets and item columns (category int8 from the bytes form, int64 from the
    repeated one: the values are the same; amounts int32 from ``amount_i32``; quantities, caps
    and ratios as ``KEEP_NARROW`` says);
    an optional column not sent is empty. A column may be read-only (a view of the bytes)."""

    item_offsets: np.ndarray
    category: np.ndarray
    qty_e4: np.ndarray
    amount: np.ndarray
    unit_price_cap: np.ndarray
    selfpay_ratio: np.ndarray
    unit_price: np.ndarray
    #: the bytes fields cut out of the message (``packedwire``): ``given_field`` names them
    cut: Mapping[str, Any] | None = None


def packed_items(p: Any, cut: Mapping[str, Any] | None = None) -> PackedItems:
    """The columns of ``p`` (a ``pb.PackedBills``); InputError naming each malformed field.
    ``cut``: bytes fields read out of the message's bytes (``packedwire``), by field name."""
    cols: dict[str, np.ndarray] = {}
    views: dict[str, np.ndarray] = {}  # bytes fields read, in their wire dtype
    problems = []
    for name in RAW:
        given = [(f, dt, raw) for f, dt in bytes_forms(name) if (raw := _bytes(p, f, cut))]
        if not given:
            cols[name] = np.array(getattr(p, name), dtype=np.int64)
            continue
        field, dtype, raw = given[-1]
        size = np.dtype(dtype).itemsize
        others = [f"packed.{f}" for f, _, _ in given[:-1]]
        if len(getattr(p, name)):
            others.insert(0, f"packed.{name}")
        if others:
            problems.append(
                Problem(
                    f"packed.{field}",
                    len(raw),
                    f"bytes given with {' and '.join(others)}; send one",
                )
            )
        elif len(raw) % size:
            problems.append(
                Problem(
                    f"packed.{field}",
                    len(raw),
                    f"bytes; not a whole number of {size}-byte little-endian values",
                )
            )
        else:
            views[name] = np.frombuffer(raw, dtype=dtype)
    if problems:
        raise InputError(problems)
    narrow = [k for k in KEEP_NARROW if k in views and views[k].dtype == KEEP_NARROW[k]]
    keep = bool(narrow) and all(
        k in narrow or not len(cols[k] if k in cols else views[k]) for k in KEEP_NARROW
    )
    for name, a in views.items():
        # a column already in the dtype it is read as stays a read-only view of the message's
        # bytes (prepare_columns copies it once, when it reorders the items or for the kernel);
        # any other is widened (a native copy)
        wide: Any = np.int8 if name == "category" else np.int64
        if name == "amount" and a.dtype == np.int32:
            wide = np.int32  # widened by prepare_columns's item check, on its read of them
        want = np.dtype(KEEP_NARROW[name] if keep and name in narrow else wide)
        cols[name] = a if a.dtype == want and a.dtype.isnative else a.astype(want)
    return PackedItems(**cols, cut=cut)


def given_field(p: Any, name: str, cut: Mapping[str, Any] | None = None) -> str:
    """The field a column came in: ``packed.amount``, or ``packed.amount_le`` (or
    ``packed.amount_i32``) if sent so."""
    for f, _ in bytes_forms(name):
        if _bytes(p, f, cut):
            return f"packed.{f}"
    return f"packed.{name}"


def _bytes(p: Any, f: str, cut: Mapping[str, Any] | None) -> Any:
    """Bytes field ``f`` of ``p``, or its view in ``cut`` when it was cut out of the message."""
    got = cut.get(f) if cut else None
    return got if got is not None else getattr(p, f)
