"""Hard fund budgets through the service (domain.md section 12): bills settled one by one
equal the reference batch with budgets to the fen; rejections, lower approvals and reversals
give back; PreSettle sees the balance; two PostgreSQL transactions racing for the last of a
budget never overspend; migration 0006 upgrades a database at 0005 with data."""

from __future__ import annotations

import itertools
import threading
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from adapters.bootstrap import build
from adapters.store.memory import MemoryStore
from adapters.store.sql import SqlStore, upgrade
from engine.batch import budget_order_key, reference_batch
from engine.bill import Person
from engine.funds import parse_funds
from engine.policy.load import parse_table
from engine.policy.policyset import PolicySet
from engine.service.funds import FundService
from engine.service.ledger import LedgerService
from engine.service.usecases import SettlementService
from tests.claims_fixtures import PERSONS, REGION, TABLE, bill, person
from tests.pg import db_url, fresh_database, pg_url  # noqa: F401  (fixtures)

#: backbone (after discharge, claims) and the relief watch (alert, cases) on hard budgets,
#: the window layer's fund reported only
HARD = f"""\
region: "{REGION}"
funds:
  - fund_code: "370200"
    name: Backbone charity pool
    years:
      2024: {{budget: 1500000, carried_in: 200000, budget_mode: hard}}
  - fund_code: "610900"
    name: Relief pool
    years:
      2024: {{budget: 150000, budget_mode: hard}}
  - fund_code: "390100"
    name: Basic
    years:
      2024: {{budget: 900000000}}
"""

MORE = [person(f"q{i}", f"hq{i}") for i in range(6)]
EVERYONE = [*PERSONS, *MORE]


def make(store: Any, funds_text: str = HARD) -> tuple[SettlementService, FundService]:
    n = itertools.count(1)
    svc = SettlementService(store.uow, new_id=lambda: f"s{next(n):04d}")
    svc.POLICY_RECHECK = 0.0
    funds = FundService(svc)
    svc.put_policy(TABLE, "claims.yaml")
    funds.put_funds(funds_text, "funds.yaml")
    svc.import_registry(EVERYONE)
    return svc, funds


@pytest.fixture(params=["memory", "sqlite"])
def env(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "memory":
        yield make(MemoryStore())
        return
    store = SqlStore(f"sqlite:///{tmp_path / 'b.db'}")
    yield make(store)
    store.dispose()


BILLS = [
    bill("b1", "p1", 1_500_000, c=300_000, day=3),
    bill("b2", "p2", 900_000, day=5),
    bill("b3", "p3", 700_000, day=6),
    bill("b4", "q0", 2_000_000, day=8),
    bill("b5", "q1", 1_200_000, c=100_000, day=9),
    bill("b6", "p1", 600_000, month=4),
    bill("b7", "q2", 3_000_000, month=4, day=12),
    bill("b8", "q3", 400_000, month=5),
]


def used(svc: SettlementService, funds: FundService, code: str) -> int:
    total = svc.fund_book().hard_total(REGION, code, 2024)
    bal = funds.balance(REGION, code, 2024)
    assert total is not None and bal is not None
    return total - bal


def test_service_one_by_one_equals_the_reference_batch_with_budgets(env: Any) -> None:
    svc, funds = env
    table = parse_table(TABLE, "claims.yaml")
    book = svc.fund_book()
    by_id = {p.id: p for p in EVERYONE}
    full = [b.with_person(by_id[b.person_id]) for b in BILLS]
    order = sorted(range(len(BILLS)), key=lambda i: budget_order_key(full[i]))
    got = {}
    for i in order:
        rec, _ = svc.settle(f"r{i}", BILLS[i])
        got[BILLS[i].id] = rec.settlement
    ref = reference_batch(full, PolicySet.of([table]), budgets=book.opening_balances())
    for s in ref.settlements:
        assert got[s.bill_id] == s, s.bill_id
    caps = [r.cap for s in ref.settlements for r in s.layers]
    assert caps.count("budget") >= 2  # the budgets bind
    for key, left in ref.balances.items():
        assert funds.balance(*key) == left
    assert funds.balance(REGION, "370200", 2024) == 0
    assert funds.balance(REGION, "390100", 2024) is None  # a report budget never limits
    # used = window pays + claims and cases at their current amount (section 12)
    cs = [c for s in got.values() for c in funds.claims_of(_sid(svc, s))]
    assert used(svc, funds, "370200") == sum(c.current_amount for c in cs
                                             if c.fund_code == "370200")  # fmt: skip
    assert used(svc, funds, "610900") == sum(c.current_amount for c in cs
                                             if c.fund_code == "610900")  # fmt: skip


def _sid(svc: SettlementService, s: Any) -> str:
    return next(r.settlement_id for r in svc.list(s.person_id, 2024)
                if r.settlement.bill_id == s.bill_id)  # fmt: skip


def test_rejection_lower_approval_and_reversal_give_back(env: Any) -> None:
    svc, funds = env
    r1, _ = svc.settle("r1", BILLS[0])
    r2, _ = svc.settle("r2", BILLS[1])
    u0 = used(svc, funds, "370200")
    c1 = funds.get_claim(f"{r1.settlement_id}:backbone")
    c2 = funds.get_claim(f"{r2.settlement_id}:backbone")
    assert u0 == c1.filed_amount + c2.filed_amount
    funds.approve(c1.claim_id, c1.filed_amount - 1000)
    assert used(svc, funds, "370200") == u0 - 1000
    funds.reject(c2.claim_id, "no")
    assert used(svc, funds, "370200") == u0 - 1000 - c2.filed_amount
    relief = used(svc, funds, "610900")
    svc.reverse(settlement_id=r1.settlement_id)
    assert used(svc, funds, "370200") == 0
    assert used(svc, funds, "610900") == relief - r1.settlement.layers[2].relief
    svc.reverse(settlement_id=r2.settlement_id)
    assert used(svc, funds, "610900") == 0
    # reversed, the whole budget is there again for the next bill
    r3, _ = svc.settle("r3", BILLS[0].model_copy(update={"id": "b1-again"}))
    assert r3.settlement.layers[1].pay == c1.filed_amount


def test_pre_settle_sees_the_balance(env: Any) -> None:
    svc, funds = env
    svc.settle("r7", BILLS[6])  # a large bill takes most of the backbone budget
    left = funds.balance(REGION, "370200", 2024)
    trial = svc.pre_settle(bill("big", "q4", 3_000_000, month=6))
    bb = trial.layers[1]
    assert bb.pay == left and bb.cap == "budget"
    assert funds.balance(REGION, "370200", 2024) == left  # a trial changes nothing


def test_a_funds_file_is_validated_versioned_and_unchanged_twice(env: Any) -> None:
    svc, funds = env
    again = funds.put_funds(HARD, "funds.yaml")
    assert again.unchanged and again.version == 1
    dry = funds.put_funds(HARD.replace("1500000", "10"), "funds.yaml", dry_run=True)
    assert dry.version == 0 and len(funds.fund_versions()) == 1
    with pytest.raises(Exception, match="budget"):
        funds.put_funds(HARD.replace("budget: 150000, ", ""), "bad.yaml")
    v2 = funds.put_funds(HARD.replace("1500000", "10"), "funds-2.yaml", principal="bureau")
    assert v2.version == 2 and svc.fund_book().hard_total(REGION, "370200", 2024) == 200010
    report, _ = LedgerService(svc._uow).verify()
    assert report.ok


def test_bootstrap_loads_funds_files(tmp_path: Path) -> None:
    d = tmp_path / "policies"
    (d / "county").mkdir(parents=True)
    (d / "county" / "2024.yaml").write_text(TABLE, encoding="utf-8")
    (d / "county" / "funds.yaml").write_text(HARD, encoding="utf-8")
    app = build("memory://", d, None)
    assert app.funds_loaded == ["policies/county/funds.yaml"]
    assert app.funds is not None
    assert app.funds.book().hard_total(REGION, "610900", 2024) == 150000
    assert parse_funds(HARD).region == REGION


@pytest.mark.postgres
def test_racing_for_the_last_of_a_hard_budget_never_overspends(pg_url: str) -> None:  # noqa: F811
    store = SqlStore(fresh_database(pg_url))
    try:
        svc, funds = make(store)
        want = []
        bills = [bill(f"race{i}", f"q{i}", 1_500_000, day=3 + i) for i in range(6)]
        for b in bills:  # what each would take alone
            want.append(svc.pre_settle(b).layers[1].pay)
        start = threading.Barrier(len(bills))
        errors: list[BaseException] = []

        def run(i: int) -> None:
            try:
                start.wait()
                svc.settle(f"rr{i}", bills[i])
            except BaseException as e:  # pragma: no cover - reported below
                errors.append(e)

        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(bills))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        pays = [
            r.settlement.layers[1].pay for i in range(len(bills)) for r in svc.list(f"q{i}", 2024)
        ]
        total = 1_700_000
        assert sum(want) > total  # they cannot all be paid in full
        assert sum(pays) == total  # the budget is used to the fen, never more
        assert funds.balance(REGION, "370200", 2024) == 0
        with store.engine.connect() as c:
            got = c.execute(sa.text("SELECT used FROM fund_used WHERE fund_code = '370200'"))
            assert got.scalar_one() == total
    finally:
        store.dispose()


def test_migration_from_0005_with_data(db_url: str) -> None:  # noqa: F811
    store = SqlStore(db_url, migrate=False)
    try:
        upgrade(store.engine, "0005")
        old = person("old", "h-old")
        with store.engine.begin() as c:
            c.execute(
                sa.text(
                    "INSERT INTO persons (person_id, birth_date, household, region, version) "
                    "VALUES ('old', :b, 'h-old', :r, 1)"
                ),
                {"b": old.birth_date, "r": REGION},
            )
            c.execute(
                sa.text(
                    "INSERT INTO person_tags (person_id, position, tag) VALUES ('old', 0, 'poor')"
                )
            )
            c.execute(
                sa.text(
                    "INSERT INTO person_versions (person_id, version, valid_from, imported_by, "
                    "person) VALUES ('old', 1, :t, 'local', :p)"
                ),
                {"t": "2024-01-01 00:00:00", "p": old.model_dump_json()},
            )
        upgrade(store.engine)
        svc = SettlementService(store.uow)
        funds = FundService(svc)
        svc.put_policy(TABLE, "claims.yaml")
        got = svc.person("old")
        assert (got.township, got.village, got.region) == ("", "", REGION)
        rec, _ = svc.settle("r1", bill("b1", "old", 1_500_000))
        assert [c.layer_id for c in funds.claims_of(rec.settlement_id)] == ["backbone", "relief"]
        moved = Person.model_validate({**old.model_dump(), "township": "T", "village": "V"})
        svc.import_registry([moved])
        assert [p.person_id for p in funds.cover_list(REGION, "T", "V", "2024-06-01")] == ["old"]
        assert svc.person_history("old")[-1].person.village == "V"
    finally:
        store.dispose()
