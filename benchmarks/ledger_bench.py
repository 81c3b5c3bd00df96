"""Durable Settle throughput with the audit ledger vs without it (not a test): paired,
interleaved rounds of ``grpc_bench``'s Settle load (8 clients, 100-item bills) against a
server on a fresh SQLite file (WAL, synchronous=FULL) from this tree and from a baseline tree
without the ledger (for example ``git archive <commit> | tar -x -C /tmp/base``).

    .venv/bin/python -m benchmarks.ledger_bench --baseline /tmp/base --rounds 3 --seconds 8
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import grpc_bench as gb


def run_one(tree: Path, clients: int, seconds: float, items: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ledger-bench-") as d:
        work = Path(d)
        url = f"sqlite:///{work / 'onestop.db'}"
        root = gb.ROOT
        gb.ROOT = tree  # the server runs from this tree
        old = os.environ.get("PYTHONPATH")
        os.environ["PYTHONPATH"] = str(tree)
        try:
            proc, target = gb.start_server(url, work, workers=8)
        finally:
            gb.ROOT = root
            if old is None:
                os.environ.pop("PYTHONPATH", None)
            else:
                os.environ["PYTHONPATH"] = old
        try:
            row = asyncio.run(gb.load(target, "Settle", clients, seconds, items, "s"))
        finally:
            gb.stop_server(proc)
        if (tree / "engine" / "ledger.py").exists():  # the ledger holds every settlement
            out = subprocess.run(
                [sys.executable, "-m", "adapters.cli.main", "ledger", "verify", "--db", url],
                cwd=tree, capture_output=True, text=True, check=False,
            )  # fmt: skip
            row["verify"] = out.stdout.strip()
        return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--baseline", type=Path, required=True, help="tree without the ledger")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--items", type=int, default=100)
    ns = ap.parse_args(argv)
    trees = {"without ledger": ns.baseline.resolve(), "with ledger": gb.ROOT}
    rates: dict[str, list[float]] = {k: [] for k in trees}
    print(f"load average at start: {os.getloadavg()}", flush=True)
    for r in range(ns.rounds):
        order = list(trees.items()) if r % 2 == 0 else list(reversed(trees.items()))
        for name, tree in order:
            t0 = time.time()
            row = run_one(tree, ns.clients, ns.seconds, ns.items)
            rates[name].append(row["per_s"])
            print(
                f"round {r} {name}: {row['rate']:.1f} settles/s p50 {row['p50_ms']:.1f} ms "
                f"p99 {row['p99_ms']:.1f} ms ({time.time() - t0:.0f} s) {row.get('verify', '')}",
                flush=True,
            )
    print(f"load average at end: {os.getloadavg()}")
    base, led = statistics.median(rates["without ledger"]), statistics.median(rates["with ledger"])
    pairs = [b / a for a, b in zip(rates["without ledger"], rates["with ledger"], strict=True)]
    print(
        f"median settles/s: without {base:.1f}, with {led:.1f}: ratio {led / base:.3f} "
        f"(per-round ratios {', '.join(f'{p:.3f}' for p in pairs)})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
