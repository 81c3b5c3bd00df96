"""The kept-trials port (``engine.service.kepttrials``): the gRPC servicer's inline PreSettle
through a fake implementation (its three paths), and PostgreSQL's implementation
(``adapters.store.sql.snapshotcheck``) bounded in time: a stalled check sends its calls to the
pool within the bound, and the next check opens a fresh connection."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any, cast

import pytest

from adapters.auth.principals import LOCAL
from adapters.bootstrap import build, kept_trials
from adapters.grpc import auth, server
from adapters.grpc import convert as cv
from adapters.grpc.gen.onestop.settlement.v1 import settlement_pb2 as pb
from adapters.grpc.testing import CHAIN, CHAIN_PERSONS, chain_bill
from adapters.store.sql import SqlStore
from adapters.store.sql.snapshotcheck import SnapshotCheck
from engine.bill import Person
from engine.service.kepttrials import KeptTrials, NotKept
from tests.pg import fresh_database, pg_url  # noqa: F401  (fixtures)
from tests.test_snapshot_keep import _Counted, presettle_both


class FakeKept:
    """A store's kept trials: ``figure`` answers ``now`` (or raises ``fails``); under
    ``only_kept(f)`` a trial's unit of work raises ``NotKept`` unless ``f`` is in ``kept``."""

    def __init__(self) -> None:
        self.now = 1
        self.kept: set[int] = set()
        self.fails: Exception | None = None
        self.closed = False
        self._under = threading.local()

    async def figure(self) -> int:
        if self.fails is not None:
            raise self.fails
        return self.now

    @contextmanager
    def only_kept(self, figure: Any) -> Iterator[None]:
        self._under.figure = figure
        try:
            yield
        finally:
            self._under.figure = None

    def guard(self, uow: Any) -> Any:
        """``uow``, refused under a figure nothing is kept for."""

        def guarded() -> Any:
            figure = getattr(self._under, "figure", None)
            if figure is not None and figure not in self.kept:
                raise NotKept(f"nothing kept under {figure}")
            return uow()

        return guarded

    async def close(self) -> None:
        self.closed = True


def _servicers(svc: Any, pool: ThreadPoolExecutor, kept: KeptTrials | None) -> tuple[Any, Any]:
    inline = server.SettlementServicer(svc, pool, inline=True)
    inline.kept_trials = kept
    return inline, server.SettlementServicer(svc, ThreadPoolExecutor(1))


def test_the_inline_presettle_uses_only_the_kept_trials_port() -> None:
    """Through a fake store's kept trials: kept under the awaited figure, the PreSettle is
    answered on the loop (nothing to the pool); not kept (``NotKept``), or a figure that
    fails, sends it to the pool; every answer the pooled servicer's bytes."""
    app = build("memory://", policies=None, registry=None)
    pool = _Counted(2)
    try:
        svc = app.service
        svc.put_policy(CHAIN, "chain.yaml")
        svc.import_registry([Person.model_validate(p) for p in CHAIN_PERSONS])
        svc.POLICY_RECHECK = 3600.0
        fake = FakeKept()
        svc.use_trial_reads(fake.guard(svc._trial_uow))
        inline, pooled = _servicers(svc, pool, fake)
        req = pb.PreSettleRequest(bill=cv.bill_to_pb(chain_bill(80, "wang", seed=3)))
        raw = req.SerializeToString()

        not_kept, want, hops = presettle_both(inline, pooled, pool, raw)
        assert not_kept == want and hops == 1  # NotKept: the pool answered
        fake.kept.add(1)
        kept, want, hops = presettle_both(inline, pooled, pool, raw)
        assert kept == want == not_kept and hops == 0  # answered on the loop
        fake.now = 2  # the figure moved: nothing kept under it
        moved, want, hops = presettle_both(inline, pooled, pool, raw)
        assert moved == want == kept and hops == 1
        fake.kept.add(2)
        fake.fails = TimeoutError("the store's figure took too long")
        failed, want, hops = presettle_both(inline, pooled, pool, raw)
        assert failed == want == kept and hops == 1  # the check failed: the pool answered
        fake.fails = None
        again, want, hops = presettle_both(inline, pooled, pool, raw)
        assert again == want == kept and hops == 0
    finally:
        pool.shutdown()
        app.close()


def test_only_postgresql_has_kept_trials() -> None:
    app = build("memory://", policies=None, registry=None)
    try:
        assert kept_trials(app, 0.3) is None
    finally:
        app.close()


class _FakeConn:
    """An async connection whose statement answers at once, or never while ``stalled``."""

    def __init__(self, n: int, stalled: bool):
        self.n, self.stalled, self.closed = n, stalled, False

    async def execute(self, sql: str, prepare: bool = False) -> Any:
        if self.stalled:
            await asyncio.Event().wait()  # until cancelled
        return self

    async def fetchone(self) -> tuple[Any, ...]:
        return (f"figure-{self.n}",)

    async def close(self) -> None:
        self.closed = True


def test_a_stalled_snapshot_check_fails_its_calls_in_time_and_the_next_opens_afresh(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Calls waiting on a check that does not answer (and on the one after it) all get
    ``TimeoutError`` once the first of them waited the bound; the stalled connection is
    closed, and the next call's check opens a fresh connection and answers."""
    import psycopg

    conns: list[_FakeConn] = []

    async def connect(**kwargs: Any) -> _FakeConn:
        conns.append(_FakeConn(len(conns), stalled=not conns))  # the first stalls
        return conns[-1]

    monkeypatch.setattr(psycopg.AsyncConnection, "connect", connect)
    dialect = SimpleNamespace(create_connect_args=lambda url: ([], {}))
    store = SimpleNamespace(engine=SimpleNamespace(dialect=dialect, url=None))
    check = SnapshotCheck(cast(SqlStore, store), 0.5)

    async def calls() -> tuple[list[Any], float, Any]:
        t0 = time.monotonic()
        first = asyncio.ensure_future(check.figure())
        for _ in range(5):  # the loop's ready tasks run: the first check stalls
            await asyncio.sleep(0)
        assert len(conns) == 1
        later = [asyncio.ensure_future(check.figure()) for _ in range(3)]  # wait for the next
        got = await asyncio.gather(first, *later, return_exceptions=True)
        waited = time.monotonic() - t0
        for _ in range(5):  # the abandoned check's cancellation runs
            await asyncio.sleep(0)
        return got, waited, await check.figure()

    got, waited, after = asyncio.run(calls())
    assert all(isinstance(g, TimeoutError) for g in got) and len(got) == 4
    assert 0.5 <= waited < 3.0  # the bound (0.5 s), not the stall (forever)
    assert after == ("figure-1",)  # a fresh connection answered
    assert [c.closed for c in conns] == [True, False]  # the stalled one closed, not reused
    assert check._abandoned == set()


def test_a_stalled_postgresql_sends_presettle_to_the_pool_in_time_then_recovers(
    pg_url: str,  # noqa: F811
) -> None:
    """The check's backend stopped (SIGSTOP): the PreSettle waits the bound, then the pool
    answers it (the pooled servicer's bytes); the stalled connection is dropped, and after
    the stall the next check, on a fresh connection, answers on the loop again."""
    app = build(fresh_database(pg_url), policies=None, registry=None)
    pool = _Counted(2)
    bound = 0.3
    stopped: list[int] = []
    try:
        svc = app.service
        svc.put_policy(CHAIN, "chain.yaml")
        svc.import_registry([Person.model_validate(p) for p in CHAIN_PERSONS])
        svc.POLICY_RECHECK = 3600.0
        check = kept_trials(app, bound)
        assert isinstance(check, SnapshotCheck)
        inline, pooled = _servicers(svc, pool, check)
        req = pb.PreSettleRequest(bill=cv.bill_to_pb(chain_bill(80, "wang", seed=3)))
        raw = req.SerializeToString()

        async def run() -> dict[str, Any]:
            token = auth._current.set(LOCAL)
            seen: dict[str, Any] = {}
            try:
                want = await pooled.PreSettle(raw, None)
                await inline.PreSettle(raw, None)  # read by the pool, kept
                before = pool.submitted
                assert await inline.PreSettle(raw, None) == want
                assert pool.submitted == before  # kept: on the loop
                assert check._conn is not None
                pid = check._conn.info.backend_pid
                os.kill(pid, signal.SIGSTOP)
                stopped.append(pid)
                t0 = time.monotonic()
                seen["stalled"] = await inline.PreSettle(raw, None)
                seen["took"] = time.monotonic() - t0
                seen["stalled hops"] = pool.submitted - before
                os.kill(stopped.pop(), signal.SIGCONT)
                for _ in range(200):  # the abandoned check cancelled, its connection closed
                    if not check._abandoned:
                        break
                    await asyncio.sleep(0.05)
                seen["abandoned"] = len(check._abandoned)
                before = pool.submitted
                seen["after"] = await inline.PreSettle(raw, None)
                seen["after hops"] = pool.submitted - before
                seen["fresh"] = check._conn is not None and check._conn.info.backend_pid != pid
                seen["want"] = want
                return seen
            finally:
                await check.close()
                auth._current.reset(token)

        seen = asyncio.run(run())
        assert seen["stalled"] == seen["want"] and seen["stalled hops"] == 1  # the pool's
        assert bound <= seen["took"] < bound + 2.0  # the bound, then one pooled trial
        assert seen["abandoned"] == 0
        assert seen["after"] == seen["want"] and seen["after hops"] == 0  # on the loop again
        assert seen["fresh"]  # a new connection, not the stalled one
    finally:
        for pid in stopped:
            os.kill(pid, signal.SIGCONT)
        pool.shutdown()
        app.close()
