"""A grouped Settle answered without a pool thread waiting on its group (issue 13 target 7):
the gRPC servicer hands the call to the writer (``SettleWriter.submit_then``) and the writer
answers the event loop itself after the commit.

- The writer: ``submit_then`` answers each call after its group, counts it in flight until
  then, logs a ``done`` that fails and goes on; ``close`` answers what is queued; a call
  after ``close`` is refused and not left counted.
- Through a real server (SQLite and PostgreSQL), every call grouped (another Settle held in
  flight by the test): while a group is held in the writer, the server's pool still runs other
  work (with the old blocking hand-over every pool thread waited on the group); the answers,
  a replay, a conflict, an unknown person are what the lone path answers; a call cancelled
  while its group is held still has its settlement committed, nothing hangs, and the count
  of calls in flight comes back.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import grpc
import pytest

from adapters.grpc.client import _bill
from adapters.grpc.gen.onestop.settlement.v1 import settlement_pb2 as pb
from adapters.grpc.testing import CHAIN, chain_bill, served
from engine.service.groupcommit import GroupCommit, SettleAnswer, SettleCall, SettleWriter
from tests.pg import db_url, pg_url  # noqa: F401  (fixtures)


def wait_for(cond: Callable[[], bool], what: str, seconds: float = 60.0) -> None:
    end = time.monotonic() + seconds
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


# --- the writer -----------------------------------------------------------------------------


def test_submit_then_answers_after_the_group_and_close_answers_what_is_queued() -> None:
    entered, gate = threading.Event(), threading.Event()

    def run(calls: Sequence[SettleCall]) -> list[SettleAnswer]:
        entered.set()
        assert gate.wait(60)
        return [ValueError(c.request_id) for c in calls]

    w = SettleWriter(run, GroupCommit(max_group=64))
    got: list[str] = []

    def done(a: SettleAnswer) -> None:
        got.append(str(a))
        if str(a) == "bad":
            raise RuntimeError("the caller went away")

    assert w.idle
    with w.in_flight():
        assert not w.idle
        assert w.join_flight() and w.join_flight() and w.join_flight()
        w.submit_then(SettleCall("a", None, "local", ""), done)
        assert entered.wait(60)
        w.submit_then(SettleCall("bad", None, "local", ""), done)
        w.submit_then(SettleCall("c", None, "local", ""), done)
        assert got == [] and w._flight == 4  # nobody answered while the group is held
        closing = threading.Thread(target=w.close)
        closing.start()
        gate.set()
        closing.join(60)
        assert got == ["a", "bad", "c"]  # a failing done is logged; the others still answered
        assert w._flight == 1  # each counted down after its answer
        assert w.join_flight()
        with pytest.raises(RuntimeError, match="closed"):
            w.submit_then(SettleCall("d", None, "local", ""), done)
        assert w._flight == 1
    assert w.idle and not w.join_flight()  # none in flight: nothing counted


# --- through a real server ------------------------------------------------------------------


@contextmanager
def held_server(
    url: str, workers: int
) -> Iterator[tuple[Any, Any, threading.Event, threading.Event]]:
    """A server whose writer holds each group until ``gate`` is set (``entered`` once one is
    held), with another Settle counted in flight throughout: every call is grouped."""
    entered, gate = threading.Event(), threading.Event()
    group = GroupCommit(max_group=64)
    with served(url, (CHAIN,), workers=workers, group_commit=group) as (app, _, c):
        svc = app.service
        real = svc.settle_group

        def held(calls: Sequence[SettleCall]) -> list[SettleAnswer]:
            entered.set()
            assert gate.wait(60)
            return real(calls)

        svc.settle_group = held  # type: ignore[method-assign]
        svc.use_group_commit(svc.group_commit)  # a writer that runs ``held``
        writer = svc.settle_writer
        assert writer is not None
        try:
            with writer.in_flight():
                yield svc, c, entered, gate
        finally:
            gate.set()
        # each call counted down by the writer just after it handed the answer on
        wait_for(lambda: writer._flight == 0, "every call counted down")


def test_a_held_group_keeps_no_pool_thread_and_answers_as_the_lone_path(db_url: str) -> None:  # noqa: F811
    bills = [chain_bill(0, "wang", seed=3), chain_bill(1, "wang", seed=3),
             chain_bill(2, "wang-wife", seed=3)]  # fmt: skip
    with held_server(db_url, workers=2) as (svc, c, entered, gate), ThreadPoolExecutor(8) as tp:
        writer = svc.settle_writer
        calls = [tp.submit(c.settle, b, f"q-{b['id']}") for b in bills]
        assert entered.wait(60)
        # all three calls in flight (the test's own is the fourth) while the first group is
        # held: none has a pool thread (two workers), so the pool still runs other work
        wait_for(lambda: writer._flight == 4, "the three calls in flight")
        probes = [svc_pool_probe(c, tp) for _ in range(2)]
        assert all(p.result(timeout=30) for p in probes)
        assert not any(f.done() for f in calls)  # and nobody is answered before the commit
        gate.set()
        got = [f.result(timeout=60) for f in calls]
        assert [g.replay for g in got] == [False] * 3
        assert writer.calls == 3
        # a retry: its replay; the request id with another bill: the Conflict; an unknown
        # person: the field named. Each as the store has it and as the lone path answers
        again = c.settle(bills[0], f"q-{bills[0]['id']}")
        assert again.replay and again.settlement.settlement_id == got[0].settlement.settlement_id
        assert c.get(request_id=f"q-{bills[1]['id']}") == got[1].settlement
        with pytest.raises(grpc.RpcError) as conflict:
            c.settle(bills[1], f"q-{bills[0]['id']}")
        with pytest.raises(grpc.RpcError) as nobody:
            c.settle({**chain_bill(9, "wang"), "person_id": "nobody"}, "q-nobody")
        assert writer.calls == 6  # these went to the writer too
    assert conflict.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert nobody.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "person_id" in nobody.value.details()


def svc_pool_probe(c: Any, tp: ThreadPoolExecutor) -> Any:
    """A call that runs in the server's pool (GetSettlement of an unknown id: NOT_FOUND)."""

    def probe() -> bool:
        try:
            c.get(request_id="no-such-request")
        except grpc.RpcError as e:
            return e.code() == grpc.StatusCode.NOT_FOUND
        return False

    return tp.submit(probe)


def test_a_grouped_call_cancelled_while_held_still_commits_and_nothing_hangs(
    db_url: str,  # noqa: F811
) -> None:
    first, second = chain_bill(0, "wang", seed=5), chain_bill(1, "wang-wife", seed=5)
    with held_server(db_url, workers=2) as (svc, c, entered, gate), ThreadPoolExecutor(2) as tp:
        writer = svc.settle_writer
        held = tp.submit(c.settle, first, "k-first")
        assert entered.wait(60)
        req = pb.SettleRequest(request_id="k-second", bill=_bill(second))
        call = c.settlement.Settle.future(req, timeout=60)
        wait_for(lambda: writer._flight == 3, "the second call in flight")
        assert call.cancel()
        gate.set()
        assert not held.result(timeout=60).replay
        wait_for(lambda: writer._flight == 1, "the cancelled call counted down")
        assert writer.calls == 2
        # its settlement committed: a retry of the request is its replay
        assert c.settle(second, "k-second").replay
