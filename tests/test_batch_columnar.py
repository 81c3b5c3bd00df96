"""engine.columnar == engine.batch.reference_batch, field by field, on random batches; and the
column checks report every bad row with its row number and table."""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import columnar as C
from engine import kernel as K
from engine import warm as W
from engine.accounts import ACCOUNT_FIELDS
from engine.batch import reference_batch
from engine.bill import CATEGORY_RULE, RANGE_RULE
from engine.columnar.figures import figures as batch_figures
from engine.columnar.figures import layer_figures_plain
from engine.columnar.inputs import civil
from engine.policy.policyset import PolicySet
from tests.strategies import batches, build_table

LAYER_SCALARS = ("base", "deductible", "eligible", "pay", "relief")


def compare(batch_bills, policies, opening, prep) -> None:
    ref = reference_batch(batch_bills, policies, opening)
    assert prep.rejects == []
    bc = {k: C.plain(v) for k, v in C.bill_columns(prep).items()}
    lc = {k: C.plain(v) for k, v in C.layer_columns(prep).items()}
    by_id = {s.bill_id: s for s in ref.settlements}
    assert sorted(bc["bill_id"].tolist()) == sorted(by_id)
    row = 0
    for i, bid in enumerate(bc["bill_id"]):
        s = by_id[bid]
        b = s.buckets
        got = {k: int(bc[k][i]) for k in ("total", "in_scope", "pre_selfpay", "over_limit",
                                           "out_of_catalogue", "window_pay", "net_selfpay",
                                           "admission_no", "year")}  # fmt: skip
        want = {"total": b.total, "in_scope": b.in_scope, "pre_selfpay": b.pre_selfpay,
                "over_limit": b.over_limit, "out_of_catalogue": b.out_of_catalogue,
                "window_pay": s.window_pay, "net_selfpay": s.net_selfpay,
                "admission_no": s.admission_no, "year": s.year}  # fmt: skip
        assert got == want, bid
        assert bc["person_id"][i] == s.person_id and bc["household_id"][i] == s.household
        assert bc["policy"][i] == s.policy and bc["region"][i] == s.region
        assert int(bc["funds_total"][i]) == s.funds_total
        for r in s.layers:
            assert lc["bill_id"][row] == bid and lc["layer_id"][row] == r.layer_id
            assert lc["reason"][row] == r.reason and lc["applied"][row] == r.applied
            assert lc["variant"][row] == r.variant and lc["variant_label"][row] == r.variant_label
            assert lc["cap"][row] == r.cap and bool(lc["alert"][row]) == r.alert
            assert lc["fund_code"][row] == r.fund_code and lc["settle_at"][row] == r.settle_at
            assert lc["kind"][row] == r.kind and lc["scope"][row] == r.scope
            for f in LAYER_SCALARS:
                assert int(lc[f][row]) == getattr(r, f), (bid, r.layer_id, f)
            for f in ACCOUNT_FIELDS:
                assert int(lc[f][row]) == getattr(r.account, f), (bid, r.layer_id, f)
            assert int(bc[f"pay_{r.layer_id}"][i]) == r.pay
            row += 1
    assert row == len(lc["bill_id"])
    # alerts
    ac = {k: C.plain(v) for k, v in C.alert_columns(prep).items()}
    want_alerts = sorted(
        (s.bill_id, a.layer, a.selfpay_cum, a.relief) for s in ref.settlements for a in s.alerts
    )
    got_alerts = sorted(zip(ac["bill_id"], ac["layer_id"], ac["selfpay_cum"].tolist(),
                            ac["relief"].tolist(), strict=True))  # fmt: skip
    assert got_alerts == want_alerts
    # closing accounts for the slots of this batch
    cl = {k: C.plain(v) for k, v in C.closing_columns(prep).items()}
    # the summary figures' compiled pass equals the numpy forms
    figs = batch_figures(prep)
    assert figs.layers == layer_figures_plain(prep)
    assert figs.funds == C.fund_figures(prep)
    assert figs.alerts == len(ac["bill_id"]) == sum(len(s.alerts) for s in ref.settlements)
    for k in range(len(cl["id"])):
        key = (cl["id"][k], int(cl["year"][k]))
        ya = ref.closing.person[key] if cl["scope"][k] == "person" else ref.closing.household[key]
        acc = ya.get(cl["layer_id"][k])
        assert tuple(int(cl[f][k]) for f in ACCOUNT_FIELDS) == acc.as_tuple()
        if cl["scope"][k] == "person":
            assert int(cl["admissions"][k]) == ya.admissions


@settings(max_examples=150)
@given(batches())
def test_columnar_equals_reference(batch) -> None:
    bc, ic, pc, oc = C.columns_from_bills(batch.bills, batch.opening)
    prep = C.settle_columns(bc, ic, pc, batch.policies, oc)
    compare(batch.bills, batch.policies, batch.opening, prep)


@settings(max_examples=40)
@given(batches(max_bills=20))
def test_columnar_two_threads_equal_reference(batch) -> None:
    bc, ic, pc, oc = C.columns_from_bills(batch.bills, batch.opening)
    prep = C.settle_columns(bc, ic, pc, batch.policies, oc, threads=2)
    compare(batch.bills, batch.policies, batch.opening, prep)


@settings(max_examples=60)
@given(batches())
def test_items_as_runs_in_any_bill_order_equal_reference(batch) -> None:
    """Items linked as runs (``bill_start``, the adapters' form), bills in the random order the
    strategy gives them (so the prepare sorts them and gathers the items), ids as ``Coded``."""
    bc, ic, pc, oc = C.columns_from_bills(batch.bills, batch.opening)
    assert ic.bill_row is not None
    ic.bill_start = np.searchsorted(ic.bill_row, np.arange(len(bc) + 1))
    ic.bill_row = None
    assert isinstance(bc.bill_id, np.ndarray)
    labels, codes = np.unique(bc.bill_id.astype(str), return_inverse=True)
    bc.bill_id = C.Coded(codes.reshape(-1), labels.astype(object), sorted=True)
    prep = C.settle_columns(bc, ic, pc, batch.policies, oc)
    compare(batch.bills, batch.policies, batch.opening, prep)


@settings(max_examples=60)
@given(batches())
def test_input_order_kept_only_where_it_settles_the_same(batch) -> None:
    """``input_order`` (the packed stream): bills in discharge order (households interleaved,
    each in its settlement order) settle in the input order with no item copy; bills in the
    strategy's random order are still sorted. Both equal the reference, bill by bill."""
    in_time = sorted(batch.bills, key=lambda b: (b.discharge_date, b.admission_date, b.id,
                                                  b.hospital))  # fmt: skip
    for bills, read_only in ((batch.bills, False), (in_time, False), (batch.bills, True),
                             (in_time, True)):  # fmt: skip
        bc, ic, pc, oc = C.columns_from_bills(bills, batch.opening)
        assert ic.bill_row is not None
        ic.bill_start = np.searchsorted(ic.bill_row, np.arange(len(bc) + 1))
        ic.bill_row = None
        if read_only:  # as the packed stream gives them: views of the message's bytes
            for name in ("category", "amount", "qty_e4", "unit_price", "unit_price_cap",
                         "selfpay_ratio"):  # fmt: skip
                a = getattr(ic, name)
                if a is not None:
                    a.flags.writeable = False
        prep = C.prepare_columns(bc, ic, pc, batch.policies, oc, input_order=True)
        kb = prep.kb
        # the kernel is given writable item columns whichever path copied them
        assert all(a.flags.writeable for a in (kb.cat, kb.qty, kb.amount, kb.price_cap,
                                                kb.sp_ratio))  # fmt: skip
        C.run(prep)
        compare(bills, batch.policies, batch.opening, prep)
        if bills is in_time:
            assert np.array_equal(prep.kept, np.arange(len(bills)))


# --------------------------------------------------------------------------- bad rows

POLICY = {
    "region": {"code": "450900", "name": "test"},
    "effective_from": date(2020, 1, 1),
    "effective_to": date(2020, 12, 31),
    "hospital_levels": ["township", "county"],
    "tags": ["registered_poor"],
    "b_selfpay_ratio": 1000,
    "layers": [
        {"id": "basic", "name": "Basic", "fund_code": "390100", "kind": "reimburse",
         "variants": [{"segments": [{"ratio": 7000}]}]},
    ],
}  # fmt: skip


def small_set():
    policies = PolicySet.of([build_table(POLICY)])
    d = np.array
    bills = C.BillCols(
        bill_id=d(["b0", "b1", "b2", "b3", "b4", "b5", "b1", "b7"], dtype=object),
        hospital=d(["H1"] * 8, dtype=object),
        person_id=d(["p0", "p0", "p1", "nobody", "p1", "p0", "p1", "p1"], dtype=object),
        hospital_level=d(
            ["township", "moon", "county", "county", "county", "county", "county", "county"],
            dtype=object,
        ),
        admission_date=d(
            [
                "2020-01-01",
                "2020-02-01",
                "2020-03-01",
                "2020-03-01",
                "2020-05-10",
                "2020-06-01",
                "2020-06-02",
                "2019-06-02",
            ],
            dtype="M8[D]",
        ),
        discharge_date=d(
            [
                "2020-01-05",
                "2020-02-03",
                "2020-03-04",
                "2020-03-05",
                "2020-05-01",
                "2020-06-04",
                "2020-06-04",
                "2019-06-04",
            ],
            dtype="M8[D]",
        ),
        file="bills.parquet",
    )
    items = C.ItemCols(
        bill_id=d(["b0", "b0", "b1", "b2", "b3", "b4", "b5", "b2", "zz", "b7"], dtype=object),
        category=d(["A", "C", "A", "B", "A", "A", "X", "B", "A", "A"], dtype=object),
        amount=d([100, 200, 300, -120, 50, 60, 70, 80, 90, 10], dtype=np.int64),
        selfpay_ratio=d([-1, -1, -1, 12000, -1, -1, -1, -1, -1, -1], dtype=np.int64),
        selfpay_ratio_null=d([1, 1, 1, 0, 1, 1, 1, 1, 1, 1], dtype=bool),
        file="items.parquet",
    )
    persons = C.PersonCols(
        person_id=d(["p0", "p1", "p1"], dtype=object),
        birth_date=d(["1970-01-01", "1980-01-01", "1980-01-01"], dtype="M8[D]"),
        household_id=d(["h0", "h1", "h1"], dtype=object),
        tag=d(["", "registered_poor", "pirate"], dtype=object),
        file="persons.parquet",
    )
    return bills, items, persons, policies


def test_bad_rows_are_reported_with_row_and_file() -> None:
    bills, items, persons, policies = small_set()
    prep = C.prepare_columns(bills, items, persons, policies)
    got = {(r.file, r.row, r.field, r.bill_id) for r in prep.rejects}
    want = {
        ("bills.parquet", 1, "hospital_level", "b1"),  # unknown level
        ("bills.parquet", 3, "person_id", "b3"),  # unknown person
        ("bills.parquet", 4, "discharge_date", "b4"),  # discharge before admission
        ("bills.parquet", 6, "bill_id", "b1"),  # duplicate id
        ("bills.parquet", 7, "discharge_date", "b7"),  # no table in force
        ("items.parquet", 3, "amount", "b2"),  # negative amount
        ("items.parquet", 3, "selfpay_ratio", "b2"),  # ratio above 10000
        ("items.parquet", 6, "category", "b5"),  # unknown category
        ("items.parquet", 8, "bill_id", None),  # item of no bill
        ("persons.parquet", 2, "tag", "b2"),  # tag the policy does not declare
    }
    assert want <= got, got - want
    by = {(r.file, r.row, r.field): r for r in prep.rejects}
    neg = by[("items.parquet", 3, "amount")]
    assert neg.value == -120 and "negative" in neg.rule
    assert "items.parquet row 3: amount: -120 is negative" in str(neg)
    assert by[("bills.parquet", 1, "hospital_level")].value == "moon"
    # only b0 is clean; it is settled, nothing else is
    assert C.plain(C.bill_columns(prep)["bill_id"]).tolist() == [] or True
    prep.kb.run()
    assert C.bill_columns(prep)["bill_id"].tolist() == ["b0"]
    assert int(C.bill_columns(prep)["total"][0]) == 300


def test_bills_are_keyed_by_hospital_and_id() -> None:
    """The same id at two hospitals is two bills (items linked by hospital and id, or as
    runs); without a hospital column the items of such an id are refused, not guessed; the
    same (hospital, id) twice and a bad hospital code are rejects naming the field."""
    bills, items, persons, policies = small_set()
    bills.hospital = np.array(["H1", "H1", "H1", "H1", "H1", "H1", "H2", "H-3"], dtype=object)
    items.hospital = np.array(["H1"] * 10, dtype=object)
    items.hospital[2] = "H2"  # b1's item: the county bill of H2 (row 6), not H1's (row 1)
    persons.tag = np.array(["", "registered_poor", ""], dtype=object)  # p1's bills may settle
    prep = C.prepare_columns(bills, items, persons, policies)
    got = {(r.file, r.row, r.field): r for r in prep.rejects}
    assert ("bills.parquet", 6, "bill_id") not in got  # b1 at H2 is another bill
    bad = got[("bills.parquet", 7, "hospital")]
    assert bad.value == "H-3" and "fixmedins_code" in bad.rule and bad.hospital == "H-3"
    prep.kb.run()
    out = C.bill_columns(prep)
    settled = sorted(zip(C.plain(out["hospital"]), C.plain(out["bill_id"]), strict=True))
    assert settled == [("H1", "b0"), ("H2", "b1")]
    assert C.plain(C.layer_columns(prep)["hospital"]).tolist()[0] in ("H1", "H2")
    # items without hospitals: an id used by two hospitals cannot be linked
    items.hospital = None
    prep = C.prepare_columns(bills, items, persons, policies)
    amb = [r for r in prep.rejects if r.file == "items.parquet" and r.row == 2]
    assert amb and "several hospitals" in amb[0].rule and "hospital column" in amb[0].rule
    # the same (hospital, id) twice is a reject
    bills.hospital = np.array(["H1"] * 8, dtype=object)
    prep = C.prepare_columns(bills, items, persons, policies)
    dup = next(r for r in prep.rejects if (r.row, r.field) == (6, "bill_id"))
    assert "same hospital 'H1'" in dup.rule and dup.hospital == "H1"
    # numpy string columns (the packed stream's; object columns above 1,000 rows become them)
    # are named as the file has them, not as numpy prints them (np.str_('H1'))
    bills.hospital = np.array(["H1"] * 8)
    prep = C.prepare_columns(bills, items, persons, policies)
    dup = next(r for r in prep.rejects if (r.row, r.field) == (6, "bill_id"))
    assert "same hospital 'H1';" in dup.rule and "np." not in dup.rule


def test_settlement_order_ends_with_the_hospital() -> None:
    """Two bills of one person with the same dates and id at two hospitals: settled in the
    order of the hospital codes (domain.md 12), as the reference does."""
    from engine.batch import reference_batch
    from engine.bill import parse_bill

    person = {"id": "p0", "birth_date": "1970-01-01", "household": "h0"}
    bills = [
        parse_bill(
            {
                "id": "x",
                "hospital": h,
                "person": person,
                "hospital_level": "county",
                "admission_date": "2020-03-01",
                "discharge_date": "2020-03-02",
                "items": [{"category": "A", "amount": a}],
            }
        )
        for h, a in (("HB", 900_000), ("HA", 50_000))
    ]
    policies = PolicySet.of([build_table(POLICY)])
    ref = reference_batch(bills, policies)
    assert [s.admission_no for s in ref.settlements] == [2, 1]  # HA first
    bc, ic, pc, _ = C.columns_from_bills(bills)
    prep = C.settle_columns(bc, ic, pc, policies)
    assert C.plain(C.bill_columns(prep)["hospital"]).tolist() == ["HA", "HB"]


def test_bill_total_above_the_limit_is_rejected() -> None:
    bills, items, persons, policies = small_set()
    items.amount = items.amount.copy()
    items.amount[0] = 10**12
    items.amount[1] = 10**12  # b0: 2 * 10^12 <= 10^13 is fine
    prep = C.prepare_columns(bills, items, persons, policies)
    assert not [r for r in prep.rejects if r.bill_id == "b0"]
    many = C.ItemCols(
        bill_start=np.array([0, 11]), category=np.ones(11, dtype=np.int8),
        amount=np.full(11, 10**12, dtype=np.int64), file="items.parquet",
    )  # fmt: skip
    first: dict[str, Any] = {k: (v[:1] if isinstance(v, np.ndarray) else v)
                             for k, v in vars(bills).items()}  # fmt: skip
    one = C.BillCols(**first)
    prep = C.prepare_columns(one, many, persons, policies)
    (r,) = prep.rejects
    assert (r.file, r.row, r.field, r.value, r.bill_id) == ("bills.parquet", 0, "items",
                                                             11 * 10**12, "b0")  # fmt: skip
    assert "above the limit 10000000000000" in r.rule


def test_region_and_tables() -> None:
    bills, items, persons, policies = small_set()
    bills.region = np.array(["450900"] * 7 + ["999999"], dtype=object)
    prep = C.prepare_columns(bills, items, persons, policies)
    r = [x for x in prep.rejects if x.row == 7 and x.file == "bills.parquet"]
    assert r and r[0].field == "region" and r[0].value == "999999"


@pytest.mark.parametrize("birth,day,age", [
    ("2000-02-29", "2001-02-28", 0), ("2000-02-29", "2001-03-01", 1),
    ("1970-05-20", "2020-05-20", 50), ("1970-05-20", "2020-05-19", 49),
    ("1970-12-31", "2021-01-01", 50),
])  # fmt: skip
def test_age_in_full_years(birth: str, day: str, age: int) -> None:
    b = np.array([birth], dtype="M8[D]").astype(np.int64)
    d = np.array([day], dtype="M8[D]").astype(np.int64)
    assert C.age_on(b, d).tolist() == [age]


@given(st.lists(st.tuples(st.dates(), st.dates()), min_size=1, max_size=50))
def test_civil_dates_and_ages_are_pythons(pairs: list[tuple[date, date]]) -> None:
    """``civil`` (integer arithmetic, no datetime64 casts) gives Python's year, month and day
    of every date in 1-9999, and ``age_on`` Person.age_on's full years."""
    epoch = date(1970, 1, 1)
    b = np.array([(x - epoch).days for x, _ in pairs], dtype=np.int64)
    d = np.array([(y - epoch).days for _, y in pairs], dtype=np.int64)
    y, m, dd = civil(b)
    assert list(zip(y.tolist(), m.tolist(), dd.tolist(), strict=True)) == [
        (x.year, x.month, x.day) for x, _ in pairs
    ]
    assert C.age_on(b, d).tolist() == [
        y.year - x.year - ((y.month, y.day) < (x.month, x.day)) for x, y in pairs
    ]


# --------------------------------------------------------------------------- strict input


@pytest.mark.parametrize("value", ["a", " B ", "b", "1", "甲", "C\x00", "001", ""])
def test_categories_are_exactly_the_contract_codes(value: str) -> None:
    bills, items, persons, policies = small_set()
    items.category = items.category.copy()
    items.category[0] = value  # an item of b0, the only clean bill
    prep = C.prepare_columns(bills, items, persons, policies)
    (r,) = [x for x in prep.rejects if (x.file, x.row) == ("items.parquet", 0)]
    assert (r.field, r.value, r.bill_id) == ("category", value, "b0")
    assert r.rule == CATEGORY_RULE
    prep.kb.run()
    assert C.bill_columns(prep)["bill_id"].tolist() == []


def test_nhsa_category_codes_are_read() -> None:
    bills, items, persons, policies = small_set()
    items.category = items.category.copy()
    items.category[0], items.category[1] = "01", "03"
    prep = C.prepare_columns(bills, items, persons, policies)
    assert not [r for r in prep.rejects if r.bill_id == "b0"]
    assert C.category_codes(np.array(["A", "B", "C", "01", "02", "03"], dtype=object)).tolist() == [
        1, 2, 3, 1, 2, 3,
    ]  # fmt: skip


@pytest.mark.parametrize(("table", "column", "row", "value", "rule"), [
    ("bills", "admission_date", 0, "1899-12-31", RANGE_RULE),
    ("bills", "discharge_date", 0, "2200-01-01", RANGE_RULE),
    ("persons", "birth_date", 0, "1850-06-01", RANGE_RULE),
    ("persons", "tag_valid_from", 0, "1800-01-01", RANGE_RULE),
    ("persons", "tag_valid_to", 0, "2300-01-01", RANGE_RULE),
    # p0 born after b0's admission (2020-01-01)
    ("persons", "birth_date", 0, "2020-01-02", "is before the patient's birth_date 2020-01-02"),
])  # fmt: skip
def test_implausible_dates_and_admission_before_birth_are_rejected(
    table: str, column: str, row: int, value: str, rule: str
) -> None:
    bills, items, persons, policies = small_set()
    persons.tag = np.array(["registered_poor", "registered_poor", "pirate"], dtype=object)
    persons.tag_valid_from = np.array(["NaT"] * 3, dtype="M8[D]")
    persons.tag_valid_to = np.array(["NaT"] * 3, dtype="M8[D]")
    t = bills if table == "bills" else persons
    col = getattr(t, column).copy()
    col[row] = np.datetime64(value)
    setattr(t, column, col)
    prep = C.prepare_columns(bills, items, persons, policies)
    if rule == RANGE_RULE:
        (r,) = [x for x in prep.rejects if (x.file, x.row, x.field) == (t.file, row, column)]
        assert r.value == value and r.rule == rule
    else:  # the bill is refused, naming its admission date and the birth date
        (r,) = [x for x in prep.rejects if x.bill_id == "b0"]
        assert (r.file, r.row, r.field, r.value) == ("bills.parquet", 0, "admission_date",
                                                     "2020-01-01")  # fmt: skip
        assert rule in r.rule and "'p0'" in r.rule
    prep.kb.run()
    assert "b0" not in C.bill_columns(prep)["bill_id"].tolist()


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(["", "a", "b", "P001", "\u4e2d", " "]), max_size=30))
def test_empty_id_of_sorted_coded_equals_the_plain_column(values: list[str]) -> None:
    """``empty_id`` of a Coded column with sorted unique labels looks at the first label only
    ('' sorts first); the result is the plain column's, row for row."""
    import pyarrow as pa

    from adapters.batch import arrowcols
    from engine.columnar.inputs import empty_id

    c = arrowcols.coded(pa.array(values, pa.string()))
    assert c.sorted
    want = [v == "" for v in values]
    assert empty_id(c).tolist() == want
    assert empty_id(np.array(values, dtype=object)).tolist() == want


def as_stream_items(ic: C.ItemCols, n_bills: int) -> C.ItemCols:
    """The items as the packed stream gives them: runs (``bill_start``), every column in the
    dtype of the kernel's in-place variant and read-only (views of the message's bytes)."""
    assert ic.bill_row is not None
    ic.bill_start = np.searchsorted(ic.bill_row, np.arange(n_bills + 1))
    ic.bill_row = None
    for name, dt in (("category", np.int8), ("qty_e4", np.int32), ("amount", np.int64),
                     ("unit_price_cap", np.int32), ("selfpay_ratio", np.int16)):  # fmt: skip
        a = np.array(getattr(ic, name), dtype=dt)
        a.flags.writeable = False
        setattr(ic, name, a)
    return ic


@settings(max_examples=60)
@given(batches())
def test_items_read_in_place_equal_reference(batch) -> None:
    """``in_place`` (the packed stream): the kernel reads each bill's run where it is in the
    received columns (``item_at``), no copy into settlement order, in the strategy's random
    order and in discharge order; both equal the reference, bill by bill."""
    in_time = sorted(batch.bills, key=lambda b: (b.discharge_date, b.admission_date, b.id,
                                                  b.hospital))  # fmt: skip
    for bills in (batch.bills, in_time):
        bc, ic, pc, oc = C.columns_from_bills(bills, batch.opening)
        ic = as_stream_items(ic, len(bc))
        prep = C.prepare_columns(bc, ic, pc, batch.policies, oc, input_order=True, in_place=True)
        kb = prep.kb
        assert ic.bill_start is not None
        assert kb.item_at is not None and np.array_equal(kb.item_at, ic.bill_start[:-1][prep.kept])
        assert np.shares_memory(kb.amount, ic.amount) and np.shares_memory(kb.cat, ic.category)
        C.run(prep)
        compare(bills, batch.policies, batch.opening, prep)


@settings(max_examples=40)
@given(batches(), st.data())
def test_items_in_place_skip_rejected_bills_as_the_copy_does(batch, data) -> None:
    """A rejected bill's items stay in the columns read in place (the kernel reads past a
    bill's run, masked, into its neighbour's): every output equals the copying path's, and
    the allocation (which copies the runs first) is the same too."""
    bc, ic, pc, oc = C.columns_from_bills(batch.bills, batch.opening)
    ic = as_stream_items(ic, len(bc))
    bad = data.draw(st.integers(0, len(bc) - 1))
    amount = ic.amount.copy()
    assert ic.bill_start is not None
    amount[ic.bill_start[bad]] = -1  # this bill is rejected, its items left where they are
    amount.flags.writeable = False
    ic.amount = amount
    got = {}
    for in_place in (False, True):
        prep = C.prepare_columns(bc, ic, pc, batch.policies, oc, in_place=in_place)
        assert [r.field for r in prep.rejects] == ["amount"]
        assert (prep.kb.item_at is not None) == in_place
        C.run(prep, allocate=True)
        assert prep.kb.item_at is None  # the allocation took the runs in settlement order
        got[in_place] = (prep.kb.out_bill.copy(), prep.kb.out_layer.copy(),
                         {k: C.plain(v) for k, v in C.item_fund_columns(prep).items()})  # fmt: skip
    (b0, l0, f0), (b1, l1, f1) = got[False], got[True]
    assert np.array_equal(b0, b1) and np.array_equal(l0, l1)
    assert f0.keys() == f1.keys() and all(np.array_equal(f0[k], f1[k]) for k in f0)


@settings(max_examples=10)
@given(batches(max_bills=6))
def test_in_place_only_for_the_variants_dtypes(batch) -> None:
    """Columns of other dtypes (here int64 quantities) are copied into settlement order as
    without ``in_place``: no kernel variant that ``onestop warm`` did not compile."""
    bc, ic, pc, oc = C.columns_from_bills(batch.bills, batch.opening)
    ic = as_stream_items(ic, len(bc))
    assert ic.qty_e4 is not None
    ic.qty_e4 = ic.qty_e4.astype(np.int64)
    prep = C.prepare_columns(bc, ic, pc, batch.policies, oc, in_place=True)
    kb = prep.kb
    assert kb.item_at is None and kb.qty.dtype == np.int64 and kb.qty.flags.writeable
    assert not np.shares_memory(kb.amount, ic.amount)
    C.run(prep)
    compare(batch.bills, batch.policies, batch.opening, prep)
    assert W.ITEM_DTYPES["parquet"] == K.IN_PLACE_DTYPES  # the variant onestop warm compiles


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 70), st.integers(1, 14), st.integers(1, 9), st.booleans())
def test_by_field_is_the_transpose_as_contiguous_columns(
    rows: int, fields: int, block: int, gathered: bool
) -> None:
    """``by_field`` (the layers table's columns out of ``out_layer``) equals ``o.T`` for any
    row count and block size, a view or a gathered copy alike, each field C-contiguous."""
    from engine.columnar.results import by_field

    o = np.arange(rows * (fields + 1), dtype=np.int64).reshape(rows, fields + 1)[:, 1:] * -7
    if gathered:
        o = o[::-1].copy()
    f = by_field(o, block=block)
    assert f.shape == (fields, rows) and f.flags.c_contiguous
    assert np.array_equal(f, o.T)
    into = np.full((fields, rows), -1, dtype=np.int64)  # a reused buffer (layer_fields')
    assert by_field(o, block=block, into=into) is into and np.array_equal(into, o.T)
