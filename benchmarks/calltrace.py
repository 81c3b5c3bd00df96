"""A per-call trace of the server's pooled calls (issue 13, target 7's tail; not a test): where
the slowest calls wait. ``service_ab --trace`` serves through this module, which is
``benchmarks/echo_server.py`` (``onestop serve`` as shipped, plus Echo) with three wrappers
installed first, in this process only:

- ``adapters.grpc.servicers._Base.run`` (a call's hand-over to the thread pool): the loop's
  hand-over, the pool's start, the work's end and its thread's CPU, the loop's resumption;
- psycopg's blocking ``Connection.wait``: each PostgreSQL round trip's wait, by the call it
  served;
- ``LedgerService.seal``: each seal's start and end (the sealer thread).

At exit each process writes its records, one JSON line each, to
``$ONESTOP_CALLTRACE/calltrace-PID.jsonl``; ``report`` reads them back: each phase's
percentiles, the slowest 1 % of calls by phase, how many of them overlap a seal, and how many
come in groups (6 or more starting within 5 ms of each other: one stall of the whole server
or database, as the fresh cluster's WAL zero-fill was, benchmarks/pgdurable.py).

    python -m benchmarks.calltrace serve --db ... (the options of onestop serve)
    python -m benchmarks.calltrace report DIR/calltrace-PID.jsonl
"""

from __future__ import annotations

import atexit
import bisect
import json
import os
import runpy
import statistics as st
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

_records: list[dict[str, Any]] = []
_seals: list[tuple[float, float]] = []
_local = threading.local()


def install(out_dir: Path) -> Callable[[], Path]:
    """The three wrappers; returns the function that writes the records to ``out_dir``
    (``main`` runs it at exit) and gives the file's path."""
    import psycopg

    from adapters.grpc import servicers
    from engine.service.ledger import LedgerService

    run = servicers._Base.run

    async def traced_run(self: Any, fn: Any, *args: Any) -> Any:
        rec: dict[str, Any] = {"rpc": getattr(fn, "__name__", "?"), "t0": time.perf_counter()}

        def work(*a: Any) -> Any:
            rec["start"] = time.perf_counter()
            cpu = time.thread_time()
            _local.waits = rec["pg"] = []
            try:
                return fn(*a)
            finally:
                _local.waits = None
                rec["done"], rec["cpu"] = time.perf_counter(), time.thread_time() - cpu

        try:
            return await run(self, work, *args)
        finally:
            rec["answer"] = time.perf_counter()
            _records.append(rec)

    wait = psycopg.Connection.wait

    def traced_wait(self: Any, *args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        try:
            return wait(self, *args, **kwargs)
        finally:
            waits = getattr(_local, "waits", None)
            if waits is not None:
                waits.append(time.perf_counter() - t)

    seal = LedgerService.seal

    def traced_seal(self: Any) -> Any:
        t = time.perf_counter()
        try:
            return seal(self)
        finally:
            _seals.append((t, time.perf_counter()))

    servicers._Base.run = traced_run  # type: ignore[method-assign]  # this process only
    psycopg.Connection.wait = traced_wait  # type: ignore[method-assign]
    LedgerService.seal = traced_seal  # type: ignore[method-assign]

    def dump() -> Path:
        path = out_dir / f"calltrace-{os.getpid()}.jsonl"
        with path.open("w") as f:
            for r in _records:
                if "done" in r:
                    f.write(json.dumps(r) + "\n")
            for a, b in _seals:
                f.write(json.dumps({"rpc": "seal", "t0": a, "answer": b}) + "\n")
        return path

    return dump


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


def report(
    path: Path, rpc: str = "Settle", group: int = 6, within: float = 0.005
) -> dict[str, Any] | None:
    """The phases of ``rpc``'s calls in one trace file, in ms: ``queue`` (hand-over to the pool's
    start), ``work`` (in the pool: ``cpu`` its thread's CPU, ``pg`` its PostgreSQL waits, ``rest``
    the remainder: the GIL, the run queue), ``back`` (the work's end to the loop's resumption);
    for the slowest 1 % (by the whole ``server`` time) their mean phases, how many overlap a
    seal, and how many start in a group (``group`` or more within ``within`` s). None when no
    ``rpc`` call went through the pool (an inline PreSettle is answered on the loop)."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line]
    seals = [(r["t0"], r["answer"]) for r in rows if r["rpc"] == "seal"]
    calls = [r for r in rows if r["rpc"] == rpc]
    if not calls:
        return None

    def phases(r: dict[str, Any]) -> dict[str, float]:
        work, pg = r["done"] - r["start"], sum(r["pg"])
        return {"server": r["answer"] - r["t0"], "queue": r["start"] - r["t0"], "work": work,
                "cpu": r["cpu"], "pg": pg, "rest": work - pg - r["cpu"],
                "back": r["answer"] - r["done"]}  # fmt: skip

    ph = [phases(r) for r in calls]
    n = max(1, len(calls) // 100)
    slow = sorted(range(len(calls)), key=lambda i: ph[i]["server"])[-n:]
    starts = sorted(r["start"] for r in calls)

    def grouped(t: float) -> bool:
        lo = bisect.bisect_left(starts, t - within)
        return bisect.bisect_right(starts, t + within) - lo >= group

    def in_seal(r: dict[str, Any]) -> bool:
        return any(a <= r["done"] and r["t0"] <= b for a, b in seals)

    keys = ("server", "queue", "work", "cpu", "pg", "rest", "back")
    return {
        "calls": len(calls), "seals": len(seals),
        "ms": {k: {"p50": pct([p[k] for p in ph], 0.5) * 1e3,
                   "p99": pct([p[k] for p in ph], 0.99) * 1e3} for k in keys},
        "slowest": {"calls": n, **{k: st.mean(ph[i][k] for i in slow) * 1e3 for k in keys},
                    "in_a_seal": sum(in_seal(calls[i]) for i in slow),
                    "in_a_group": sum(grouped(calls[i]["start"]) for i in slow)},
    }  # fmt: skip


def text(name: str, d: dict[str, Any] | None) -> str:
    """``report``'s figures as lines."""
    if d is None:
        return f"{name}: no call went through the thread pool"
    ms, s = d["ms"], d["slowest"]
    out = [f"{name}: {d['calls']:,} calls traced, {d['seals']:,} seals"]
    out += [f"  {k:6s} p50 {v['p50']:7.2f} ms  p99 {v['p99']:7.2f} ms" for k, v in ms.items()]
    out.append(f"  the slowest {s['calls']:,} (1 %): server {s['server']:.1f} ms = queue "
               f"{s['queue']:.1f} + work {s['work']:.1f} (CPU {s['cpu']:.1f}, PostgreSQL "
               f"{s['pg']:.1f}, rest {s['rest']:.1f}) + back {s['back']:.1f}; "
               f"{s['in_a_seal']:,} overlap a seal, {s['in_a_group']:,} start in a group")  # fmt: skip
    return "\n".join(out)


def main(argv: list[str]) -> int:
    if argv[:1] == ["report"]:
        for p in argv[1:]:
            print(text(p, report(Path(p))))
        return 0
    out = Path(os.environ.get("ONESTOP_CALLTRACE", "."))
    atexit.register(install(out))
    sys.argv = [sys.argv[0], *argv]
    runpy.run_module("benchmarks.echo_server", run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
