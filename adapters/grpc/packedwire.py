"""A SettleStream request read with its item columns as views of the bytes received.

upb copies every bytes field it parses, and protobuf's Python API copies a bytes field again on
each read: a 2,000-bill x 100-item message's ~3 MB of item columns (``amount_i32``,
``category_i8``, ...) were copied twice per message, the first time on the server's event loop.
``read_stream_request`` scans the message's framing itself (the top level and the ``packed``
submessage: tags and lengths, no values), cuts those columns out as read-only ``memoryview``s
of the received bytes, and lets upb parse the rest (the per-bill strings and everything else:
~100 KB), so every field upb would check is still checked by upb. ``packeditems.packed_items``
reads a cut column from the views as it reads the field (``views``); a malformed column is
refused naming its field as before.

Only the plain case is cut: one ``packed`` field, no ``bills``, each cut column at most once
and length-delimited, the framing whole, at most ``MAX_FIELDS`` fields and none of the
per-bill or per-item strings in its repeated form with two values (the per-bill strings joined,
``pack_bills(joined=True)``; in their repeated form they are a field a value, which upb reads
faster than a scan in Python). Anything else (a field repeated, a wire type out of
place, a length past the end, garbage) is parsed by upb whole, as before, so a message means
the same and an undecodable one is refused the same way whichever path reads it.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from adapters.grpc.gen.onestop.settlement.v1 import settlement_pb2 as pb
from adapters.grpc.packeditems import NARROW, RAW

#: no views: every field is in the parsed message
NO_VIEWS: Mapping[str, memoryview] = MappingProxyType({})

_PACKED = pb.SettleStreamRequest.DESCRIPTOR.fields_by_name["packed"].number
_BILLS = pb.SettleStreamRequest.DESCRIPTOR.fields_by_name["bills"].number
#: PackedBills field number -> name, for the item columns cut out as views (the offsets stay:
#: they are small, and ``packedtext.n_bills`` reads the bill offsets field from the message)
CUT = {
    pb.PackedBills.DESCRIPTOR.fields_by_name[f].number: f
    for forms in (RAW, NARROW)
    for name, (f, _) in forms.items()
    if name != "item_offsets"
}

#: PackedBills' repeated strings of a value a bill or an item: a message that sends one of them
#: with a second value is not scanned further (its fields are as many as its values)
PER_VALUE = frozenset(
    pb.PackedBills.DESCRIPTOR.fields_by_name[f].number
    for f in (
        *("bill_ids", "person_ids", "admission_dates", "discharge_dates", "regions"),
        *("request_ids", "hospitals", "item_codes", "item_names"),
    )
)


class _Odd(Exception):
    """The framing is not the plain case (parse the message whole)."""


def _varint(b: bytes, i: int, end: int) -> tuple[int, int]:
    x = shift = 0
    while i < end:
        c = b[i]
        i += 1
        x |= (c & 0x7F) << shift
        if c < 0x80:
            return x, i
        shift += 7
        if shift > 63:
            break
    raise _Odd


#: the most fields a scan reads before it gives up (the joined form's per-bill strings are a
#: few fields; the repeated form's are a field a value, which upb reads faster than Python)
MAX_FIELDS = 512


def _fields(b: bytes, i: int, end: int) -> Any:
    """(field number, wire type, field start, value start, value end) of each field in
    ``b[i:end]``; _Odd for a group, a field running past ``end`` or more than MAX_FIELDS."""
    left = MAX_FIELDS
    while i < end:
        left -= 1
        if left < 0:
            raise _Odd
        start = i
        tag, i = _varint(b, i, end)
        wt, num = tag & 7, tag >> 3
        if wt == 0:
            _, j = _varint(b, i, end)
        elif wt == 1:
            j = i + 8
        elif wt == 2:
            n, i = _varint(b, i, end)
            j = i + n
        elif wt == 5:
            j = i + 4
        else:
            raise _Odd
        if j > end or num == 0:
            raise _Odd
        yield num, wt, start, i, j
        i = j


def _varint_bytes(x: int) -> bytes:
    out = bytearray()
    while x >= 0x80:
        out.append((x & 0x7F) | 0x80)
        x >>= 7
    out.append(x)
    return bytes(out)


def _cut(data: bytes) -> tuple[bytes, dict[str, memoryview]] | None:
    """The message without its item columns, and the columns as views; None when there is
    nothing to cut. _Odd when the message is not the plain case."""
    packed = None
    for num, wt, start, vs, ve in _fields(data, 0, len(data)):
        if num == _BILLS or (num == _PACKED and (packed is not None or wt != 2)):
            raise _Odd
        if num == _PACKED:
            packed = (start, vs, ve)
    if packed is None:
        return None
    start, vs, ve = packed
    whole = memoryview(data)
    views: dict[str, memoryview] = {}
    kept: list[bytes] = []
    run = vs  # the start of the run of kept fields being read
    seen: set[int] = set()
    for num, wt, fs, cs, ce in _fields(data, vs, ve):
        name = CUT.get(num)
        if name is None:
            if num in PER_VALUE:
                if num in seen:
                    raise _Odd
                seen.add(num)
            continue
        if wt != 2 or name in views:
            raise _Odd
        views[name] = whole[cs:ce]
        kept.append(data[run:fs])
        run = ce
    if not views:
        return None
    kept.append(data[run:ve])
    rest = b"".join(kept)
    head = _varint_bytes((_PACKED << 3) | 2) + _varint_bytes(len(rest))
    return b"".join((data[:start], head, rest, data[ve:])), views


def read_stream_request(data: bytes) -> tuple[pb.SettleStreamRequest, Mapping[str, memoryview]]:
    """The request in ``data``, its item columns as views when it is the plain case (the
    message then holds them empty); DecodeError as ``FromString`` for bytes that are not one."""
    try:
        got = _cut(data)
    except _Odd:
        got = None
    if got is None:
        return pb.SettleStreamRequest.FromString(data), NO_VIEWS
    rest, views = got
    return pb.SettleStreamRequest.FromString(rest), views
