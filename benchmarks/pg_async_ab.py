"""Whether a Settle's PostgreSQL trips awaited on the event loop would cost less than the
thread pool hop (issue 13 target 7; not a test): a Settle-shaped call, ``--clients`` at once
on one asyncio loop, against a throwaway durable cluster (fsync, synchronous_commit,
full_page_writes on), in two forms, interleaved rounds:

- ``pool``: the call in the thread pool as the server runs a Settle now (by the servicers'
  own ``_Base.run``: one ``call_soon_threadsafe`` back), its two trips on psycopg's blocking
  connection, one a pool thread;
- ``async``: the call on the loop, its two trips awaited on psycopg's ``AsyncConnection``
  (no pool hop, no hand-over of the GIL between threads; each wait a reader on the loop).

A call: ``--python`` us of Python (thread CPU), then BEGIN and a row-locking read in one
pipeline, the Python again, then an insert (a 2 kB text), an update and COMMIT in one
pipeline, then half the Python: the shape of a Settle (its handler's ~600 us of Python, its
two trips). Each client locks its own row (no lock waits). Per round: this process's CPU
a call (every thread: the loop, the pool, libpq), the cluster's CPU a call (from /proc, 10 ms
ticks) and calls/s; min and median over the rounds, and the rounds where ``async`` was lower.

    .venv/bin/python -m benchmarks.pg_async_ab [--rounds 7 --calls 150 --python 250]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from adapters.grpc.servicers import _Base
from benchmarks import harness as H
from benchmarks.grpc_bench import proc_cpu
from benchmarks.pgdurable import postgres_durable

_READ = "SELECT v FROM acc WHERE k = %s FOR NO KEY UPDATE"
_INSERT = "INSERT INTO rows_ (id, k, payload) VALUES (%s, %s, %s)"
_UPDATE = "UPDATE acc SET v = v + 1 WHERE k = %s"
_PAYLOAD = "x" * 2000
_ids = itertools.count()


def _busy(us: float) -> None:
    """``us`` microseconds of this thread's CPU in Python."""
    end = time.thread_time() + us / 1e6
    x = 0
    while time.thread_time() < end:
        for i in range(50):
            x += i


def _sync_call(conn: Any, k: str, us: float) -> int:
    _busy(us)
    with conn.pipeline():
        conn.execute("BEGIN")
        cur = conn.execute(_READ, (k,))
    v = int(cur.fetchone()[0])
    _busy(us)
    with conn.pipeline():
        conn.execute(_INSERT, (f"r{next(_ids)}", k, _PAYLOAD))
        conn.execute(_UPDATE, (k,))
        conn.execute("COMMIT")
    _busy(us / 2)
    return v


async def _async_call(conn: Any, k: str, us: float) -> int:
    _busy(us)
    async with conn.pipeline():
        await conn.execute("BEGIN")
        cur = await conn.execute(_READ, (k,))
    v = int((await cur.fetchone())[0])
    _busy(us)
    async with conn.pipeline():
        await conn.execute(_INSERT, (f"r{next(_ids)}", k, _PAYLOAD))
        await conn.execute(_UPDATE, (k,))
        await conn.execute("COMMIT")
    _busy(us / 2)
    return v


async def _run(ns: argparse.Namespace, url: str, pm: int) -> None:
    import psycopg

    n = ns.clients
    with psycopg.connect(url, autocommit=True) as c:
        c.execute("CREATE TABLE acc (k text PRIMARY KEY, v bigint)")
        c.execute("CREATE TABLE rows_ (id text PRIMARY KEY, k text, payload text)")
        c.execute("CREATE INDEX ON rows_ (k)")
        for i in range(n):
            c.execute("INSERT INTO acc VALUES (%s, 0)", (f"k{i}",))
    sync = [psycopg.connect(url, autocommit=True) for _ in range(n)]
    aio = [await psycopg.AsyncConnection.connect(url, autocommit=True) for _ in range(n)]
    executor = ThreadPoolExecutor(n)
    hop = _Base(None, executor)  # type: ignore[arg-type]  # only its pool hop is used

    async def pool(i: int) -> None:
        for _ in range(ns.calls):
            await hop.run(_sync_call, sync[i], f"k{i}", ns.python)

    async def on_loop(i: int) -> None:
        for _ in range(ns.calls):
            await _async_call(aio[i], f"k{i}", ns.python)

    forms = {"pool": pool, "async": on_loop}
    got: dict[str, list[tuple[float, float, float]]] = {k: [] for k in forms}
    for r in range(ns.rounds + 1):  # round 0: the warm-up, not counted
        for name, client in H.in_turn(forms.items(), r):
            load = H.load1()
            c0, p0, w0 = time.process_time(), proc_cpu(pm), time.perf_counter()
            await asyncio.gather(*(client(i) for i in range(n)))
            c1, p1, w1 = time.process_time(), proc_cpu(pm), time.perf_counter()
            calls = n * ns.calls
            fig = ((c1 - c0) / calls * 1e6, (p1 - p0) / calls * 1e6, calls / (w1 - w0))
            if r:
                got[name].append(fig)
            print(f"round {r}{' (warm-up)' if not r else ''} {name}: process CPU {fig[0]:.0f} "
                  f"us, PostgreSQL {fig[1]:.0f} us a call, {fig[2]:.0f} calls/s "
                  f"(load {load:.2f})", flush=True)  # fmt: skip
    executor.shutdown()
    for s in sync:
        s.close()
    for a in aio:
        await a.close()
    py = ns.python
    print(f"\n{n} clients x {ns.calls} calls x {ns.rounds} rounds, Python {py:.0f} + {py:.0f} + "
          f"{py / 2:.0f} us a call")  # fmt: skip
    print("| form | process CPU us a call min / median | PostgreSQL CPU us a call min / median "
          "| calls/s min / median / max |")  # fmt: skip
    print("|---|---|---|---|")
    for name, figs in got.items():
        cpu, pgc, rate = zip(*figs, strict=True)
        print(f"| {name} | {min(cpu):.0f} / {statistics.median(cpu):.0f} | {min(pgc):.0f} / "
              f"{statistics.median(pgc):.0f} | {min(rate):.0f} / {statistics.median(rate):.0f} / "
              f"{max(rate):.0f} |")  # fmt: skip
    lower = sum(a[0] < p[0] for a, p in zip(got["async"], got["pool"], strict=True))
    print(f"async: process CPU lower in {lower} of {ns.rounds} rounds")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--calls", type=int, default=150, help="a client's calls a round")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--python", type=float, default=250.0, help="us of Python a step")
    ns = ap.parse_args(argv)
    print(H.machine_line(H.machine()), flush=True)
    cluster, create_database = postgres_durable()
    if cluster is None:
        raise SystemExit("no PostgreSQL server binaries")
    cluster.start()
    try:
        url = create_database(cluster.url(), "asyncab").replace("+psycopg", "")
        pm = int((cluster.data / "postmaster.pid").read_text().split()[0])
        asyncio.run(_run(ns, url, pm))
    finally:
        cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
