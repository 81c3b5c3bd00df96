"""The sample tables fixed against the seed facts (issue: Backbone in Hong'an and Xishui, the
poverty-prevention layers of Wei county and Longzhou) and their funds.yaml declarations.

The hand-worked figures of the sample bills are in tests/test_samples.py; these tests name the
properties the fixes are for.
"""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import pytest

from engine.batch import reference_batch, settle_batch
from engine.bill import parse_bill
from engine.funds import load_funds, load_funds_file
from engine.policy.load import load_policies, load_table

ROOT = Path(__file__).resolve().parent.parent
POLICIES = ROOT / "policies"
SAMPLES = POLICIES / "samples"


@pytest.fixture(scope="module")
def policies():
    return load_policies(POLICIES)


def _sample(name: str) -> dict:
    return json.loads((SAMPLES / f"{name}.json").read_text(encoding="utf-8"))


def _bill(bid: str, region: str, level: str, adm: str, dis: str, person: dict, items) -> dict:
    return {
        "id": bid, "region": region, "hospital": "H1", "hospital_level": level,
        "admission_date": adm, "discharge_date": dis, "person": person,
        "items": [{"code": f"I{i}", "category": c, "amount": a} for i, (c, a) in enumerate(items)],
    }  # fmt: skip


def _settle(policies, docs, run=reference_batch):
    return {s.bill_id: s for s in run([parse_bill(d) for d in docs], policies).settlements}


def _layer(s, lid):
    return next((r for r in s.layers if r.layer_id == lid), None)


# ------------------------------------------------------------------------------ Hong'an 2018


@pytest.mark.parametrize("run", [reference_batch, settle_batch], ids=["reference", "kernel"])
def test_hongan_backbone_pays_on_the_scale_of_the_seed(policies, run):
    """The seed's beneficiary got 16,000 yuan; the sample hongan-5 (a 24,000-yuan targeted drug
    out of catalogue) gets 16,260 yuan. With the PICC ceiling on every bucket (the old table)
    the Backbone could never pay more than (5000 - 1900) x 60% = 1,860 yuan a year."""
    s = _settle(policies, [_sample("hongan-5")], run)["hongan-5"]
    bb = _layer(s, "backbone")
    assert bb.pay == 1626000
    assert bb.pay > 186000  # the old table's ceiling for a whole year
    assert s.window_pay == 2900000 and s.net_selfpay == 1274000


def test_hongan_picc_ceiling_is_on_in_catalogue_cost():
    table = load_table(POLICIES / "hongan" / "2018.yaml")
    picc = next(la for la in table.layers if la.id == "picc_supplementary")
    assert set(picc.covers) == {"in_scope", "pre_selfpay"}
    assert table.layers[-1].id == "backbone"
    assert "out_of_catalogue" in table.layers[-1].covers


def test_hongan_backbone_year_can_reach_its_annual_cap(policies):
    """Over a year the Backbone pays up to its 100,000-yuan cap when 目录外 cost is large."""
    p = {"id": "q1", "birth_date": "1970-01-01", "household": "qh", "tags": ["registered_poor"]}
    docs = [_bill(f"b{m}", "421122", "province", f"2018-{m:02d}-01", f"2018-{m:02d}-20", p,
                  [("A", 5000000), ("C", 8000000)]) for m in (3, 6, 9)]  # fmt: skip
    got = _settle(policies, docs)
    assert sum(_layer(s, "backbone").pay for s in got.values()) == 10000000


# ------------------------------------------------------------------------------ Xishui 2017


def test_xishui_backbone_starts_at_the_launch(policies):
    """A bill discharged before 2017-07-12 gets no Backbone (the table version in force has no
    such layer); one discharged on the launch day or later does."""
    p = {"id": "q2", "birth_date": "1977-01-01", "household": "qh2", "tags": ["registered_poor"]}
    items = [("A", 1000000), ("C", 800000)]
    before = _bill("x1", "520330", "county", "2017-07-01", "2017-07-11", p, items)
    p3 = {**p, "id": "q3", "household": "qh3"}
    on = _bill("x2", "520330", "county", "2017-07-01", "2017-07-12", p3, items)
    got = _settle(policies, [before, on])
    assert _layer(got["x1"], "backbone") is None
    assert sum(r.pay for r in got["x1"].layers if r.settle_at == "after_discharge") == 0
    assert _layer(got["x2"], "backbone").pay > 0


def test_xishui_versions_keep_the_layer_ids():
    early = load_table(POLICIES / "xishui" / "2017-01.yaml")
    late = load_table(POLICIES / "xishui" / "2017-07.yaml")
    assert early.effective_to == date(2017, 7, 11) and late.effective_from == date(2017, 7, 12)
    assert [la.id for la in early.layers] == [la.id for la in late.layers][:-1]
    assert late.layers[-1].id == "backbone"


# ----------------------------------------------------------------------- Wei county, Longzhou


@pytest.mark.parametrize("tag", ["non_robust", "low_income"])
def test_wei_county_both_groups_trigger(policies, tag):
    p = {"id": f"w-{tag}", "birth_date": "1970-01-01", "household": f"h-{tag}", "tags": [tag]}
    s = _settle(policies, [_bill("w", "130434", "county", "2018-05-01", "2018-05-10", p,
                                 [("A", 2000000), ("C", 300000)])])["w"]  # fmt: skip
    assert len(s.alerts) == 1
    assert _layer(s, "fangpinbao").relief == 370000  # 50% of 740000 (weixian-4)


@pytest.mark.parametrize(
    ("tag", "relief"),
    # filed poor: line 500000, 50% of the first 1000000 above it; low-income: line 2000000
    [("registered_poor", None), ("low_income", 164500)],
)
def test_longzhou_alert_fires(policies, tag, relief):
    p = {"id": f"l-{tag}", "birth_date": "1970-09-15", "household": f"lh-{tag}", "tags": [tag]}
    s = _settle(policies, [_bill("l", "451423", "county", "2019-05-06", "2019-05-30", p,
                                 [("A", 9000000), ("C", 1000000)])])["l"]  # fmt: skip
    layer = _layer(s, "chinalife_relief")
    assert layer is not None and layer.pay == 0 and len(s.alerts) == 1
    assert layer.relief > 0
    if relief is not None:
        assert layer.relief == relief


def test_longzhou_sample_alert(policies):
    docs = [_sample(f"longzhou-{i}") for i in (1, 2)]
    got = _settle(policies, docs)
    assert len(got["longzhou-1"].alerts) == 0
    assert len(got["longzhou-2"].alerts) == 1
    assert _layer(got["longzhou-2"], "chinalife_relief").relief == 456998


# ------------------------------------------------------------------------------- fund codes


def test_no_placeholder_fund_code_in_policies():
    """No table, funds file or sample (nor a test table) uses the 999999 placeholder."""
    here = Path(__file__).resolve().parent
    files = [
        *POLICIES.rglob("*"),
        *(here / "broken_policies").rglob("*"),
        *(here / "golden").rglob("*"),
    ]
    # as a fund code (fund_code, or NHSA fund_pay_type): real NHSA answers copied into
    # tests/golden/nhsa use 999999 as "no price limit", which is not a fund code
    placeholder = re.compile(r"""(fund_code|fund_pay_type)["']?\s*:\s*["']?999999\b""")
    for f in sorted(files):
        if f.is_file():
            assert not placeholder.search(f.read_text(encoding="utf-8")), f
    assert placeholder.search('fund_code: "999999"')  # the pattern finds what it looks for
    assert placeholder.search('{"fund_pay_type": "999999"}')


# -------------------------------------------------------------------------------- funds.yaml


@pytest.mark.parametrize("county", ["hongan", "longzhou", "weixian", "xishui"])
def test_every_county_declares_its_funds_with_sources(county, policies):
    f = load_funds_file(POLICIES / county / "funds.yaml")
    table_codes = {
        la.fund_code for t in policies.tables for la in t.layers if t.region.code == f.region
    }
    assert f.funds, county
    for fund in f.funds:
        assert fund.fund_code in table_codes, (county, fund.fund_code)
        assert fund.operator and fund.years
    for key, text in f.sources.items():
        assert "http" in text or "policy-sources.md" in text, key
    for key, text in f.assumptions.items():
        assert text.startswith("ASSUMPTION:"), key
    cited = set()
    for fund in f.funds:
        srcs = [fund.source] + [y.source for y in fund.years.values()]
        for src in srcs:
            for v in src.values():
                cited |= {v} if isinstance(v, str) else set(v)
    assert cited == set(f.sources) | set(f.assumptions), county


def test_hongan_backbone_money_in():
    book = load_funds(POLICIES)
    fy = book.year("421122", "370200", 2018)
    assert fy is not None
    assert fy.budget == 178000000 and fy.budget_mode == "report"
    assert fy.premium_per_person == 178000000 // 65940
    assert book.hard_keys() == []
