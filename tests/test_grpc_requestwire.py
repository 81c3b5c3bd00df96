"""A PreSettle (or Settle) request read straight from its bytes (``adapters.grpc.requestwire``) gives the
columns upb's parse then ``columns.bill_columns`` give, for canonical bytes and for bytes only
a client would send (an int32 sent as a wide varint, a field sent twice, unknown fields), and
None (parse with upb) for what it does not take: never a wrong column, never a request upb
would refuse."""

from __future__ import annotations

import numpy as np
import pytest
from google.protobuf.message import DecodeError
from hypothesis import given
from hypothesis import strategies as st

from adapters.grpc.columns import bill_columns
from adapters.grpc.gen.onestop.settlement.v1 import settlement_pb2 as pb
from adapters.grpc.requestwire import pre_settle_columns, settle_columns
from engine.money import BP, MAX_AMOUNT, MAX_QTY_E4, MAX_UNIT_PRICE
from engine.service.billcols import BillColumns, checked
from engine.service.itemrules import kernel_items_plain
from tests.test_grpc_billwire import TEXT, items

_INTS = ("qty_e4", "unit_price", "amount", "unit_price_cap", "selfpay_ratio")


def _same(got: BillColumns | None, want: BillColumns) -> None:
    assert got is not None
    for k in ("id", "hospital", "region", "person_id", "hospital_level", "admission_date",
              "discharge_date", "code", "name", "category"):  # fmt: skip
        assert getattr(got, k) == getattr(want, k), k
    for k in _INTS:
        a, b = getattr(got, k), getattr(want, k)
        assert a.dtype == np.int64 and a.tolist() == b.tolist(), k
    assert got.facts is not None and want.facts is not None
    gf, wf = got.facts, want.facts
    assert gf[:3] == wf[:3]
    assert (gf.cat is None) == (wf.cat is None)
    if gf.cat is not None and wf.cat is not None:
        assert gf.cat.tolist() == wf.cat.tolist()
        # the item rules run in the read: their kernel columns as the numpy rules give them
        plain = kernel_items_plain(want, wf.cat)
        if isinstance(plain, tuple):
            assert gf.kernel is not None
            assert [a.tolist() for a in gf.kernel] == [a.tolist() for a in plain]
            # with the kernel's columns the categories in its form too (no cast a call)
            assert gf.cat.dtype == np.int8 and gf.cat.flags.c_contiguous
        else:
            assert gf.kernel is None
            assert gf.cat.dtype == np.int64


def _upb(data: bytes) -> BillColumns:
    return bill_columns(pb.PreSettleRequest.FromString(data).bill)


@given(st.lists(items(), min_size=1, max_size=6), st.lists(TEXT, min_size=7, max_size=7))
def test_the_bytes_read_as_upb_reads_them(its: list[pb.Item], head: list[str]) -> None:
    b = pb.Bill(id=head[0], region=head[1], person_id=head[2], hospital_level=head[3],
                admission_date=head[4], discharge_date=head[5], hospital=head[6], items=its)  # fmt: skip
    data = pb.PreSettleRequest(bill=b).SerializeToString()
    got = pre_settle_columns(data)
    if got is None:  # only a NUL inside a string is not taken
        strings = [*head, *(s for it in its for s in (it.code, it.name, it.category))]
        assert any("\x00" in s for s in strings)
        return
    _same(got, _upb(data))


_LIMIT = {"qty_e4": MAX_QTY_E4, "unit_price": MAX_UNIT_PRICE, "amount": MAX_AMOUNT,
          "unit_price_cap": MAX_UNIT_PRICE, "selfpay_ratio": BP}  # fmt: skip


@st.composite
def near_items(draw: st.DrawFn) -> pb.Item:
    """An item whose ints are near their rules' edges (kept or not, about half each)."""

    def near(field: str) -> int:
        hi = _LIMIT[field]
        return draw(st.one_of(st.integers(0, hi), st.sampled_from([-1, hi + 1, 0, hi])))

    it = pb.Item(code="X", name="n", category=draw(st.sampled_from(["A", "B", "C", "02"])),
                 unit_price=near("unit_price"), amount=near("amount"))  # fmt: skip
    for field in ("qty_e4", "unit_price_cap", "selfpay_ratio"):
        if draw(st.booleans()):
            setattr(it, field, near(field))
    return it


@given(st.lists(near_items(), min_size=1, max_size=6))
def test_the_item_rules_in_the_read_answer_as_the_numpy_rules(its: list[pb.Item]) -> None:
    """The kernel columns the read's item rules give (or None: a rule broken) are the numpy
    rules' (``kernel_items_plain``) on upb's columns; ``checked`` takes them as its own."""
    b = pb.Bill(id="b1", hospital="H990001001", person_id="p1", hospital_level="city",
                admission_date="2024-01-02", discharge_date="2024-01-05", items=its)  # fmt: skip
    data = pb.PreSettleRequest(bill=b).SerializeToString()
    got, want = pre_settle_columns(data), _upb(data)
    _same(got, want)
    assert got is not None
    a, b_ = checked(got), checked(want)
    assert (a is None) == (b_ is None)
    if a is not None and b_ is not None:
        for k in ("cat", "qty", "price_cap", "sp_ratio"):
            assert getattr(a, k).tolist() == getattr(b_, k).tolist(), k


def _field(number: int, wire: int, payload: bytes) -> bytes:
    key, k = b"", number << 3 | wire
    while k > 0x7F:
        key, k = key + bytes([k & 0x7F | 0x80]), k >> 7
    key += bytes([k])
    if wire == 2:
        return key + _len(len(payload)) + payload
    return key + payload


def _len(n: int) -> bytes:
    out = b""
    while n > 0x7F:
        out, n = out + bytes([n & 0x7F | 0x80]), n >> 7
    return out + bytes([n])


def _varint(v: int) -> bytes:
    return _len(v & (2**64 - 1))


_ITEM = pb.Item(code="X1", name="药", category="B", unit_price=5, amount=10).SerializeToString()


def _request(bill: bytes, extra: bytes = b"") -> bytes:
    return _field(1, 2, bill) + extra


@pytest.mark.parametrize(
    "item",
    [
        _ITEM + _field(8, 0, _varint(2**40 + 7)),  # an int32 sent wide: its low 32 bits
        _ITEM + _field(8, 0, _varint(-5)),
        _ITEM + _field(8, 0, _varint(2**31)),  # -2**31 as int32
        _ITEM + _field(2, 2, b"second"),  # a string twice: the last
        _ITEM + _field(30, 0, _varint(1)) + _field(31, 2, b"x") + _field(32, 5, b"abcd"),
    ],
)
def test_bytes_only_a_client_sends_read_as_upb_reads_them(item: bytes) -> None:
    bill = _field(1, 2, b"b1") + _field(3, 2, b"p1") + _field(7, 2, item)
    bill += _field(1, 2, b"b2") + _field(20, 2, b"unknown")
    data = _request(bill, _field(9, 0, _varint(3)))
    _same(pre_settle_columns(data), _upb(data))


@pytest.mark.parametrize(
    ("data", "upb_refuses"),
    [
        (_request(_field(7, 2, _ITEM), _field(2, 0, b"\x01")), False),  # allocate
        (_request(_field(7, 2, _ITEM)) + _request(_field(1, 2, b"b1")), False),  # 2 bills: merged
        (_request(_field(1, 2, b"b1")), False),  # no item
        (_field(2, 0, b"\x00"), False),  # no bill
        (_request(_field(7, 2, _ITEM) + _field(1, 0, b"\x01")), False),  # id as a varint
        (_request(_field(7, 2, _ITEM + _field(0, 0, b"\x01"))), True),  # field number 0
        (_request(_field(7, 2, _ITEM), _field(0, 0, b"\x01")), True),
        (_request(_field(7, 2, _ITEM) + _field(1, 2, b"\xff")), True),  # not UTF-8
        (_request(_field(7, 2, _ITEM + _field(2, 2, b"\xed\xa0\x80"))), True),  # a surrogate
        (_request(_field(7, 2, _ITEM))[:-1], True),  # truncated
    ],
)
def test_what_it_does_not_take_is_left_to_upb(data: bytes, upb_refuses: bool) -> None:
    """None; upb then parses it (the servicer's columns as before) or refuses it (the servicer
    answers UNDECODABLE)."""
    assert pre_settle_columns(data) is None
    try:
        pb.PreSettleRequest.FromString(data)
    except DecodeError:
        assert upb_refuses
    else:
        assert not upb_refuses


# --- Settle: the request id, the bill and allocate read from a SettleRequest's bytes ---------


def _upb_settle(data: bytes) -> tuple[str, BillColumns, bool]:
    r = pb.SettleRequest.FromString(data)
    return r.request_id, bill_columns(r.bill), r.allocate


@given(
    st.lists(items(), min_size=1, max_size=6),
    st.lists(TEXT, min_size=7, max_size=7),
    TEXT,
    st.booleans(),
)
def test_a_settle_request_read_as_upb_reads_it(
    its: list[pb.Item], head: list[str], rid: str, allocate: bool
) -> None:
    b = pb.Bill(id=head[0], region=head[1], person_id=head[2], hospital_level=head[3],
                admission_date=head[4], discharge_date=head[5], hospital=head[6], items=its)  # fmt: skip
    data = pb.SettleRequest(request_id=rid, bill=b, allocate=allocate).SerializeToString()
    got = settle_columns(data)
    if got is None:  # only a NUL inside a bill's string is not taken
        strings = [*head, *(s for it in its for s in (it.code, it.name, it.category))]
        assert any("\x00" in s for s in strings)
        return
    want = _upb_settle(data)
    assert got[0] == want[0] and got[2] == want[2]
    _same(got[1], want[1])
    # the fields in another order read the same
    swapped = _field(3, 0, _varint(int(allocate))) + _field(2, 2, b.SerializeToString())
    again = settle_columns(swapped + _field(1, 2, rid.encode()))
    assert again is not None and again[0] == rid and again[2] == allocate


_BILL = _field(1, 2, b"b1") + _field(3, 2, b"p1") + _field(7, 2, _ITEM)


@pytest.mark.parametrize(
    "item",
    [_ITEM + _field(8, 0, _varint(2**40 + 7)), _ITEM + _field(2, 2, b"second")],
)
def test_a_settle_request_only_a_client_sends_read_as_upb_reads_it(item: bytes) -> None:
    data = _field(1, 2, b"r1") + _field(2, 2, _field(1, 2, b"b1") + _field(7, 2, item))
    got, want = settle_columns(data), _upb_settle(data)
    assert got is not None and got[0] == want[0] == "r1" and got[2] == want[2]
    _same(got[1], want[1])


@pytest.mark.parametrize(
    ("data", "upb_refuses"),
    [
        (_field(1, 2, b"r1"), False),  # no bill
        (b"", False),
        (_field(1, 2, b"r1") + _field(2, 2, _BILL) + _field(1, 2, b"r2"), False),  # id twice
        (_field(2, 2, _BILL) + _field(2, 2, _BILL), False),  # two bills: upb merges them
        (_field(2, 2, _BILL) + _field(3, 0, b"\x01") + _field(3, 0, b"\x00"), False),
        (_field(2, 2, _BILL) + _field(9, 0, b"\x01"), False),  # an unknown field
        (_field(2, 2, _BILL) + _field(3, 2, b"\x01"), False),  # allocate not a varint: unknown
        (_field(2, 2, _BILL) + _field(1, 0, b"\x01"), False),  # the id as a varint: unknown
        (_field(1, 2, b"\xff") + _field(2, 2, _BILL), True),  # an id that is not UTF-8
        (_field(2, 2, _BILL + _field(1, 2, b"\xff")), True),  # a bill id that is not UTF-8
        ((_field(1, 2, b"r1") + _field(2, 2, _BILL))[:-1], True),  # truncated
        (_field(2, 2, _BILL) + b"\x18", True),  # a key without its value
        (_field(2, 2, _BILL) + b"\x18\xff", True),  # a truncated varint
        (_field(2, 2, _field(7, 2, _ITEM + _field(0, 0, b"\x01"))), True),  # field number 0
    ],
)
def test_a_settle_request_it_does_not_take_is_left_to_upb(data: bytes, upb_refuses: bool) -> None:
    assert settle_columns(data) is None
    try:
        pb.SettleRequest.FromString(data)
    except DecodeError:
        assert upb_refuses
    else:
        assert not upb_refuses
