"""benchmarks.calltrace: the per-call trace of the server's pooled calls (service_ab --trace):
the wrappers record a call's phases and its PostgreSQL waits, and the report finds where the
slowest calls waited (a seal overlapping them, a group stalled together)."""

from __future__ import annotations

import asyncio
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg
import pytest

from adapters.grpc import servicers
from benchmarks import calltrace
from engine.service.ledger import LedgerService


def test_a_pooled_call_is_traced_by_phase(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for owner, name in ((servicers._Base, "run"), (psycopg.Connection, "wait"),
                        (LedgerService, "seal")):  # fmt: skip
        monkeypatch.setattr(owner, name, getattr(owner, name))  # put back after the test
    monkeypatch.setattr(calltrace, "_records", [])
    monkeypatch.setattr(calltrace, "_seals", [])
    dump = calltrace.install(tmp_path)

    def Settle() -> str:  # named as the rpc it stands for
        time.sleep(0.02)
        return "done"

    class Svc(servicers._Base):
        pass

    svc = Svc(service=None, executor=ThreadPoolExecutor(1))  # type: ignore[arg-type]
    assert asyncio.run(svc.run(Settle)) == "done"
    (row,) = [json.loads(line) for line in dump().read_text().splitlines()]
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
    assert calltrace.report(f, rpc="PreSettle") is None
