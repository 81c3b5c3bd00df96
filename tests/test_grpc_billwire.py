"""The compiled reader of a bill's items (``adapters.grpc.billwire``) answers what upb's
accessors answer (``item_columns_plain``) for any bill upb parses: strings of any Unicode,
optional ints absent, explicit 0 or any int64, negative self-pay ratios, unknown fields and
fields of items sent in another wire type; and None (the caller reads through upb) for bytes
it does not take, never a wrong column."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.grpc import billwire as W
from adapters.grpc.columns import bill_columns
from adapters.grpc.convert import bill_to_pb
from adapters.grpc.gen.onestop.settlement.v1 import settlement_pb2 as pb
from adapters.grpc.testing import chain_bill
from engine.service.billcols import NULL

I64 = st.integers(-(2**63), 2**63 - 1)
I32 = st.integers(-(2**31), 2**31 - 1)
TEXT = st.text(max_size=12)


@st.composite
def items(draw: st.DrawFn) -> pb.Item:
    it = pb.Item(code=draw(TEXT), name=draw(TEXT), category=draw(TEXT),
                 unit_price=draw(I64), amount=draw(I64))  # fmt: skip
    for field, values in (("qty_e4", I64), ("unit_price_cap", I64), ("selfpay_ratio", I32)):
        if draw(st.booleans()):
            setattr(it, field, draw(st.one_of(st.just(0), values)))
    return it


def unknown(field: int, wire: int) -> bytes:
    """One field the Item message does not declare (or a declared one in another wire type)."""
    key, k = b"", field << 3 | wire
    while k >= 0x80:
        key, k = key + bytes([k & 0x7F | 0x80]), k >> 7
    key += bytes([k])
    return key + {0: b"\x96\x01", 1: b"\x01" * 8, 2: b"\x02ab", 5: b"\x01" * 4}[wire]


def same(got: tuple | None, want: tuple) -> None:
    assert got is not None
    assert got[:3] == want[:3]
    assert got[3].dtype == np.int64 and got[3].shape == want[3].shape
    assert (got[3] == want[3]).all()


@given(st.lists(items(), max_size=8))
def test_the_compiled_reader_reads_what_upb_reads(its: list[pb.Item]) -> None:
    b = pb.Bill(id="b1", person_id="p1", items=its)
    b = pb.Bill.FromString(b.SerializeToString())
    got = W.item_columns(b, len(b.items))
    if got is None:  # only a NUL inside a string is not taken
        assert any("\x00" in s for it in its for s in (it.code, it.name, it.category))
        return
    same(got, W.item_columns_plain(b.items))


@pytest.mark.parametrize(
    "extra",
    [
        unknown(9, 0),
        unknown(15, 1),
        unknown(20, 2),
        unknown(11, 5),
        unknown(4, 2),
        unknown(1, 0),
        unknown(6, 5),
    ],
)
def test_unknown_fields_and_other_wire_types_are_skipped_as_upb_skips_them(extra: bytes) -> None:
    it = pb.Item(code="X1", name="n", category="B", qty_e4=20000, unit_price=5, amount=10,
                 selfpay_ratio=-3)  # fmt: skip
    b = pb.Bill.FromString(pb.Bill(id="b1", items=[it, pb.Item(category="A")]).SerializeToString())
    raw = b.SerializeToString()
    # the odd field appended to the first item (items = field 7, length-delimited: 0x3a)
    first = it.SerializeToString() + extra
    rest = pb.Bill(items=[pb.Item(category="A")]).SerializeToString()
    head = pb.Bill(id="b1").SerializeToString()
    item = it.SerializeToString()
    assert raw == head + b"\x3a" + bytes([len(item)]) + item + rest
    b = pb.Bill.FromString(head + b"\x3a" + bytes([len(first)]) + first + rest)
    got = W.item_columns(b, len(b.items))
    same(got, W.item_columns_plain(b.items))
    assert got is not None and got[3][:, 0].tolist() == [20000, 5, 10, NULL, -3]


def test_a_string_holding_a_nul_is_left_to_upb() -> None:
    b = pb.Bill(id="b1", items=[pb.Item(name="a\x00b", category="A")])
    assert W.item_columns(b, 1) is None
    assert bill_columns(b).name == ["a\x00b"]  # read through upb instead


def test_a_count_that_is_not_the_bills_is_refused() -> None:
    b = pb.Bill(id="b1", items=[pb.Item(category="A"), pb.Item(category="B")])
    assert W.item_columns(b, 1) is None
    assert W.item_columns(b, 3) is None


def test_bill_columns_of_the_benchmark_bill_equal_upbs() -> None:
    b = bill_to_pb(chain_bill(0, "p1", n_items=100, seed=1))
    c = bill_columns(b)
    code, name, category, m = W.item_columns_plain(b.items)
    assert (c.code, c.name, c.category) == (code, name, category)
    got = np.stack((c.qty_e4, c.unit_price, c.amount, c.unit_price_cap, c.selfpay_ratio))
    assert (got == m).all()


_CODE = st.one_of(TEXT, st.text(min_size=60, max_size=70), st.sampled_from(["X1", "a\tb", "ü\x7f"]))
_NAME = st.one_of(TEXT, st.text(min_size=195, max_size=205))
_CATEGORY = st.sampled_from(["A", "B", "C", "01", "02", "03", "D", "0", "04", "a", "", "AB", "Ａ"])


@given(st.lists(st.tuples(_CODE, _NAME, _CATEGORY), min_size=1, max_size=6))
def test_the_readers_facts_are_what_the_checks_find(rows: list[tuple[str, str, str]]) -> None:
    """``BillFacts`` (control characters in a code, the longest code and name in characters,
    the category codes) equal what ``checked`` computes without them, and ``checked`` answers
    the same either way."""
    from dataclasses import replace

    from engine.service.billcols import _CAT, checked
    from engine.validation import bad_id_chars

    its = [pb.Item(code=c, name=n, category=k, unit_price=5, amount=10) for c, n, k in rows]
    b = pb.Bill(id="b1", person_id="p1", hospital="H1", hospital_level="l1",
                admission_date="2024-01-02", discharge_date="2024-01-05", items=its)  # fmt: skip
    cols = bill_columns(b)
    f = cols.facts
    if f is None:  # a NUL somewhere: read through upb
        assert any("\x00" in s for r in rows for s in r)
        return
    codes, names, cats = zip(*rows, strict=True)
    assert f.bad_code == bad_id_chars("".join(codes))
    assert (f.longest_code, f.longest_name) == (max(map(len, codes)), max(map(len, names)))
    if all(k in _CAT for k in cats):
        assert f.cat is not None and f.cat.tolist() == [_CAT[k] for k in cats]
    else:
        assert f.cat is None
    got, want = checked(cols), checked(replace(cols, facts=None))
    assert (got is None) == (want is None)
    if got is not None and want is not None:
        assert got.cat.tolist() == want.cat.tolist()
