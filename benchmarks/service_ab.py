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
  processes), the load average before and after each run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics as st
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks import grpc_bench as G
from benchmarks import harness as H
from benchmarks import treeserver

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--store", choices=("postgres", "sqlite"), default="sqlite")
    ap.add_argument("--old", type=Path, help="another source tree to serve from (e.g. main's)")
    ap.add_argument("--rpcs", default="PreSettle,Echo", help="of PreSettle, Settle, Echo, Check")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--items", type=int, default=100)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--also", action="append", default=[], metavar="NAME=OPTIONS",
                    help='another contender: this tree with these serve options, e.g. '
                    'p2="--processes 2" (repeatable)')  # fmt: skip
    ap.add_argument("--no-new", action="store_true", help="leave out this tree's one process")
    ap.add_argument("--json", type=Path, default=ROOT / "benchmarks/out/service_ab.json")
    ns = ap.parse_args(argv)
    rpcs = ns.rpcs.split(",")
    m = H.machine()
    print(H.machine_line(m), flush=True)
    contenders = treeserver.contenders(ns.old, [] if ns.no_new else [("new", "")], ns.also)
    cluster, create_database = treeserver.durable_cluster(ns.store)
    servers: dict[str, Any] = {}
    runs: dict[str, list[dict[str, Any]]] = {}
    try:
        if cluster is not None:
            cluster.start()
        with tempfile.TemporaryDirectory(prefix="onestop-sab-") as tmp:
            for name, tree, extra in contenders:
                url, settings = treeserver.store_of(cluster, create_database, Path(tmp), name)
                if not servers:
                    print(settings, flush=True)
                servers[name] = G.start_server(
                    url, Path(tmp) / name, ns.workers, tree=tree, extra=extra, children=8,
                    module="benchmarks.echo_server",
                )  # fmt: skip
            for r in range(-1, ns.rounds):
                for rpc in rpcs:
                    for name, _, _ in contenders:
                        proc, target = servers[name]
                        row = asyncio.run(G.load(target, rpc, ns.clients, ns.seconds, ns.items,
                                                 f"{name}{rpc}r{r}", proc.pid))  # fmt: skip
                        what = "warm-up" if r < 0 else f"round {r + 1}/{ns.rounds}"
                        print(f"  {what} {name} {rpc} x{ns.clients}: {row['per_s']:.0f}/s p50 "
                              f"{row['p50_ms']:.1f} ms p99 {row['p99_ms']:.1f} ms, server CPU/call "
                              f"{row['server_cpu_us']:.0f} us (load {row['load_before']:.2f}->"
                              f"{row['load_after']:.2f})", flush=True)  # fmt: skip
                        if r >= 0:
                            runs.setdefault(f"{name} {rpc}", []).append(row)
            for proc, _ in servers.values():
                G.stop_server(proc)
    finally:
        for proc, _ in servers.values():
            if proc.poll() is None:
                proc.kill()
        if cluster is not None:
            cluster.stop()
    print(f"\n{ns.store}, {ns.clients} clients, {ns.rounds} rounds of {ns.seconds:g} s")
    print("| contender | rpc | calls/s min / median / max | p50 ms | p99 ms | server CPU/call us "
          "(median; min) | load first -> last (max) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    out = {}
    for key, rows in runs.items():
        xs = [x["per_s"] for x in rows]
        lat = [v for x in rows for v in x["lat"]]
        cpu = [x["server_cpu_us"] for x in rows]
        d = {
            "min": min(xs), "median": st.median(xs), "max": max(xs),
            "p50_ms": G.pct(lat, 0.5) * 1e3, "p99_ms": G.pct(lat, 0.99) * 1e3,
            "server_cpu_us": st.median(cpu), "server_cpu_us_min": min(cpu),
            "load_first": rows[0]["load_before"], "load_last": rows[-1]["load_after"],
            "load_max": max(max(x["load_before"], x["load_after"]) for x in rows),
        }  # fmt: skip
        out[key] = d
        name, rpc = key.split(" ")
        print(f"| {name} | {rpc} | {d['min']:,.0f} / {d['median']:,.0f} / {d['max']:,.0f} | "
              f"{d['p50_ms']:.1f} | {d['p99_ms']:.1f} | {d['server_cpu_us']:,.0f}; "
              f"{d['server_cpu_us_min']:,.0f} | {d['load_first']:.2f} -> {d['load_last']:.2f} "
              f"({d['load_max']:.2f}) |")  # fmt: skip
    H.save(ns.json, {"machine": m, "store": ns.store, "rows": out, "load_at_end": os.getloadavg()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
