"""A trial's reads on the SQL store's kept connections (``adapters/store/sql/trialreads.py``):
the same figures as the pooled unit of work, a fresh snapshot every trial (a Settle committed
in between is seen), one connection per thread, nothing written, the connections closed with
the store."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from adapters.store.sql import SqlStore, keptreads
from adapters.store.sql.trialreads import TrialUnitOfWork
from engine.bill import Person
from engine.service.usecases import SettlementService
from tests.test_store_sql import Clock, bill, golden, service

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Any:
    s = SqlStore(f"sqlite:///{tmp_path / 'onestop.db'}")
    yield s
    s.dispose()


def _pooled_and_kept(store: SqlStore) -> tuple[Any, Any, Any, Any]:
    """Two services on one store with the golden table and person: one reading through the
    pool, one whose trials read on the kept connections; and the person and golden request."""
    text, person, req = golden()
    pooled = service(store.uow)
    kept = service(store.uow)
    kept.use_trial_reads(store.trial_uow)
    pooled.put_policy(text, "yubei.yaml")
    pooled.import_registry([person])
    return pooled, kept, person, req


def first_accounts(store: SqlStore) -> tuple[Any, Any, Any, Any, list[Any], Any, Any]:
    """``_pooled_and_kept``, the keys of the stream's ``accounts_many`` tests (the person's
    year and an unknown person's), ``stored`` (what a pooled read gives now) and the kept
    service's first answer, checked against it."""
    pooled, kept, person, req = _pooled_and_kept(store)
    year = pooled.pre_settle(req).year
    keys = [(person.id, year), ("nobody", year)]

    def stored() -> dict[Any, Any]:
        return {(person.id, year): pooled.accounts(person.id, year), ("nobody", year): None}

    first = kept.accounts_many(keys)
    assert first == stored() and first[("nobody", year)] is None
    return pooled, kept, person, req, keys, stored, first


def test_trial_reads_see_each_commit_and_agree_with_the_pool(sqlite_store: SqlStore) -> None:
    pooled, kept, _, req = _pooled_and_kept(sqlite_store)
    first = kept.pre_settle(req)
    assert first == pooled.pre_settle(req) and first.admission_no == 1
    # a settlement committed by another thread is seen by the next trial of this thread's
    # kept connection (its read transaction ended with the last trial)
    t = threading.Thread(target=lambda: pooled.settle("req-1", req))
    t.start()
    t.join()
    other = bill(req, "yubei-2", 4_000_000)
    second = kept.pre_settle(other)
    assert second.admission_no == 2 and second == pooled.pre_settle(other)
    # the columns path (PreSettle's) reads the same way
    from adapters.grpc import columns
    from adapters.grpc.convert import bill_to_pb

    cols = columns.bill_columns(bill_to_pb(other.model_dump(mode="json")))
    assert kept.pre_settle(cols) == second


def test_one_kept_connection_per_thread_read_only_and_closed(tmp_path: Path) -> None:
    store = SqlStore(f"sqlite:///{tmp_path / 'onestop.db'}")
    raws: list[Any] = []

    def trial() -> None:
        for _ in range(2):
            with store.trial_uow() as u:
                assert isinstance(u, TrialUnitOfWork)
                assert u.registry.get("nobody") is None
                raws.append(u._raw)

    trial()
    th = threading.Thread(target=trial)
    th.start()
    th.join()
    assert raws[0] is raws[1] and raws[2] is raws[3] and raws[0] is not raws[2]
    assert not raws[0].in_transaction  # each trial's snapshot ended with it
    with store.trial_uow() as u, pytest.raises(RuntimeError, match="a trial's unit of work"):
        u.accounts.save_person_year("p", 2023, u.accounts.person_year("p", 2023))
    # a statement that fails is the store's error, and the thread's connection stays usable
    with pytest.raises(sa.exc.DBAPIError), store.trial_uow() as u:
        u.run("SELECT nothing FROM nowhere")
    with store.trial_uow() as u:
        assert isinstance(u, TrialUnitOfWork)  # SQLite's trials
        assert u.registry.get("nobody") is None and u._raw is not None and u._raw is raws[0]
    store.dispose()
    with pytest.raises(Exception, match="closed"):
        raws[0].execute("SELECT 1")


def _state(u: Any) -> dict[str, Any]:
    """What a unit of work carries from one transaction to the next: its own fields and its
    repositories' (but the back references, the store and the kept connections)."""
    out: dict[str, Any] = {}
    for k, v in vars(u).items():
        if k in ("s", "_kept", "busy"):
            continue
        if hasattr(v, "u") and v.u is u:  # a repository
            out[k] = {f: x for f, x in vars(v).items() if f != "u"}
        else:
            out[k] = v
    return out


def test_a_thread_reuses_its_trial_unit_of_work_left_as_new(sqlite_store: SqlStore) -> None:
    """A thread's trials share one unit of work (not one built per trial), left after each
    trial exactly as a fresh one is, whatever the trial did (read, failed, tried to write);
    a trial inside a trial, or one taken without ``with``, gets a fresh one."""
    text, person, req = golden()
    svc = service(sqlite_store.uow)
    svc.put_policy(text, "yubei.yaml")
    svc.import_registry([person])
    with sqlite_store.trial_uow() as first:
        assert isinstance(first, TrialUnitOfWork)  # SQLite's trials
        assert first.registry.get(person.id) == person
        first.accounts.person_year(person.id, 2024)
        first.accounts.household_year(person.household, 2024)
        inner = sqlite_store.trial_uow()  # (the thread's one connection is in this trial)
        assert isinstance(inner, TrialUnitOfWork) and inner is not first and inner.busy
        inner.__exit__(None, None, None)
    fresh = _state(TrialUnitOfWork(sqlite_store, sqlite_store._kept))
    assert _state(first) == fresh
    with pytest.raises(RuntimeError), sqlite_store.trial_uow() as u:
        assert u is first
        u.accounts.save_person_year("p", 2024, u.accounts.person_year("p", 2024))
    assert _state(first) == fresh
    with pytest.raises(sa.exc.DBAPIError), sqlite_store.trial_uow() as u:
        u.run("SELECT nothing FROM nowhere")
    assert _state(first) == fresh and not first.busy
    held = sqlite_store.trial_uow()  # never left: the next trials get fresh ones
    assert held is first
    with sqlite_store.trial_uow() as u:
        assert u is not first and u.registry.get(person.id) == person
    held.__exit__(None, None, None)
    assert _state(first) == fresh
    with sqlite_store.trial_uow() as u:
        assert u is first
    # the use case over it: the same figures trial after trial, and as the pooled reads
    kept = service(sqlite_store.uow)
    kept.use_trial_reads(sqlite_store.trial_uow)
    assert kept.pre_settle(req) == kept.pre_settle(req) == svc.pre_settle(req)


_SETTLE_ELSEWHERE = """
import sys
from adapters.store.sql import SqlStore
from engine.service.usecases import SettlementService
from tests.test_store_sql import Clock, golden
store = SqlStore(sys.argv[1])
ids = iter(f"elsewhere-{i}" for i in range(9))
SettlementService(store.uow, clock=Clock(), new_id=ids.__next__).settle("req-other", golden()[2])
store.dispose()
"""


def _settle_elsewhere(store: SqlStore) -> None:
    """``_SETTLE_ELSEWHERE`` run in another process on ``store``'s database."""
    url = store.engine.url.render_as_string(hide_password=False)
    done = subprocess.run(
        [sys.executable, "-c", _SETTLE_ELSEWHERE, url],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_kept_reads_serve_a_repeated_trial_until_another_process_commits(
    sqlite_store: SqlStore, monkeypatch: Any
) -> None:
    """A trial repeating the last trial's reads runs BEGIN, ``PRAGMA data_version`` and
    ROLLBACK only, with the same figures (the same account-year objects); a settlement committed by another process (or
    another connection of this one) moves the pragma's figure, so the next trial reads
    everything again and sees it. The kept rows are bounded."""
    pooled, kept, person, req = _pooled_and_kept(sqlite_store)
    first = kept.pre_settle(req)
    raw = sqlite_store._kept.get()
    seen: list[str] = []
    raw.set_trace_callback(seen.append)
    assert kept.pre_settle(req) == first and first.admission_no == 1
    assert seen == ["BEGIN", "PRAGMA data_version", "ROLLBACK"]
    # ... and the account-years built from those rows are the last trial's, as they are
    kept_year = []
    for _ in range(2):
        with sqlite_store.trial_uow() as u:
            assert u.registry.get(person.id) == person
            kept_year.append(u.accounts.person_year(person.id, first.year))
    assert kept_year[1] is kept_year[0] and kept_year[0].admissions == 0
    seen.clear()
    _settle_elsewhere(sqlite_store)
    again = kept.pre_settle(req)
    assert again.admission_no == 2 and again == pooled.pre_settle(req) and again != first
    assert len(seen) > 3 and any(s.startswith("SELECT") for s in seen)
    with sqlite_store.trial_uow() as u:
        assert u.registry.get(person.id) == person
        assert u.accounts.person_year(person.id, first.year).admissions == 1
    # ... and a commit by another connection of this process (a Settle through the pool)
    seen.clear()
    monkeypatch.setattr(keptreads, "KEPT_MAX", 1)
    pooled.settle("req-2", bill(req, "yubei-2", 4_000_000))
    third = kept.pre_settle(req)
    assert third.admission_no == 3 and third == pooled.pre_settle(req)
    assert any(s.startswith("SELECT") for s in seen)
    assert len(sqlite_store._kept.reads().rows) == 1  # (three reads, kept at most one)


def test_accounts_many_kept_until_a_commit_elsewhere(
    sqlite_store: SqlStore, tmp_path: Path
) -> None:
    """The stream's ``accounts_many`` keeps its answer with the kept reads
    (``UnitOfWork.kept``): the same keys again, nothing committed since, give the same objects
    in three statements (BEGIN, the pragma, ROLLBACK); a Settle through the pool, one by another
    connection (as another process's: a second store on the file), a registry change and a
    PutPolicy by it, and a Settle by it after those each give the figures stored now (those of
    a pooled read); other keys, an unknown person and a bad id are answered as without. (A real
    second process is the test above's: the pragma moves for any other connection alike.)"""
    pooled, kept, person, req, keys, stored, first = first_accounts(sqlite_store)
    year = keys[0][1]
    raw = sqlite_store._kept.get()
    seen: list[str] = []
    raw.set_trace_callback(seen.append)
    again = kept.accounts_many(keys)
    assert again == first and again is not first  # a dict of its own ...
    assert all(again[k] is first[k] for k in keys)  # ... of the same objects
    assert seen == ["BEGIN", "PRAGMA data_version", "ROLLBACK"]
    assert kept.accounts_many(keys[:1]) == {keys[0]: first[keys[0]]}  # other keys: read
    with pytest.raises(Exception, match="person_id"):
        kept.accounts_many([("bad\x01id", year)])
    other = SqlStore(f"sqlite:///{tmp_path / 'onestop.db'}")  # another connection's writes
    try:
        more = iter(f"other-{i}" for i in range(99))
        elsewhere = SettlementService(other.uow, clock=Clock(), new_id=more.__next__)
        admissions = commits_are_seen(kept, pooled, elsewhere, person, req, keys, stored, first)
        kept.accounts_many(keys)
        seen.clear()
        text, _, _ = golden()
        changed = elsewhere.put_policy(text.replace("Yubei district", "Yubei"), "other.yaml")
        assert not changed.unchanged
        assert kept.accounts_many(keys) == stored()
        assert any(s.startswith("SELECT") for s in seen)  # read again, not kept
        # another process's commit moves ``PRAGMA data_version`` as another connection's does
        # (SQLite: any other connection): one real process is the previous test's
        kept.accounts_many(keys)
        elsewhere.settle("req-conn-2", bill(req, "yubei-conn-2", 2_000_000))
        last = kept.accounts_many(keys)
        assert last == stored() and last[keys[0]][1].admissions == admissions + 1
    finally:
        other.dispose()


def commits_are_seen(
    kept: Any,  # a SettlementService whose trials keep their reads
    pooled: SettlementService,
    elsewhere: SettlementService,
    person: Person,
    req: Any,
    keys: list[tuple[str, int]],
    stored: Callable[[], dict[Any, Any]],
    first: dict[Any, Any],
) -> int:
    """A Settle through the pool, one by another store (``elsewhere``: another connection)
    and a registry change by it, each right after ``kept.accounts_many(keys)`` answered again
    from what it kept: each seen by the next call, whose figures are those stored now (the
    person-year's admissions one up after each Settle). Returns those admissions."""
    admissions = [first[keys[0]][1].admissions]
    for i, change in enumerate(
        (
            lambda: pooled.settle("req-pool", bill(req, "yubei-pool", 4_000_000)),
            lambda: elsewhere.settle("req-conn", bill(req, "yubei-conn", 3_000_000)),
        )
    ):
        kept.accounts_many(keys)  # kept again
        change()
        now = kept.accounts_many(keys)
        assert now == stored() and now[keys[0]][1].admissions == admissions[-1] + 1, i
        admissions.append(now[keys[0]][1].admissions)
    kept.accounts_many(keys)
    elsewhere.import_registry([person.model_copy(update={"birth_date": date(1961, 1, 2)})])
    assert kept.accounts_many(keys)[keys[0]][0].birth_date == date(1961, 1, 2)
    return admissions[-1]
