"""benchmarks.calltrace: the per-call trace of the server's pooled calls (service_ab --trace):
the wrappers record a call's phases and its PostgreSQL waits, and the report finds where the
slowest calls waited (a seal overlapping them, a group stalled together)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg
import pytest

from adapters.grpc import servicers
from adapters.store.sql.uow import SqlUnitOfWork
from benchmarks import calltrace
from engine.service.groupcommit import SettleWriter
from engine.service.ledger import LedgerService

#: what ``install`` wraps (put back after each test)
WRAPPED = [
    (servicers._Base, "run"), (psycopg.Connection, "wait"), (LedgerService, "seal"),
    (SettleWriter, "_take"), (SqlUnitOfWork, "settle_reads_many"), (SqlUnitOfWork, "commit"),
    (SettleWriter, "in_flight"), (SettleWriter, "join_flight"),
]  # fmt: skip
WRAPPED += [  # a tree whose writer sends the next group's reads with a commit
    (o, n) for o, n in ((SettleWriter, "_answer"), (SqlUnitOfWork, "commit_then_reads"))
    if hasattr(o, n)
]  # fmt: skip


def test_a_pooled_call_is_traced_by_phase(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for owner, name in WRAPPED:
        monkeypatch.setattr(owner, name, getattr(owner, name))  # put back after the test
    monkeypatch.setattr(calltrace, "_records", [])
    monkeypatch.setattr(calltrace, "_seals", [])
    monkeypatch.setattr(calltrace, "_steps", [])
    dump = calltrace.install(tmp_path)

    def Settle() -> str:  # named as the rpc it stands for
        time.sleep(0.02)
        return "done"

    class Svc(servicers._Base):
        pass

    svc = Svc(service=None, executor=ThreadPoolExecutor(1))  # type: ignore[arg-type]
    assert asyncio.run(svc.run(Settle)) == "done"
    row, steps = [json.loads(line) for line in dump().read_text().splitlines()]
    assert steps == {"rpc": "steps", "steps": []}  # no settle writer ran
    assert row["rpc"] == "Settle" and row["pg"] == []
    assert row["t0"] <= row["start"] < row["done"] <= row["answer"]
    assert row["done"] - row["start"] >= 0.02 and row["cpu"] < 0.02  # asleep, not on a CPU


def _call(t0: float, work: float, pg: float) -> dict[str, Any]:
    return {"rpc": "Settle", "t0": t0, "start": t0 + 0.0002, "done": t0 + 0.0002 + work,
            "cpu": 0.0005, "pg": [pg], "answer": t0 + 0.0004 + work}  # fmt: skip


def test_the_report_finds_the_slowest_calls_waits(tmp_path: Path) -> None:
    calls = [_call(i * 0.01, 0.003, 0.002) for i in range(300)]  # the common call: 3 ms
    calls += [_call(5.0 + i * 0.0005, 0.040, 0.038) for i in range(3)]  # slow, in a seal
    seal = {"rpc": "seal", "t0": 4.99, "answer": 5.05}
    f = tmp_path / "calltrace-1.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in [*calls, seal]))
    d = calltrace.report(f, group=3)
    assert d is not None and d["calls"] == 303 and d["seals"] == 1
    assert d["slowest"]["calls"] == 3
    assert d["slowest"]["pg"] == pytest.approx(38.0)
    assert d["slowest"]["in_a_seal"] == 3 and d["slowest"]["in_a_group"] == 3
    assert d["ms"]["work"]["p50"] == pytest.approx(3.0)
    assert "3 overlap a seal, 3 start in a group" in calltrace.text("x", d)
    assert d["seal"]["wall_p50"] == pytest.approx(60.0)
    assert d["by_seal"]["in"]["calls"] == 3 and d["by_seal"]["out"]["calls"] == 300
    assert d["by_seal"]["in"]["p50"] == pytest.approx(40.4)
    assert d["by_seal"]["out"]["p99"] == pytest.approx(3.4)
    assert calltrace.report(f, rpc="PreSettle") is None


def test_the_writers_cycle_is_cut_into_its_steps(tmp_path: Path) -> None:
    """The writer's steps as ``_cycle`` logs them ([kind, start, end, PostgreSQL wait, calls];
    "cpu": the writer's thread CPU at a commit's end): a cycle runs from a commit's end to the
    next's; a cycle that began with a pause of the benchmark is left out."""
    ms = 0.001
    steps = [
        ["take", 0.0, 1 * ms, 0.0, 3], ["reads", 1 * ms, 3 * ms, 1.8 * ms, 0],
        ["commit", 4 * ms, 7 * ms, 2.9 * ms, 0], ["cpu", 7 * ms, 7 * ms, 1.0, 0],
        # a cycle: 1 ms idle, a 2 ms reads trip, 1 ms of Python, a 3 ms commit trip
        ["take", 7 * ms, 8 * ms, 0.0, 4], ["reads", 8 * ms, 10 * ms, 1.8 * ms, 0],
        ["commit", 11 * ms, 14 * ms, 2.9 * ms, 0], ["cpu", 14 * ms, 14 * ms, 1.002, 0],
        # the benchmark paused (another contender's round): left out
        ["take", 14 * ms, 1.0, 0.0, 2], ["reads", 1.0, 1.002, 0.0, 0],
        ["commit", 1.003, 1.006, 0.0, 0], ["cpu", 1.006, 1.006, 1.004, 0],
        # the next group's reads in the commit's trip: 1 ms of Python, the trip, a 2 ms answer
        ["more", 1.0065, 1.0065, 0.0, 1], ["commit", 1.007, 1.010, 2.9 * ms, 0],
        ["answer", 1.010, 1.012, 0.0, 0], ["cpu", 1.012, 1.012, 1.005, 0],
    ]  # fmt: skip
    threads = {"rpc": "threads", "calls": 10, "before": {"loop": 1.0, "writer": 2.0},
               "after": {"loop": 1.003, "writer": 2.005, "sampler": 9.0}}  # fmt: skip
    f = tmp_path / "calltrace-1.jsonl"
    f.write_text(json.dumps({"rpc": "steps", "steps": steps}) + "\n" + json.dumps(threads) + "\n")
    d = calltrace.cycles(f)
    assert d is not None and d["cycles"] == 2 and d["groups"] == 4 and d["calls"] == 10
    ms_ = d["ms"]
    assert ms_["cycle"]["mean"] == pytest.approx(6.5)  # 7 ms, then 6 ms
    assert ms_["idle"]["mean"] == pytest.approx(0.5) and ms_["answer"]["mean"] == pytest.approx(2.0)
    assert ms_["reads"]["mean"] == pytest.approx(1.0) and ms_["commit"]["mean"] == pytest.approx(
        3.0
    )
    assert ms_["python"]["mean"] == pytest.approx(1.0)
    assert ms_["cpu"]["mean"] == pytest.approx(1.5)
    assert d["cpu_us_a_settle"] == pytest.approx({"loop": 300.0, "writer": 500.0})
    assert "server CPU a Settle by thread: loop 300 us, writer 500 us" in calltrace.cycle_text(
        "x", d
    )
    assert calltrace.cycles(tmp_path / "calltrace-1.jsonl") is not None
    (tmp_path / "none.jsonl").write_text(json.dumps({"rpc": "steps", "steps": []}) + "\n")
    assert calltrace.cycles(tmp_path / "none.jsonl") is None


def test_the_threads_cpu_by_kind() -> None:
    tids, main = calltrace._thread_cpu(), threading.main_thread().native_id
    assert main is not None and tids[main][0] == "loop"
    cpu = calltrace.by_kind(tids)
    assert "loop" in cpu and all(v >= 0 for v in cpu.values())


def test_every_settle_is_counted_once_grouped_or_pooled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The threads' CPU a Settle divides by every Settle: a pooled one (``in_flight``) and a
    grouped one handed over on the loop (``join_flight``), which never reaches ``_Base.run``;
    a ``join_flight`` that finds none in flight counts nothing (the call is counted by the
    ``in_flight`` of the ``settle_rows`` it goes on to)."""
    from engine.service.groupcommit import GroupCommit

    for owner, name in WRAPPED:
        monkeypatch.setattr(owner, name, getattr(owner, name))
    monkeypatch.setattr(calltrace, "_settles", [0])
    calltrace.install(tmp_path)
    w = SettleWriter(lambda calls: [], GroupCommit())
    assert w.join_flight() is False and calltrace._settles == [0]
    with w.in_flight():  # a pooled Settle
        assert w.join_flight() is True  # a grouped one beside it
        w.leave_flight()
    assert calltrace._settles == [2] and w.idle
