"""Targeted examples for the kernel (and the reference): each figure computed by hand from
domain.md. Every batch is settled three ways (reference, kernel, kernel on two threads) and the
three must agree before the figures are checked."""

from __future__ import annotations

from datetime import date
from functools import partial
from typing import Any

import pytest

from engine.accounts import LayerAccount, Opening, YearAccounts
from engine.batch import BatchResult, reference_batch, settle_batch
from engine.bill import Bill, parse_bill
from engine.errors import InputError
from engine.money import MAX_ACCOUNT, MAX_AMOUNT, MAX_QTY_E4, MAX_UNIT_PRICE
from engine.policy.policyset import PolicySet
from engine.result import Settlement
from tests.strategies import build_table

REGION = {"code": "450900", "name": "edge county"}
LEVELS = ("township", "county", "city")
TAGS = ("poor", "low_income")


def table(*layers: dict[str, Any], start: date = date(2019, 1, 1), end: date | None = None,
          b_ratio: int = 1000) -> Any:  # fmt: skip
    d: dict[str, Any] = {
        "region": REGION,
        "effective_from": start,
        "hospital_levels": list(LEVELS),
        "tags": list(TAGS),
        "b_selfpay_ratio": b_ratio,
        "layers": list(layers),
    }
    if end is not None:
        d["effective_to"] = end
    return build_table(d)


def reimburse(lid: str = "basic", covers: tuple[str, ...] = ("in_scope",), **variant: Any) -> dict:
    variant.setdefault("segments", [{"ratio": 10000}])
    return {"id": lid, "name": lid, "fund_code": "390100", "kind": "reimburse",
            "covers": list(covers), "variants": [variant]}  # fmt: skip


def person(pid: str = "p1", household: str = "h1", birth: date = date(1970, 6, 15),
           tags: tuple[Any, ...] = ()) -> dict:  # fmt: skip
    return {"id": pid, "birth_date": birth, "household": household, "tags": list(tags)}


def bill(bid: str, items: list[dict], who: dict | None = None, level: str = "county",
         admission: date = date(2023, 3, 1), discharge: date | None = None) -> Bill:  # fmt: skip
    return parse_bill({
        "id": bid, "hospital": "H1", "person": who or person(), "hospital_level": level,
        "admission_date": admission, "discharge_date": discharge or admission, "items": items,
    })  # fmt: skip


def A(amount: int, **kw: Any) -> dict:
    return {"category": "A", "amount": amount, **kw}


def B(amount: int, **kw: Any) -> dict:
    return {"category": "B", "amount": amount, **kw}


def C(amount: int) -> dict:
    return {"category": "C", "amount": amount}


def settle(tables: Any, bills: list[Bill], opening: Opening | None = None) -> BatchResult:
    """Kernel result, after checking it equals the reference (and the two-thread kernel)."""
    policies = PolicySet.of(tables if isinstance(tables, list) else [tables])
    ref = reference_batch(bills, policies, opening)
    for threads in (1, 2):
        ker = settle_batch(bills, policies, opening, threads=threads)
        assert ker.settlements == ref.settlements
        for mine, theirs in ((ker.closing.person, ref.closing.person),
                             (ker.closing.household, ref.closing.household)):  # fmt: skip
            assert {k: v.to_dict() for k, v in mine.items()} == {
                k: v.to_dict() for k, v in theirs.items()
            }
    for s in ker.settlements:
        s.check_conservation()
    return ker


def one(tables: Any, b: Bill, opening: Opening | None = None) -> Settlement:
    return settle(tables, [b], opening).settlements[0]


def pays(s: Settlement) -> dict[str, int]:
    return {r.layer_id: r.pay for r in s.layers}


# --------------------------------------------------------------------------- buckets


def test_zero_amount_bill() -> None:
    t = table(
        reimburse(deductible={"basis": "admission", "amount": 30000}, segments=[{"ratio": 7000}]),
        {"id": "backstop", "name": "b", "fund_code": "640100", "kind": "backstop",
         "variants": [{"max_share": 1000, "annual_ceiling": 500000}]},
        {"id": "alert", "name": "a", "fund_code": "999109", "kind": "alert",
         "variants": [{"threshold": 0, "segments": [{"ratio": 5000}]}]},
    )  # fmt: skip
    s = one(t, bill("z", [A(0), B(0), C(0)]))
    assert s.buckets.total == 0 and s.window_pay == 0 and s.net_selfpay == 0
    assert all(r.applied and r.base == r.pay == r.deductible == 0 for r in s.layers)
    assert not s.alerts  # self-pay 0 is not above a threshold of 0
    assert s.admission_no == 1
    assert all(r.account == LayerAccount() for r in s.layers)


def test_bill_of_only_c_items() -> None:
    t = table(
        reimburse(),  # in_scope only
        reimburse(
            "backbone",
            covers=("in_scope", "pre_selfpay", "over_limit", "out_of_catalogue"),
            segments=[{"ratio": 5000}],
        ),
    )
    s = one(t, bill("c", [C(10000), C(5001)]))
    assert (s.buckets.total, s.buckets.out_of_catalogue, s.buckets.in_scope) == (15001, 15001, 0)
    assert pays(s) == {"basic": 0, "backbone": 7501}  # 7500.5 rounds half up
    assert s.layers[0].base == 0 and s.layers[1].base == 15001
    assert s.net_selfpay == 7500


def test_after_discharge_layer_is_not_paid_at_the_window() -> None:
    backbone = reimburse("backbone", covers=("out_of_catalogue",), segments=[{"ratio": 5000}])
    t = table(reimburse(), {**backbone, "settle_at": "after_discharge"})
    s = one(t, bill("c", [A(1000), C(2000)]))
    assert pays(s) == {"basic": 1000, "backbone": 1000}
    assert (s.window_pay, s.net_selfpay) == (2000, 1000)


def test_b_item_with_full_first_selfpay_and_default_ratio_half_up() -> None:
    t = table(reimburse(covers=("in_scope", "pre_selfpay")))
    s = one(t, bill("b", [B(12345, selfpay_ratio=10000), B(10005)]))
    # 12345 all first self-pay; 10005 at the table's 10%: 1000.5 -> 1001, in scope 9004
    assert (s.buckets.pre_selfpay, s.buckets.in_scope) == (12345 + 1001, 9004)
    assert s.layers[0].base == s.buckets.total  # covers both buckets
    zero = one(t, bill("b0", [B(777, selfpay_ratio=0)]))
    assert (zero.buckets.pre_selfpay, zero.buckets.in_scope) == (0, 777)


def test_price_caps() -> None:
    t = table(reimburse())
    s = one(t, bill("cap", [
        A(4000, qty_e4=25000, unit_price_cap=1000),  # cap 2500: 1500 over the limit
        B(5000, qty_e4=10000, unit_price_cap=3000, selfpay_ratio=2000),  # 2000 over; 600 pre
        A(5, qty_e4=3333, unit_price_cap=15),  # cap 4.9995 -> 5: nothing over
        A(6, qty_e4=3333, unit_price_cap=15),  # 1 over
        A(100, unit_price_cap=1000),  # cap above the amount
    ]))  # fmt: skip
    b = s.buckets
    assert b.over_limit == 1500 + 2000 + 0 + 1 + 0
    assert b.pre_selfpay == 600
    assert b.in_scope == 2500 + 2400 + 5 + 5 + 100
    assert b.total == 4000 + 5000 + 5 + 6 + 100


def test_largest_allowed_values_stay_exact() -> None:
    """MAX_AMOUNT items, MAX_UNIT_PRICE x MAX_QTY_E4 caps: the kernel's int64 stays exact."""
    t = table(reimburse(segments=[{"up_to": MAX_AMOUNT, "ratio": 9999}, {"ratio": 1}]))
    s = one(t, bill("max", [
        A(MAX_AMOUNT, qty_e4=MAX_QTY_E4, unit_price_cap=MAX_UNIT_PRICE),
        B(MAX_AMOUNT, selfpay_ratio=3333), A(MAX_AMOUNT), A(MAX_AMOUNT),
    ]))  # fmt: skip
    pre = (MAX_AMOUNT * 3333 + 5000) // 10000
    in_scope = 4 * MAX_AMOUNT - pre
    assert s.buckets.in_scope == in_scope
    exact = MAX_AMOUNT * 9999 + (in_scope - MAX_AMOUNT) * 1
    assert s.layers[0].pay == (exact + 5000) // 10000


# --------------------------------------------------------------------------- deductibles, caps


def test_later_admissions_deductible_on_the_second_admission() -> None:
    t = table(reimburse(deductible={"basis": "admission", "amount": 30000,
                                    "later_admissions": 15000}))  # fmt: skip
    res = settle(t, [
        bill("second", [A(100000)], admission=date(2023, 5, 1)),
        bill("first", [A(100000)], admission=date(2023, 3, 1)),
        bill("next-year", [A(100000)], admission=date(2024, 1, 2)),
    ])  # fmt: skip
    s = {x.bill_id: x for x in res.settlements}
    assert [s[b].admission_no for b in ("first", "second", "next-year")] == [1, 2, 1]
    assert [s[b].layers[0].deductible for b in ("first", "second", "next-year")] == [
        30000, 15000, 30000,
    ]  # fmt: skip
    assert s["second"].layers[0].pay == 85000
    # an admission already settled this year (opening accounts) makes the first bill a 2nd one
    opening = Opening(person={("p1", 2023): YearAccounts(admissions=1)})
    again = one(t, bill("x", [A(100000)]), opening)
    assert (again.admission_no, again.layers[0].deductible) == (2, 15000)


def test_yearly_deductible_spans_bills() -> None:
    t = table(reimburse(deductible={"basis": "year", "amount": 50000},
                        segments=[{"ratio": 8000}]))  # fmt: skip
    res = settle(t, [
        bill("b1", [A(30000)], admission=date(2023, 2, 1)),
        bill("b2", [A(100000)], admission=date(2023, 3, 1)),
        bill("b3", [A(10000)], admission=date(2023, 4, 1)),
    ])  # fmt: skip
    r = [s.layers[0] for s in res.settlements]
    assert [(x.deductible, x.eligible, x.pay) for x in r] == [
        (30000, 0, 0), (20000, 80000, 64000), (0, 10000, 8000),
    ]  # fmt: skip
    assert [x.account.deductible_used for x in r] == [30000, 50000, 50000]


def test_annual_cap_hit_mid_bill() -> None:
    t = table(reimburse(segments=[{"ratio": 9000}], annual_cap=100000))
    res = settle(t, [
        bill("b1", [A(100000)], admission=date(2023, 2, 1)),
        bill("b2", [A(50000)], admission=date(2023, 3, 1)),
        bill("b3", [A(20000)], admission=date(2023, 4, 1)),
    ])  # fmt: skip
    r = [s.layers[0] for s in res.settlements]
    assert [(x.pay, x.cap, x.account.paid) for x in r] == [
        (90000, "", 90000), (10000, "annual_cap", 100000), (0, "annual_cap", 100000),
    ]  # fmt: skip
    assert res.settlements[1].net_selfpay == 40000


def test_admission_cap_then_annual_cap() -> None:
    t = table(reimburse(segments=[{"ratio": 9000}], admission_cap=30000, annual_cap=50000))
    res = settle(t, [
        bill("b1", [A(100000)], admission=date(2023, 2, 1)),
        bill("b2", [A(100000)], admission=date(2023, 3, 1)),
    ])  # fmt: skip
    r = [s.layers[0] for s in res.settlements]
    assert [(x.pay, x.cap) for x in r] == [(30000, "admission_cap"), (20000, "annual_cap")]


def test_level_maps_pick_the_bills_level() -> None:
    t = table(reimburse(deductible={"basis": "admission",
                                    "amount": {"township": 0, "county": 30000, "city": 60000}},
                        segments=[{"ratio": {"township": 9500, "county": 8000, "city": 6500}}]))  # fmt: skip
    res = settle(t, [bill(lv, [A(100000)], level=lv, who=person(lv, lv)) for lv in LEVELS])
    assert [s.layers[0].pay for s in res.settlements] == [95000, 56000, 26000]


# --------------------------------------------------------------------------- backstop, alerts


def test_backstop_with_both_limits() -> None:
    basic = reimburse(segments=[{"ratio": 5000}])
    t = table(basic, {"id": "backstop", "name": "b", "fund_code": "640100", "kind": "backstop",
                      "variants": [{"max_share": 1000, "annual_ceiling": 500000}]})  # fmt: skip
    res = settle(t, [
        # small bill: 10% of 200,000 = 20,000 binds before the 500,000 ceiling
        bill("small", [A(200000)], who=person("q", "hq")),
        # big bill: 10% would be 1,000,000; the yearly ceiling leaves 500,000
        bill("big", [A(10_000_000)], admission=date(2023, 3, 1)),
        # after the ceiling is used up the patient keeps nothing of the covered cost
        bill("after", [A(100000), C(7000)], admission=date(2023, 4, 1)),
    ])  # fmt: skip
    s = {x.bill_id: x for x in res.settlements}
    small, big, after = (s[k].layers[1] for k in ("small", "big", "after"))
    assert (small.pay, small.cap, small.account.selfpay_cum) == (80000, "max_share", 20000)
    assert (big.pay, big.cap, big.account.selfpay_cum) == (4_500_000, "annual_ceiling", 500000)
    assert (after.pay, after.cap, after.account.selfpay_cum) == (50000, "annual_ceiling", 500000)
    assert s["after"].net_selfpay == 7000  # out of catalogue, not covered


def test_household_alert_across_two_persons() -> None:
    alert = {"id": "watch", "name": "w", "fund_code": "999109", "kind": "alert",
             "scope": "household",
             "variants": [{"threshold": 100000, "segments": [{"ratio": 5000}],
                           "annual_cap": 30000}]}  # fmt: skip
    mine = {**alert, "id": "mine", "scope": "person"}
    mine["variants"] = [{"threshold": 100000, "segments": [{"ratio": 5000}]}]
    t = table(alert, mine)
    a, b, other = person("a", "h"), person("b", "h"), person("c", "elsewhere")
    res = settle(t, [
        bill("a1", [A(80000)], a, admission=date(2023, 3, 1)),
        bill("b1", [A(60000)], b, admission=date(2023, 4, 1)),
        bill("c1", [A(90000)], other, admission=date(2023, 4, 2)),
        bill("a2", [A(50000)], a, admission=date(2023, 5, 1)),
    ])  # fmt: skip
    s = {x.bill_id: x for x in res.settlements}
    hh = {k: s[k].layers[0] for k in s}
    assert [(hh[k].relief, hh[k].alert, hh[k].account.selfpay_cum) for k in ("a1", "b1", "a2")] == [
        (0, False, 80000), (20000, True, 140000), (10000, True, 190000),
    ]  # fmt: skip
    assert hh["a2"].cap == "annual_cap" and hh["a2"].account.paid == 30000
    assert (hh["c1"].relief, hh["c1"].alert) == (0, False)  # another household
    # the person-scope alert sees each person alone: a reaches 130,000, b only 60,000
    assert (s["a2"].layers[1].relief, s["a2"].layers[1].account.selfpay_cum) == (15000, 130000)
    assert not s["b1"].layers[1].alert
    # alerts pay nothing: the patient still bears all
    assert all(x.net_selfpay == x.buckets.total for x in res.settlements)
    assert [(al.person, al.household, al.layer, al.relief) for al in s["b1"].alerts] == [
        ("b", "h", "watch", 20000)
    ]
    assert res.closing.household[("h", 2023)].get("watch").selfpay_cum == 190000


# --------------------------------------------------------------------------- years, tables


def test_year_boundary_resets_accounts() -> None:
    t = table(reimburse(deductible={"basis": "year", "amount": 50000}))
    res = settle(t, [
        bill("dec", [A(30000)], admission=date(2022, 12, 1), discharge=date(2022, 12, 10)),
        # admitted in 2022, discharged in 2023: accounting year 2023, fresh accounts
        bill("cross", [A(30000)], admission=date(2022, 12, 28), discharge=date(2023, 1, 3)),
        bill("feb", [A(30000)], admission=date(2023, 2, 1)),
    ])  # fmt: skip
    s = {x.bill_id: x for x in res.settlements}
    assert [(s[k].year, s[k].admission_no, s[k].layers[0].deductible)
            for k in ("dec", "cross", "feb")] == [(2022, 1, 30000), (2023, 1, 30000),
                                                  (2023, 2, 20000)]  # fmt: skip
    assert res.closing.person[("p1", 2022)].get("basic").deductible_used == 30000
    assert res.closing.person[("p1", 2023)].get("basic").deductible_used == 50000


def test_policy_change_mid_year_continues_accounts() -> None:
    segs = [{"up_to": 50000, "ratio": 5000}, {"ratio": 8000}]
    crit = reimburse("crit", deductible={"basis": "year", "amount": 20000}, segments=segs,
                     tiers_basis="year")  # fmt: skip
    crit2 = reimburse("crit", deductible={"basis": "year", "amount": 20000},
                      segments=[segs[0], {"ratio": 9000}], tiers_basis="year")  # fmt: skip
    t1 = table(crit, start=date(2023, 1, 1), end=date(2023, 6, 30))
    t2 = table(reimburse("new", segments=[{"ratio": 0}]), crit2, start=date(2023, 7, 1))
    res = settle([t1, t2], [
        bill("june", [A(60000)], admission=date(2023, 6, 1)),
        # admitted under the old table, discharged under the new: the new one settles it
        bill("july", [A(30000)], admission=date(2023, 6, 25), discharge=date(2023, 7, 2)),
    ])  # fmt: skip
    june, july = res.settlements
    assert june.policy.endswith("2023-06-30") and july.policy.endswith("open")
    j = june.layers[0]
    assert (j.deductible, j.eligible, j.pay, j.account.eligible_cum) == (20000, 40000, 20000, 40000)
    k = july.layers[1]
    assert k.layer_id == "crit"
    # the deductible is used up; tiers continue from 40,000: R(70,000) - R(40,000) at the new
    # ratios = (25,000 + 18,000) - 20,000
    assert (k.deductible, k.eligible, k.pay) == (0, 30000, 23000)
    assert k.account == LayerAccount(20000, 70000, 43000, 0)
    assert july.admission_no == 2


# --------------------------------------------------------------------------- why not applied


@pytest.mark.parametrize(
    ("eligibility", "variants", "who", "level", "reason"),
    [
        ({"tags_any": ["poor"]}, None, person(), "county", "tags_any"),
        ({"tags_none": ["low_income"]}, None, person(tags=("low_income",)), "county", "tags_none"),
        ({"age_min": 18}, None, person(birth=date(2005, 3, 2)), "county", "age_min"),
        ({"age_max": 60}, None, person(birth=date(1962, 3, 1)), "county", "age_max"),
        ({"levels": ["city"]}, None, person(), "county", "level"),
        ({}, [{"when": {"tags_any": ["poor"]}, "segments": [{"ratio": 9000}]}], person(),
         "county", "no_variant"),
        ({}, [{"when": {"levels": ["city"]}, "segments": [{"ratio": 9000}]}], person(),
         "county", "no_variant"),
        # a tag that expired the day before admission does not count
        ({"tags_any": ["poor"]}, None,
         person(tags=({"tag": "poor", "valid_to": date(2023, 2, 28)},)), "county", "tags_any"),
        # 18 on the admission day (birthday): old enough; 60 until the day before 61
        ({"age_min": 18}, None, person(birth=date(2005, 3, 1)), "county", ""),
        ({"age_max": 60}, None, person(birth=date(1962, 3, 2)), "county", ""),
        ({"tags_any": ["poor"]}, None,
         person(tags=({"tag": "poor", "valid_from": date(2023, 3, 1)},)), "county", ""),
    ],
)  # fmt: skip
def test_layers_not_applying_record_why(
    eligibility: dict, variants: list | None, who: dict, level: str, reason: str
) -> None:
    layer = reimburse("extra", segments=[{"ratio": 5000}])
    layer["eligibility"] = eligibility
    if variants is not None:
        layer["variants"] = variants
    t = table(reimburse(segments=[{"ratio": 1000}]), layer)
    opening = Opening(person={("p1", 2023): YearAccounts({"extra": LayerAccount(1, 2, 3, 4)})})
    s = one(t, bill("w", [A(10000)], who, level=level, admission=date(2023, 3, 1)), opening)
    r = s.layers[1]
    assert r.reason == reason
    if reason:
        assert (r.applied, r.variant, r.base, r.pay) == (False, -1, 0, 0)
        assert r.account == LayerAccount(1, 2, 3, 4)  # untouched
        assert s.net_selfpay == 9000
    else:
        assert r.applied and r.pay == 4500 and r.account.paid == 3 + 4500


def test_empty_batch_settles_nothing_and_keeps_the_opening() -> None:
    """Found by the A-then-B property when one part is empty: the kernel wrapper used to fail
    (no table to compile) where the reference returned an empty result."""
    t = table(reimburse())
    opening = Opening(person={("p1", 2023): YearAccounts({"basic": LayerAccount(0, 0, 5, 0)}, 1)})
    ref = reference_batch([], PolicySet.of([t]), opening)
    assert ref.settlements == []
    for threads in (1, 2):
        ker = settle_batch([], PolicySet.of([t]), opening, threads=threads)
        assert ker.settlements == []
        assert (
            ker.closing.person[("p1", 2023)].to_dict() == ref.closing.person[("p1", 2023)].to_dict()
        )


# --------------------------------------------------------------------------- the account limit


def refusal(tables: Any, bills: list[Bill], opening: Opening | None = None) -> list[str]:
    """The problems of a batch refused at the account limit: the same from the reference and
    the kernel (one and two threads)."""
    policies = PolicySet.of(tables if isinstance(tables, list) else [tables])
    got = []
    for run in (reference_batch, settle_batch, partial(settle_batch, threads=2)):
        with pytest.raises(InputError) as err:
            run(bills, policies, opening)
        got.append([str(p) for p in err.value.problems])
    assert got[0] == got[1] == got[2]
    return got[0]


def opened(lid: str, acc: LayerAccount, who: str = "p1", household: bool = False) -> Opening:
    ya = {(who, 2023): YearAccounts({lid: acc})}
    return Opening(household=ya) if household else Opening(person=ya)


def test_year_tiers_stay_exact_up_to_the_account_limit() -> None:
    """R(x) for x from 2**63 // ratio to MAX_ACCOUNT: x * ratio leaves int64 there (the kernel
    used to wrap R(end) to a negative number and pay 0); the split product is exact, and an
    account may reach the limit itself."""
    t = table(reimburse("critical", segments=[{"ratio": 10000}], tiers_basis="year"))
    alert = table({"id": "watch", "name": "w", "fund_code": "999109", "kind": "alert",
                   "variants": [{"threshold": 0, "segments": [{"ratio": 9999}]}]})  # fmt: skip
    for end in (2**63 // 10000 + 1, 2**63 // 9999 + 1, MAX_ACCOUNT):
        s = one(t, bill("b", [A(100)]), opened("critical", LayerAccount(0, end - 100, 0, 0)))
        assert (s.layers[0].pay, s.layers[0].account.eligible_cum) == (100, end)
        s = one(alert, bill("w", [A(100)]), opened("watch", LayerAccount(0, 0, 0, end - 100)))
        exact = (end * 9999 + 5000) // 10000 - ((end - 100) * 9999 + 5000) // 10000
        assert (s.layers[0].relief, s.layers[0].account.selfpay_cum) == (exact, end)


ALERT_HH = {
    "id": "watch",
    "name": "Poverty watch",
    "fund_code": "999109",
    "kind": "alert",
    "scope": "household",
    "variants": [{"threshold": 0, "segments": [{"ratio": 5000}]}],
}
BACKSTOP = {
    "id": "backstop",
    "name": "Backstop",
    "fund_code": "640100",
    "kind": "backstop",
    "variants": [{"max_share": 10000}],
}  # the patient keeps all: selfpay_cum grows
M = MAX_ACCOUNT


@pytest.mark.parametrize(
    ("layer", "acc", "household", "refused"),
    [
        (reimburse("critical", tiers_basis="year"), LayerAccount(0, M - 99, 0, 0), False,
         [(1, "critical.eligible_cum", M + 2)]),
        (reimburse("critical"), LayerAccount(0, 0, M - 99, 0), False,
         [(1, "critical.paid", M + 2)]),
        (BACKSTOP, LayerAccount(0, 0, 0, M - 99), False, [(1, "backstop.selfpay_cum", M + 2)]),
        (ALERT_HH, LayerAccount(0, 0, 0, M - 99), True, [(1, "watch.selfpay_cum", M + 2)]),
        # relief: R(1) - R(0) = 1 on the first bill, R(101) - R(1) = 50 on the second
        (ALERT_HH, LayerAccount(0, 0, M - 9, 0), True, [(1, "watch.paid", M + 42)]),
        # an opening above the limit (refused on input by the adapters) is refused here too
        (reimburse("critical", deductible={"basis": "year", "amount": 100}),
         LayerAccount(M + 1, 0, 0, 0), False,
         [(0, "critical.deductible_used", M + 1), (1, "critical.deductible_used", M + 1)]),
    ],
)  # fmt: skip
def test_a_bill_that_would_pass_the_account_limit_is_refused(
    layer: dict, acc: LayerAccount, household: bool, refused: list[tuple[int, str, int]]
) -> None:
    """The first layer and field above MAX_ACCOUNT, with the value it would reach, named the
    same by the kernel and the reference; the bill before it is settled (and moves the
    account the refused bill sees)."""
    who, scope = ("h1", "household") if household else ("p1", "person")
    bills = [bill("ok", [A(1)]), bill("big", [A(100)], admission=date(2023, 4, 1))]
    problems = refusal(table(layer), bills, opened(layer["id"], acc, who, household))
    assert problems == [
        f"bills[{i}].accounts.{field}: would reach {value:,} fen for {scope} {who!r} in 2023 "
        f"({layer['name']}), above the limit 1,000,000,000,000,000 fen (10^15) of a "
        "year-to-date account; the bill is refused and nothing is written"
        for i, field, value in refused
    ]
    if len(refused) == 1:  # the first bill alone is settled, by both, to the same accounts
        one(table(layer), bills[0], opened(layer["id"], acc, who, household))


def test_a_refused_bill_moves_nothing_and_later_bills_go_on() -> None:
    """In settlement order: 100 fits, 100 more would pass the limit (refused, no account
    moved, no admission counted), then 50 fits exactly up to the limit."""
    t = table(reimburse("critical", tiers_basis="year"))
    op = opened("critical", LayerAccount(0, M - 150, 0, 0))
    bills = [
        bill("b0", [A(100)], admission=date(2023, 3, 1)),
        bill("b1", [A(100)], admission=date(2023, 4, 1)),
        bill("b2", [A(50)], admission=date(2023, 5, 1)),
    ]
    assert [p.split(":")[0] for p in refusal(t, bills, op)] == [
        "bills[1].accounts.critical.eligible_cum"
    ]
    res = settle(t, [bills[0], bills[2]], op)
    assert [s.admission_no for s in res.settlements] == [1, 2]
    assert res.closing.person[("p1", 2023)].get("critical").eligible_cum == M


# --------------------------------------------------------------------------- float guard


GUARD = 2**52  # engine.kernel.GUARD: the float64 item pass only below it
SMALL = 2**50  # engine.kernel.SMALL: and only for amounts below this


def _products_near_the_guard() -> list[tuple[int, int]]:
    """(x, r) with x * r on both sides of 2**52, and x * r + 5000 on both sides of a multiple
    of 10000 (where a float division that crossed an integer would round wrong)."""
    out = []
    for r in (1, 3, 9999, 10000):
        for d in (-3 * 10000, -10001, -5001, -5000, -4999, -1, 0, 1, 4999, 5000, 10000):
            x = (GUARD + d) // r
            out += [(x - 1, r), (x, r), (x + 1, r)]
    return out


def test_the_reciprocal_multiply_floors_as_the_integer_division_up_to_the_guard() -> None:
    """The item pass divides by 10000 as a multiply by engine.kernel.INV = fl(1/10000):
    floor(fl(n * INV)) must equal n // 10000 for every n = x * r + 5000 the guard lets through
    (x * r < GUARD), i.e. for n near each multiple of 10000 (where a rounding up would cross
    it), over many k up to the largest the guard allows, with every remainder for a few large
    k; negative n floor as Python's // does. It does fail well past the guard (n ~ 9e15): the
    check below is not vacuous."""
    from fractions import Fraction

    import numpy as np

    from engine.kernel import INV

    assert Fraction(1, 10000) < Fraction(INV) < Fraction(1, 10000) * (1 + Fraction(1, 2**54))
    top = (GUARD + 5000) // 10000  # n < GUARD + 5000: k <= top
    rng = np.random.default_rng(10)
    ks = np.concatenate(
        [np.arange(0, 200_000), rng.integers(0, top + 1, 1_000_000), top - np.arange(200_000)]
    )
    near = np.array([0, 1, 4999, 5000, 5001, 9998, 9999])
    for lo in range(0, len(ks), 1 << 15):  # in blocks that stay in cache: the same n, not
        n = (ks[lo : lo + (1 << 15), None] * 10000 + near).ravel()  # 10 M at once (page faults)
        n = n[n < GUARD + 5000]
        for m in (n, -n):
            assert np.array_equal(np.floor(m.astype(np.float64) * INV).astype(np.int64), m // 10000)
    for k in (top, top - 1, 2**51 // 10000, 123456789):
        m = k * 10000 + np.arange(10000)
        m = m[m < GUARD + 5000]
        assert np.array_equal(np.floor(m.astype(np.float64) * INV).astype(np.int64), m // 10000)
    far = 9 * 10**11 * 10000 + np.arange(-10000, 0)  # ~9e15: past the guard, it can fail
    assert not np.array_equal(np.floor(far.astype(np.float64) * INV).astype(np.int64), far // 10000)


def test_the_item_pass_float_path_is_exact_below_the_guard_and_falls_back_above() -> None:
    """Each product near 2**52: the float64 path answers only below the guard and then equals
    the integer rounding; at or above it, it says so and the int64 path gives the answer."""
    import numpy as np

    from engine.kernel import _buckets_exact, _buckets_fast

    below = above = 0
    for x, r in _products_near_the_guard():
        want_pre = (x * r + 5000) // 10000
        one = np.ones(1, dtype=np.int64)
        # a B item of amount x at first self-pay ratio r (no price cap)
        cols = (np.array([2], np.int8), one * 10000, one * x, -one, one * r)
        s0, s1, s2, s3, exact = _buckets_fast(*cols, 1000)
        assert exact == (x * r < GUARD and x < SMALL)
        if exact:
            below += 1
            assert (s0, s1, s2, s3) == (x - want_pre, want_pre, 0, 0)
        else:
            above += 1
        assert _buckets_exact(*cols, 1000) == (x - want_pre, want_pre, 0, 0)
        # an A item whose price cap x times quantity r is near the guard, amount just above
        cap_total = (x * r + 5000) // 10000
        cols = (np.array([1], np.int8), one * r, one * (cap_total + 7), one * x, -one)
        s0, s1, s2, s3, exact = _buckets_fast(*cols, 1000)
        assert exact == (x * r < GUARD)
        if exact:
            assert (s0, s1, s2, s3) == (cap_total, 0, 7, 0)
        assert _buckets_exact(*cols, 1000) == (cap_total, 0, 7, 0)
    assert below and above


@pytest.mark.parametrize("ratio", [10000, 9999, 5000])
def test_amounts_near_the_float_guard_settle_to_the_fen(ratio: int) -> None:
    """B items whose first self-pay product is just below, at and above 2**52 (the float
    path's guard, engine.kernel.GUARD) settle as the reference does, in one bill."""
    x = GUARD // ratio
    items = [B(x + d, selfpay_ratio=ratio) for d in (-2, -1, 0, 1, 2)]
    q = 10**9  # MAX_QTY_E4: caps of 4503599 and 4503600 fen give products either side
    items += [A(x, qty_e4=q, unit_price_cap=c) for c in (4503599, 4503600)]
    items.append(C(12345))  # out of catalogue, in the int64 path too
    s = one(table(reimburse()), bill("g", items))
    assert s.buckets.out_of_catalogue == 12345
    pre = sum(((x + d) * ratio + 5000) // 10000 for d in (-2, -1, 0, 1, 2))
    assert s.buckets.pre_selfpay == pre
    assert s.buckets.over_limit == sum(
        max(0, x - (c * q + 5000) // 10000) for c in (4503599, 4503600)
    )


def test_the_item_pass_float_path_takes_amounts_below_small_only() -> None:
    """Amounts near 2**50 (engine.kernel.SMALL, below which the float path converts them
    exactly by bit operations): below it the float path answers and equals the int64 path; at
    or above it (in magnitude: prepare lets no negative amount through) it hands the bill
    over."""
    import numpy as np

    from engine.kernel import _as_float, _as_int, _buckets_exact, _buckets_fast

    for v in (0, 1, -1, SMALL - 1, -(SMALL - 1), 2**51 - 1, -(2**51 - 1), 123456789012):
        assert _as_float(np.int64(v)) == float(v)
        assert _as_int(np.float64(v)) == v
    one = np.ones(1, dtype=np.int64)
    took = {True: 0, False: 0}
    for x in (SMALL - 10001, SMALL - 1, SMALL, SMALL + 1, SMALL + 5000, -5, -SMALL):
        for cat, cap, ratio in ((1, -1, 0), (1, 10**9, 0), (2, -1, 3), (3, -1, 0)):
            # an item of amount x: A without and with a price cap (10**9 fen x 1 unit), a B at
            # a first self-pay ratio of 3 bp (products below GUARD), and a C
            cols = (np.array([cat], np.int8), one * 10000, one * x, one * cap, one * ratio)
            s0, s1, s2, s3, exact = _buckets_fast(*cols, 1000)
            assert exact == (-SMALL < x < SMALL)
            took[bool(exact)] += 1
            want = _buckets_exact(*cols, 1000)
            if exact:
                assert (s0, s1, s2, s3) == want
            if x >= 0:
                assert sum(want) == x
    assert took[True] and took[False]


def test_the_item_pass_lanes_past_the_bill_add_nothing() -> None:
    """The kernel widens each bill's slices to whole LANES steps, into the next bill's items
    (engine.kernel.LANES): the lanes past the bill's ``n`` items add nothing to any bucket and
    take no part in the guard, whatever they hold; the bill's own sums are those of its items
    alone, for every n from 1 to past two whole steps."""
    import numpy as np

    from engine.kernel import LANES, _buckets_exact, _buckets_fast

    rng = np.random.default_rng(13)
    m = 2 * LANES + 5
    cat = rng.integers(1, 4, m).astype(np.int8)
    qty = rng.integers(1, 30000, m).astype(np.int32)
    amount = rng.integers(0, 10**7, m).astype(np.int64)
    cap = np.where(rng.random(m) < 0.5, -1, rng.integers(1, 10**6, m)).astype(np.int32)
    ratio = np.where(rng.random(m) < 0.5, -1, rng.integers(0, 10001, m)).astype(np.int16)
    for n in range(1, m):
        wide = -(-n // LANES) * LANES
        cols = [c.copy() for c in (cat, qty, amount, cap, ratio)]
        w = min(wide, m)
        # the lanes past the bill: items the float path could not take (an amount at SMALL, a
        # price cap whose product is past the guard), and all in bucket B and A
        cols[0][n:] = np.where(np.arange(n, m) % 2 == 0, 2, 1)
        cols[1][n:] = 2**31 - 1
        cols[2][n:] = SMALL + 12345
        cols[3][n:] = 2**31 - 1
        cols[4][n:] = 9999
        c_cat, c_qty, c_amount, c_cap, c_ratio = cols
        got = _buckets_fast(c_cat[:w], c_qty[:w], c_amount[:w], c_cap[:w], c_ratio[:w], 1000, n)
        alone = _buckets_fast(c_cat[:n], c_qty[:n], c_amount[:n], c_cap[:n], c_ratio[:n], 1000)
        want = _buckets_exact(c_cat[:n], c_qty[:n], c_amount[:n], c_cap[:n], c_ratio[:n], 1000)
        assert got == alone == (*want, True), n
