"""Real-database concurrency: windows settling the same person at the same moment serialize.

N threads settle N different bills of ONE person at once, each through its own unit of work
on one ``SqlStore`` (a SQLite file in WAL mode, and PostgreSQL). Afterwards every settlement
and the accounts equal a serial replay through ``engine.batch.reference_batch`` of the same
bills in commit order, and no yearly deductible or annual cap is spent twice.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from functools import partial
from typing import Any

import pytest

from adapters.store.sql import SqlStore
from engine.accounts import Opening
from engine.batch import reference_batch
from engine.bill import BillRequest, Person, TagSpan, parse_bill_request
from engine.errors import Conflict
from engine.service.usecases import SettlementService
from tests.pg import db_url, pg_url  # noqa: F401  (fixtures)
from tests.test_store_sql import Clock, ids

N = 8

POLICY = """\
region: {code: "990001", name: "Concurrency test county"}
effective_from: 2024-01-01
effective_to: 2024-12-31
hospital_levels: [township, county]
tags: [poor]
b_selfpay_ratio: 1000
layers:
  - id: basic
    name: Basic medical insurance
    fund_code: "390100"
    kind: reimburse
    variants:
      - deductible:
          basis: admission
          amount: {township: 10000, county: 30000}
          later_admissions: {township: 5000, county: 15000}
        segments: [{ratio: {township: 8000, county: 7000}}]
        annual_cap: 2500000
  - id: critical
    name: Critical illness insurance
    fund_code: "390200"
    kind: reimburse
    variants:
      - deductible: {basis: year, amount: 500000}
        segments: [{up_to: 1000000, ratio: 6000}, {up_to: 3000000, ratio: 7000}, {ratio: 8000}]
        tiers_basis: year
        annual_cap: 900000
  - id: backstop
    name: Government backstop
    fund_code: "640100"
    kind: backstop
    covers: [in_scope, pre_selfpay]
    eligibility: {tags_any: [poor]}
    variants:
      - annual_ceiling: 600000
  - id: alert
    name: Poverty-prevention alert
    fund_code: "370200"
    kind: alert
    scope: household
    covers: [in_scope, pre_selfpay, over_limit, out_of_catalogue]
    variants:
      - threshold: 200000
        segments: [{ratio: 5000}]
        annual_cap: 150000
"""

PERSON = Person(
    id="p1",
    birth_date=date(1958, 3, 1),
    household="h1",
    tags=(TagSpan(tag="poor", valid_from=date(2024, 1, 1)),),
)
MATE = Person(id="p2", birth_date=date(1960, 5, 5), household="h1")


def request(i: int, person: str = "p1") -> BillRequest:
    return parse_bill_request(
        {
            "id": f"{person}-bill-{i}",
            "hospital": "H990001",
            "person_id": person,
            "hospital_level": "county" if i % 2 else "township",
            "admission_date": f"2024-03-{1 + i:02d}",
            "discharge_date": f"2024-03-{10 + i:02d}",
            "items": [
                {"code": "A", "category": "A", "amount": 900_000 + 137_000 * i},
                {"code": "B", "category": "B", "amount": 200_000 + 11_000 * i},
                {"code": "C", "category": "C", "amount": 30_000 * (i % 3)},
            ],
        }
    )


def all_at_once(fs: list[Callable[[], Any]]) -> list[Any]:
    """Run the calls in as many threads, released together by a barrier."""
    gate = threading.Barrier(len(fs))

    def run(f: Callable[[], Any]) -> Any:
        gate.wait()
        return f()

    with ThreadPoolExecutor(len(fs)) as pool:
        futures = [pool.submit(run, f) for f in fs]
        return [f.result(timeout=60) for f in futures]


@pytest.fixture
def svc(db_url: str) -> Any:  # noqa: F811
    store = SqlStore(db_url)
    s = SettlementService(store.uow, clock=Clock(), new_id=ids())
    s.put_policy(POLICY, "concurrency.yaml")
    s.import_registry([PERSON, MATE])
    s.pre_settle(request(0))  # warm the kernel before the race
    yield s, store
    store.dispose()


def test_parallel_settlements_of_one_person_serialize(svc: Any) -> None:
    s, _ = svc
    reqs = [request(i) for i in range(N)]
    results = all_at_once([partial(s.settle, f"req-{i}", reqs[i]) for i in range(N)])
    assert all(not replay for _, replay in results)
    committed = s.list("p1", 2024)  # in commit order (created_at, taken under the lock)
    assert sorted(r.settlement_id for r in committed) == sorted(r.settlement_id for r, _ in results)
    # serial replay through the reference, one bill at a time in commit order
    policies = s.policies()
    opening = Opening()
    for rec in committed:
        bill = BillRequest.model_validate(rec.bill).with_person(PERSON)
        out = reference_batch([bill], policies, opening)
        assert out.settlements[0] == rec.settlement, rec.request_id
        opening = out.closing
    _, person_acc, household_acc = s.accounts("p1", 2024)
    assert person_acc.to_dict() == opening.person_year("p1", 2024).to_dict()
    assert household_acc.to_dict() == opening.household_year("h1", 2024).to_dict()
    # nothing spent twice: one yearly deductible, the annual caps and the ceiling hold
    ss = [r.settlement for r in committed]
    assert sorted(x.admission_no for x in ss) == list(range(1, N + 1))
    assert person_acc.admissions == N

    def layer(x: Any, lid: str) -> Any:
        return next(r for r in x.layers if r.layer_id == lid)

    assert sum(layer(x, "critical").deductible for x in ss) == 500000
    assert person_acc.get("critical").deductible_used == 500000
    assert sum(layer(x, "critical").pay for x in ss) == 900000  # the cap binds
    assert any(layer(x, "critical").cap == "annual_cap" for x in ss)
    assert sum(layer(x, "basic").pay for x in ss) == person_acc.get("basic").paid <= 2500000
    assert person_acc.get("backstop").selfpay_cum <= 600000
    assert household_acc.get("alert").paid == sum(layer(x, "alert").relief for x in ss) <= 150000
    for x in ss:
        x.check_conservation()


def test_parallel_household_members_and_replays(svc: Any) -> None:
    """Two members of one household (shared household alert account) and duplicated
    requests, all at once: each request pays once, accounts equal the serial replay."""
    s, _ = svc
    calls: list[Callable[[], Any]] = []
    for i in range(4):
        calls.append(partial(s.settle, f"a-{i}", request(i, "p1")))
        calls.append(partial(s.settle, f"b-{i}", request(i, "p2")))
    calls += [partial(s.settle, "a-0", request(0, "p1")) for _ in range(4)]  # retries
    results = all_at_once(calls)
    fresh = [r for r, replay in results if not replay]
    assert len(fresh) == 8
    assert {r.settlement_id for r, _ in results} == {r.settlement_id for r in fresh}
    committed = sorted(s.list("p1", 2024) + s.list("p2", 2024), key=lambda r: r.created_at)
    assert len(committed) == 8
    policies, opening = s.policies(), Opening()
    for rec in committed:
        person = PERSON if rec.settlement.person_id == "p1" else MATE
        bill = BillRequest.model_validate(rec.bill).with_person(person)
        out = reference_batch([bill], policies, opening)
        assert out.settlements[0] == rec.settlement
        opening = out.closing
    for pid in ("p1", "p2"):
        _, pa, ha = s.accounts(pid, 2024)
        assert pa.to_dict() == opening.person_year(pid, 2024).to_dict()
        assert ha.to_dict() == opening.household_year("h1", 2024).to_dict()


def test_same_request_id_from_two_households_at_once(svc: Any) -> None:
    """The same request id for bills of two households (two different locks) racing: one is
    settled, the other refused as a Conflict; nothing is half written."""
    s, _ = svc
    other = Person(id="q1", birth_date=date(1970, 1, 1), household="h9")
    s.import_registry([other])
    outcomes: list[Any] = []

    def go(req: BillRequest) -> None:
        try:
            outcomes.append(s.settle("same-id", req))
        except Conflict as err:
            outcomes.append(err)

    all_at_once([lambda: go(request(1, "p1")), lambda: go(request(2, "q1"))])
    won = [o for o in outcomes if not isinstance(o, Conflict)]
    assert len(won) == 1 and len(outcomes) == 2
    rec = won[0][0]
    loser = "q1" if rec.settlement.person_id == "p1" else "p1"
    assert s.list(loser, 2024) == []
    assert s.accounts(loser, 2024)[1].admissions == 0
    assert s.get(request_id="same-id") == rec


def test_lock_blocks_a_second_writer_until_commit(db_url: str) -> None:  # noqa: F811
    store = SqlStore(db_url)
    try:
        first = store.uow()
        first.lock(("household", "h1", 2024))
        entered = threading.Event()

        def second() -> None:
            with store.uow() as u:
                u.lock(("household", "h1", 2024))
                entered.set()
                u.commit()

        t = threading.Thread(target=second)
        t.start()
        assert not entered.wait(0.3)  # blocked behind the first
        first.commit()
        assert entered.wait(10)
        t.join(10)
        # a different household is not blocked on PostgreSQL (on SQLite the writer is global)
        if store.dialect == "postgresql":
            a, b = store.uow(), store.uow()
            a.lock(("household", "h1", 2024))
            b.lock(("household", "h2", 2024))
            a.rollback()
            b.rollback()
    finally:
        store.dispose()


def test_two_stores_on_one_database(db_url: str) -> None:  # noqa: F811
    """Two SqlStore objects on one database (as two server processes would be): their writers
    do not share the in-process queue, only the database's own locking."""
    a, b = SqlStore(db_url), SqlStore(db_url)
    try:
        clock, new_id = Clock(), ids()
        sa_ = SettlementService(a.uow, clock=clock, new_id=new_id)
        sb = SettlementService(b.uow, clock=clock, new_id=new_id)
        sa_.put_policy(POLICY, "concurrency.yaml")
        sa_.import_registry([PERSON])
        sa_.pre_settle(request(0))
        sb.pre_settle(request(0))
        results = all_at_once(
            [partial((sa_ if i % 2 else sb).settle, f"req-{i}", request(i)) for i in range(6)]
        )
        assert all(not replay for _, replay in results)
        committed = sb.list("p1", 2024)
        opening = Opening()
        for rec in committed:
            bill = BillRequest.model_validate(rec.bill).with_person(PERSON)
            out = reference_batch([bill], sa_.policies(), opening)
            assert out.settlements[0] == rec.settlement
            opening = out.closing
        assert sa_.accounts("p1", 2024)[1].to_dict() == opening.person_year("p1", 2024).to_dict()
    finally:
        a.dispose()
        b.dispose()
