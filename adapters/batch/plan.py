"""The plan of a batch run: parts cut at household boundaries (``plan``), and the order checks.

Inputs must be stored sorted: bills by household_id, discharge_date, admission_date, bill_id,
hospital; items grouped by bill in the bills' order. A bill is (hospital, bill_id): the same id
at two hospitals is two bills (then the items need a hospital column too), the same
(hospital, bill_id) twice is an error. ``plan`` checks this on a scan of the key columns
(memory: a few int64 per bill, never the items) and refuses unsorted input.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from adapters.batch import arrowcols, io, itemstream
from adapters.batch.run import Part, Spec
from engine import columnar as C

SORT_HINT = (
    "give --sort to have them sorted first (out of core), or sort the bills by household_id, "
    "discharge_date, admission_date, bill_id, hospital and store the items grouped by bill in "
    "the same order"
)


class UnsortedInput(io.InputFileError):
    pass


def _text_column(col: Any) -> Any:
    """A text column as one Arrow string array, nulls as ''."""
    col = arrowcols._one(col)
    if not pa.types.is_string(col.type):
        col = col.cast(pa.string())
    return pc.fill_null(col, "") if col.null_count else col


def _text(col: Any, r: int) -> str:
    return str(_text_column(col)[r].as_py())


def _adjacent(col: Any) -> tuple[np.ndarray, np.ndarray]:
    """(row i+1 < row i, row i+1 == row i) of a text column: Arrow compares the UTF-8 bytes,
    the order of sorted labels (``arrowcols.coded``), without sorting anything. A dictionary
    column (the household ids) is compared by its codes (``_adjacent_coded``)."""
    got = _adjacent_coded(col)
    if got is not None:
        return got
    c = _text_column(col)
    if len(c) < 2:
        return np.zeros(0, dtype=bool), np.zeros(0, dtype=bool)
    nxt, prv = c.slice(1), c.slice(0, len(c) - 1)
    return (pc.less(nxt, prv).to_numpy(zero_copy_only=False),
            pc.equal(nxt, prv).to_numpy(zero_copy_only=False))  # fmt: skip


def _adjacent_coded(col: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """``_adjacent`` of a dictionary column of strings without nulls, by each row group's
    dictionary sorted (``arrowcols.dict_ranks``: its strings' ranks in byte order) and the rows
    compared as ranks, the rows on both sides of a row group boundary as strings: no string
    per row (the bills' 1 M household ids: no 1 M-string cast, no unified dictionary). None
    for any other column."""
    if not pa.types.is_dictionary(col.type) or not pa.types.is_string(col.type.value_type):
        return None
    chunks = [c for c in (col.chunks if isinstance(col, pa.ChunkedArray) else [col]) if len(c)]
    if any(c.null_count or c.dictionary.null_count for c in chunks):
        return None
    n = sum(len(c) for c in chunks)
    lt, eq = np.empty(max(n - 1, 0), dtype=bool), np.empty(max(n - 1, 0), dtype=bool)
    pos, last = 0, None
    for c in chunks:
        m = len(c)
        idx = c.indices.to_numpy()
        r = arrowcols.dict_ranks(c.dictionary)[idx]
        if last is not None:  # the first row against the last of the row group before
            first = c.dictionary[int(idx[0])].as_py().encode()
            lt[pos - 1], eq[pos - 1] = first < last, first == last
        np.less(r[1:], r[:-1], out=lt[pos : pos + m - 1])
        np.equal(r[1:], r[:-1], out=eq[pos : pos + m - 1])
        last = c.dictionary[int(idx[-1])].as_py().encode()
        pos += m
    return lt, eq


def _order_problem(h: tuple[np.ndarray, np.ndarray], d: np.ndarray, a: np.ndarray,
                   b: tuple[np.ndarray, np.ndarray], na: np.ndarray,
                   hosp: np.ndarray | None = None) -> int:  # fmt: skip
    """Index i of the first row that sorts before row i-1, or -1. ``h`` and ``b``: the
    (less, equal) comparisons of adjacent rows (``_adjacent``)."""
    if len(d) < 2:
        return -1
    lt, eq = h[0].copy(), h[1].copy()
    ok = ~(na[1:] | na[:-1])
    lt |= eq & ok & (d[1:] < d[:-1])
    eq &= ok & (d[1:] == d[:-1])
    lt |= eq & (a[1:] < a[:-1])
    eq &= a[1:] == a[:-1]
    lt |= eq & b[0]
    if hosp is not None:
        eq &= b[1]
        lt |= eq & (hosp[1:] < hosp[:-1])
    bad = np.flatnonzero(lt)
    return int(bad[0]) + 1 if len(bad) else -1


def plan(spec: Spec, chunk_bills: int) -> tuple[list[Part], int, int]:
    """Parts of about ``chunk_bills`` bills each, cut at household boundaries; also the
    numbers of bills and items. UnsortedInput if the files are not stored in order. With hard
    budgets (``spec.budgets``) one part: the region-wide order crosses households."""
    io.use_encoding(spec.inputs(), spec.encoding)
    bills_cols = io.columns_of(spec.bills, "bills")
    items_by_hospital = "hospital" in io.columns_of(spec.items, "items")
    io.columns_of(spec.persons, "persons")
    if "household_id" not in bills_cols:
        raise io.InputFileError(
            f"{spec.bills}: column household_id missing; a batch run checks the order and cuts "
            "parts at households, so the bills file carries each bill's household_id"
        )
    nb = io.n_rows(spec.bills, "bills")
    if spec.budgets:
        chunk_bills = max(chunk_bills, nb)
    keys = io.read_rows(
        spec.bills, "bills", 0, nb,
        ["household_id", "discharge_date", "admission_date", "bill_id", "hospital"],
    )  # fmt: skip
    # adjacent rows compared as text (Arrow, byte order): no sort of a million ids
    h_lt, h_eq = _adjacent(keys["household_id"])
    bid_col = _text_column(keys["bill_id"])  # one Arrow array (the file's row groups joined once)
    b_lt, b_eq = _adjacent(bid_col)
    hosp = arrowcols.coded(keys["hospital"])  # a county's few dozen hospitals
    d_raw = arrowcols.dates(keys["discharge_date"], f"{spec.bills}: discharge_date")
    a_raw = arrowcols.dates(keys["admission_date"], f"{spec.bills}: admission_date")
    na = np.isnat(d_raw) | np.isnat(a_raw)
    d, a = d_raw.view(np.int64), a_raw.view(np.int64)  # the days as they are (NaT: int64 min)
    bad = _order_problem((h_lt, h_eq), d, a, (b_lt, b_eq), na, hosp.codes)
    if bad >= 0:

        def at(r: int) -> str:
            return (
                f"household {_text(keys['household_id'], r)!r}, discharge {d_raw[r]}, "
                f"admission {a_raw[r]}, bill {_text(keys['bill_id'], r)!r}, hospital "
                f"{hosp.labels[hosp.codes[r]]!r}"
            )

        raise UnsortedInput(
            f"{spec.bills} is not sorted: row {bad} ({at(bad)}) comes after row {bad - 1} "
            f"({at(bad - 1)}); {SORT_HINT}"
        )
    # a bill is (hospital, bill_id); items name their bill by bill_id (and hospital, if given).
    # The bill ids coded once (one sort of integer keys, or Arrow's hash); (id code, hospital
    # code) pairs are integers from there
    key = arrowcols.fixed_width_key(bid_col)  # ids of one length: one sort of int64 keys, no hash
    nh = max(len(hosp.labels), 1)
    if key is not None:  # one sort of the keys gives the codes and the (id, hospital) pairs
        bid_codes, id_row, first_of, pairs = _key_pairs(key, hosp.codes, nh)
        n_ids = len(id_row)
    else:
        bid = pc.dictionary_encode(bid_col)
        bid_codes = bid.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        n_ids = len(bid.dictionary)
        first_of, pairs = _first_rows(bid_codes * nh + hosp.codes)
    shared_codes = np.zeros(0, np.int64) if items_by_hospital else _shared_ids(pairs, nh, n_ids)
    if key is not None:  # named in the order they first appear, as the dictionary has them
        rows = np.flatnonzero(np.isin(bid_codes, shared_codes)) if len(shared_codes) else id_row[:0]
        first = np.sort(rows[np.unique(bid_codes[rows], return_index=True)[1]])
        shared = [str(x) for x in bid_col.take(pa.array(first)).to_pylist()]
    else:
        shared = [str(x) for x in bid.dictionary.take(pa.array(shared_codes)).to_pylist()]
    if shared:
        raise io.InputFileError(
            f"{spec.items}: column hospital missing; bill ids of {spec.bills} used by several "
            f"hospitals ({', '.join(repr(x) for x in shared[:5])}"
            f"{f' and {len(shared) - 5} more' if len(shared) > 5 else ''}) need it: add a "
            "hospital column to the items so that each item names its bill (hospital, bill_id)"
        )
    link_col = _text_column(arrowcols.bill_key(keys)) if items_by_hospital else bid_col
    # cut points at household starts
    hh_starts = np.flatnonzero(~h_eq) + 1 if nb else np.zeros(0, np.int64)
    cuts = [0]
    step = max(1, chunk_bills)
    while cuts[-1] + step < nb:
        j = int(np.searchsorted(hh_starts, cuts[-1] + step))
        if j >= len(hh_starts):
            break
        cuts.append(int(hh_starts[j]))
    cuts.append(nb)
    # items: runs of one bill id, mapped to the bill's row; must not go backwards
    runs, n_items = itemstream._Runs(), 0
    for batch in _item_keys(spec.items, items_by_hospital):
        runs.add(batch, n_items)
        n_items += len(batch)
    in_order = runs.ok and runs.same_as(link_col)
    if in_order:  # the usual case: one run per bill, in the bills' order (none goes back)
        rs = np.concatenate(runs.starts) if runs.starts else np.zeros(0, np.int64)
        filled = np.arange(nb)
    else:
        # bill (key as the items give it) -> first bill row, by sorted codes
        link = arrowcols.coded(link_col)
        first = np.full(len(link.labels), nb, dtype=np.int64)
        np.minimum.at(first, link.codes, np.arange(nb))
        rs, rp = _item_runs(spec.items, items_by_hospital, runs, link, first)
        filled = _runs_in_order(spec.items, rs, rp)
    # (hospital, bill id) used again in a later part: reported in that part (only the rows
    # of a pair seen before are looked at: none, when every bill is once in the file)
    again = np.flatnonzero(first_of != np.arange(nb)) if nb else np.zeros(0, np.int64)
    cut_at = np.array(cuts)
    part_of = np.searchsorted(cut_at, again, side="right") - 1
    moved = part_of != np.searchsorted(cut_at, first_of[again], side="right") - 1
    extra: dict[int, list[tuple[int, str, Any, str]]] = {}
    for r, k in zip(again[moved].tolist(), part_of[moved].tolist(), strict=True):
        extra.setdefault(k, []).append((
            int(r - cuts[k]), "bill_id", str(_text(bid_col, r)),
            f"is used by {Path(spec.bills).name} row {int(first_of[r])} too, at "
            f"the same hospital {hosp.labels[hosp.codes[r]]!r}; a bill id is unique within "
            "its hospital",
        ))  # fmt: skip
    parts = []
    for k in range(len(cuts) - 1):
        lo, hi = cuts[k], cuts[k + 1]
        j_lo, j_hi = np.searchsorted(filled, lo), np.searchsorted(filled, hi)
        ilo = 0 if k == 0 else (int(rs[j_lo]) if j_lo < len(rs) else n_items)
        ihi = int(rs[j_hi]) if j_hi < len(rs) else n_items
        starts = np.append(rs[lo:hi], ihi) - ilo if in_order else None
        parts.append(Part(k, lo, hi, ilo, ihi, tuple(extra.get(k, ())), starts))
    return parts, nb, n_items


def _runs_in_order(items: str, rs: np.ndarray, rp: np.ndarray) -> np.ndarray:
    """Each item run's bill row, an orphan run (no such bill, ``rp`` -1) given the row of the
    run before it (0 at the start); UnsortedInput when a run goes back to an earlier bill."""
    known = rp >= 0
    filled = np.maximum.accumulate(np.where(known, rp, -1)) if len(rp) else rp
    back = (
        np.flatnonzero(known[1:] & (rp[1:] < filled[:-1])) + 1 if len(rp) else np.zeros(0, np.int64)
    )
    if len(back):
        i = int(back[0])
        raise UnsortedInput(
            f"{items} is not in the order of the bills: items row {int(rs[i])} belongs to "
            f"bill row {int(rp[i])} but comes after items of bill row {int(filled[i - 1])}; "
            f"{SORT_HINT}"
        )
    return np.maximum(filled, 0)


def _first_rows(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the first row with the same key, of each row; the distinct keys, sorted) of an integer
    key column, by one stable sort (no hash, no ``np.unique``)."""
    if not len(key):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    order = np.argsort(key, kind="stable")
    sk = key[order]
    new = arrowcols.run_starts(sk)
    first = np.empty(len(key), np.int64)
    first[order] = order[new][np.cumsum(new) - 1]
    return first, sk[new]


def _key_pairs(
    key: np.ndarray, hosp: np.ndarray, nh: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``arrowcols.key_codes`` of the bill ids' ``key`` (each row's id code, a row of each
    code) and ``_first_rows`` of the pairs (id code * ``nh`` + hospital code ``hosp``), from
    one sort of ``key``: the pairs in that order are sorted when each id's rows come with
    their hospitals in order (always for ids used once, the usual case); else their own sort."""
    n = len(key)
    order, new, ranks, codes = arrowcols.key_sort(key)
    id_row = order[new]
    if new.all():  # every id once: each row its own pair, the pairs sorted as the ids
        return codes, id_row, np.arange(n, dtype=np.int64), ranks * nh + hosp[id_row]
    sp = ranks * nh + hosp[order]
    if np.any(sp[1:] < sp[:-1]):
        return (codes, id_row, *_first_rows(codes * nh + hosp))
    start = arrowcols.run_starts(sp)
    at = np.flatnonzero(start)
    lowest = np.minimum.reduceat(order, at)  # the first row of each pair (the sort not stable)
    first = np.empty(n, dtype=np.int64)
    first[order] = lowest[np.cumsum(start) - 1]
    return codes, id_row, first, sp[at]


def _shared_ids(pairs: np.ndarray, nh: int, n_ids: int) -> np.ndarray:
    """The codes of the bill ids used by more than one hospital: ``pairs`` the distinct (id
    code * nh + hospital code), ``n_ids`` the number of id codes."""
    per_id = np.bincount(pairs // nh, minlength=n_ids)
    return np.flatnonzero(per_id > 1)


def _item_runs(path: str, by_hospital: bool, runs: itemstream._Runs, link: C.Coded,
               first: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """(start, bill row) of each run of the items' bill key, when the runs are not one per
    bill in the bills' order (bill row -1: no such bill)."""
    if runs.ok:
        rs = np.concatenate(runs.starts) if runs.starts else np.zeros(0, np.int64)
        labs = np.concatenate(runs.labels) if runs.labels else np.zeros(0, object)
        pos = C.lookup(link.labels, labs)
        return rs, np.where(pos >= 0, first[np.maximum(pos, 0)], -1)
    # null bill ids: look at every batch (nulls are items of no bill)
    run_start, run_pos, n_items = [], [], 0
    for batch in _item_keys(path, by_hospital):
        c = arrowcols.coded(batch)
        if len(c.codes):
            s = np.concatenate([[0], np.flatnonzero(np.diff(c.codes) != 0) + 1])
            pos = C.lookup(link.labels, c.labels[c.codes[s]])
            run_start.append(s + n_items)
            run_pos.append(np.where(pos >= 0, first[np.maximum(pos, 0)], -1))
        n_items += len(batch)
    rs = np.concatenate(run_start) if run_start else np.zeros(0, np.int64)
    rp = np.concatenate(run_pos) if run_pos else np.zeros(0, np.int64)
    return rs, rp


def _item_keys(path: str, by_hospital: bool) -> Iterator[Any]:
    """The items' bill key (``arrowcols.bill_key``), batch by batch."""
    if not by_hospital:
        yield from io.iter_column(path, "items", "bill_id")
        return
    if io.is_csv(path):
        key = arrowcols.bill_key(io.read_all(path, "items"))  # an Array or a ChunkedArray
        yield from key.chunks if hasattr(key, "chunks") else [key]
        return
    import pyarrow.parquet as pq

    for b in pq.ParquetFile(path).iter_batches(batch_size=1 << 20, columns=["bill_id", "hospital"]):
        yield arrowcols.bill_key(b)
