"""Shared set-up of the claims and fund budget tests (issue 10): a county whose table has a
window layer, an after-discharge layer (claims) and a household alert (relief cases)."""

from __future__ import annotations

from typing import Any

from engine.bill import Person, parse_bill_request

REGION = "990010"

TABLE = """\
region: {code: "990010", name: "Claims test county"}
effective_from: 2024-01-01
effective_to: 2024-12-31
hospital_levels: [county]
tags: [poor]
b_selfpay_ratio: 1000
layers:
  - id: basic
    name: Basic
    fund_code: "390100"
    kind: reimburse
    variants:
      - deductible: {basis: year, amount: 50000}
        segments: [{ratio: 5000}]
  - id: backbone
    name: Backbone
    name_zh: 顶梁柱
    fund_code: "370200"
    kind: reimburse
    settle_at: after_discharge
    covers: [in_scope, pre_selfpay, over_limit, out_of_catalogue]
    eligibility: {tags_any: [poor]}
    variants:
      - deductible: {basis: year, amount: 100000}
        tiers_basis: year
        segments: [{up_to: 500000, ratio: 6000}, {ratio: 8000}]
        annual_cap: 3000000
  - id: relief
    name: Relief watch
    fund_code: "610900"
    kind: alert
    scope: household
    covers: [in_scope, pre_selfpay, over_limit, out_of_catalogue]
    variants:
      - threshold: 200000
        segments: [{ratio: 5000}]
        annual_cap: 2000000
"""


def funds_yaml(budget: int | None = None, mode: str = "report", code: str = "370200") -> str:
    year = f"{{budget: {budget}, budget_mode: {mode}}}" if budget is not None else "{}"
    return f"""\
region: "{REGION}"
funds:
  - fund_code: "{code}"
    name: Backbone charity pool
    name_zh: 顶梁柱
    operator: County charity federation
    eligibility: {{tags_any: [poor], age_min: 18, age_max: 60}}
    years:
      2024: {year}
  - fund_code: "610900"
    name: Relief pool
"""


def person(pid: str, household: str, poor: bool = True, **kw: Any) -> Person:
    return Person.model_validate(
        {
            "id": pid,
            "birth_date": kw.pop("birth_date", "1980-03-01"),
            "household": household,
            "tags": ["poor"] if poor else [],
            "region": REGION,
            **kw,
        }
    )


PERSONS = [
    person("p1", "h1", township="East", village="Oak"),
    person("p2", "h1", township="East", village="Elm"),
    person("p3", "h2", poor=False, township="West", village="Ash"),
    person("p4", "h3", birth_date="1950-01-01", township="West", village="Ash"),
]


def bill(bid: str, pid: str, amount: int, day: int = 10, month: int = 3, c: int = 0) -> Any:
    items = [{"code": "A1", "name": "care", "category": "A", "amount": amount}]
    if c:
        items.append({"code": "C1", "name": "ooc", "category": "C", "amount": c})
    return parse_bill_request(
        {
            "id": bid,
            "hospital": "H990010001",
            "region": REGION,
            "person_id": pid,
            "hospital_level": "county",
            "admission_date": f"2024-{month:02d}-{day:02d}",
            "discharge_date": f"2024-{month:02d}-{day + 5:02d}",
            "items": items,
        }
    )
