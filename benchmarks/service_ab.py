"""PreSettle, Settle and the bare call (Echo) A/B: servers of two source trees (or two settings
of one) measured interleaved in one run (issue 13, targets 6 and 7; not a test).

    .venv/bin/python -m benchmarks.service_ab --old /tmp/old --store sqlite --rpcs PreSettle,Echo
    .venv/bin/python -m benchmarks.service_ab --old /tmp/old --store postgres --rpcs Settle
    .venv/bin/python -m benchmarks.service_ab --also 'p2=--processes 2' --rpcs PreSettle,Echo

- Contenders: ``old`` (the tree ``--old``, e.g. ``git archive`` of main; left out without it),
  ``new`` (this tree, one process) and any ``--also`` NAME=OPTIONS (this tree with other serve
  options, e.g. ``--processes 2``, the default on this 2-core machine). Each is
  ``benchmarks/echo_server.py`` (``onestop serve`` as shipped plus the benchmark's Echo
  handler) run from its tree on its own store: a durable SQLite file (``synchronous=full``) or
  a database of one throwaway durable PostgreSQL cluster (as ``groupcommit_bench``).
- Rounds (``benchmarks/harness.py`` rules): a warm-up run of every (contender, rpc) pair, then
  ``--rounds`` rounds of all pairs in turn, 8 clients (``--clients``); calls/s min / median /
  max, p50 / p99 over every timed call, server CPU a call (the server process and its child
  processes) and the part of it on their main threads (the event loop: grpc aio's per-call
  work, the (de)serializers, the interceptor; the rest is the thread pool's handlers, the
  ledger sealer and grpc's C threads), the load average before and after each run.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from benchmarks import grpc_bench as G
from benchmarks import harness as H
from benchmarks import pgstats, treeserver

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--store", choices=("postgres", "sqlite"), default="sqlite")
    ap.add_argument("--old", type=Path, help="another source tree to serve from (e.g. main's)")
    ap.add_argument(
        "--rpcs",
        default="PreSettle,Echo",
        help="of PreSettle, Settle, Echo, Check, SleepN (N ms in a pool: echo_server)",
    )
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--items", type=int, default=100)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--also", action="append", default=[], metavar="NAME=OPTIONS",
                    help='another contender: this tree with these serve options, e.g. '
                    'p2="--processes 2" (repeatable)')  # fmt: skip
    ap.add_argument("--no-new", action="store_true", help="leave out this tree's one process")
    ap.add_argument("--trace", type=Path, metavar="DIR",
                    help="serve through benchmarks/calltrace.py (trees that have it) and report "
                    "where each contender's slowest calls waited; the traces are kept in DIR")  # fmt: skip
    ap.add_argument("--pg-stats", action="store_true",
                    help="PostgreSQL: load pg_stat_statements and report each contender's "
                    "statements and PostgreSQL processes' CPU a commit and a call over its "
                    "timed rounds (benchmarks/pgstats.py; it costs some CPU itself)")  # fmt: skip
    ap.add_argument("--json", type=Path, default=ROOT / "benchmarks/out/service_ab.json")
    ns = ap.parse_args(argv)
    rpcs = ns.rpcs.split(",")
    m = H.machine()
    print(H.machine_line(m), flush=True)
    contenders = treeserver.contenders(ns.old, [] if ns.no_new else [("new", "")], ns.also)
    runs: dict[str, list[dict[str, Any]]] = {}

    if ns.trace is not None:
        ns.trace.mkdir(parents=True, exist_ok=True)
        os.environ["ONESTOP_CALLTRACE"] = str(ns.trace.resolve())

    def start(url: str, work: Path, tree: Path, extra: list[str]) -> Any:
        traced = ns.trace is not None and (tree / "benchmarks/calltrace.py").exists()
        module = "benchmarks.calltrace" if traced else "benchmarks.echo_server"
        return G.start_server(url, work, ns.workers, tree=tree, extra=extra, children=8,
                              module=module)  # fmt: skip

    pids: dict[str, int] = {}
    stats = ns.pg_stats and ns.store == "postgres"
    pg: dict[str, Any] = {"settings": pgstats.SETTINGS} if stats else {}
    seen: dict[str, dict[str, Any]] = {}  # contender rpc -> pgstats' delta over its timed rounds
    with treeserver.serving(ns.store, contenders, start, "onestop-sab-", pids, pg) as servers:
        if stats:
            pgstats.install(pg["admin_url"])
        for r in range(-1, ns.rounds):
            what = "warm-up" if r < 0 else f"round {r + 1}/{ns.rounds}"
            for rpc in rpcs:
                for name, _, _ in H.in_turn(contenders, r):
                    db, before = f"bench_{name}", None  # treeserver.store_of's database
                    if stats and r >= 0:
                        before = pgstats.snapshot(pg["admin_url"], db, pids["postmaster"])
                    row = treeserver.measure(servers[name], rpc, ns.clients, ns.seconds, ns.items,
                                             f"{name}{rpc}r{r}", what, f"{name} {rpc} x{ns.clients}",
                                             pids.get("postmaster"))  # fmt: skip
                    if r >= 0:
                        runs.setdefault(f"{name} {rpc}", []).append(row)
                    if before is not None:
                        after = pgstats.snapshot(pg["admin_url"], db, pids["postmaster"])
                        key = f"{name} {rpc}"
                        seen[key] = pgstats.add(seen.get(key, {}), pgstats.delta(before, after))
        for proc, _, _ in servers.values():
            G.stop_server(proc)
    print(f"\n{ns.store}, {ns.clients} clients, {ns.rounds} rounds of {ns.seconds:g} s")
    print("| contender | rpc | calls/s min / median / max | p50 ms | p99 ms | server CPU/call us "
          "(median; min) | of it the event loop (median) | PostgreSQL CPU/call us (median) | "
          "client CPU/call us (median) | load first -> last (max) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    out = {}
    for key, rows in runs.items():
        d = out[key] = treeserver.summary(rows)
        name, rpc = key.split(" ")
        print(f"| {name} | {rpc} | {d['min']:,.0f} / {d['median']:,.0f} / {d['max']:,.0f} | "
              f"{d['p50_ms']:.1f} | {d['p99_ms']:.1f} | {d['server_cpu_us']:,.0f}; "
              f"{d['server_cpu_us_min']:,.0f} | {d['loop_cpu_us']:,.0f} | "
              f"{d['postgres_cpu_us']:,.0f} | {d['client_cpu_us']:,.0f} | "
              f"{d['load_first']:.2f} -> {d['load_last']:.2f} "
              f"({d['load_max']:.2f}) |")  # fmt: skip
    for key, d in seen.items():
        print("\n" + pgstats.report(key, d, sum(x["calls"] for x in runs[key])))
    if ns.trace is not None:
        from benchmarks import calltrace

        for name, (proc, _, _) in servers.items():
            f = ns.trace / f"calltrace-{proc.pid}.jsonl"
            for rpc in (r for r in rpcs if r in ("PreSettle", "Settle")):
                if f.exists():
                    print(calltrace.text(f"{name} {rpc} ({f})", calltrace.report(f, rpc)))
            if f.exists() and "Settle" in rpcs:
                print(calltrace.cycle_text(f"{name} writer", calltrace.cycles(f)))
    H.save(ns.json, {"machine": m, "store": ns.store, "rows": out, "load_at_end": os.getloadavg()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
