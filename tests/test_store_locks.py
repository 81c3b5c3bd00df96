"""The lock rule (``engine.service.ports``) on real databases, after a household move (issue 7,
defect 3), and the global lock order.

A settlement records the household it was settled in; ``ImportRegistry`` may then move the
person to another household. A Reverse of that settlement (old household) and a Settle of a new
bill of the same person (new household) move the same person-year accounts, so they must
serialize although they touch different households. Each round: settle a bill of a fresh person
in one household, move the person to the other, then release a Reverse of that settlement and a
Settle of a new bill together. Afterwards every settlement and every person and household
account equal a serial replay through the reference (``engine.batch.reference_batch``) of what
was acknowledged, in commit order (settlement and reversal times are taken under the locks).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import date, timedelta
from functools import partial
from typing import Any

import pytest

from adapters.store.memory import MemoryStore
from adapters.store.sql import SqlStore
from engine.accounts import LayerAccount, Opening, YearAccounts
from engine.batch import reference_batch
from engine.bill import BillRequest, Person, TagSpan, parse_bill_request
from engine.service.ports import LockOrderError, SettlementRecord, account_locks
from engine.service.usecases import SettlementService
from engine.settle import moves, undo
from tests.pg import db_url, pg_url  # noqa: F401  (fixtures)
from tests.test_store_concurrency import POLICY, all_at_once
from tests.test_store_sql import Clock, ids

ROUNDS = 30
YEAR = 2024


def person(pid: str, household: str) -> Person:
    return Person(
        id=pid,
        birth_date=date(1958, 3, 1),
        household=household,
        tags=(TagSpan(tag="poor", valid_from=date(2024, 1, 1)),),
    )


def request(pid: str, n: int) -> BillRequest:
    """Bill ``n`` of a person: dates spread over the year, amounts that reach the caps."""
    start = date(YEAR, 1, 1) + timedelta(days=(7 * n) % 330)
    return parse_bill_request(
        {
            "id": f"{pid}-bill-{n}",
            "person_id": pid,
            "hospital": "H451423001",
            "hospital_level": "county" if n % 2 else "township",
            "admission_date": start.isoformat(),
            "discharge_date": (start + timedelta(days=5)).isoformat(),
            "items": [
                {"code": "A", "category": "A", "amount": 900_000 + 137_000 * n},
                {"code": "B", "category": "B", "amount": 200_000 + 11_000 * n},
                {"code": "C", "category": "C", "amount": 30_000 * (n % 3)},
            ],
        }
    )


def service(store: SqlStore | MemoryStore) -> SettlementService:
    s = SettlementService(store.uow, clock=Clock(), new_id=ids())
    s.put_policy(POLICY, "concurrency.yaml")
    s.import_registry([person("warm", "h0")])
    s.pre_settle(request("warm", 0))  # warm the kernel before the race
    return s


@pytest.fixture
def svc(db_url: str) -> Any:  # noqa: F811
    store = SqlStore(db_url)
    yield service(store), store
    store.dispose()


@pytest.fixture
def memory_svc() -> Any:
    """The in-memory store (the fake the service tests use) must lock as the SQL store does."""
    store = MemoryStore()
    return service(store), store


def replay(
    s: SettlementService,
    store: SqlStore | MemoryStore,
    persons: list[Person],
    households: list[str],
) -> list[str]:
    """Replay every acknowledged settlement and reversal of ``persons`` through the reference
    in commit order; return what differs from the store (empty when nothing was lost)."""
    records: list[SettlementRecord] = [r for p in persons for r in s.list(p.id, YEAR)]
    events: list[tuple[Any, int, SettlementRecord]] = [(r.created_at, 0, r) for r in records]
    events += [(r.reversed_at, 1, r) for r in records if r.status == "reversed"]
    tags = {p.id: p.tags for p in persons}
    policies, opening = s.policies(), Opening()
    moved: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
    wrong: list[str] = []
    for _, kind, rec in sorted(events, key=lambda e: (e[0], e[1])):
        st = rec.settlement
        pk, hk = (st.person_id, st.year), (st.household, st.year)
        pa, ha = opening.person_year(*pk), opening.household_year(*hk)
        if kind == 0:  # the bill as settled, by the person as registered then
            who = Person(
                id=st.person_id, birth_date=date(1958, 3, 1), household=st.household,
                tags=tags[st.person_id],
            )  # fmt: skip
            bill = BillRequest.model_validate(rec.bill).with_person(who)
            out = reference_batch([bill], policies, opening)
            if out.settlements[0] != rec.settlement:
                wrong.append(f"settlement of {st.bill_id} differs from the serial replay")
            pa2, ha2 = out.closing.person_year(*pk), out.closing.household_year(*hk)
            moved[rec.settlement_id] = (moves(pa, pa2), moves(ha, ha2))
        else:
            pm, hm = moved[rec.settlement_id]
            pa2, ha2 = undo(pa, pm, 1), undo(ha, hm, 0)
        opening = Opening({**opening.person, pk: pa2}, {**opening.household, hk: ha2})
    with store.uow() as u:
        for p in persons:
            got = u.accounts.person_year(p.id, YEAR).to_dict()
            want = opening.person_year(p.id, YEAR).to_dict()
            if got != want:
                wrong.append(
                    f"person {p.id}: admissions {got['admissions']} against {want['admissions']}"
                    f" in the serial replay; layers equal: {got['layers'] == want['layers']}"
                )
        for h in households:
            got = u.accounts.household_year(h, YEAR).to_dict()
            if got != opening.household_year(h, YEAR).to_dict():
                wrong.append(f"household {h} differs from the serial replay")
    return wrong


def test_reverse_and_settle_after_a_household_move_serialize(svc: Any) -> None:
    """Per round a fresh person P: settle in h1 (or h2), move P to the other household, then
    Reverse that settlement and Settle a new bill of P at the same moment."""
    move_race(*svc)


def test_reverse_and_settle_after_a_household_move_in_memory(memory_svc: Any) -> None:
    move_race(*memory_svc)


def move_race(s: SettlementService, store: SqlStore | MemoryStore) -> None:
    persons = []
    for i in range(ROUNDS):
        old, new = ("h1", "h2") if i % 2 == 0 else ("h2", "h1")
        p = person(f"p{i}", old)
        persons.append(p)
        s.import_registry([p])
        first, _ = s.settle(f"r{i}-a", request(p.id, 2 * i))
        s.import_registry([p.model_copy(update={"household": new})])
        (back, b_replay), (second, s_replay) = all_at_once(
            [
                partial(s.reverse, settlement_id=first.settlement_id),
                partial(s.settle, f"r{i}-b", request(p.id, 2 * i + 1)),
            ]
        )
        assert not b_replay and not s_replay
        assert back.status == "reversed" and second.settlement.household == new
    wrong = replay(s, store, persons, ["h1", "h2"])
    lost = sum("admissions" in w for w in wrong)
    assert not wrong, f"lost updates in {lost} of {ROUNDS} rounds:\n" + "\n".join(wrong[:12])
    for p in persons:  # one bill reversed, one settled: one admission each
        assert s.accounts(p.id, YEAR)[1].admissions == 1


def test_two_persons_moving_between_two_households_in_opposite_directions(svc: Any) -> None:
    """P moves h1 -> h2 while Q moves h2 -> h1; the Reverses and Settles of both, four calls
    at once, touch h1 and h2 in opposite roles. Locks taken in one fixed order: no deadlock
    surfaces (PostgreSQL would abort one with a deadlock error), and nothing is lost."""
    opposite_moves(*svc)


def test_two_persons_moving_in_opposite_directions_in_memory(memory_svc: Any) -> None:
    opposite_moves(*memory_svc)


def opposite_moves(s: SettlementService, store: SqlStore | MemoryStore) -> None:
    persons = []
    for i in range(ROUNDS // 2):
        p, q = person(f"p{i}", "h1"), person(f"q{i}", "h2")
        persons += [p, q]
        s.import_registry([p, q])
        fp, _ = s.settle(f"p{i}-a", request(p.id, 2 * i))
        fq, _ = s.settle(f"q{i}-a", request(q.id, 2 * i))
        s.import_registry(
            [p.model_copy(update={"household": "h2"}), q.model_copy(update={"household": "h1"})]
        )
        results = all_at_once(
            [
                partial(s.reverse, settlement_id=fp.settlement_id),
                partial(s.reverse, settlement_id=fq.settlement_id),
                partial(s.settle, f"p{i}-b", request(p.id, 2 * i + 1)),
                partial(s.settle, f"q{i}-b", request(q.id, 2 * i + 1)),
            ]
        )
        assert not any(replay for _, replay in results)
    wrong = replay(s, store, persons, ["h1", "h2"])
    lost = sum("admissions" in w for w in wrong)
    assert not wrong, f"{lost} of {len(persons)} persons lost an update:\n" + "\n".join(wrong[:12])
    for p in persons:
        assert s.accounts(p.id, YEAR)[1].admissions == 1


# --- the lock rule at the store: one global order, no disturbed accounts -------------------

H1, H2 = ("household", "h1", YEAR), ("household", "h2", YEAR)
P1 = ("person", "p1", YEAR)


def uow_factory(db: str) -> tuple[Callable[[], Any], Callable[[], None]]:
    if db == "memory":
        return MemoryStore().uow, lambda: None
    store = SqlStore(db)
    return store.uow, store.dispose


def test_locks_asked_in_opposite_orders_do_not_deadlock(db_url: str) -> None:  # noqa: F811
    """Two transactions each lock h1, h2 and p1, asked for in opposite orders, at once, many
    times; each adds one admission to all three. The locks are taken sorted, so neither waits
    for the other in a cycle: no deadlock error, no lost admission."""
    for db in ("memory", db_url):
        uow, dispose = uow_factory(db)
        try:

            def bump(keys: tuple[Any, ...], uow: Callable[[], Any] = uow) -> None:
                with uow() as u:
                    u.lock(*keys)
                    for kind, key, year in keys:
                        if kind == "person":
                            a = u.accounts.person_year(key, year)
                            u.accounts.save_person_year(
                                key, year, replace(a, admissions=a.admissions + 1)
                            )
                        else:
                            a = u.accounts.household_year(key, year)
                            u.accounts.save_household_year(
                                key, year, replace(a, admissions=a.admissions + 1)
                            )
                    u.commit()

            for _ in range(ROUNDS):
                all_at_once([partial(bump, (H1, H2, P1)), partial(bump, (P1, H2, H1))])
            with uow() as u:
                assert u.accounts.household_year("h1", YEAR).admissions == 2 * ROUNDS
                assert u.accounts.household_year("h2", YEAR).admissions == 2 * ROUNDS
                assert u.accounts.person_year("p1", YEAR).admissions == 2 * ROUNDS
        finally:
            dispose()


def test_a_lock_out_of_the_global_order_is_refused(db_url: str) -> None:  # noqa: F811
    """All of a transaction's locks come in one call: a later call may only add keys that sort
    after those held; anything else, and a key of the old (household, year) form, is refused
    before anything is locked."""
    for db in ("memory", db_url):
        uow, dispose = uow_factory(db)
        try:
            with uow() as u:
                u.lock(P1)
                u.lock(P1, ("person", "p2", YEAR))  # held again, and one after: fine
                with pytest.raises(LockOrderError):
                    u.lock(H1)  # "household" sorts before "person"
                with pytest.raises(TypeError, match="kind, key, year"):
                    u.lock("h1", YEAR)
                u.lock(("policy", "990001", 0))
                u.rollback()
            with uow() as u:  # a new transaction starts from nothing held
                u.lock(H1, P1)
                u.commit()
        finally:
            dispose()


def test_lock_rows_do_not_disturb_the_accounts(db_url: str) -> None:  # noqa: F811
    """PostgreSQL creates a missing person-year or household-year row to lock it: it reads as
    no accounts, and an existing row keeps its admissions and layers."""
    store = SqlStore(db_url)
    try:
        acc = YearAccounts({"basic": LayerAccount(1, 2, 3, 4)}, 3)
        with store.uow() as u:
            u.accounts.save_person_year("p1", YEAR, acc)
            u.accounts.save_household_year("h1", YEAR, acc)
            u.commit()
        with store.uow() as u:
            u.lock(*account_locks("p1", "h1", YEAR), *account_locks("p9", "h9", YEAR))
            assert u.accounts.person_year("p1", YEAR) == acc
            assert u.accounts.household_year("h1", YEAR) == acc
            assert u.accounts.person_year("p9", YEAR) == YearAccounts()
            u.commit()
        with store.uow() as u:
            assert u.accounts.person_year("p1", YEAR) == acc
            assert u.accounts.household_year("h1", YEAR) == acc
            assert u.accounts.person_year("p9", YEAR) == YearAccounts()
            assert u.accounts.household_year("h9", YEAR) == YearAccounts()
    finally:
        store.dispose()
