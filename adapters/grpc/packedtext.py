"""The per-bill strings of a ``PackedBills`` message (bill ids, persons, hospitals, regions,
dates) from either of its forms: the repeated string fields (protobuf makes a Python string of
every value on every read: ~1 ms for a 2,000-bill message's 8,000 values) or the joined forms
(``bill_ids_joined`` with ``bill_id_offsets_i32``: one decode, then slices; ``person_index_i32``
into ``person_table``, ...: one int32 array and a short table; ``admission_dates_joined``: 10
bytes a bill, read as a matrix). A column given in both forms, a malformed joined field, or an
index out of its table is refused naming the field.

The persons, hospitals and regions come out coded (``engine.columnar.Coded``: codes into
distinct labels), as ``engine.columnar`` takes them; ``strings`` gives any column as a list of
strings, for the slow paths (SETTLE mode, naming a bad value by its bill)."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np
from numba import njit

from adapters.grpc.packedfields import DATE_BYTES, DATES, INDEXED
from engine import columnar as col
from engine import numbacache
from engine.errors import InputError, Problem

numbacache.install()


@dataclass(frozen=True)
class BillText:
    """The per-bill strings: ``given[name]`` is (the field it came in, how many values it holds)
    for the length checks; ``regions`` is None when no region was given (nor any bill).
    ``bill_ids``: a list, or a numpy str array when they came joined, ASCII, none empty and
    none holding a control character (``_id_array``: what ``np.array(ids, dtype=str)`` makes
    of the list, without the list)."""

    bill_ids: list[str] | np.ndarray
    person_ids: col.Coded
    hospitals: col.Coded
    regions: col.Coded | None
    admission_dates: list[str] | bytes
    discharge_dates: list[str] | bytes
    given: dict[str, tuple[str, int]]

    def strings(self, name: str) -> list[str]:
        """Column ``name`` (a field name of the repeated form) as a list of strings ([] for
        regions not given)."""
        v = getattr(self, name)
        if v is None:
            return []
        if isinstance(v, col.Coded):
            return [str(x) for x in np.asarray(v.labels, dtype=object)[v.codes].tolist()]
        if isinstance(v, bytes):
            return date_strings(v)
        if isinstance(v, np.ndarray):
            return v.tolist()
        return list(v)


def date_strings(raw: bytes) -> list[str]:
    """Joined dates as strings, 10 bytes each (bytes that are not UTF-8 replaced: such a value
    is refused anyway, by the caller naming it)."""
    return [
        raw[i : i + DATE_BYTES].decode("utf-8", "replace") for i in range(0, len(raw), DATE_BYTES)
    ]


def n_bills(p: Any) -> int:
    """How many bills ``p`` (a ``pb.PackedBills``) holds, from whichever form its bill ids came
    in (before any check: the message's size limit is checked first)."""
    if p.bill_id_offsets_i32 or p.bill_ids_joined:
        return max(len(p.bill_id_offsets_i32) // 4 - 1, 0)
    return len(p.bill_ids)


def hospitals_for_scope(p: Any) -> tuple[list[str], str]:
    """The hospitals a caller's scope must cover, with the field template naming one: each
    bill's, or every entry of ``hospital_table`` (an entry no bill uses included)."""
    if p.hospital_index_i32 or len(p.hospital_table):
        return list(p.hospital_table), "packed.hospital_table[{i}]"
    return list(p.hospitals), "packed.hospitals[{i}]"


def bill_text(p: Any) -> BillText:
    """The per-bill strings of ``p`` (a ``pb.PackedBills``); InputError naming each malformed
    joined field or a column sent in both forms (lengths are the caller's to check)."""
    problems: list[Problem] = []
    given: dict[str, tuple[str, int]] = {}
    bill_ids = _bill_ids(p, problems, given)
    coded: dict[str, col.Coded | None] = {}
    for name, (index, table) in INDEXED.items():
        coded[name] = _indexed(p, name, index, table, problems, given)
    dates: dict[str, list[str] | bytes] = {}
    for name, field in DATES.items():
        raw = getattr(p, field)
        if not raw:
            dates[name] = list(getattr(p, name))
            given[name] = (f"packed.{name}", len(dates[name]))
        elif len(getattr(p, name)):
            problems.append(_both(field, name, len(raw)))
        elif len(raw) % DATE_BYTES:
            problems.append(
                Problem(f"packed.{field}", len(raw), f"bytes; not {DATE_BYTES} bytes a bill")
            )
        else:
            dates[name] = raw
            given[name] = (f"packed.{field}", len(raw) // DATE_BYTES)
    if problems:
        raise InputError(problems)
    nb = len(bill_ids)
    regions = coded["regions"]
    if regions is None and nb == 0:
        regions = col.Coded(np.zeros(0, dtype=np.int64), np.array([], dtype=object))
    assert coded["person_ids"] is not None and coded["hospitals"] is not None
    return BillText(
        bill_ids=bill_ids,
        person_ids=coded["person_ids"],
        hospitals=coded["hospitals"],
        regions=regions,
        admission_dates=dates["admission_dates"],
        discharge_dates=dates["discharge_dates"],
        given=given,
    )


def _both(field: str, name: str, n: int) -> Problem:
    return Problem(f"packed.{field}", n, f"bytes given with packed.{name}; send one")


def _bill_ids(
    p: Any, problems: list[Problem], given: dict[str, tuple[str, int]]
) -> list[str] | np.ndarray:
    raw, off_raw = p.bill_ids_joined, p.bill_id_offsets_i32
    if not raw and not off_raw:
        ids = list(p.bill_ids)
        given["bill_ids"] = ("packed.bill_ids", len(ids))
        return ids
    if len(p.bill_ids):
        problems.append(_both("bill_ids_joined", "bill_ids", len(raw)))
        return []
    field = "packed.bill_id_offsets_i32"
    if len(off_raw) % 4 or not off_raw:
        problems.append(
            Problem(field, len(off_raw), "bytes; expected n_bills + 1 int32 little-endian offsets")
        )
        return []
    off = np.frombuffer(off_raw, dtype="<i4").astype(np.int64)
    if off[0] != 0 or off[-1] != len(raw) or (len(off) > 1 and bool((np.diff(off) < 0).any())):
        problems.append(
            Problem(
                field,
                len(off),
                "offsets; expected non-decreasing offsets from 0 to the length of "
                f"packed.bill_ids_joined ({len(raw)})",
            )
        )
        return []
    given["bill_ids"] = ("packed.bill_ids_joined", len(off) - 1)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        problems.append(Problem("packed.bill_ids_joined", err.start, "byte is not UTF-8 there"))
        return []
    if len(text) == len(raw) and (arr := _id_array(raw, off)) is not None:
        return arr
    o = off.tolist()
    if len(text) == len(raw):  # ASCII: byte offsets are character offsets
        return [text[a:b] for a, b in pairwise(o)]
    out = []
    for i, (a, b) in enumerate(pairwise(o)):
        try:
            out.append(raw[a:b].decode("utf-8"))
        except UnicodeDecodeError:
            problems.append(
                Problem(f"bills[{i}].id", raw[a:b].hex(), "is not whole UTF-8 characters")
            )
    return out


@njit(cache=True, nogil=True)
def _scatter(raw, off, out):
    # id i's characters into row i of a zeroed UCS-4 matrix (one fixed-width str a row);
    # False at an empty id or a control character (``engine.validation.bad_id_chars``)
    for i in range(len(off) - 1):
        a = off[i]
        n = off[i + 1] - a
        if n == 0:
            return False
        for k in range(n):
            c = raw[a + k]
            if c < 32 or c == 127:
                return False
            out[i, k] = c
    return True


def _id_array(raw: bytes, off: np.ndarray) -> np.ndarray | None:
    """ASCII joined ids (``off``: checked int64 offsets) as a numpy str array, what
    ``np.array(ids, dtype=str)`` makes of the list of ids (~0.03 ms for 2,000 ids against
    ~0.3 ms for the list and that array); None when an id is empty or holds a control character
    (a fixed-width string would drop a trailing NUL: the list keeps every id as sent, for the
    check that names it)."""
    if len(off) < 2:
        return None
    w = int(np.diff(off).max())
    m = np.zeros((len(off) - 1, max(w, 1)), dtype=np.uint32)
    if not _scatter(np.frombuffer(raw, dtype=np.uint8), off, m):
        return None
    return m.view(np.dtype((np.str_, w))).reshape(-1)  # UCS-4: the same bytes


def warm_id_array() -> None:
    """Compile ``_scatter`` (or load it from numba's cache) on two ids."""
    _id_array(b"ab", np.array([0, 1, 2], dtype=np.int64))


def _indexed(
    p: Any,
    name: str,
    index: str,
    table: str,
    problems: list[Problem],
    given: dict[str, tuple[str, int]],
) -> col.Coded | None:
    raw, labels = getattr(p, index), list(getattr(p, table))
    if not raw and not labels:
        values = list(getattr(p, name))
        given[name] = (f"packed.{name}", len(values))
        return coded(values) if values or name != "regions" else None
    if len(getattr(p, name)):
        problems.append(_both(index, name, len(raw)))
        return None
    if len(raw) % 4:
        problems.append(
            Problem(f"packed.{index}", len(raw), "bytes; not a whole number of int32 values")
        )
        return None
    codes = np.frombuffer(raw, dtype="<i4").astype(np.int64)
    given[name] = (f"packed.{index}", len(codes))
    if len(set(labels)) != len(labels):
        seen: set[str] = set()
        for v in labels:
            if v in seen:
                problems.append(Problem(f"packed.{table}", v, "is listed twice; list each once"))
                return None
            seen.add(v)
    bad = np.flatnonzero((codes < 0) | (codes >= len(labels)))
    for i in bad[:20].tolist():
        problems.append(
            Problem(
                f"packed.{index}[{i}]",
                int(codes[i]),
                f"is not an index into packed.{table} ({len(labels)} given)",
            )
        )
    if len(bad):
        return None
    return col.Coded(codes, np.array(labels, dtype=object))


def coded(values: list[str]) -> col.Coded:
    """Repeated strings as codes into their distinct values in the order first seen (kept as
    sent, Python strings): one dict of the distinct values, then one C-level map of the values
    through it (for 2,000 values 0.09-0.12 ms; sorting them as numpy strings took 0.25-0.34 ms
    and had to avoid values with a NUL)."""
    index = dict.fromkeys(values)
    for k, v in enumerate(index):
        index[v] = k
    codes = np.fromiter(map(index.__getitem__, values), dtype=np.int64, count=len(values))
    return col.Coded(codes, np.array(list(index), dtype=object))
