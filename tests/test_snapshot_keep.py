"""PostgreSQL's kept answers (``adapters/store/sql/snapshotkeep.py``): the packed stream's
``accounts_many`` answers again from what it kept while the snapshot's figure stands, and a
commit by any connection (the pool's, another store's, one that was in progress at the check)
is seen by the next call and by the next stream message."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import pytest
import sqlalchemy as sa

from adapters.bootstrap import build
from adapters.grpc import stream as S
from adapters.grpc.client import pack_bills
from adapters.grpc.gen.onestop.settlement.v1 import settlement_pb2 as pb
from adapters.grpc.testing import CHAIN, CHAIN_PERSONS, chain_bill
from adapters.store.sql import SqlStore
from adapters.store.sql.snapshotcheck import SnapshotCheck
from adapters.store.sql.snapshotkeep import SnapshotTrial
from adapters.store.sql.uow import SqlUnitOfWork
from engine.accounts import Opening
from engine.batch import reference_batch
from engine.bill import Person, parse_bill_request
from engine.policy.load import parse_table
from engine.policy.policyset import PolicySet
from engine.service.usecases import SettlementService
from tests.pg import fresh_database, pg_url  # noqa: F401  (fixtures)
from tests.test_store_sql import Clock, bill, golden, service
from tests.test_trial_reads import _pooled_and_kept, commits_are_seen, first_accounts

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_store(pg_url: str) -> Any:  # noqa: F811
    s = SqlStore(fresh_database(pg_url))
    yield s
    s.dispose()


def test_accounts_many_kept_on_postgres_until_a_commit(pg_store: SqlStore) -> None:
    """The same keys again, nothing committed since, give the same objects (one statement: the
    snapshot's figure); a Settle through the pool, one by another store (another connection),
    a registry change by it, and a transaction that was in progress at a check and commits
    after it are each seen by the next call (the figures of a pooled read); other keys and an
    unknown person are answered as without."""
    pooled, kept, person, req, keys, stored, first = first_accounts(pg_store)
    year = keys[0][1]
    again = kept.accounts_many(keys)
    assert again == first and again is not first  # a dict of its own ...
    assert all(again[k] is first[k] for k in keys)  # ... of the same objects
    assert kept.accounts_many(keys[:1]) == {keys[0]: first[keys[0]]}  # other keys: read
    other = SqlStore(pg_store.url.render_as_string(hide_password=False))
    try:
        more = iter(f"other-{i}" for i in range(99))
        elsewhere = SettlementService(other.uow, clock=Clock(), new_id=more.__next__)
        admissions = commits_are_seen(kept, pooled, elsewhere, person, req, keys, stored, first)
        # a write in progress at a check (not yet seen, rightly) and committed after it
        before = kept.accounts_many(keys)
        with other.engine.connect() as c:
            c.execute(
                sa.text("UPDATE person_years SET admissions = admissions + 7 "
                        "WHERE person_id = :p AND year = :y"),
                {"p": person.id, "y": year},
            )  # fmt: skip
            during = kept.accounts_many(keys)
            assert during[keys[0]] is before[keys[0]] and during == stored()
            c.commit()
        after = kept.accounts_many(keys)
        assert after == stored() and after[keys[0]][1].admissions == admissions + 7
    finally:
        other.dispose()


def _settle_by_another_store(url: str, request_id: str, bill: dict[str, Any]) -> None:
    """``bill`` settled through a second store on the database (another connection)."""
    other = SqlStore(url)
    try:
        n = iter(f"elsewhere-{i}" for i in range(9))
        SettlementService(other.uow, new_id=n.__next__).settle(request_id, parse_bill_request(bill))
    finally:
        other.dispose()


def test_a_settle_between_two_stream_messages_is_seen_on_postgres(pg_url: str) -> None:  # noqa: F811
    """Two alike packed trials on PostgreSQL: the second of a pair answers from the kept
    person-years; a Settle of the same person-year between two messages (through the service,
    then by another store) is seen by the next message, whose figures are the reference's from
    the accounts stored now."""
    app = build(fresh_database(pg_url), policies=None, registry=None)
    try:
        svc = app.service
        svc.put_policy(CHAIN, "chain.yaml")
        persons = {p["id"]: Person.model_validate(p) for p in CHAIN_PERSONS}
        svc.import_registry(list(persons.values()))
        trial = [chain_bill(60 + i, "wang", seed=13) for i in range(3)]
        policies = PolicySet.of([parse_table(CHAIN)])
        msg = pb.SettleStreamRequest(
            mode=pb.STREAM_MODE_TRIAL, packed=pack_bills(trial, raw=True, narrow=True)
        )

        def expected() -> list[tuple[int, int, int]]:  # from the accounts stored now
            person, pa, ha = svc.accounts("wang", 2024)
            opening = Opening({("wang", 2024): pa}, {(person.household, 2024): ha})
            full = [parse_bill_request(b).with_person(persons["wang"]) for b in trial]
            got = reference_batch(full, policies, opening).settlements
            return [(s.window_pay, s.net_selfpay, s.funds_total) for s in got]

        def packed_trial() -> list[tuple[int, int, int]]:
            S.handle(svc, msg)
            p = S.handle(svc, msg).packed  # the second of two alike: its reads were kept
            return list(zip(p.window_pay, p.net_selfpay, p.funds_total, strict=True))

        first = packed_trial()
        assert first == expected()
        svc.settle("kept-1", parse_bill_request(chain_bill(70, "wang", seed=13)))
        again = packed_trial()
        assert again == expected() and again != first
        _settle_by_another_store(app.url, "kept-2", chain_bill(71, "wang", seed=13))
        third = packed_trial()
        assert third == expected() and third != again
    finally:
        app.close()


def test_a_settle_by_another_process_between_two_presettles_is_seen_on_postgres(
    pg_store: SqlStore, monkeypatch: Any
) -> None:
    """A PreSettle repeating the last one's reads sends the snapshot's check only (no read
    reaches the driver) and answers the same; a Settle committed by another process between
    two PreSettles, then one through the pool, is seen by the next PreSettle (the model path
    and the columns path, PreSettle's own), whose figures are a pooled trial's."""
    from adapters.grpc import columns
    from adapters.grpc.convert import bill_to_pb
    from tests.test_trial_reads import _settle_elsewhere

    pooled, kept, _, req = _pooled_and_kept(pg_store)
    kept.POLICY_RECHECK = 3600.0  # no stored-versions recheck (a read) comes due under load
    first = kept.pre_settle(req)
    assert first == pooled.pre_settle(req) and first.admission_no == 1
    sent: list[str] = []
    read = SqlUnitOfWork.run

    def run(self: SqlUnitOfWork, sql: str, params: Any = (), write: bool = False) -> Any:
        sent.append(sql)
        return read(self, sql, params, write)

    monkeypatch.setattr(SqlUnitOfWork, "run", run)
    cols = columns.bill_columns(bill_to_pb(req.model_dump(mode="json")))
    assert kept.pre_settle(req) == first and kept.pre_settle(cols) == first
    assert sent == []  # every read kept: the check alone went to the server
    _settle_elsewhere(pg_store)
    second = kept.pre_settle(cols)
    assert second.admission_no == 2 and second == pooled.pre_settle(req) and second != first
    assert sent != [] and kept.pre_settle(req) == second
    pooled.settle("req-pool", bill(req, "yubei-pool", 4_000_000))
    third = kept.pre_settle(req)
    assert third.admission_no == 3 and third == pooled.pre_settle(req)
    assert kept.pre_settle(cols) == third


def test_a_trial_unit_of_work_on_postgres_writes_nothing(pg_store: SqlStore) -> None:
    """Every way to write through a PostgreSQL trial is refused before anything is sent."""
    with pg_store.trial_uow() as u:
        assert isinstance(u, SnapshotTrial)
        assert u.registry.get("nobody") is None
        with pytest.raises(RuntimeError, match="a trial's unit of work writes nothing"):
            u.accounts.save_person_year("p", 2023, u.accounts.person_year("p", 2023))
        with pytest.raises(RuntimeError, match="a trial's unit of work writes nothing"):
            u.lock(("person", "p", 2023))


def test_a_trial_open_under_an_old_figure_keeps_nothing_for_a_newer_one(
    pg_store: SqlStore,
) -> None:
    """A trial inside a trial: the inner one, checked after a commit, keeps its reads under
    the new figure; what the outer one reads afterwards goes with the old figure's reads,
    not the new ones (it was keyed by a snapshot from before that commit)."""
    text, person, req = golden()
    pooled = service(pg_store.uow)
    pooled.put_policy(text, "yubei.yaml")
    pooled.import_registry([person])
    year = pooled.pre_settle(req).year
    outer = cast(SnapshotTrial, pg_store.trial_uow())
    with outer:
        assert outer.registry.get(person.id) == person
        old = outer._reads
        pooled.settle("req-1", req)
        inner = cast(SnapshotTrial, pg_store.trial_uow())
        with inner:
            assert inner.accounts.person_year(person.id, year).admissions == 1
            new = inner._reads
        assert old is not None and new is not None and new is not old
        assert outer.accounts.person_year(person.id, year).admissions == 1  # read now
    assert len(new.rows) == 1 and len(old.rows) == 2  # the outer's reads kept with the old


class _Counted(ThreadPoolExecutor):
    """A thread pool that counts the calls handed to it."""

    submitted = 0

    def submit(self, *args: Any, **kwargs: Any) -> Any:
        self.submitted += 1
        return super().submit(*args, **kwargs)


def _blocking_waits_on_a_loop(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The statements' waits on psycopg's blocking connections made by a thread running an
    event loop (every blocking round trip goes through ``Connection.wait``), recorded."""
    import asyncio

    import psycopg

    seen: list[str] = []
    wait = psycopg.Connection.wait

    def recorded(self: Any, *args: Any, **kwargs: Any) -> Any:
        if asyncio._get_running_loop() is not None:
            seen.append(threading.current_thread().name)
        return wait(self, *args, **kwargs)

    monkeypatch.setattr(psycopg.Connection, "wait", recorded)
    return seen


def presettle_both(inline: Any, pooled: Any, pool: _Counted, raw: bytes) -> tuple[Any, Any, int]:
    """One PreSettle through the inline servicer, one through the pooled, on a new event
    loop; and the inline's calls handed to the pool. The inline's kept trials are closed after
    (their connection belongs to the loop)."""
    import asyncio

    from adapters.auth.principals import LOCAL
    from adapters.grpc import auth

    async def both() -> tuple[Any, Any, int]:
        token = auth._current.set(LOCAL)
        try:
            before = pool.submitted
            got = await inline.PreSettle(raw, None)
            return got, await pooled.PreSettle(raw, None), pool.submitted - before
        finally:
            if inline.kept_trials is not None:
                await inline.kept_trials.close()
            auth._current.reset(token)

    return asyncio.run(both())


def test_presettle_on_the_event_loop_answers_from_kept_reads_only_on_postgres(
    pg_url: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The inline servicer on PostgreSQL: a PreSettle whose reads are kept is answered on the
    event loop (nothing handed to the pool); one that would read (the first, and the first
    after a Settle by another store) goes to the pool, whose reads the next one on the loop
    answers from; each answer is the pooled servicer's byte for byte, the Settle seen."""
    from adapters.grpc import convert as cv
    from adapters.grpc import server

    app = build(fresh_database(pg_url), policies=None, registry=None)
    pool = _Counted(2)
    blocked = _blocking_waits_on_a_loop(monkeypatch)
    try:
        svc = app.service
        # the stored versions' recheck (every 2 s) comes due only where the test says: under
        # load two steps can be 2 s apart, and a due recheck is a read (the pool), not kept
        svc.POLICY_RECHECK = 3600.0
        svc.put_policy(CHAIN, "chain.yaml")
        svc.import_registry([Person.model_validate(p) for p in CHAIN_PERSONS])
        inline = server.SettlementServicer(svc, pool, inline=True)
        inline.kept_trials = check = SnapshotCheck(app.store, 60.0)
        pooled = server.SettlementServicer(svc, ThreadPoolExecutor(1))
        data = pb.PreSettleRequest(bill=cv.bill_to_pb(chain_bill(80, "wang", seed=3)))
        raw = data.SerializeToString()

        def both() -> tuple[Any, Any, int]:
            return presettle_both(inline, pooled, pool, raw)

        first, want, hops = both()
        assert first == want and hops == 1  # nothing kept yet: the pool read it
        again, want, hops = both()
        assert again == want == first and hops == 0  # kept: answered on the loop
        _settle_by_another_store(app.url, "kept-3", chain_bill(81, "wang", seed=3))
        after, want, hops = both()
        assert after == want and after != first and hops == 1  # the Settle seen, by the pool
        last, want, hops = both()
        assert last == want == after and hops == 0
        svc.POLICY_RECHECK = 0.0  # the stored versions' recheck due: a read, in the pool
        due, want, hops = both()
        assert due == want == after and hops == 1
        svc.POLICY_RECHECK = 3600.0
        inline.inline = False  # ONESTOP_INLINE_TRIALS=0: every PreSettle in the pool
        off, want, hops = both()
        assert off == want == after and hops == 1
        inline.inline = True

        async def fails() -> tuple[Any, ...]:
            raise OSError("the check's connection refused")

        monkeypatch.setattr(check, "_check", fails)  # a check that fails: the pool answers
        failed, want, hops = both()
        assert failed == want == after and hops == 1
        assert blocked == []  # the loop's thread never waited on a blocking connection
    finally:
        pool.shutdown()
        app.close()


def test_a_snapshot_check_is_sent_after_every_call_that_shares_it() -> None:
    """Calls that ask while a check is on its way wait for the next one, sent after they
    asked, and share it; the first call gets the first. A failed check fails its calls only."""
    import asyncio

    check = SnapshotCheck(cast(SqlStore, None), 60.0)
    sent: list[int] = []
    gate: list[asyncio.Event] = []

    async def fake() -> tuple[Any, ...]:
        sent.append(len(sent))
        gate.append(asyncio.Event())
        await gate[-1].wait()
        if len(sent) == 3:
            raise OSError("lost")
        return (len(sent),)

    check._check = fake  # type: ignore[method-assign]  # the round trip, held by the test

    async def turns() -> None:  # the loop's ready tasks run
        for _ in range(5):
            await asyncio.sleep(0)

    async def calls() -> list[Any]:
        first = asyncio.ensure_future(check.figure())
        await turns()
        assert sent == [0]  # on its way
        later = [asyncio.ensure_future(check.figure()) for _ in range(3)]
        await turns()
        assert sent == [0]  # they wait for the next
        gate[0].set()
        assert await first == (1,)
        await turns()
        assert sent == [0, 1]
        gate[1].set()
        got: list[Any] = [await f for f in later]
        failing = asyncio.ensure_future(check.figure())
        await turns()
        gate[2].set()
        try:
            await failing
        except OSError:
            got.append("failed")
        again = asyncio.ensure_future(check.figure())
        await turns()
        gate[3].set()
        return [*got, await again]

    assert asyncio.run(calls()) == [(2,), (2,), (2,), "failed", (4,)]
    assert sent == [0, 1, 2, 3]
