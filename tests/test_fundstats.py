"""engine.fundstats: the hand-computed golden fund-year, and properties of random ones (the
monthly rows sum to the totals, the statuses partition the claims, every rounding is the one
half-up rule, no personal data)."""

from __future__ import annotations

import json
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.fundstats import BINS, STATUSES, div_half_up, figures, flat
from tests.fundfacts import fund_facts, golden_facts


def test_golden_fund_year() -> None:
    f = figures(golden_facts())
    assert f.enrolled == 1200
    assert (f.money_in.count, f.money_in.fen) == (4, 600000)
    assert {k: (t.count, t.fen) for k, t in f.money_in_by_kind.items()} == {
        "premium": (1, 300000), "donation": (2, 200000), "government": (1, 100000),
        "other": (0, 0),
    }  # fmt: skip
    # S1 and S3 (0 fen) stand, S2 is reversed
    assert (f.window.settlements, f.window.fen, f.window.reversed) == (2, 12345, 1)
    c = f.claims
    assert (c.all.count, c.all.fen) == (5, 71000)
    assert [(c.status(s).count, c.status(s).fen) for s in STATUSES] == [
        (1, 4000),
        (1, 8000),
        (1, 7000),
        (2, 45001),
    ]
    assert c.average_paid == 22501  # 45001 / 2 = 22500.5, half-up
    d = c.days_to_payment
    assert (d.count, d.median, d.mean, d.p90, d.min, d.max) == (2, 23, 23, 30, 15, 30)
    r = f.relief
    assert (r.all.count, r.all.fen) == (3, 9000)
    assert [(r.status(s).count, r.status(s).fen) for s in STATUSES] == [
        (0, 0),
        (1, 2500),
        (0, 0),
        (2, 6000),
    ]
    assert r.average_paid == 3000
    assert (r.days_to_payment.median, r.days_to_payment.p90) == (40, 70)
    assert f.money_out == 12345 + 45001 + 6000 == 63346
    assert f.payable == 8000 + 2500
    assert f.balance == 600000 + 20000 - 63346 == 556654
    # used: window 12345 + claims 25001 + 20000 + 8000 + 0 + 4000 + relief 0 + 6000 + 2500
    assert f.budget_used == 77846
    assert f.budget_left == 500000 + 20000 - 77846 == 442154
    assert f.loss_ratio_bp == 1056  # 63346 / 600000 = 10.557666...%
    a = f.days_to_payment  # 10, 15, 30, 70
    assert (a.count, a.median, a.mean, a.p90, a.min, a.max) == (4, 23, 31, 70, 10, 70)
    assert dict(a.histogram) == {
        "0-7": 0, "8-14": 1, "15-30": 2, "31-60": 0, "61-90": 1, "91-180": 0, "181+": 0
    }  # fmt: skip
    assert [m.to_json() for m in f.monthly] == [
        {"month": "2018-01", "money_in": 300000, "paid_out": 0, "claims_filed": 0,
         "claims_paid": 0, "relief_filed": 1, "relief_paid": 1},
        {"month": "2018-02", "money_in": 150050, "paid_out": 0, "claims_filed": 1,
         "claims_paid": 0, "relief_filed": 0, "relief_paid": 0},
        {"month": "2018-03", "money_in": 149950, "paid_out": 57346, "claims_filed": 2,
         "claims_paid": 2, "relief_filed": 1, "relief_paid": 0},
        {"month": "2018-04", "money_in": 0, "paid_out": 0, "claims_filed": 1,
         "claims_paid": 0, "relief_filed": 1, "relief_paid": 0},
        {"month": "2018-05", "money_in": 0, "paid_out": 6000, "claims_filed": 1,
         "claims_paid": 0, "relief_filed": 0, "relief_paid": 1},
        {"month": "2018-06", "money_in": 0, "paid_out": 0, "claims_filed": 0,
         "claims_paid": 0, "relief_filed": 0, "relief_paid": 0},
    ]  # fmt: skip


def test_report_fund_and_no_money_in() -> None:
    from dataclasses import replace

    f = figures(replace(golden_facts(), budget_mode="report", money_in=()))
    assert f.budget_used is None and f.budget_left is None
    assert f.loss_ratio_bp is None
    assert f.balance == 20000 - 63346  # negative: paid more than it had


@given(st.integers(-(10**12), 10**12), st.integers(1, 10**9))
def test_div_half_up_is_floor_of_quotient_plus_half(a: int, b: int) -> None:
    q = div_half_up(a, b)
    exact = Fraction(a, b)
    assert q - Fraction(1, 2) <= exact < q + Fraction(1, 2)


@given(fund_facts())
def test_sums_add_up(facts) -> None:
    f = figures(facts)
    months = f.monthly
    assert [m.month for m in months] == sorted({m.month for m in months})  # contiguous, sorted
    assert sum(m.money_in for m in months) == f.money_in.fen
    assert sum(m.paid_out for m in months) == f.money_out
    for kind, cf in (("claims", f.claims), ("relief", f.relief)):
        assert sum(getattr(m, f"{kind}_filed") for m in months) == cf.all.count
        assert sum(getattr(m, f"{kind}_paid") for m in months) == cf.paid.count
        # the statuses partition every claim filed
        assert sum(cf.status(s).count for s in STATUSES) == cf.all.count
        assert cf.days_to_payment.count == cf.paid.count
        assert sum(k for _, k in cf.days_to_payment.histogram) == cf.paid.count
        if cf.paid.count:
            assert cf.average_paid == div_half_up(cf.paid.fen, cf.paid.count)
            d = cf.days_to_payment
            assert d.min is not None and d.max is not None
            assert d.min <= (d.median or 0) <= d.max and d.min <= (d.mean or 0) <= d.max
            assert d.p90 is not None and d.min <= d.p90 <= d.max
        else:
            assert cf.average_paid is None
    assert sum(f.money_in_by_kind[k].fen for k in f.money_in_by_kind) == f.money_in.fen
    assert sum(f.money_in_by_kind[k].count for k in f.money_in_by_kind) == f.money_in.count
    assert f.money_out == f.window.fen + f.claims.paid.fen + f.relief.paid.fen
    assert f.payable == f.claims.approved.fen + f.relief.approved.fen
    assert f.balance == f.money_in.fen + facts.carried_in - f.money_out
    assert f.days_to_payment.count == f.claims.paid.count + f.relief.paid.count
    if f.money_in.fen:
        assert f.loss_ratio_bp is not None
        assert abs(f.loss_ratio_bp * f.money_in.fen - f.money_out * 10_000) * 2 <= f.money_in.fen
    if f.budget_left is not None:
        assert f.budget_left >= 0 and f.budget_used is not None
    assert len(BINS) == len(f.days_to_payment.histogram)
    # no personal data, and plain JSON (integers, strings, None)
    doc = f.to_json()
    text = json.dumps(doc, ensure_ascii=False)
    for marker in ("PID-", "BILL-", "SET-", "CLM-", "HH-", "PAYER-", "WS-", "MI-"):
        assert marker not in text
    assert all(not isinstance(v, float) for _, v in flat(doc))


@settings(max_examples=40)
@given(fund_facts())
def test_page_text_equals_the_figures(facts) -> None:
    """Every marked number of a page (charts left out: they take a second each) reads back as
    its figures.json value: yuan with 2 decimals exactly, negatives and none included."""
    import re

    pytest.importorskip("jinja2")
    pytest.importorskip("matplotlib")
    from adapters.publish.site import Page, parse_shown, render_page

    f = figures(facts)
    values = dict(flat(f.to_json()))
    html = render_page(Page(f), charts=False)
    marked = re.findall(r'data-key="([^"]+)" data-unit="([^"]+)">([^<]*)<', html)
    assert len(marked) > 50
    for key, unit, text in marked:
        assert parse_shown(text, unit) == values[key], (key, text)
    for m in f.monthly:
        assert f'data-key="monthly.{m.month}.paid_out"' in html
