"""The ledger's seal by itself on a throwaway durable PostgreSQL cluster (not a test): rounds
of ``--settles`` Settles in process (grpc_bench's bills, 8 persons), each followed by one
``LedgerService.seal``, timed: wall, the sealing thread's CPU, the cluster's CPU (every
process of the cluster: the sealer's backend, the WAL writer, ...) and the WAL it wrote
(``pg_current_wal_lsn()`` before and after). With ``--old DIR`` the same rounds run from a
baseline tree too, each round in both trees in turn (``harness.in_turn``), each tree in its own
process and cluster.

    .venv/bin/python -m benchmarks.seal_probe --old /tmp/base --rounds 6 --settles 800
"""

from __future__ import annotations

import argparse
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


def _cluster_cpu(root: Path) -> float:
    """CPU seconds of the cluster's postmaster and its children (``/proc/PID/schedstat``'s
    time on a CPU, in ns: the tick-based figures of ``stat`` are 10 ms steps)."""
    pid = int((root / "data" / "postmaster.pid").read_text().split()[0])
    total = 0
    for p in [pid, *_children(pid)]:
        try:
            total += int(Path(f"/proc/{p}/schedstat").read_text().split()[0])
        except OSError:
            continue
    return total / 1e9


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def one(rounds: int, settles: int) -> None:
    """Runs in the tree on PYTHONPATH: prints one JSON line per round."""
    import sqlalchemy as sa

    from adapters.bootstrap import build
    from engine.bill import parse_bill_request

    cluster, create_database = gb.postgres_durable()
    assert cluster is not None, "no PostgreSQL server binaries"
    cluster.start()
    try:
        url = create_database(cluster.url(), "seal")
        with tempfile.TemporaryDirectory(prefix="seal-probe-") as d:
            work = Path(d)
            (work / "policies").mkdir()
            (work / "policies" / "chain.yaml").write_text(gb.CHAIN)
            (work / "registry.json").write_text(json.dumps(gb.persons()))
            app = build(url, work / "policies", work / "registry.json")
            assert app.ledger is not None
            probe = sa.create_engine(url)
            bills = [parse_bill_request(gb.bill(0, f"p{k}", 100)) for k in range(8)]
            n = 0

            def lsn() -> int:
                with probe.connect() as c:
                    q = "SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint"
                    return int(c.exec_driver_sql(q).scalar_one())

            root = Path(cluster.root)
            for r in range(rounds + 1):  # round 0 warms up
                for _ in range(settles):
                    n += 1
                    app.service.settle(f"r{n}", bills[n % 8].model_copy(update={"id": f"b{n}"}))
                pending = app.ledger.pending()
                w0, p0, c0, t0 = lsn(), _cluster_cpu(root), time.thread_time(), time.perf_counter()
                made = app.ledger.seal()
                t1, c1 = time.perf_counter(), time.thread_time()
                p1, w1 = _cluster_cpu(root), lsn()
                if r:
                    print(json.dumps({
                        "events": pending, "blocks": len(made), "wall_ms": (t1 - t0) * 1e3,
                        "cpu_ms": (c1 - c0) * 1e3, "pg_cpu_ms": (p1 - p0) * 1e3,
                        "wal_kb": (w1 - w0) / 1024,
                    }), flush=True)  # fmt: skip
            report, pending = app.ledger.verify()
            assert report.ok and pending == 0, (report, pending)
            print(json.dumps({"verified": report.events}), flush=True)
            probe.dispose()
            app.close()
    finally:
        cluster.stop()


def _run(tree: Path, rounds: int, settles: int) -> list[dict[str, Any]]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.seal_probe", "--one", "--rounds", str(rounds),
         "--settles", str(settles)],
        cwd=tree, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    rows = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    return [r for r in rows if "wall_ms" in r]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--old", type=Path, help="a baseline tree, run in turn with this one")
    ap.add_argument("--rounds", type=int, default=4, help="seals a process (after a warm-up)")
    ap.add_argument("--repeat", type=int, default=3, help="processes a tree")
    ap.add_argument("--settles", type=int, default=800, help="Settles before each seal")
    ap.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    ns = ap.parse_args(argv)
    if ns.one:
        one(ns.rounds, ns.settles)
        return 0
    trees = {"this": gb.ROOT} | ({} if ns.old is None else {"old": ns.old.resolve()})
    rows: dict[str, list[dict[str, Any]]] = {k: [] for k in trees}
    print(f"load average at start: {os.getloadavg()}", flush=True)
    for r in range(ns.repeat):
        for name, tree in H.in_turn(list(trees.items()), r):
            got = _run(tree, ns.rounds, ns.settles)
            rows[name] += got
            print(
                f"{name}: "
                + "; ".join(
                    f"{g['events']} ev {g['wall_ms']:.0f} ms wall, {g['cpu_ms']:.0f} cpu, "
                    f"{g['pg_cpu_ms']:.0f} pg, {g['wal_kb']:.0f} kB WAL"
                    for g in got
                ),
                flush=True,
            )
    print(f"load average at end: {os.getloadavg()}")
    for name, got in rows.items():
        print(
            name
            + ": "
            + ", ".join(
                f"{k} {min(g[k] for g in got):.1f} / {statistics.median(g[k] for g in got):.1f}"
                for k in ("wall_ms", "cpu_ms", "pg_cpu_ms", "wal_kb")
            )
            + " (min / median)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
