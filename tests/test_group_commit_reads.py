"""Group commit's reads before the locks (issue 13 target 7): the writer reads for its whole
group at once (``UnitOfWork.settle_reads_many``: on PostgreSQL one round trip), not each
caller in its own thread and transaction.

- ``settle_reads_many`` gives what ``settle_reads`` gives each call (a replay's record, the
  person with its registry version or None, the bill's active settlement), on the memory
  store, a SQLite file and a real PostgreSQL server.
- On PostgreSQL they take the group's account locks too (the registered persons' household-
  and person-years, in the global order), so the group's locks, reads and writes take two
  round trips, as a lone Settle's do.
- A group's reads are one ``settle_reads_many``; if that shared read fails, each call is
  settled alone and gets the answer a one-by-one settle gives it.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import pytest
import sqlalchemy as sa

from adapters.store.memory import MemoryStore
from adapters.store.sql import SqlStore
from engine.accounts import LayerAccount, YearAccounts
from engine.bill import Person
from engine.service.digest import digest
from engine.service.groupcommit import SettleCall
from engine.service.ports import account_locks
from engine.service.usecases import SettlementService
from tests.pg import db_url, fresh_database, pg_url  # noqa: F401  (fixtures)
from tests.test_group_commit import OTHER, answer_of, same, second_url, service, two  # noqa: F401
from tests.test_store_concurrency import MATE, PERSON, POLICY, request
from tests.test_store_sql import Clock, ids


def reads_of(uow_of: Any, s: SettlementService) -> None:
    """``settle_reads_many`` against ``settle_reads`` of each call, after one settlement."""
    s.settle("r0", request(0, "p1"))
    calls = [
        ("r0", "p1", request(0, "p1").hospital, request(0, "p1").id),  # settled: its replay
        ("r1", "p2", request(1, "p2").hospital, request(1, "p2").id),  # a new bill
        ("r2", "nobody", request(2, "p1").hospital, request(2, "p1").id),  # not registered
        ("r3", "p1", request(0, "p1").hospital, request(0, "p1").id),  # the bill is settled
        ("r1", "p2", request(1, "p2").hospital, request(1, "p2").id),  # twice in the group
    ]
    with uow_of() as uow:
        many = uow.settle_reads_many(calls)
    with uow_of() as uow:
        each = [uow.settle_reads(*c) for c in calls]
    assert many == each
    assert many[0].found is not None and many[0].found.request_id == "r0"
    assert many[2].person is None and many[1].person is not None
    assert many[3].active_id == many[0].found.settlement_id and many[1].active_id is None


def test_settle_reads_many_reads_as_settle_reads_each(db_url: str) -> None:  # noqa: F811
    s, u = service(db_url)
    try:
        reads_of(u.store.uow, s)
    finally:
        u.store.dispose()


def test_settle_reads_many_on_the_memory_store() -> None:
    store = MemoryStore()
    s = SettlementService(store.uow, clock=Clock(), new_id=ids())
    s.put_policy(POLICY, "concurrency.yaml")
    s.import_registry([PERSON, MATE, OTHER])
    reads_of(store.uow, s)


def test_a_group_reads_in_one_call_and_settles_alone_if_that_fails(two: Any) -> None:  # noqa: F811
    (grouped, gu), (serial, _) = two
    shared: list[int] = []

    def failing(uow: Any, reads: Any, calls: Any, years: Any = None) -> Any:
        shared.append(len(calls))
        if len(shared) == 1:
            return reads(calls, years)  # the first group's reads: one call for the group
        raise sa.exc.OperationalError("SELECT", {}, Exception("connection lost"))

    gu.on_reads = failing
    cs = [("a", request(0, "p1")), ("b", request(0, "nobody")), ("c", request(1, "p2"))]
    got = grouped.settle_group([SettleCall(rid, r, "local", digest(r)) for rid, r in cs])
    assert shared == [3] and gu.commits == 1
    cs2 = [("d", request(2, "p1")), ("b", request(0, "nobody")), ("a", request(0, "p1"))]
    got += grouped.settle_group([SettleCall(rid, r, "local", digest(r)) for rid, r in cs2])
    assert shared == [3, 3] and gu.commits == 2  # each alone: one new settlement
    want = [answer_of(partial(serial.settle, rid, r)) for rid, r in cs + cs2]
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        assert same(g, w), (i, g, w)
    assert [type(a).__name__ if isinstance(a, Exception) else a[1] for a in got] == [
        False, "InputError", False, False, "InputError", True,
    ]  # fmt: skip


@pytest.mark.postgres
def test_pg_a_groups_reads_lock_its_persons_early_in_the_global_order(pg_url: str) -> None:  # noqa: F811
    """PostgreSQL, ``settle_reads_many`` with the calls' years: the registered persons'
    household-years and person-years of those years held (in one statement, in the global
    order: households, then persons, each by key in code point order, as Python sorts them),
    their accounts read under the locks; nothing for a person not registered. A ``lock``
    then asking for a lock that sorts before them (a fund-year) starts over and holds all."""
    store = SqlStore(fresh_database(pg_url))
    try:
        svc = SettlementService(store.uow)
        people = [("p1", "h1"), ("Ä2", "h2"), ("a3", "h1"), ("Z4", "é5")]
        svc.import_registry(
            [Person.model_validate({"id": p, "birth_date": "1960-01-01", "household": h})
             for p, h in people]
        )  # fmt: skip
        acc = YearAccounts(layers={"L1": LayerAccount(1, 2, 3, 4)}, admissions=2)
        with store.uow() as u:
            u.lock(*account_locks("p1", "h1", 2024))
            u.accounts.save_household_year("h1", 2024, acc)
            u.commit()
        calls = [("r1", p, "H", f"b{i}") for i, (p, _) in enumerate(people)]
        calls += [("r9", "nobody", "H", "b9"), ("r1", "p1", "H", "b0")]
        years = [2024, 2024, 2025, 2024, 2024, 2024]
        want = {k for (p, h), y in zip(people, years, strict=False) for k in account_locks(p, h, y)}
        with store.uow() as u:
            plain = u.settle_reads_many(calls)
        with store.uow() as u:
            assert u.settle_reads_many(calls, years) == plain
            assert u._locked == want and u._early
            assert u.accounts.household_year("h1", 2024) == acc  # read under the locks
            keys = [("fund", "R/F1", 2024), *sorted(want)]
            u.lock(*keys, read=[("household", "h1", 2024)])  # sorts first: starts over
            assert all(u.holds(*k) for k in keys) and not u._early
            assert u.accounts.household_year("h1", 2024) == acc
    finally:
        store.dispose()
