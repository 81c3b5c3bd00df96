"""The offsets and item columns of a ``PackedBills`` message as numpy arrays, from either form:
the packed repeated fields (varints, read element by element) or the raw little-endian bytes
fields (``amount_le``, ``category_i8``, ...: one ``np.frombuffer`` each). A column given in both
forms, or a bytes field whose length is not a whole number of values, is refused naming it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.errors import InputError, Problem

#: column -> (its bytes field, the values' dtype on the wire)
RAW = {
    "item_offsets": ("item_offsets_le", "<i8"),
    "category": ("category_i8", "i1"),
    "qty_e4": ("qty_e4_le", "<i8"),
    "amount": ("amount_le", "<i8"),
    "unit_price_cap": ("unit_price_cap_le", "<i8"),
    "selfpay_ratio": ("selfpay_ratio_le", "<i8"),
    "unit_price": ("unit_price_le", "<i8"),
}


@dataclass(frozen=True)
class PackedItems:
    """int64 offsets and item columns (category int8 from the bytes form, int64 from the
    repeated one: the values are the same); an optional column not sent is empty."""

    item_offsets: np.ndarray
    category: np.ndarray
    qty_e4: np.ndarray
    amount: np.ndarray
    unit_price_cap: np.ndarray
    selfpay_ratio: np.ndarray
    unit_price: np.ndarray


def packed_items(p: Any) -> PackedItems:
    """The columns of ``p`` (a ``pb.PackedBills``); InputError naming each malformed field."""
    cols: dict[str, np.ndarray] = {}
    problems = []
    for name, (field, dtype) in RAW.items():
        raw = getattr(p, field)
        if not raw:
            cols[name] = np.array(getattr(p, name), dtype=np.int64)
            continue
        size = np.dtype(dtype).itemsize
        if len(getattr(p, name)):
            problems.append(
                Problem(f"packed.{field}", len(raw), f"bytes given with packed.{name}; send one")
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
            # a writable native copy: the kernel takes it as it takes the repeated form's arrays
            a = np.frombuffer(raw, dtype=dtype)
            cols[name] = a.astype(np.int8 if size == 1 else np.int64)
    if problems:
        raise InputError(problems)
    return PackedItems(**cols)
