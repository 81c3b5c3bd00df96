"""Fixtures shared by the gRPC tests and the benchmark: policy texts, persons, bills, and a
server with a client in one context manager."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from adapters.bootstrap import App, build, server_group_commit
from adapters.grpc.client import Client
from adapters.grpc.server import Server, running
from engine.service.groupcommit import GroupCommit

#: domain.md section 8 example 2 (tests/golden/yubei_2023_chain.yaml, the policy part)
YUBEI = """\
region: {code: "500112", name: "Yubei district, Chongqing"}
effective_from: 2023-01-01
effective_to: 2023-12-31
hospital_levels: [level1, level2, level3]
tags: [low_income_edge]
b_selfpay_ratio: 1000
layers:
  - id: basic
    name: Basic medical insurance
    fund_code: "390100"
    kind: reimburse
    variants:
      - deductible: {basis: admission, amount: 30000}
        segments: [{ratio: 7000}]
  - id: major_assistance
    name: Major-expense medical assistance
    fund_code: "610100"
    kind: reimburse
    eligibility: {tags_any: [low_income_edge]}
    variants:
      - segments: [{ratio: 7000}]
  - id: tilted_assistance
    name: Tilted assistance
    fund_code: "610200"
    kind: reimburse
    eligibility: {tags_any: [low_income_edge]}
    variants:
      - deductible: {basis: admission, amount: 300000}
        segments: [{ratio: 6000}]
"""

JIANG: dict[str, Any] = {
    "id": "jiang",
    "birth_date": "1970-01-01",
    "household": "h-jiang",
    "tags": [{"tag": "low_income_edge"}],
}

YUBEI_BILL: dict[str, Any] = {
    "id": "yubei-1",
    "hospital": "H500112001",
    "region": "500112",
    "person_id": "jiang",
    "hospital_level": "level2",
    "admission_date": "2023-05-01",
    "discharge_date": "2023-05-20",
    "items": [
        {"code": "A1", "name": "in-scope care", "category": "A", "amount": 5000000},
        {"code": "C1", "name": "out-of-catalogue", "category": "C", "amount": 200000},
    ],
}

#: The golden figures (fen).
YUBEI_PAYS = {"basic": 3479000, "major_assistance": 1064700, "tilted_assistance": 93780}
YUBEI_WINDOW = 562520

#: A stack whose pays depend on the order of bills within the year: year deductible, tiers
#: over the year, annual caps, a backstop ceiling and a household alert.
CHAIN = """\
region: {code: "990001", name: "Order-sensitive test county"}
effective_from: 2024-01-01
effective_to: 2024-12-31
hospital_levels: [township, county, city]
tags: [poor]
b_selfpay_ratio: 1500
layers:
  - id: basic
    name: Basic
    fund_code: "390100"
    kind: reimburse
    variants:
      - when: {tags_any: [poor]}
        deductible: {basis: admission, amount: 0}
        segments: [{ratio: {township: 9500, county: 8000, city: 6500}}]
        annual_cap: 2000000
      - deductible: {basis: admission, amount: {township: 10000, county: 30000, city: 60000},
                     later_admissions: {township: 5000, county: 15000, city: 30000}}
        segments: [{ratio: {township: 9000, county: 7500, city: 6000}}]
        annual_cap: 1500000
  - id: critical
    name: Critical illness
    fund_code: "390200"
    kind: reimburse
    covers: [in_scope, pre_selfpay]
    variants:
      - deductible: {basis: year, amount: 500000}
        segments: [{up_to: 1000000, ratio: 6000}, {up_to: 3000000, ratio: 7000}, {ratio: 8000}]
        tiers_basis: year
        annual_cap: 4000000
  - id: backstop
    name: Backstop
    fund_code: "640100"
    kind: backstop
    covers: [in_scope, pre_selfpay]
    eligibility: {tags_any: [poor]}
    variants:
      - annual_ceiling: 300000
  - id: prevention
    name: Poverty prevention
    fund_code: "370200"
    kind: alert
    scope: household
    covers: [in_scope, pre_selfpay, over_limit, out_of_catalogue]
    variants:
      - threshold: 800000
        segments: [{ratio: 5000}]
        annual_cap: 1000000
"""

CHAIN_PERSONS: list[dict[str, Any]] = [
    {"id": "wang", "birth_date": "1958-03-02", "household": "h-wang",
     "tags": [{"tag": "poor", "valid_from": "2024-06-01"}]},
    {"id": "wang-wife", "birth_date": "1961-07-09", "household": "h-wang", "tags": []},
]  # fmt: skip


def chain_bill(i: int, person: str = "wang", n_items: int = 6, seed: int = 0) -> dict[str, Any]:
    """Bill ``i`` of an order-sensitive series (amounts vary with i; month = 1 + i % 12)."""
    rnd = random.Random(seed * 1000 + i)
    month = 1 + i % 12
    items = []
    for k in range(n_items):
        cat = "ABC"[k % 3]
        qty = rnd.randint(1, 20) * 10000
        price = rnd.randint(500, 40000)
        amount = price * qty // 10000
        it: dict[str, Any] = {
            "code": f"X{k}",
            "name": f"item {k}",
            "category": cat,
            "qty_e4": qty,
            "unit_price": price,
            "amount": amount,
        }
        if k % 5 == 1:
            it["unit_price_cap"] = price * 8 // 10
        if cat == "B" and k % 4 == 0:
            it["selfpay_ratio"] = 2000
        items.append(it)
    items[0]["amount"] += 300000 * (1 + i % 5)  # a big in-scope item, varying
    return {
        "id": f"{person}-{i}",
        "hospital": "H990001001",
        "region": "990001",
        "person_id": person,
        "hospital_level": ["township", "county", "city"][i % 3],
        "admission_date": f"2024-{month:02d}-03",
        "discharge_date": f"2024-{month:02d}-{10 + i % 15:02d}",
        "items": items,
    }


@contextmanager
def served(
    url: str = "memory://",
    policies: list[str] | tuple[str, ...] = (YUBEI,),
    persons: list[dict[str, Any]] | None = None,
    *,
    workers: int = 8,
    group_commit: GroupCommit | str | None = "server",
    stream_worker: bool = False,
) -> Iterator[tuple[App, Server, Client]]:
    """A warmed server over a fresh store at ``url``; tables and persons loaded through the
    PolicyAdminService rpcs. ``group_commit``: "server" (as ``onestop serve``: on for SQL
    stores), None (off) or a ``GroupCommit``."""
    if group_commit == "server":
        group_commit = server_group_commit(url)
    assert not isinstance(group_commit, str)
    app = build(url, policies=None, registry=None, group_commit=group_commit)
    try:
        with (
            running(app, workers=workers, stream_worker=stream_worker) as server,
            Client(f"127.0.0.1:{server.port}") as c,
        ):
            for i, text in enumerate(policies):
                c.put_policy(text, f"test-{i}.yaml")
            if persons is None:  # the sample persons whose tags the tables declare
                from engine.policy.load import parse_table

                declared = {tag for text in policies for tag in parse_table(text).tags}
                persons = [p for p in (JIANG, *CHAIN_PERSONS)
                           if all(t["tag"] in declared for t in p.get("tags", ()))]  # fmt: skip
            c.import_registry(persons)
            yield app, server, c
    finally:
        app.close()
