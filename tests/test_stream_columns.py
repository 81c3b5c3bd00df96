"""Readers of the packed stream's per-bill columns against the plain forms they replace.

The ISO day reader (``adapters.grpc.isodays``) against numpy's own parsing,
which the stream used before: the same day for every value both accept, None exactly when a
value is not a strict ``YYYY-MM-DD`` day (numpy refuses it, or it is not 10 characters of that
shape, which numpy would take: '1552608000' as a year, '2019-03-15T10:00' as a minute)."""

from __future__ import annotations

import re

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from adapters.grpc.isodays import iso_days
from adapters.grpc.packedtext import coded as _coded

_SHAPE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _numpy(vals: list[str]) -> np.ndarray | None:
    if not all(_SHAPE.fullmatch(v) for v in vals):
        return None
    try:
        return np.array(vals, dtype=str).astype("M8[D]") if vals else np.zeros(0, "M8[D]")
    except ValueError:
        return None


digit = st.sampled_from("0123456789")
#: mostly well-shaped values near the edges (month 00/13, day 00/29-32, year 0000, leap years)
shaped = st.builds(
    lambda y, m, d: f"{y:04d}-{m:02d}-{d:02d}",
    st.one_of(st.integers(0, 9999), st.sampled_from([0, 1, 4, 100, 400, 1900, 2000, 2024])),
    st.integers(0, 13),
    st.integers(0, 32),
)
odd = st.one_of(
    st.text(alphabet="0123456789-T: \n\x00é", min_size=0, max_size=12),
    st.builds(lambda s: s[:-1], shaped),
    st.builds(lambda s: s + "0", shaped),
)


@given(st.lists(st.one_of(shaped, shaped, odd), max_size=8))
def test_iso_days_are_numpys_days_for_strict_iso_values(vals: list[str]) -> None:
    want, got = _numpy(vals), iso_days(vals)
    if want is None:
        assert got is None
    else:
        assert got is not None and got.dtype == want.dtype and np.array_equal(got, want)


def test_every_day_of_four_centuries_and_year_0000() -> None:
    days = np.arange(
        np.datetime64("1900-01-01"), np.datetime64("2300-01-01"), dtype="M8[D]"
    ).tolist()
    vals = [d.isoformat() for d in days] + ["0000-01-01", "0000-02-29", "0000-12-31"]
    got = iso_days(vals)
    assert got is not None and np.array_equal(got, np.array(vals, dtype=str).astype("M8[D]"))
    for bad in ("1900-02-29", "2100-02-29", "2023-04-31", "2023-00-10", "0000-02-30"):
        assert iso_days([*vals[:3], bad]) is None


def _plain_coded(values: list[str]) -> tuple[list[int], list[str]]:
    index: dict[str, int] = {}
    return [index.setdefault(v, len(index)) for v in values], list(index)


@given(
    st.one_of(
        st.lists(st.text(alphabet="abcé", max_size=3), min_size=17, max_size=60),
        st.lists(st.text(alphabet="ab\x00é", max_size=3), max_size=60),
    )
)
def test_coded_is_the_first_seen_dict_coding(values: list[str]) -> None:
    """Codes in the order first seen and the labels as sent, Python strings (a NUL kept)."""
    c = _coded(values)
    codes, labels = _plain_coded(values)
    assert c.codes.dtype == np.int64 and c.codes.tolist() == codes
    assert c.labels.dtype == object and c.labels.tolist() == labels
    assert all(type(x) is str for x in c.labels.tolist())


def test_quantities_caps_and_ratios_stay_narrow_only_when_all_came_narrow() -> None:
    """``packed_items`` keeps int32 quantities and caps and int16 ratios (the widths the
    kernel's warmed Parquet variant takes) only when each came narrow or not at all; a message
    mixing widths among them is read all int64. The values are the same in every form."""
    from adapters.grpc.gen.onestop.settlement.v1 import settlement_pb2 as pb
    from adapters.grpc.packeditems import packed_items

    qty, cap, ratio = [10000, 25000, 1], [-1, 500, 7], [-1, 1000, 10000]

    def msg(**forms: str) -> pb.PackedBills:
        p = pb.PackedBills(category_i8=bytes([2, 2, 2]),
                           item_offsets_i32=np.array([0, 3], "<i4").tobytes(),
                           amount_i32=np.array([100, 200, 300], "<i4").tobytes())  # fmt: skip
        for name, vals, narrow in (("qty_e4", qty, "<i4"), ("unit_price_cap", cap, "<i4"),
                                   ("selfpay_ratio", ratio, "<i2")):  # fmt: skip
            form = forms.get(name, "narrow")
            if form == "narrow":
                field = {"<i4": "_i32", "<i2": "_i16"}[narrow]
                setattr(p, name + field, np.array(vals, narrow).tobytes())
            elif form == "le":
                setattr(p, name + "_le", np.array(vals, "<i8").tobytes())
            elif form == "repeated":
                getattr(p, name).extend(vals)
        return p

    def widths(p: pb.PackedBills) -> tuple[str, ...]:
        it = packed_items(p)
        for a, want in ((it.qty_e4, qty), (it.unit_price_cap, cap), (it.selfpay_ratio, ratio)):
            assert a.tolist() in (want, []) and a.flags.c_contiguous
            # read-only exactly when it is the message's bytes as they came (no copy)
            assert a.flags.writeable == (not isinstance(a.base, bytes))
        # amounts sent int32 stay so (prepare_columns widens them in its item pass)
        assert it.amount.dtype == np.int32 and it.item_offsets.dtype == np.int64
        return tuple(a.dtype.name for a in (it.qty_e4, it.unit_price_cap, it.selfpay_ratio))

    assert widths(msg()) == ("int32", "int32", "int16")
    it = packed_items(msg())
    assert not any(a.flags.writeable for a in (it.qty_e4, it.unit_price_cap, it.selfpay_ratio))
    assert not it.category.flags.writeable  # int8 as sent
    assert not it.amount.flags.writeable  # int32 as sent: the bytes, not a copy
    assert widths(msg(unit_price_cap="absent", selfpay_ratio="absent"))[0] == "int32"
    assert widths(msg(qty_e4="absent"))[1:] == ("int32", "int16")
    for mixed in ({"unit_price_cap": "le"}, {"qty_e4": "repeated"}, {"selfpay_ratio": "le"}):
        assert widths(msg(**mixed)) == ("int64",) * 3, mixed
    assert widths(msg(qty_e4="le", unit_price_cap="le", selfpay_ratio="absent")) == (
        "int64", "int64", "int64",
    )  # fmt: skip


@given(
    st.lists(
        st.one_of(
            shaped, shaped, st.binary(min_size=10, max_size=10).map(lambda b: b.decode("latin-1"))
        ),
        max_size=8,
    ),
    st.sampled_from([10, 11]),
)
def test_the_compiled_day_reader_is_the_numpy_one(vals: list[str], width: int) -> None:
    """``isodays._days`` (one compiled loop) against ``_days_plain`` (numpy) on rows of 10
    bytes (the joined form) or 11 (a separator after each, as ``iso_days`` reads a list):
    the same days, None for the same inputs."""
    from adapters.grpc import isodays

    raw = b"".join(v.encode("latin-1").ljust(width, b"\n") for v in vals)
    c = np.frombuffer(raw, dtype=np.uint8).reshape(len(vals), width)
    want, got = isodays._days_plain(c), isodays._days(c)
    if want is None:
        assert got is None
    else:
        assert got is not None and got.dtype == want.dtype and np.array_equal(got, want)
    if got is not None:
        again = isodays._days(c.copy())
        assert again is not None and np.array_equal(again, got)


def test_the_compiled_day_reader_on_four_centuries_joined() -> None:
    from adapters.grpc.isodays import iso_days_joined

    days = np.arange(np.datetime64("1900-01-01"), np.datetime64("2300-01-01"), dtype="M8[D]")
    vals = [d.isoformat() for d in days.tolist()] + ["0000-01-01", "0000-02-29", "9999-12-31"]
    got = iso_days_joined("".join(vals).encode())
    assert got is not None and np.array_equal(got, np.array(vals, dtype=str).astype("M8[D]"))
    for bad in ("1900-02-29", "2100-02-29", "2023-04-31", "2023-00-10", "0000-02-30",
                "2023-1-010", "2023/01/10", "２０２３-01-1"[:10]):  # fmt: skip
        assert iso_days_joined(("".join(vals[:3]) + bad).encode()[:40]) is None


@given(st.lists(st.text(alphabet="ab9-\x00\x01\x1f\x7f~ é", max_size=6), max_size=40))
def test_joined_bill_ids_read_as_an_array_are_the_lists_array(ids: list[str]) -> None:
    """The joined ids as a numpy str array (``packedtext._id_array``) are what
    ``np.array(ids, dtype=str)`` makes of the ids as sent; ids the array would not hold as sent
    (empty, a control character, not ASCII) keep the list, each id as sent."""
    from adapters.grpc.client import pack_bills
    from adapters.grpc.packedtext import bill_text

    bills = [{"id": b, "person_id": "p", "admission_date": "2024-01-01",
              "discharge_date": "2024-01-02", "hospital_level": "1", "items": []}
             for b in ids]  # fmt: skip
    got = bill_text(pack_bills(bills, joined=True)).bill_ids
    array = bool(ids) and all(
        b and b.isascii() and not any(c < " " or c == "\x7f" for c in b) for b in ids
    )
    assert isinstance(got, np.ndarray) == array
    if array:
        want = np.array(ids, dtype=str)
        assert isinstance(got, np.ndarray)
        assert got.dtype == want.dtype and got.tolist() == want.tolist() == ids
    else:
        assert got == ids
