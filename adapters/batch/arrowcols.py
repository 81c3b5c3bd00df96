"""Arrow -> numpy for batch runs: the engine.columnar columns (bills, items, persons, opening)
from Arrow tables and columns: string ids as ``Coded`` labels and codes, dates, integers,
categories."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from adapters.batch.io import InputFileError
from engine.columnar import BillCols, Coded, ItemCols, OpeningCols, PersonCols, category_codes


def coded(col: pa.ChunkedArray | pa.Array) -> Coded:
    """A string (or dictionary) column as sorted-unique labels and codes; nulls become ''."""
    if _mostly_distinct_ids(col):  # the persons file's person ids: decoded, then one sort
        col = col.cast(col.type.value_type)
    if isinstance(col, pa.ChunkedArray):
        col = col.unify_dictionaries() if pa.types.is_dictionary(col.type) else col
        col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    if pa.types.is_dictionary(col.type) and (col.null_count or col.dictionary.null_count):
        col = col.cast(col.type.value_type)
    if not pa.types.is_dictionary(col.type):
        if not pa.types.is_string(col.type) and not pa.types.is_large_string(col.type):
            col = col.cast(pa.string())
        col = pc.fill_null(col, "") if col.null_count else col
        key = fixed_width_key(col)
        if key is not None:  # ids of one length (a part's bill ids): sorted, not hashed
            return _coded_by_key(col, key)
        col = pc.dictionary_encode(col)
    d = col.dictionary
    idx = _sort_order(d)
    labels = d.take(pa.array(idx)).to_numpy(zero_copy_only=False).astype(object)
    rank = np.empty(len(idx), dtype=np.int64)
    rank[idx] = np.arange(len(idx))
    codes = rank[col.indices.to_numpy(zero_copy_only=False).astype(np.int64)]
    if len(labels) > 1 and np.any(labels[1:] == labels[:-1]):  # a dictionary with repeats
        u, inv = np.unique(labels, return_inverse=True)
        return Coded(inv.reshape(-1)[codes], u, sorted=True)
    return Coded(codes, labels, sorted=True)


def _mostly_distinct_ids(col: pa.ChunkedArray | pa.Array) -> bool:
    """A dictionary column whose dictionaries (one a row group) hold at least half as many
    strings as it has rows, all of one byte length: ``coded`` decodes it and sorts the ids by
    ``fixed_width_key`` rather than unify, hash and sort the dictionaries (the 355 k-row
    persons file, 4 row groups of 333 k person ids each: ~150-210 -> ~60-80 ms, branch
    batch8). Few labels (hospitals, levels, a part's households) stay as they are."""
    if not pa.types.is_dictionary(col.type) or not pa.types.is_string(col.type.value_type):
        return False
    chunks = col.chunks if isinstance(col, pa.ChunkedArray) else [col]
    ds = [c.dictionary for c in chunks]
    if 2 * sum(len(d) for d in ds) < len(col) or len(col) < 2:
        return False
    widths = set()
    for d in ds:
        if d.null_count:
            return False
        off = np.frombuffer(d.buffers()[1], dtype=np.int32, count=d.offset + len(d) + 1)
        w = np.diff(off[d.offset :])
        if len(w) and (w[0] == 0 or np.any(w != w[0])):
            return False
        widths.update(w[:1].tolist())
    return len(widths) == 1 and widths.pop() <= 16


def _coded_by_key(col: pa.Array, key: np.ndarray) -> Coded:
    """``coded`` of a string array by its ``fixed_width_key``: the labels taken at a row of
    each distinct key (``key_codes``); the same labels and codes as hashing into a dictionary
    first (a part's 100 k bill ids: ~40 -> ~20 ms, branch batch8). The Arrow strings go along
    (``Coded.native``): the writer's dictionary of a part's bill ids (``parquetout``)."""
    codes, at = key_codes(key)
    strings = col.take(pa.array(at))
    labels = strings.to_numpy(zero_copy_only=False).astype(object)
    return Coded(codes, labels, sorted=True, native=strings)


def run_starts(s: np.ndarray) -> np.ndarray:
    """True where a sorted array's value differs from the one before it (and at 0)."""
    new = np.empty(len(s), dtype=bool)
    new[:1] = True
    np.not_equal(s[1:], s[:-1], out=new[1:])
    return new


def key_sort(key: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One sort of the keys (equal keys are equal strings for ``fixed_width_key``: the order
    among them does not matter): (the order; ``run_starts`` of the keys in that order; each
    sorted position's rank among the distinct keys; each row's rank, its code)."""
    order = np.argsort(key)
    new = run_starts(key[order])
    ranks = np.cumsum(new) - 1
    codes = np.empty(len(key), dtype=np.int64)
    codes[order] = ranks
    return order, new, ranks, codes


def key_codes(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(each row's code: the rank of its key among the distinct keys; a row holding each
    code), by one sort of the keys (``key_sort``)."""
    order, new, _, codes = key_sort(key)
    return codes, order[new]


def fixed_width_key(a: pa.Array) -> np.ndarray | None:
    """Each string of ``a`` as one int64 in the strings' byte order (Arrow's), when ``a``
    (2 or more strings, no nulls) holds strings of one length up to 16 bytes whose varying
    bytes fit 63 bits as the digits of a mixed radix (each byte position: its smallest value
    to its largest; positions that never vary left out); else None. Ids such as bill and
    person ids ('B000177196': 9 varying digit bytes, 10**9 keys) fit."""
    n = len(a)
    if n < 2 or a.null_count or not pa.types.is_string(a.type):
        return None
    off = np.frombuffer(a.buffers()[1], dtype=np.int32, count=a.offset + n + 1)[a.offset :]
    width = int(off[1] - off[0])
    if not 0 < width <= 16 or int(off[-1] - off[0]) != width * n:
        return None
    if not np.all(np.diff(off) == width):
        return None
    data = np.frombuffer(a.buffers()[2], dtype=np.uint8)[off[0] : off[-1]].reshape(n, width)
    r = Radix.of(data)
    return None if r is None else r.key(data)


@dataclass(frozen=True)
class Radix:
    """The mixed radix of (n, width) uint8 strings of one width: each byte position a digit
    from its smallest value (``lo``) over ``span`` values; positions that never vary
    (``vary``: those that do) left out. Keys in the strings' byte order."""

    lo: np.ndarray
    span: np.ndarray  # int64
    vary: np.ndarray

    @staticmethod
    def of(data: np.ndarray) -> Radix | None:
        """The radix of ``data``'s rows, or None if its largest key would not be an int64."""
        lo, hi = data.min(axis=0), data.max(axis=0)
        span = hi.astype(np.int64) - lo + 1
        vary = np.flatnonzero(span > 1)
        total = 1
        for j in vary:
            total *= int(span[j])
            if total > 1 << 63:  # the largest key, total - 1, must be an int64
                return None
        return Radix(lo, span, vary)

    def key(self, data: np.ndarray) -> np.ndarray:
        """Each row's key, where its bytes are within the radix (others: not looked at).
        Horner's rule, one byte position at a time (the first the most significant digit,
        the last the least): one int64 column and a uint8 one, no (n, positions) int64
        matrix (72 MB of fresh memory for 1 M bill ids); every step's key below the product
        of its spans."""
        key = np.zeros(len(data), dtype=np.int64)
        for j in self.vary:
            key *= int(self.span[j])
            key += np.subtract(data[:, j], self.lo[j])  # uint8: the byte from 0 to its span - 1
        return key


def dict_ranks(d: pa.Array) -> np.ndarray:
    """Each string's rank among the distinct strings of ``d`` (a dictionary, no nulls) in
    their byte order (Arrow's; ``_sort_order``): equal strings, equal ranks; int32."""
    order = _sort_order(d)
    s = d.take(pa.array(order))
    new = np.ones(len(d), dtype=bool)
    if len(d) > 1:
        new[1:] = pc.not_equal(s.slice(1), s.slice(0, len(d) - 1)).to_numpy(zero_copy_only=False)
    ranks = np.empty(len(d), dtype=np.int32)
    ranks[order] = np.cumsum(new) - 1
    return ranks


def _sort_order(d: pa.Array) -> np.ndarray:
    """The indices that sort a string array by its UTF-8 bytes (Arrow's order), stably. Ids
    of one length up to 16 bytes (bill ids, person ids) are sorted by numpy: as one integer
    (``fixed_width_key``), else as two big-endian integers (~40 % less CPU than Arrow's
    string sort of 200 k ids); anything else by Arrow."""
    n = len(d)
    key = fixed_width_key(d)
    if key is not None:
        return np.argsort(key, kind="stable")
    if n > 1 and d.null_count == 0 and pa.types.is_string(d.type):
        off = np.frombuffer(d.buffers()[1], dtype=np.int32, count=d.offset + n + 1)[d.offset :]
        width = int(off[1] - off[0])
        if 0 < width <= 16 and int(off[-1] - off[0]) == width * n:
            data = np.frombuffer(d.buffers()[2], dtype=np.uint8)[off[0] : off[-1]]
            if np.all(np.diff(off) == width):
                key2 = np.zeros((n, 16), dtype=np.uint8)
                key2[:, :width] = data.reshape(n, width)
                hi_lo = key2.view(">u8")
                if width <= 8:
                    return np.argsort(hi_lo[:, 0], kind="stable")
                return np.lexsort((hi_lo[:, 1], hi_lo[:, 0]))
    return pc.array_sort_indices(d).to_numpy()


def ints(
    col: pa.ChunkedArray | pa.Array, where: str = "a column"
) -> tuple[np.ndarray, np.ndarray | None]:
    """(values with -1 for nulls, null mask or None) of an integer column; ``where`` (file:
    column) names it if it is refused."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    _np_dtype(col.type, where)  # refuses floats and decimals
    if not pa.types.is_integer(col.type):
        col = col.cast(pa.int64())
    if col.null_count:
        null = col.is_null().to_numpy(zero_copy_only=False)
        return pc.fill_null(col, -1).to_numpy(), null
    return col.to_numpy(), None


def dates(col: pa.ChunkedArray | pa.Array, where: str = "dates", rows: Any = None) -> np.ndarray:
    """Days as datetime64[D] from a date column, strict ISO strings ``YYYY-MM-DD``, or
    timestamps at midnight. Anything else (a time of day, numbers, other spellings) refuses the
    file (InputFileError naming ``where``, the row and the value): a date is never guessed."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    if pa.types.is_timestamp(col.type):
        unit = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}[col.type.unit] * 86400
        ticks = pc.fill_null(col.cast(pa.int64()), 0).to_numpy()
        timed = np.flatnonzero(ticks % unit)
        if len(timed):
            _not_a_date(where, rows, int(timed[0]), col[int(timed[0])].as_py(),
                        "has a time of day; dates are YYYY-MM-DD")  # fmt: skip
        col = col.cast(pa.date32())
    elif pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        try:
            col = col.cast(pa.date32())  # Arrow takes exactly 'YYYY-MM-DD'
        except pa.ArrowInvalid:
            ok = pc.match_substring_regex(col, r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
            for i, v in enumerate(col.to_pylist()):
                if v is not None and not (ok[i].as_py() and _is_day(v)):
                    _not_a_date(where, rows, i, v, "is not a date; use YYYY-MM-DD")
            raise
    elif not pa.types.is_date(col.type):
        raise InputFileError(
            f"{where}: is a column of {col.type}; dates are a date column or strings YYYY-MM-DD"
        )
    # Arrow converts date32 to datetime64[D] already: no second copy
    return col.to_numpy(zero_copy_only=False).astype("M8[D]", copy=False)


def _is_day(v: str) -> bool:
    try:
        date.fromisoformat(v)
    except ValueError:
        return False
    return True


def _not_a_date(where: str, rows: Any, i: int, value: Any, rule: str) -> None:
    row = i if rows is None else int(rows[i])
    raise InputFileError(f"{where} row {row}: {value!r} {rule}")


def _rows(t: pa.Table, lo: int) -> np.ndarray:
    return np.arange(lo, lo + t.num_rows, dtype=np.int64)


def bill_cols(t: pa.Table, file: str, lo: int = 0) -> BillCols:
    g = t.column_names
    return BillCols(
        bill_id=coded(t["bill_id"]), hospital=coded(t["hospital"]),
        person_id=coded(t["person_id"]),
        hospital_level=coded(t["hospital_level"]),
        admission_date=dates(t["admission_date"], f"{file}: admission_date", _rows(t, lo)),
        discharge_date=dates(t["discharge_date"], f"{file}: discharge_date", _rows(t, lo)),
        household_id=coded(t["household_id"]) if "household_id" in g else None,
        region=coded(t["region"]) if "region" in g else None,
        row=_rows(t, lo), file=file,
    )  # fmt: skip


def bill_key(t: pa.Table | pa.RecordBatch) -> pa.Array | pa.ChunkedArray:
    """What identifies a bill in a bills or items table: (hospital, bill_id) as one string
    column when the table has a hospital column, else bill_id alone."""
    if "hospital" not in t.schema.names:
        return t.column("bill_id")

    def text(c: Any) -> Any:
        c = c.cast(pa.string()) if not pa.types.is_string(c.type) else c
        return pc.fill_null(c, "")

    return pc.binary_join_element_wise(
        text(_one(t.column("hospital"))), text(_one(t.column("bill_id"))), "\x1f"
    )


def _one(col: pa.ChunkedArray | pa.Array) -> pa.Array:
    if isinstance(col, pa.ChunkedArray):
        if pa.types.is_dictionary(col.type):
            col = col.unify_dictionaries()
        return col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    return col


def category(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Categories as int8 1/2/3 (0 = unknown) without widening: a lookup per dictionary.
    Exactly the contract's codes A, B, C, 01, 02, 03: a column of numbers is read as their
    text ('1' is not a code)."""
    col = _one(col)
    if pa.types.is_integer(col.type):
        col = col.cast(pa.string())
    if not pa.types.is_dictionary(col.type):
        col = pc.dictionary_encode(pc.fill_null(col.cast(pa.string()), ""))
    lut = category_codes(col.dictionary.to_numpy(zero_copy_only=False).astype(object))
    idx = pc.fill_null(col.indices, -1).to_numpy() if col.null_count else col.indices.to_numpy()
    lut = np.append(lut, np.int8(0))  # index -1 (null) -> unknown
    return lut[idx]


def bill_runs(col: pa.ChunkedArray | pa.Array, bill_ids: Coded) -> np.ndarray | None:
    """``bill_start`` when the items are grouped by bill exactly in the bills' order, else
    None (then items are linked by bill id)."""
    col = _one(col)
    if not pa.types.is_dictionary(col.type):
        col = pc.dictionary_encode(col)
    if col.null_count:
        return None
    idx = col.indices.to_numpy()
    n = len(idx)
    starts = np.concatenate([[0], np.flatnonzero(idx[1:] != idx[:-1]) + 1]) if n else idx[:0]
    if len(starts) != len(bill_ids):
        return None
    labels = col.dictionary.take(pa.array(idx[starts])).to_numpy(zero_copy_only=False)
    if not np.array_equal(labels.astype(object), bill_ids.values()):
        return None
    return np.append(starts, n).astype(np.int64)


def item_cols(t: pa.Table, file: str, lo: int = 0, bill_ids: Coded | None = None) -> ItemCols:
    """Item columns; with ``bill_ids`` (the bills of the same part) items stored in the bills'
    order are linked as runs, without any per-item index array."""
    g = t.column_names
    runs = bill_runs(t["bill_id"], bill_ids) if bill_ids is not None else None
    amount, amount_null = ints(t["amount"], f"{file}: amount")
    price = None
    if "unit_price" in g:
        price, price_null = ints(t["unit_price"], f"{file}: unit_price")
        if price_null is not None:
            price = np.where(price_null, 0, price)  # not given = 0
    cap, cap_null = (ints(t["unit_price_cap"], f"{file}: unit_price_cap")
                     if "unit_price_cap" in g else (None, None))  # fmt: skip
    ratio, ratio_null = (ints(t["selfpay_ratio"], f"{file}: selfpay_ratio")
                         if "selfpay_ratio" in g else (None, None))  # fmt: skip
    qty = None
    if "qty_e4" in g:
        qty, qty_null = ints(t["qty_e4"], f"{file}: qty_e4")
        if qty_null is not None:
            qty = np.where(qty_null, 10000, qty)  # not given = one unit
    return ItemCols(
        bill_id=coded(t["bill_id"]) if runs is None else None, bill_start=runs,
        category=category(t["category"]), amount=amount,
        amount_null=amount_null, qty_e4=qty, unit_price=price,
        unit_price_cap=cap, unit_price_cap_null=cap_null,
        selfpay_ratio=ratio, selfpay_ratio_null=ratio_null, row=lo, file=file,
    )  # fmt: skip


def person_cols(t: pa.Table, file: str, rows: np.ndarray) -> PersonCols:
    g = t.column_names
    return PersonCols(
        person_id=coded(t["person_id"]),
        birth_date=dates(t["birth_date"], f"{file}: birth_date", rows),
        household_id=coded(t["household_id"]),
        tag=coded(t["tag"]) if "tag" in g else None,
        tag_valid_from=dates(t["tag_valid_from"], f"{file}: tag_valid_from", rows)
        if "tag_valid_from" in g else None,
        tag_valid_to=dates(t["tag_valid_to"], f"{file}: tag_valid_to", rows)
        if "tag_valid_to" in g else None,
        row=rows, file=file,
    )  # fmt: skip


def opening_cols(t: pa.Table, file: str) -> OpeningCols:
    g = t.column_names

    def i(c: str) -> np.ndarray:
        return ints(t[c], f"{file}: {c}")[0]

    def s(c: str) -> np.ndarray:
        return coded(t[c]).values()

    return OpeningCols(
        scope=s("scope"), id=s("id"), year=i("year"), layer_id=s("layer_id"),
        deductible_used=i("deductible_used"), eligible_cum=i("eligible_cum"), paid=i("paid"),
        selfpay_cum=i("selfpay_cum"), admissions=i("admissions") if "admissions" in g else None,
        row=np.arange(t.num_rows), file=file,
    )  # fmt: skip


def _np_dtype(t: pa.DataType, where: str = "a column") -> np.dtype:
    if pa.types.is_integer(t):
        # not t.to_pandas_dtype(): older pyarrow imports pandas for it, which batch runs need not have
        kind = "u" if pa.types.is_unsigned_integer(t) else "i"
        return np.dtype(f"{kind}{t.bit_width // 8}")
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        raise InputFileError(
            f"{where}: is a column of {t}; money, quantities and ratios are whole numbers "
            "(fen, ten-thousandths, basis points): store them as integers"
        )
    return np.dtype(np.int64)  # strings etc.: cast per batch
