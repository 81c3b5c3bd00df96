"""Durable Settle throughput with the audit ledger vs without it (not a test): paired,
interleaved rounds of ``grpc_bench``'s Settle load (8 clients, 100-item bills) against a
server on a fresh SQLite file (WAL, synchronous=FULL) from this tree and from a baseline tree
without the ledger (for example ``git archive <commit> | tar -x -C /tmp/base``).

    .venv/bin/python -m benchmarks.ledger_bench --baseline /tmp/base --rounds 3 --seconds 8
    .venv/bin/python -m benchmarks.ledger_bench --inprocess --rounds 10 --chunk 200

``--inprocess``: no gRPC and one thread, so the ledger's own cost (event built, canonical
JSON, hashed, inserted; the sealer thread running) is less drowned in noise: chunks of Settle
calls on one SQLite file (synchronous=FULL), alternating with and without the ledger's
events (the use cases' ``ledger`` module replaced by a stub that appends nothing).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import grpc_bench as gb
from benchmarks import harness as H


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


def inprocess(rounds: int, chunk: int, items: int, interval: float = 1.0) -> int:
    import types

    from adapters.bootstrap import build
    from engine.bill import parse_bill_request
    from engine.service import settlewrite
    from engine.service.ledger import Sealer

    with tempfile.TemporaryDirectory(prefix="ledger-bench-") as d:
        work = Path(d)
        (work / "policies").mkdir()
        (work / "policies" / "chain.yaml").write_text(gb.CHAIN)
        (work / "registry.json").write_text(json.dumps(gb.persons()))
        app = build(f"sqlite:///{work / 'onestop.db'}", work / "policies", work / "registry.json")
        assert app.ledger is not None
        # 0: seal only at the end (no early seal of a backlog either)
        sealer = Sealer(app.ledger, interval) if interval else Sealer(app.ledger, 3600.0, 1 << 62)
        sealer.start()
        real = settlewrite.ledger
        off = types.SimpleNamespace(**{
            name: (lambda *a, **k: None) for name in dir(real) if not name.startswith("_")
        })  # fmt: skip
        bills = [parse_bill_request(gb.bill(0, f"p{k}", items)) for k in range(8)]
        rates: dict[str, list[float]] = {"without ledger": [], "with ledger": []}
        n = 0
        print(f"load average at start: {os.getloadavg()}", flush=True)
        try:
            for r in range(rounds + 1):  # round 0 warms up
                for mode in H.in_turn(["without ledger", "with ledger"], r):
                    # the module swapped for a do-nothing namespace: the benchmark's switch
                    settlewrite.ledger = real if mode == "with ledger" else off  # type: ignore[assignment]
                    t0 = time.perf_counter()
                    for _ in range(chunk):
                        n += 1
                        b = bills[n % 8].model_copy(update={"id": f"b{n}"})
                        app.service.settle(f"r{n}", b)
                    if r:
                        rates[mode].append(chunk / (time.perf_counter() - t0))
        finally:
            settlewrite.ledger = real
            sealer.stop()
        report, pending = app.ledger.verify()
        print(f"load average at end: {os.getloadavg()}; ledger ok={report.ok} "
              f"events={report.events} pending={pending}")  # fmt: skip
        app.close()
    _summary(rates)
    return 0


def _summary(rates: dict[str, list[float]]) -> None:
    base, led = statistics.median(rates["without ledger"]), statistics.median(rates["with ledger"])
    pairs = [b / a for a, b in zip(rates["without ledger"], rates["with ledger"], strict=True)]
    print(
        f"median settles/s: without {base:.1f}, with {led:.1f}: ratio {led / base:.3f} "
        f"(per-round ratios {', '.join(f'{p:.3f}' for p in pairs)})"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--baseline", type=Path, help="tree without the ledger")
    ap.add_argument("--inprocess", action="store_true", help="in-process chunks (see above)")
    ap.add_argument("--seal-interval", type=float, default=1.0, help="in-process sealer")
    ap.add_argument("--chunk", type=int, default=200, help="settles per in-process chunk")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--items", type=int, default=100)
    ns = ap.parse_args(argv)
    if ns.inprocess:
        return inprocess(ns.rounds, ns.chunk, ns.items, ns.seal_interval)
    if ns.baseline is None:
        ap.error("--baseline DIR (a tree without the ledger) or --inprocess")
    trees = {"without ledger": ns.baseline.resolve(), "with ledger": gb.ROOT}
    rates: dict[str, list[float]] = {k: [] for k in trees}
    print(f"load average at start: {os.getloadavg()}", flush=True)
    for r in range(ns.rounds):
        for name, tree in H.in_turn(trees.items(), r):
            t0 = time.time()
            row = run_one(tree, ns.clients, ns.seconds, ns.items)
            rates[name].append(row["per_s"])
            print(
                f"round {r} {name}: {row['per_s']:.1f} settles/s p50 {row['p50_ms']:.1f} ms "
                f"p99 {row['p99_ms']:.1f} ms ({time.time() - t0:.0f} s) {row.get('verify', '')}",
                flush=True,
            )
    print(f"load average at end: {os.getloadavg()}")
    _summary(rates)
    return 0


if __name__ == "__main__":
    sys.exit(main())
