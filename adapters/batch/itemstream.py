"""Streaming items for batch runs: record batches one Parquet row group at a time
(``row_batches``), the items' bill runs across batches (``_Runs``), and items rows straight into
preallocated numpy columns (``read_item_cols``; memory: the columns plus one row group)."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from adapters.batch.arrowcols import _np_dtype, _one, bill_key, category, coded
from adapters.batch.io import columns_of, is_csv, read_all
from engine.columnar import Coded, ItemCols


def row_batches(path: str | Path, kind: str, lo: int, hi: int, columns: list[str],
                carry: bool = False):  # fmt: skip
    """Record batches holding rows [lo, hi), one Parquet row group at a time (CSV: slices of
    the table read once). ``carry``: a row group that the rows end inside is kept
    (``_Carried``), and a row group kept so is taken instead of read again: a batch run
    reads its parts in order, and a part's first row group is mostly the last one of the
    part before (the items of 1 M bills: row groups of 1 M items, one decoded twice at
    every part boundary)."""
    path = str(path)
    if is_csv(path):
        yield from read_all(path, kind).select(columns).slice(lo, hi - lo).to_batches()
        return
    f = pq.ParquetFile(
        path, read_dictionary=[c for c in ("bill_id", "hospital", "category") if c in columns]
    )
    start = 0
    for g in range(f.metadata.num_row_groups):
        n = f.metadata.row_group(g).num_rows
        if start < hi and start + n > lo:
            key = (path, g, tuple(columns), f.metadata.row_group(g))
            t = _CARRIED.take(key) if carry and start < lo else None
            if t is None:
                t = f.read_row_group(g, columns=columns)
            if carry and start + n > hi:
                _CARRIED.keep(key, t)
            a, b = max(lo, start) - start, min(hi, start + n) - start
            yield from t.slice(a, b - a).to_batches()
            del t
        start += n


class _Carried:
    """One row group read by ``row_batches(carry=True)`` for the next rows read (one entry:
    parts are read one after the other). Keyed by the file's path, its size and modification
    time, the row group's number, columns and metadata: a file written again is read again."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entry: tuple[Any, pa.Table] | None = None

    @staticmethod
    def _stamp(key: tuple[Any, ...]) -> tuple[Any, ...]:
        st = os.stat(key[0])
        return (*key, st.st_size, st.st_mtime_ns)

    def keep(self, key: tuple[Any, ...], table: pa.Table) -> None:
        with self._lock:
            self._entry = (self._stamp(key), table)

    def take(self, key: tuple[Any, ...]) -> pa.Table | None:
        """The kept row group if it is this one (then no longer kept), else None."""
        with self._lock:
            entry, self._entry = self._entry, None
        if entry is None or entry[0] != self._stamp(key):
            return None
        return entry[1]


_CARRIED = _Carried()


def _valid(a: pa.Array) -> np.ndarray:
    """Which rows of a primitive array hold a value, read from its validity bitmap (no
    ``is_null`` array built and converted)."""
    n, off = len(a), a.offset
    bits = np.frombuffer(a.buffers()[0], dtype=np.uint8)
    return np.unpackbits(bits, count=off + n, bitorder="little")[off:].view(bool)


def _values(a: pa.Array) -> np.ndarray:
    """A primitive array's data buffer as numpy, nulls included (their slots hold anything):
    no ``fill_null`` copy."""
    n, off = len(a), a.offset
    return np.frombuffer(a.buffers()[1], dtype=_np_dtype(a.type), count=off + n)[off:]


class _Runs:
    """Run starts and run labels of the items' bill_id, across batches (labels kept as Arrow
    strings: no Python object per bill unless asked for)."""

    def __init__(self) -> None:
        self.starts: list[np.ndarray] = []
        self.arrow: list[pa.Array] = []
        self.last: Any = None
        self.ok = True

    @property
    def labels(self) -> list[np.ndarray]:
        return [a.to_numpy(zero_copy_only=False).astype(object) for a in self.arrow]

    def add(self, col: pa.Array, pos: int) -> None:
        if not self.ok or len(col) == 0:
            return
        if col.null_count:
            self.ok = False
            return
        if pa.types.is_dictionary(col.type):
            idx = col.indices.to_numpy()
            s = np.flatnonzero(idx[1:] != idx[:-1]) + 1
            s = np.concatenate([[0], s])
            lab = col.dictionary.take(pa.array(idx[s]))
        else:
            if not pa.types.is_string(col.type) and not pa.types.is_large_string(col.type):
                col = col.cast(pa.string())
            ne = pc.not_equal(col.slice(1), col.slice(0, len(col) - 1))
            s = np.concatenate([[0], np.flatnonzero(ne.to_numpy(zero_copy_only=False)) + 1])
            lab = col.take(pa.array(s))
        if not pa.types.is_string(lab.type):
            lab = lab.cast(pa.string())
        if self.last is not None and lab[0].as_py() == self.last:  # run goes on from the last batch
            s, lab = s[1:], lab.slice(1)
        if len(lab):
            self.last = lab[len(lab) - 1].as_py()
        self.starts.append(s + pos)
        self.arrow.append(lab)

    def same_as(self, bill_keys: pa.Array) -> bool:
        """One run per bill, in the order of ``bill_keys`` (an Arrow text column)."""
        n = sum(len(a) for a in self.arrow)
        if not self.ok or n != len(bill_keys):
            return False
        lab = pa.concat_arrays(self.arrow) if self.arrow else pa.array([], pa.string())
        keys = bill_keys if pa.types.is_string(bill_keys.type) else bill_keys.cast(pa.string())
        return bool(lab.equals(keys))

    def bill_start(self, bill_ids: Coded, n: int) -> np.ndarray | None:
        if not self.ok:
            return None
        s = np.concatenate(self.starts) if self.starts else np.zeros(0, np.int64)
        if len(s) != len(bill_ids):
            return None
        labels = pa.array(np.asarray(bill_ids.labels, dtype=object), pa.string())
        if not self.same_as(labels.take(pa.array(np.asarray(bill_ids.codes)))):
            return None
        return np.append(s, n).astype(np.int64)


def read_item_cols(
    path: str | Path, lo: int, hi: int, bill_ids: Coded | None, file: str | None = None,
    bill_start: np.ndarray | None = None,
) -> ItemCols:  # fmt: skip
    """Items rows [lo, hi) straight into preallocated numpy columns, one row group at a time
    (memory: the columns plus one row group). Items grouped by bill in the bills' order are
    linked as runs; otherwise (or without ``bill_ids``) the bill_id column is read again and
    items are linked by id (and hospital, when the items have that column). ``bill_ids``:
    the bills' ``bill_key`` (the same form as the items' key). ``bill_start``: the links
    already known (``plan.plan`` found the items in the bills' order): the bill_id and hospital
    columns are not read at all."""
    path = str(path)
    cols = columns_of(path, "items")
    if bill_start is not None:
        assert bill_start[-1] == hi - lo, (bill_start[-1], lo, hi)
        cols, bill_ids = [c for c in cols if c not in ("bill_id", "hospital")], None
    n = hi - lo
    schema = (read_all(path, "items").schema if is_csv(path)
              else pq.ParquetFile(path).schema_arrow)  # fmt: skip
    num = [c for c in ("qty_e4", "unit_price", "amount", "unit_price_cap", "selfpay_ratio")
           if c in cols]  # fmt: skip
    name = file or Path(path).name
    out = {c: np.empty(n, dtype=_np_dtype(schema.field(c).type, f"{name}: {c}")) for c in num}
    nulls: dict[str, np.ndarray] = {}
    fill = {"qty_e4": 10000, "unit_price": 0, "amount": 0, "unit_price_cap": -1,
            "selfpay_ratio": -1}  # fmt: skip
    keep_null = ("amount", "unit_price_cap", "selfpay_ratio")
    cat = np.empty(n, dtype=np.int8)
    runs = _Runs()
    pos = 0
    for batch in row_batches(path, "items", lo, hi, cols, carry=True):
        m = batch.num_rows
        cat[pos : pos + m] = category(batch.column("category"))
        for c in num:
            a = batch.column(c)
            if not pa.types.is_integer(a.type):
                _np_dtype(a.type, f"{name}: {c}")  # refuses floats
                a = a.cast(out[c].dtype.name)
            dst = out[c][pos : pos + m]
            if a.null_count:
                null = ~_valid(a)
                dst[:] = _values(a)
                np.putmask(dst, null, fill[c])  # what a null slot holds is undefined
                if c in keep_null:
                    if c not in nulls:
                        nulls[c] = np.zeros(n, dtype=bool)
                    nulls[c][pos : pos + m] = null
            else:
                dst[:] = a.to_numpy()
        if bill_ids is not None:
            runs.add(_one(bill_key(batch)), pos)
        pos += m
        del batch
    assert pos == n, (pos, n)
    starts = runs.bill_start(bill_ids, n) if bill_ids is not None else bill_start
    link = hosp = None
    if starts is None:

        def column(name: str) -> Coded:
            return coded(pa.concat_arrays([
                b.column(name).cast(pa.string()) for b in row_batches(path, "items", lo, hi,
                                                                     [name])
            ]) if n else pa.array([], pa.string()))  # fmt: skip

        link = column("bill_id")
        hosp = column("hospital") if "hospital" in cols else None
    return ItemCols(
        bill_id=link, hospital=hosp, bill_start=starts, category=cat, amount=out["amount"],
        amount_null=nulls.get("amount"), qty_e4=out.get("qty_e4"),
        unit_price=out.get("unit_price"), unit_price_cap=out.get("unit_price_cap"),
        unit_price_cap_null=nulls.get("unit_price_cap"), selfpay_ratio=out.get("selfpay_ratio"),
        selfpay_ratio_null=nulls.get("selfpay_ratio"), row=lo, file=file or Path(path).name,
    )  # fmt: skip
