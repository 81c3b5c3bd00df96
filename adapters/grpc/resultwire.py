"""PreSettle's answer written as wire bytes straight from the kernel's output rows (issue 13
target 6): a ``PreSettleResponse`` serialized by hand from ``SettledRows``, with no
``Settlement``, no ``LayerResult`` and no upb message built, filled and serialized; and
Settle's (``settle_response``, target 7): the same result inside its ``SettlementRecord``.

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
from itertools import accumulate

import numpy as np
from numba import njit

from engine import kernel as K
from engine import numbacache
from engine.explain import cap_texts, why_not
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


# ------------------------------------------------------------------- the explanation's words
# ``engine.explain``'s lines (``bill_words``, ``layer_words``, ``tail_words``) written by the
# compiled pass: their fixed words (UTF-8, word k spanning ``_WAT[k]:_WAT[k + 1]`` of
# ``_WORDS``), then each reason code's (English, Chinese) and each cap code's; the figures are
# written as ``engine.money.yuan`` writes them. The tests hold the bytes to ``fill_result``'s.
_FIXED_WORDS = (
    ": does not apply: ", ".", "：不适用，", "。",  # 0-3: a layer that does not apply
    ": base ", ", less deductible ", " = ", "; pays ",  # 4-7: reimburse
    "：计算基数 ", " 元，扣除起付线 ", " 元后 ", " 元", "，支付 ",  # 8-12
    ": of ", " left, the patient keeps ",  # 13-14: backstop
    "：剩余 ", " 元，个人负担 ", " 元，兜底支付 ",  # 15-17
    ": self-pay this year ", ", above the warning line; suggested relief ",  # 18-19: alert
    " (not paid at the window; follow-up by the county)", ", below the warning line",  # 20-21
    "：本年度累计自付 ", " 元，超过预警线；建议救助 ",  # 22-23
    " 元（不在窗口支付，由县里跟进核查）", " 元，未超过预警线",  # 24-25
    " (paid after discharge)", "（出院后理赔支付）", " (", ").", "（", "）。",  # 26-31
    "Total ", ": in scope ", ", category B first self-pay ", ", over price limits ",  # 32-35
    ", out of catalogue ", ". Admission no. ", " this year.",  # 36-38
    "医疗费用总额 ", " 元：政策范围内 ", " 元，乙类先行自付 ", " 元，超限价自付 ",  # 39-42
    " 元，全自费 ", " 元。本年度第 ", " 次住院。",  # 43-45
    "Funds pay ", ". The patient pays ", " at the window, and gets ",  # 46-48
    " back after discharge (net ", ").", " at the window.",  # 49-51
    "各项基金合计支付 ", " 元。个人在窗口支付 ", " 元，出院后另获理赔 ",  # 52-54
    " 元（个人实际负担 ", " 元）。", " 元。",  # 55-57
)  # fmt: skip
_REASON0 = len(_FIXED_WORDS)  # reason r: words _REASON0 + 2r (English), + 2r + 1 (Chinese)
_CAP0 = _REASON0 + 2 * len(REASONS)  # cap c: words _CAP0 + 2c, + 2c + 1 ('': not said)


def _words() -> tuple[np.ndarray, np.ndarray]:
    words = list(_FIXED_WORDS)
    for r in REASONS:
        words += why_not(r) if r else ("", "")
    for c in CAPS:
        words += (c and cap_texts(c)) or ("", "")
    enc = [w.encode() for w in words]
    at = np.zeros(len(enc) + 1, dtype=np.int64)
    np.cumsum([len(b) for b in enc], out=at[1:])
    return np.frombuffer(b"".join(enc), dtype=np.uint8), at


_WORDS, _WAT = _words()
_KINDS = {"reimburse": 0, "backstop": 1}  # any other kind (alert): 2


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
def _word(out, i, k):
    """Word ``k`` of ``_WORDS``."""
    return _copy(out, i, _WORDS, _WAT[k], _WAT[k + 1])


@njit(cache=True, nogil=True)
def _put_decimal(out, i, v, grouped):
    """``v`` in decimal ('-' first if below 0), ``grouped``: a ',' every three digits."""
    if v < 0:
        out[i] = 45  # '-'
        i += 1
        u = np.uint64(-(v + 1)) + np.uint64(1)  # (the int64 minimum too)
    else:
        u = np.uint64(v)
    nd = 1
    t = u
    while t >= np.uint64(10):
        t //= np.uint64(10)
        nd += 1
    end = i + nd + ((nd - 1) // 3 if grouped else 0)
    k = end - 1
    d = 0
    while True:
        out[k] = np.uint8(np.uint64(48) + u % np.uint64(10))
        u //= np.uint64(10)
        k -= 1
        d += 1
        if u == np.uint64(0):
            break
        if grouped and d % 3 == 0:
            out[k] = 44  # ','
            k -= 1
    return end


@njit(cache=True, nogil=True)
def _put_yuan(out, i, fen):
    """``engine.money.yuan(fen)``: 123456789 -> '1,234,567.89', -5 -> '-0.05'."""
    if fen < 0:
        out[i] = 45
        i += 1
        u = np.uint64(-(fen + 1)) + np.uint64(1)
    else:
        u = np.uint64(fen)
    i = _put_decimal(out, i, np.int64(u // np.uint64(100)), True)
    c = u % np.uint64(100)
    out[i] = 46  # '.'
    out[i + 1] = np.uint8(np.uint64(48) + c // np.uint64(10))
    out[i + 2] = np.uint8(np.uint64(48) + c % np.uint64(10))
    return i + 3


@njit(cache=True, nogil=True)
def _bill_line(en, zh, ob):
    """``bill_words``: (English, Chinese) into ``en``, ``zh``; returns their lengths."""
    n, m = _word(en, 0, 32), _word(zh, 0, 39)
    vals = (ob[K.B_TOTAL], ob[K.B_IN_SCOPE], ob[K.B_PRE], ob[K.B_OVER], ob[K.B_OOC])
    for k in range(5):
        n = _word(en, _put_yuan(en, n, vals[k]), 33 + k)
        m = _word(zh, _put_yuan(zh, m, vals[k]), 40 + k)
    n = _word(en, _put_decimal(en, n, ob[K.B_ADMNO], False), 38)
    m = _word(zh, _put_decimal(zh, m, ob[K.B_ADMNO], False), 45)
    return n, m


@njit(cache=True, nogil=True)
def _layer_line(en, zh, blob, head, o):
    """``layer_words`` of one layer's ``out_layer`` row ``o``; ``head``: the layer's spans of
    its heads in ``blob`` (English, Chinese), its kind (``_KINDS``) and 1 if paid after
    discharge. Returns the lengths."""
    n = _copy(en, 0, blob, head[0], head[1])
    m = _copy(zh, 0, blob, head[2], head[3])
    r = o[K.F_REASON]
    if r:
        n = _word(en, _word(en, _word(en, n, 0), _REASON0 + 2 * r), 1)
        m = _word(zh, _word(zh, _word(zh, m, 2), _REASON0 + 2 * r + 1), 3)
        return n, m
    kind = head[4]
    base, pay = o[K.F_BASE], o[K.F_PAY]
    if kind == 0:
        n = _put_yuan(en, _word(en, n, 4), base)
        m = _put_yuan(zh, _word(zh, m, 8), base)
        ded = o[K.F_DED]
        if ded:
            n = _put_yuan(en, _word(en, _put_yuan(en, _word(en, n, 5), ded), 6), o[K.F_ELIGIBLE])
            m = _put_yuan(zh, _word(zh, _put_yuan(zh, _word(zh, m, 9), ded), 10), o[K.F_ELIGIBLE])
        m = _word(zh, m, 11)
        n = _put_yuan(en, _word(en, n, 7), pay)
        m = _word(zh, _put_yuan(zh, _word(zh, m, 12), pay), 11)
    elif kind == 1:
        n = _put_yuan(en, _word(en, n, 13), base)
        n = _put_yuan(en, _word(en, n, 14), base - pay)
        n = _put_yuan(en, _word(en, n, 7), pay)
        m = _put_yuan(zh, _word(zh, m, 15), base)
        m = _put_yuan(zh, _word(zh, m, 16), base - pay)
        m = _word(zh, _put_yuan(zh, _word(zh, m, 17), pay), 11)
    else:
        cum = o[K.F_ACC + 3]
        n = _put_yuan(en, _word(en, n, 18), cum)
        m = _put_yuan(zh, _word(zh, m, 22), cum)
        if o[K.F_ALERT]:
            n = _word(en, _put_yuan(en, _word(en, n, 19), o[K.F_RELIEF]), 20)
            m = _word(zh, _put_yuan(zh, _word(zh, m, 23), o[K.F_RELIEF]), 24)
        else:
            n, m = _word(en, n, 21), _word(zh, m, 25)
    if head[5] and kind != 2:
        n, m = _word(en, n, 26), _word(zh, m, 27)
    c = _CAP0 + 2 * o[K.F_CAP]
    if _WAT[c + 1] > _WAT[c]:
        n = _word(en, _word(en, _word(en, n, 28), c), 29)
        m = _word(zh, _word(zh, _word(zh, m, 30), c + 1), 31)
        return n, m
    return _word(en, n, 1), _word(zh, m, 3)


@njit(cache=True, nogil=True)
def _tail_line(en, zh, funds, window, net):
    """``tail_words``; returns the lengths."""
    n = _put_yuan(en, _word(en, _put_yuan(en, _word(en, 0, 46), funds), 47), window)
    m = _put_yuan(zh, _word(zh, _put_yuan(zh, _word(zh, 0, 52), funds), 53), window)
    after = window - net
    if after:
        n = _put_yuan(en, _word(en, _put_yuan(en, _word(en, n, 48), after), 49), net)
        m = _put_yuan(zh, _word(zh, _put_yuan(zh, _word(zh, m, 54), after), 55), net)
        return _word(en, n, 50), _word(zh, m, 56)
    return _word(en, n, 51), _word(zh, m, 57)


@njit(cache=True, nogil=True)
def _put_line(out, i, tmp, en, n, zh, m):
    """A ``Line`` (field 16 of the result) of ``en[:n]`` and ``zh[:m]``."""
    k = _put_sized(tmp, 0, 1, en, n) if n else 0
    if m:
        k = _put_sized(tmp, k, 2, zh, m)
    return _put_sized(out, i, 16, tmp, k)


@njit(cache=True, nogil=True)
def _response(ob, ol, blob, lay, lab, codes, heads, txt, at, year, out, tmp, acc, en, zh):
    """A ``PreSettleResponse`` into ``out``; returns where its bytes start and stop.

    ``ob``: the bill's ``out_bill`` row; ``ol``: its layers' ``out_layer`` rows; ``blob``:
    the table's fixed bytes, spans of it in ``lay`` (a row a layer: head, tail, Alert.layer_id,
    first label), ``lab`` (a row a variant label) and ``codes`` (a row a reason code: field 6
    for '', else field 7; then a row a cap code: field 15); ``txt``: the UTF-8 strings (bill
    id, person id, household, region, policy, discharge date, hospital),
    string k spanning ``at[k]:at[k + 1]``; ``heads``: a row a layer for ``_layer_line``; ``en``,
    ``zh``: room for one explanation line each (``_Fixed.line``)."""
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
    n, m = _bill_line(en, zh, ob)
    i = _put_line(out, i, tmp, en, n, zh, m)
    for li in range(len(ol)):
        n, m = _layer_line(en, zh, blob, heads[li], ol[li])
        i = _put_line(out, i, tmp, en, n, zh, m)
    n, m = _tail_line(en, zh, funds, ob[K.B_WINDOW], ob[K.B_NET])
    i = _put_line(out, i, tmp, en, n, zh, m)
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

    __slots__ = ("blob", "codes", "heads", "lab", "label", "lay", "line", "region", "room")

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
        heads: list[tuple[int, ...]] = []
        for la in table.layers:
            # the layer's line starts (``engine.explain.layer_words``) with its name and fund
            en, zh = (la.name, la.name_zh or la.name) if la.name else (la.id, la.id)
            heads.append((
                *span(f"{en} ({la.fund_code})".encode()), *span(f"{zh}（{la.fund_code}）".encode()),
                _KINDS.get(la.kind, 2), la.settle_at == "after_discharge",
            ))  # fmt: skip
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
        self.heads = np.array(heads, dtype=np.int64).reshape(-1, 6)
        # one line at most: a head, every word, and ten figures of 27 bytes
        longest = max((h[1] - h[0] + h[3] - h[2] for h in heads), default=0)
        self.line = longest + len(_WORDS) + 300
        # a layer's most: its fixed bytes (at most all of them) and 16 varints of 10 bytes
        # with their tags and lengths
        self.room = len(self.blob) + 256
        # the answer's strings of the table (``label`` is made anew on every read of it)
        self.region, self.label = table.region.code.encode(), table.label.encode()


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
    out, start, stop = _written(rows)
    return out[start:stop].tobytes()


def settle_response(
    rows: SettledRows,
    settlement_id: str,
    request_id: str,
    created_at: str,
    bill_digest: str,
    registry_version: int | None,
) -> bytes:
    """The ``SettleResponse`` bytes of a settlement made now (status settled, not reversed,
    not a replay) from its kernel rows, no per-item allocation: what ``convert.record_pb``
    then ``SerializeToString`` give (the tests compare them byte for byte)."""
    out, _start, stop = _written(rows)
    result = out[11:stop].tobytes()  # the SettlementResult (after PreSettle's tag, length)
    rec = b"".join((
        _text(1, settlement_id), _text(2, request_id), _text(3, "settled"), _text(4, created_at),
        b"\x3a", varint(len(result)), result, _text(8, bill_digest),
        b"\x48" + varint(registry_version) if registry_version else b"",
    ))  # fmt: skip
    return b"\x0a" + varint(len(rec)) + rec


def _written(rows: SettledRows) -> tuple[np.ndarray, int, int]:
    """``rows`` written by ``_response``: the buffer and where the PreSettleResponse's bytes
    start and stop (its SettlementResult's start at 11)."""
    f = _fixed(rows.table)
    person = rows.person
    enc = [rows.bill_id.encode(), person.id.encode(), person.household.encode(), f.region,
           f.label, rows.discharge_date.encode(), rows.hospital.encode()]  # fmt: skip
    at = np.array([0, *accumulate(map(len, enc))], dtype=np.int64)  # (np.cumsum: ~3 us more)
    txt = np.frombuffer(b"".join(enc), dtype=np.uint8)
    nl = len(rows.layers)
    room = max(f.room + len(txt), 2 * f.line + 32)  # a layer's or a line's message
    out = np.empty(128 + (3 * nl + 4) * room, dtype=np.uint8)  # layers, alerts, lines
    start, stop = _response(
        rows.bill, rows.layers, f.blob, f.lay, f.lab, f.codes, f.heads, txt, at, rows.year,
        out, np.empty(room, dtype=np.uint8), np.empty(64, dtype=np.uint8),
        np.empty(f.line, dtype=np.uint8), np.empty(f.line, dtype=np.uint8),
    )  # fmt: skip
    return out, start, stop


def warm_result_wire() -> None:
    """Compile ``_response`` (or load it from numba's cache) on a one-layer table's rows."""
    ro = np.frombuffer(b"\x00", dtype=np.uint8)  # read-only, as the blob and strings are
    _response(
        np.zeros(K.N_BILL, dtype=np.int64), np.zeros((1, K.N_FIELDS), dtype=np.int64),
        ro, np.zeros((1, 7), dtype=np.int64), np.zeros((1, 2), dtype=np.int64),
        np.zeros((len(REASONS) + N_CAPS, 2), dtype=np.int64), np.zeros((1, 6), dtype=np.int64),
        ro, np.zeros(8, dtype=np.int64), 0, np.empty(4096, dtype=np.uint8),
        np.empty(4096, dtype=np.uint8), np.empty(64, dtype=np.uint8),
        np.empty(4096, dtype=np.uint8), np.empty(4096, dtype=np.uint8),
    )  # fmt: skip
