"""PreSettle's answer written as wire bytes straight from the kernel's output rows (issue 13
target 6): a ``PreSettleResponse`` serialized by hand from ``SettledRows``, with no
``Settlement``, no ``LayerResult`` and no upb message built, filled and serialized.

The bytes are those ``cv.fill_result`` then ``SerializeToString`` give (the tests compare them
byte for byte): fields in field-number order, a proto3 scalar left out when it is zero or '',
``buckets`` and each ``account_after`` always present (``SetInParent``), a negative int32 or
int64 as its ten-byte two's complement varint.

The whole answer is written by one compiled pass (``_response``) over the kernel's rows and
the answer's strings encoded once as UTF-8 (ids, region, policy, dates, hospital, the
explanation's lines); what a table's layers always say (ids, kinds, fund codes, when and whose,
names, each variant's label, the reason and cap codes) is encoded once per table into one
buffer (``_Fixed``) that pass copies from.
"""

from __future__ import annotations

import threading

import numpy as np
from numba import njit

from engine import kernel as K
from engine import numbacache
from engine.policy.model import PolicyTable
from engine.result import CAPS, REASONS
from engine.service.settledrows import SettledRows

numbacache.install()

N_CAPS = len(CAPS)
_ONE = tuple(bytes((i,)) for i in range(128))


def varint(v: int) -> bytes:
    """A varint (a negative value as its 64-bit two's complement, as int32 and int64 are)."""
    if 0 <= v < 128:
        return _ONE[v]
    v &= 0xFFFF_FFFF_FFFF_FFFF
    out = bytearray()
    while v > 0x7F:
        out.append(0x80 | (v & 0x7F))
        v >>= 7
    out.append(v)
    return bytes(out)


def _text(field: int, s: str) -> bytes:
    """A string field ('' left out)."""
    if not s:
        return b""
    b = s.encode()
    return varint(field << 3 | 2) + varint(len(b)) + b


# --------------------------------------------------------------------------- compiled part


@njit(cache=True, nogil=True)
def _put_varint(out, i, v):
    u = np.uint64(v)  # an int64 below 0: its two's complement, ten bytes
    while u >= np.uint64(0x80):
        out[i] = np.uint8((u & np.uint64(0x7F)) | np.uint64(0x80))
        u >>= np.uint64(7)
        i += 1
    out[i] = np.uint8(u)
    return i + 1


@njit(cache=True, nogil=True)
def _put_int(out, i, field, v):
    """A varint field (0 left out)."""
    if v == 0:
        return i
    i = _put_varint(out, i, field << 3)
    return _put_varint(out, i, v)


@njit(cache=True, nogil=True)
def _copy(out, i, src, start, stop):
    for k in range(start, stop):
        out[i] = src[k]
        i += 1
    return i


@njit(cache=True, nogil=True)
def _put_sized(out, i, field, body, n):
    """A length-delimited field holding ``body[:n]``."""
    i = _put_varint(out, i, field << 3 | 2)
    i = _put_varint(out, i, n)
    return _copy(out, i, body, 0, n)


@njit(cache=True, nogil=True)
def _put_text(out, i, field, txt, at, k):
    """String ``k`` of ``txt`` (spans ``at[k]:at[k + 1]``) as a string field ('' left out)."""
    start, stop = at[k], at[k + 1]
    if stop == start:
        return i
    i = _put_varint(out, i, field << 3 | 2)
    i = _put_varint(out, i, stop - start)
    return _copy(out, i, txt, start, stop)


@njit(cache=True, nogil=True)
def _response(ob, ol, blob, lay, lab, codes, txt, at, year, out, tmp, acc):
    """A ``PreSettleResponse`` into ``out``; returns where its bytes start and stop.

    ``ob``: the bill's ``out_bill`` row; ``ol``: its layers' ``out_layer`` rows; ``blob``:
    the table's fixed bytes, spans of it in ``lay`` (a row a layer: head, tail, Alert.layer_id,
    first label), ``lab`` (a row a variant label) and ``codes`` (a row a reason code: field 6
    for '', else field 7; then a row a cap code: field 15); ``txt``: the UTF-8 strings (bill
    id, person id, household, region, policy, discharge date, hospital, then each explanation
    line's English and Chinese), string k spanning ``at[k]:at[k + 1]``."""
    i = 11  # the result after room for the response's tag and length
    i = _put_text(out, i, 1, txt, at, 0)
    i = _put_text(out, i, 2, txt, at, 1)
    i = _put_text(out, i, 3, txt, at, 2)
    i = _put_text(out, i, 4, txt, at, 3)
    i = _put_text(out, i, 5, txt, at, 4)
    i = _put_int(out, i, 6, year)
    i = _put_text(out, i, 7, txt, at, 5)
    i = _put_int(out, i, 8, ob[K.B_ADMNO])
    n = _put_int(tmp, 0, 1, ob[K.B_TOTAL])
    n = _put_int(tmp, n, 2, ob[K.B_OOC])
    n = _put_int(tmp, n, 3, ob[K.B_OVER])
    n = _put_int(tmp, n, 4, ob[K.B_PRE])
    n = _put_int(tmp, n, 5, ob[K.B_IN_SCOPE])
    i = _put_sized(out, i, 9, tmp, n)
    funds = 0
    n_reasons = len(codes) - N_CAPS
    for li in range(len(ol)):
        o = ol[li]
        n = _copy(tmp, 0, blob, lay[li, 0], lay[li, 1])
        r = o[K.F_REASON]
        n = _copy(tmp, n, blob, codes[r, 0], codes[r, 1])
        vi = o[K.F_VARIANT]
        n = _put_int(tmp, n, 8, vi)
        if vi >= 0:
            k = lay[li, 6] + vi
            n = _copy(tmp, n, blob, lab[k, 0], lab[k, 1])
        n = _put_int(tmp, n, 10, o[K.F_BASE])
        n = _put_int(tmp, n, 11, o[K.F_DED])
        n = _put_int(tmp, n, 12, o[K.F_ELIGIBLE])
        n = _put_int(tmp, n, 13, o[K.F_PAY])
        n = _put_int(tmp, n, 14, o[K.F_RELIEF])
        c = n_reasons + o[K.F_CAP]
        n = _copy(tmp, n, blob, codes[c, 0], codes[c, 1])
        m = _put_int(acc, 0, 1, o[K.F_ACC])
        m = _put_int(acc, m, 2, o[K.F_ACC + 1])
        m = _put_int(acc, m, 3, o[K.F_ACC + 2])
        m = _put_int(acc, m, 4, o[K.F_ACC + 3])
        n = _put_sized(tmp, n, 16, acc, m)
        if o[K.F_ALERT]:
            n = _put_int(tmp, n, 17, 1)
        n = _copy(tmp, n, blob, lay[li, 2], lay[li, 3])
        i = _put_sized(out, i, 10, tmp, n)
        funds += o[K.F_PAY]
    i = _put_int(out, i, 11, ob[K.B_WINDOW])
    i = _put_int(out, i, 12, ob[K.B_NET])
    i = _put_int(out, i, 13, funds)
    for li in range(len(ol)):
        o = ol[li]
        if o[K.F_ALERT]:
            n = _put_text(tmp, 0, 1, txt, at, 1)
            n = _put_text(tmp, n, 2, txt, at, 2)
            n = _copy(tmp, n, blob, lay[li, 4], lay[li, 5])
            n = _put_int(tmp, n, 4, year)
            n = _put_int(tmp, n, 5, o[K.F_ACC + 3])
            n = _put_int(tmp, n, 6, o[K.F_RELIEF])
            i = _put_sized(out, i, 14, tmp, n)
    i = _put_int(out, i, 15, ob[K.B_ADMNO])
    for k in range(7, len(at) - 1, 2):
        n = _put_text(tmp, 0, 1, txt, at, k)
        n = _put_text(tmp, n, 2, txt, at, k + 1)
        i = _put_sized(out, i, 16, tmp, n)
    i = _put_text(out, i, 17, txt, at, 6)
    size = i - 11
    k = 1
    while size >> (7 * k):
        k += 1
    start = 11 - 1 - k
    out[start] = 0x0A  # PreSettleResponse.result
    _put_varint(out, start + 1, size)
    return start, i


class _Fixed:
    """A table's fixed bytes for ``_figures``: ``blob`` and its spans ``lay``, ``lab``,
    ``codes`` (see there)."""

    __slots__ = ("blob", "codes", "lab", "lay", "room")

    def __init__(self, table: PolicyTable) -> None:
        parts: list[bytes] = []
        at = 0

        def span(b: bytes) -> tuple[int, int]:
            nonlocal at
            parts.append(b)
            at += len(b)
            return at - len(b), at

        lay: list[tuple[int, ...]] = []
        lab: list[tuple[int, int]] = []
        for la in table.layers:
            head = span(b"".join(
                _text(f, s)
                for f, s in enumerate((la.id, la.kind, la.fund_code, la.settle_at, la.scope), 1)
            ))  # fmt: skip
            tail = span(_text(18, la.name) + _text(19, la.name_zh))
            lid = span(_text(3, la.id))
            lay.append((*head, *tail, *lid, len(lab)))
            lab += [span(_text(9, v.label)) for v in la.variants]
        codes = [span(b"\x30\x01" if not r else _text(7, r)) for r in REASONS]
        codes += [span(_text(15, c)) for c in CAPS]
        self.blob = np.frombuffer(b"".join(parts), dtype=np.uint8)
        self.lay = np.array(lay, dtype=np.int64).reshape(-1, 7)
        self.lab = np.array(lab, dtype=np.int64).reshape(-1, 2)
        self.codes = np.array(codes, dtype=np.int64)
        # a layer's most: its fixed bytes (at most all of them) and 16 varints of 10 bytes
        # with their tags and lengths
        self.room = len(self.blob) + 256


_lock = threading.Lock()
_tables: dict[int, tuple[PolicyTable, _Fixed]] = {}


def _fixed(table: PolicyTable) -> _Fixed:
    """The table's fixed bytes, made once per table (tables never change)."""
    got = _tables.get(id(table))
    if got is not None and got[0] is table:
        return got[1]
    made = _Fixed(table)
    with _lock:
        if len(_tables) > 256:
            _tables.clear()
        _tables[id(table)] = (table, made)
    return made


def pre_settle_response(rows: SettledRows) -> bytes:
    """The ``PreSettleResponse`` bytes of ``rows`` (no per-item allocation)."""
    f = _fixed(rows.table)
    person, table = rows.person, rows.table
    texts = [rows.bill_id, person.id, person.household, table.region.code, table.label,
             rows.discharge_date, rows.hospital]  # fmt: skip
    for en, zh in rows.lines():
        texts += (en, zh)
    enc = [t.encode() for t in texts]
    at = np.zeros(len(enc) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, enc), np.int64, len(enc)), out=at[1:])
    txt = np.frombuffer(b"".join(enc), dtype=np.uint8)
    nl = len(rows.layers)
    room = f.room + len(txt)
    out = np.empty(128 + (nl + 2) * room, dtype=np.uint8)
    start, stop = _response(
        rows.bill, rows.layers, f.blob, f.lay, f.lab, f.codes, txt, at, rows.year, out,
        np.empty(room, dtype=np.uint8), np.empty(64, dtype=np.uint8),
    )  # fmt: skip
    return out[start:stop].tobytes()


def warm_result_wire() -> None:
    """Compile ``_response`` (or load it from numba's cache) on a one-layer table's rows."""
    ro = np.frombuffer(b"\x00", dtype=np.uint8)  # read-only, as the blob and strings are
    _response(
        np.zeros(K.N_BILL, dtype=np.int64), np.zeros((1, K.N_FIELDS), dtype=np.int64),
        ro, np.zeros((1, 7), dtype=np.int64), np.zeros((1, 2), dtype=np.int64),
        np.zeros((len(REASONS) + N_CAPS, 2), dtype=np.int64), ro, np.zeros(8, dtype=np.int64),
        0, np.empty(4096, dtype=np.uint8), np.empty(4096, dtype=np.uint8),
        np.empty(64, dtype=np.uint8),
    )  # fmt: skip
