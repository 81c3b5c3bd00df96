"""Durable Settle on PostgreSQL (or SQLite, ``--store sqlite``), A/B: servers of two source trees (or two settings of one)
measured interleaved in one run (issue 13, target 7; not a test).

    .venv/bin/python -m benchmarks.groupcommit_bench --old /tmp/onestop-main   # main vs this tree
    .venv/bin/python -m benchmarks.groupcommit_bench --rounds 4 --seconds 5 --clients 1,8

- One throwaway PostgreSQL cluster, durable (``fsync``, ``synchronous_commit`` and
  ``full_page_writes`` on, read back with SHOW), as ``benchmarks/grpc_bench.py`` starts it;
  one database per contender.
- Contenders: ``old`` (``onestop serve`` run from the tree ``--old``, e.g. a ``git archive``
  of main; left out without it), ``off`` (this tree, ``--group-max 1``: each Settle its own
  transaction), ``group`` (this tree, ``--group-max 64``: group commit on, as shipped for
  SQLite; off by default on PostgreSQL since 2026-12-02) and any ``--also`` NAME=OPTIONS
  (this tree with other serve options). Each is one server
  process (``--processes``), ``--workers`` threads, the policy and 64 persons of grpc_bench.
- Rounds (``benchmarks/harness.py`` rules): a warm-up run of every (contender, clients) pair,
  then ``--rounds`` rounds of all pairs in turn; Settle calls/s min / median / max, p50 / p99
  over every timed call, server CPU per call, the load average before and after each run.
  Each client settles its own person's new bills (100 items) in a loop, as grpc_bench does.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from benchmarks import grpc_bench as G
from benchmarks import harness as H
from benchmarks import treeserver

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--store", choices=("postgres", "sqlite"), default="postgres")
    ap.add_argument("--old", type=Path, help="another source tree to serve from (e.g. main's)")
    ap.add_argument("--clients", default="8")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--items", type=int, default=100)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--processes", type=int, default=1)
    ap.add_argument("--also", action="append", default=[], metavar="NAME=OPTIONS",
                    help='another contender: this tree with these serve options, e.g. '
                    'group2="--group-writers 2" (repeatable)')  # fmt: skip
    ap.add_argument("--json", type=Path, default=ROOT / "benchmarks/out/groupcommit_bench.json")
    ns = ap.parse_args(argv)
    clients = [int(x) for x in ns.clients.split(",")]
    m = H.machine()
    print(H.machine_line(m), flush=True)
    # --also NAME=serve options of this tree, e.g. group4="--group-writers 4"
    own = [("off", "--group-max 1"), ("group", "--group-max 64")]
    contenders = treeserver.contenders(ns.old, own, ns.also)
    runs: dict[str, list[dict[str, Any]]] = {}

    def start(url: str, work: Path, tree: Path, extra: list[str]) -> Any:
        return G.start_server(url, work, ns.workers, ns.processes, tree=tree, extra=extra,
                              module="adapters.grpc.commands")  # fmt: skip

    with treeserver.serving(ns.store, contenders, start, "onestop-gcb-") as servers:
        for r in range(-1, ns.rounds):
            what = "warm-up" if r < 0 else f"round {r + 1}/{ns.rounds}"
            for c in clients:
                for name, _, _ in H.in_turn(contenders, r):
                    row = treeserver.measure(servers[name], "Settle", c, ns.seconds, ns.items,
                                             f"{name}{c}r{r}", what, f"{name:5s} Settle x{c}")  # fmt: skip
                    if r >= 0:
                        runs.setdefault(f"{name} x{c}", []).append(row)
        for proc, _, work in servers.values():
            G.stop_server(proc)
            groups = [ln for ln in (work / "server.log").read_text().splitlines()
                      if "settle writer stopped" in ln]  # fmt: skip
            if groups:
                print(f"  {work.name}: {groups[-1].split('groupcommit ')[-1]}", flush=True)
    print("\n| contender | clients | Settle/s min / median / max | p50 ms | p99 ms | server CPU/call us | load first -> last (max) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    out = {}
    for key, rows in runs.items():
        d = out[key] = treeserver.summary(rows)
        name, n_clients = key.split(" x")
        print(f"| {name} | {n_clients} | {d['min']:,.0f} / {d['median']:,.0f} / {d['max']:,.0f} | "
              f"{d['p50_ms']:.1f} | {d['p99_ms']:.1f} | {d['server_cpu_us']:,.0f} | "
              f"{d['load_first']:.2f} -> {d['load_last']:.2f} ({d['load_max']:.2f}) |")  # fmt: skip
    H.save(ns.json, {"machine": m, "rows": out, "load_at_end": os.getloadavg()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
