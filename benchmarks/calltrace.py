"""A per-call trace of the server's pooled calls (issue 13, target 7's tail; not a test): where
the slowest calls wait. ``service_ab --trace`` serves through this module, which is
``benchmarks/echo_server.py`` (``onestop serve`` as shipped, plus Echo) with three wrappers
installed first, in this process only:

- ``adapters.grpc.servicers._Base.run`` (a call's hand-over to the thread pool): the loop's
  hand-over, the pool's start, the work's end and its thread's CPU, the loop's resumption;
- psycopg's blocking ``Connection.wait``: each PostgreSQL round trip's wait, by the call it
  served;
- ``LedgerService.seal``: each seal's start and end (the sealer thread);
- the settle writer's steps (group commit): its takes of a group, its reads' and commits'
  round trips (their PostgreSQL waits), its answers; and, from the first Settle on, every
  thread's CPU from ``/proc/self/task`` once a second (``_sample``).

At exit each process writes its records, one JSON line each, to
``$ONESTOP_CALLTRACE/calltrace-PID.jsonl``; ``report`` reads them back: each phase's
percentiles, the slowest 1 % of calls by phase, how many of them overlap a seal, and how many
come in groups (6 or more starting within 5 ms of each other: one stall of the whole server
or database, as the fresh cluster's WAL zero-fill was, benchmarks/pgdurable.py); ``cycles``
the writer's cycle (a commit's end to the next's: idle, the reads' trip, the commit's trip,
the Python, the answers) and group sizes, and the server's CPU a Settle by thread (the event
loop, the pool, the writer, the rest: grpc's C threads, the sealer).

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
_seals: list[tuple[float, float, float]] = []  # start, end, the sealer thread's CPU
_local = threading.local()
#: the settle writer's steps (``_cycle``), and the threads' CPU at the first Settle
_steps: list[list[Any]] = []
_threads0: dict[str, Any] = {}
#: Settle calls that reached the service's writer logic (``_cycle``: a pooled call's
#: ``in_flight``, a grouped one's ``join_flight``), each counted once however it is answered
_settles = [0]


def install(out_dir: Path, sample: bool = False) -> Callable[[], Path]:
    """The wrappers; returns the function that writes the records to ``out_dir`` (``main``
    runs it at exit) and gives the file's path. ``sample``: the threads' CPU sampled from
    the first Settle on (a thread of its own)."""
    import psycopg

    from adapters.grpc import servicers
    from engine.service.ledger import LedgerService

    run = servicers._Base.run

    async def traced_run(self: Any, fn: Any, *args: Any) -> Any:
        rec: dict[str, Any] = {"rpc": getattr(fn, "__name__", "?"), "t0": time.perf_counter()}
        if sample and not _threads0 and rec["rpc"] == "Settle":
            _threads0.update(cpu=_thread_cpu(), calls=len(_records), settles=_settles[0], tids={})
            threading.Thread(target=_sample, name="calltrace-sampler", daemon=True).start()

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
            step = getattr(_local, "step", None)
            if step is not None:
                step[3] += time.perf_counter() - t

    _cycle()
    seal = LedgerService.seal

    def traced_seal(self: Any) -> Any:
        t, cpu = time.perf_counter(), time.thread_time()
        try:
            return seal(self)
        finally:
            _seals.append((t, time.perf_counter(), time.thread_time() - cpu))

    servicers._Base.run = traced_run  # type: ignore[method-assign]  # this process only
    psycopg.Connection.wait = traced_wait  # type: ignore[method-assign]
    LedgerService.seal = traced_seal  # type: ignore[method-assign]

    def dump() -> Path:
        path = out_dir / f"calltrace-{os.getpid()}.jsonl"
        with path.open("w") as f:
            for r in _records:
                if "done" in r:
                    f.write(json.dumps(r) + "\n")
            for a, b, c in _seals:
                f.write(json.dumps({"rpc": "seal", "t0": a, "answer": b, "cpu": c}) + "\n")
            f.write(json.dumps({"rpc": "steps", "steps": _steps}) + "\n")
            if _threads0.get("tids"):  # each thread's last sample (the pool ends before this)
                tids = {**_threads0["cpu"], **_threads0["tids"]}
                # every Settle since, grouped ones too (they never reach ``_Base.run``); a
                # server without group commit has no writer: its pooled Settles
                settles = _settles[0] - _threads0["settles"] or sum(
                    r["rpc"] == "Settle" for r in _records[_threads0["calls"] :]
                )
                before = {t: v for t, v in _threads0["cpu"].items() if t in tids}
                th = {"rpc": "threads", "calls": settles, "before": by_kind(before),
                      "after": by_kind(tids)}  # fmt: skip
                f.write(json.dumps(th) + "\n")
        return path

    return dump


def _cycle() -> None:
    """Wrappers of the settle writer's steps (``--trace``'s cycle report), each logged in the
    writer thread as [kind, start, end, PostgreSQL wait, calls]: ``take`` (a blocking take
    of a group: the writer idle), ``more`` (a group taken without waiting, while the one
    before commits), ``reads`` (``settle_reads_many``: the reads and locks' trip),
    ``commit`` (the writes and COMMIT's trip; ``commit_then_reads``: with the next group's
    reads), ``answer`` (the callers answered: ``SettleWriter._answer``, where there is
    one), ``cpu`` (the writer thread's CPU so far, at each commit's end)."""
    from adapters.store.sql.uow import SqlUnitOfWork
    from engine.service.groupcommit import SettleWriter

    def log(kind: str, fn: Any, n: Callable[[Any], int] | None = None) -> Any:
        def traced(*args: Any, **kwargs: Any) -> Any:
            if threading.current_thread().name != "onestop-settle-writer":
                return fn(*args, **kwargs)
            step = [kind, time.perf_counter(), 0.0, 0.0, 0]
            outer, _local.step = getattr(_local, "step", None), step
            try:
                got = fn(*args, **kwargs)
                if n is not None:
                    step[4] = n(got)
                return got
            finally:
                step[2], _local.step = time.perf_counter(), outer
                if outer is None and (kind != "take" or step[4]):
                    if kind == "take" and step[4] and not kwargs.get("block", True):
                        step[0] = "more"
                    _steps.append(step)
                    if kind == "commit":
                        _steps.append(["cpu", step[2], step[2], time.thread_time(), 0])

        return traced

    in_flight = SettleWriter.in_flight

    def counted_in_flight(self: Any) -> Any:
        _settles[0] += 1
        return in_flight(self)

    SettleWriter.in_flight = counted_in_flight  # type: ignore[method-assign]
    join_flight = getattr(SettleWriter, "join_flight", None)  # a tree that groups on the loop
    if join_flight is not None:

        def counted_join_flight(self: Any) -> bool:
            joined = join_flight(self)
            _settles[0] += joined  # False: the call goes on to settle_rows, counted there
            return bool(joined)

        SettleWriter.join_flight = counted_join_flight  # type: ignore[method-assign]
    SettleWriter._take = log("take", SettleWriter._take, lambda g: len(g[0]))  # type: ignore[method-assign]
    SqlUnitOfWork.settle_reads_many = log("reads", SqlUnitOfWork.settle_reads_many)  # type: ignore[method-assign]
    SqlUnitOfWork.commit = log("commit", SqlUnitOfWork.commit)  # type: ignore[method-assign]
    # a tree whose writer answers in a step of its own and sends the next group's reads with
    # a commit (branch pipecommit's, reverted): those too
    for owner, name, kind in ((SettleWriter, "_answer", "answer"),
                              (SqlUnitOfWork, "commit_then_reads", "commit")):  # fmt: skip
        if hasattr(owner, name):
            setattr(owner, name, log(kind, getattr(owner, name)))


def _sample() -> None:
    """Every second: each thread's CPU (``_threads0["tids"]``, by thread id: a thread that
    has ended keeps its last figure, as the pool's and the writer's do at the server's exit)."""
    while True:
        time.sleep(1.0)
        _threads0["tids"].update(_thread_cpu())


def _thread_cpu() -> dict[int, tuple[str, float]]:
    """This process's threads (``/proc/self/task/*/stat``): each one's kind and CPU seconds.
    The kinds: ``loop`` (the main thread: grpc aio's event loop), ``pool`` (the server's
    ``onestop_N`` workers), ``writer`` (the settle writer), ``other`` (the rest: grpc's C
    threads, the sealer)."""
    kinds = {threading.main_thread().native_id: "loop"}
    for t in threading.enumerate():
        if t.name.startswith("onestop_"):
            kinds[t.native_id] = "pool"
        elif t.name == "onestop-settle-writer":
            kinds[t.native_id] = "writer"
        elif t.name == "calltrace-sampler":
            kinds[t.native_id] = "sampler"
    from benchmarks.harness import stat_cpu

    out: dict[int, tuple[str, float]] = {}
    for d in Path("/proc/self/task").iterdir():
        try:
            cpu = sum(stat_cpu(d / "stat"))
        except OSError:  # the thread ended meanwhile
            continue
        tid = int(d.name)
        out[tid] = (kinds.get(tid, "other"), cpu)
    return out


def by_kind(tids: dict[Any, Any]) -> dict[str, float]:
    """``_thread_cpu``'s figures summed by kind."""
    out: dict[str, float] = {}
    for kind, cpu in tids.values():
        out[kind] = out.get(kind, 0.0) + cpu
    return out


#: a writer idle this long (seconds) waited out a pause of the benchmark (another contender's
#: round): that cycle is left out
_PAUSE = 0.05


def cycles(path: Path) -> dict[str, Any] | None:
    """The settle writer's cycle in one trace file (``_cycle``): a cycle is from one commit's
    end to the next's, cut into ``idle`` (a blocking take: no call queued), ``reads`` (a
    separate reads and locks trip, ``reads_pg`` its wait), ``commit`` (the writes and
    COMMIT's trip, with the next group's reads where they go with it; ``commit_pg`` its
    wait), ``answer`` (answering the callers, where measured) and ``python`` (the rest: the
    groups settled, their writes made); ``cpu`` the writer's CPU a cycle; medians, means
    and p99 in ms (cycles that began with a pause of the benchmark left out: ``_PAUSE``). The group sizes, and the server's CPU a Settle by thread kind. None: no
    group traced."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line]
    steps: list[list[Any]] = next((r["steps"] for r in rows if r["rpc"] == "steps"), [])
    sizes = [s[4] for s in steps if s[0] in ("take", "more")]
    ph: dict[str, list[float]] = {}
    cur: dict[str, float] | None = None
    start = cpu0 = 0.0
    for kind, t0, t1, pg, _ in steps:
        if kind == "cpu":
            if cur is not None and cur["idle"] < _PAUSE:
                cur["cycle"] = t1 - start
                cur["python"] = cur["cycle"] - sum(
                    v for k, v in cur.items() if k in ("idle", "reads", "commit", "answer")
                )
                cur["cpu"] = pg - cpu0
                for k, v in cur.items():
                    ph.setdefault(k, []).append(v)
            cur, start, cpu0 = {"idle": 0.0, "reads": 0.0, "commit": 0.0}, t1, pg
            continue
        if cur is None or kind == "more":
            continue
        key = "idle" if kind == "take" else kind
        cur[key] = cur.get(key, 0.0) + (t1 - t0)
        if kind in ("reads", "commit"):
            cur[kind + "_pg"] = cur.get(kind + "_pg", 0.0) + pg
    if not ph:
        return None
    out: dict[str, Any] = {
        "cycles": len(ph["cycle"]), "calls": sum(sizes), "groups": len(sizes),
        "size_mean": st.mean(sizes), "size_p50": pct([float(n) for n in sizes], 0.5),
        "size_max": max(sizes),
        "ms": {k: {"p50": pct(v, 0.5) * 1e3, "mean": st.mean(v) * 1e3, "p99": pct(v, 0.99) * 1e3}
               for k, v in sorted(ph.items())},
    }  # fmt: skip
    th = next((r for r in rows if r["rpc"] == "threads"), None)
    if th is not None and th["calls"]:
        b, a = th["before"], th["after"]
        out["cpu_us_a_settle"] = {
            k: (a.get(k, 0.0) - b.get(k, 0.0)) / th["calls"] * 1e6
            for k in sorted(a)
            if k != "sampler"
        }
    return out


def cycle_text(name: str, d: dict[str, Any] | None) -> str:
    """``cycles``' figures as lines."""
    if d is None:
        return f"{name}: no settle group traced"
    out = [f"{name}: {d['cycles']:,} cycles, {d['groups']:,} groups, {d['calls']:,} calls, size mean "
           f"{d['size_mean']:.2f} (p50 {d['size_p50']:.0f}, max {d['size_max']})"]  # fmt: skip
    out += [f"  {k:8s} p50 {v['p50']:6.2f}  mean {v['mean']:6.2f}  p99 {v['p99']:6.2f} ms"
            for k, v in d["ms"].items()]  # fmt: skip
    if "cpu_us_a_settle" in d:
        cpu = d["cpu_us_a_settle"]
        out.append("  server CPU a Settle by thread: " + ", ".join(
            f"{k} {v:,.0f} us" for k, v in cpu.items()) + f" (all {sum(cpu.values()):,.0f})")  # fmt: skip
    return "\n".join(out)


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
    seal, and how many start in a group (``group`` or more within ``within`` s); the seals'
    times (``seal``: wall and the sealer's CPU, ms) and the ``server`` time of the calls that
    overlap a seal and of the others (``by_seal``: count, p50, p99). None when no ``rpc``
    call went through the pool (an inline PreSettle is answered on the loop)."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line]
    seals = [(r["t0"], r["answer"]) for r in rows if r["rpc"] == "seal"]
    seal_cpu = [r["cpu"] for r in rows if r["rpc"] == "seal" and "cpu" in r]
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
    by_seal: dict[str, list[float]] = {"in": [], "out": []}
    for r, p in zip(calls, ph, strict=True):
        by_seal["in" if in_seal(r) else "out"].append(p["server"])
    return {
        "calls": len(calls), "seals": len(seals),
        "seal": {"wall_p50": pct([b - a for a, b in seals], 0.5) * 1e3,
                 "wall_max": max((b - a for a, b in seals), default=float("nan")) * 1e3,
                 "cpu_p50": pct(seal_cpu, 0.5) * 1e3},
        "by_seal": {k: {"calls": len(v), "p50": pct(v, 0.5) * 1e3, "p99": pct(v, 0.99) * 1e3}
                    for k, v in by_seal.items()},
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
    sl, bs = d["seal"], d["by_seal"]
    out.append(f"  seals: wall p50 {sl['wall_p50']:.1f} ms (max {sl['wall_max']:.1f}), the "
               f"sealer's CPU p50 {sl['cpu_p50']:.1f} ms; server time of the {bs['in']['calls']:,} "
               f"calls overlapping a seal p50 {bs['in']['p50']:.2f} / p99 {bs['in']['p99']:.2f} ms, "
               f"of the other {bs['out']['calls']:,} p50 {bs['out']['p50']:.2f} / p99 "
               f"{bs['out']['p99']:.2f} ms")  # fmt: skip
    return "\n".join(out)


def main(argv: list[str]) -> int:
    if argv[:1] == ["report"]:
        for p in argv[1:]:
            print(text(p, report(Path(p))))
            print(cycle_text(p, cycles(Path(p))))
        return 0
    out = Path(os.environ.get("ONESTOP_CALLTRACE", "."))
    atexit.register(install(out, sample=True))
    sys.argv = [sys.argv[0], *argv]
    runpy.run_module("benchmarks.echo_server", run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
