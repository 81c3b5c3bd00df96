"""benchmarks.pgstats (``service_ab --pg-stats``): a PostgreSQL process's role from its command
line, the statements' and processes' deltas between two snapshots, and the report's figures
a commit and a call; on a real cluster, a snapshot sees a database's statements, commits and
the cluster's processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from benchmarks import grpc_bench as G
from benchmarks import pgdurable, pgstats


def test_role_of_a_command_line() -> None:
    assert pgstats.role("postgres: walwriter ") == "walwriter"
    assert pgstats.role("postgres: checkpointer ") == "checkpointer"
    assert pgstats.role("postgres: autovacuum launcher ") == "autovacuum launcher"
    assert pgstats.role("postgres: postgres bench_new [local] idle") == "backend bench_new"
    assert pgstats.role("postgres: app db1 127.0.0.1(5432) SELECT") == "backend db1"
    assert pgstats.role("/usr/lib/postgresql/15/bin/postgres\0-D\0/tmp/x\0") == "postmaster"


def _snap(stmts: dict[str, list[float]], commits: int, procs: dict[int, Any]) -> dict[str, Any]:
    return {"statements": stmts, "commits": commits, "procs": procs}


def test_delta_add_and_report_give_figures_a_commit_and_a_call() -> None:
    # calls, plans, plan ms, exec ms, rows, WAL bytes, buffers
    a = _snap({"INSERT x": [10, 1, 0.5, 2.0, 10, 1000, 30], "SELECT idle": [5, 0, 0, 1, 5, 0, 5]},
              100, {1: ("walwriter", 1.0, 0.5), 2: ("backend db 2", 2.0, 1.0),
                    3: ("backend db 3", 9.0, 9.0)})  # fmt: skip
    b = _snap({"INSERT x": [40, 1, 0.5, 8.0, 40, 4000, 120], "SELECT idle": [5, 0, 0, 1, 5, 0, 5],
               "COMMIT": [10, 0, 0, 0.1, 0, 0, 0]},
              107, {1: ("walwriter", 1.01, 0.51), 2: ("backend db 2", 2.03, 1.01),
                    4: ("backend db 4", 0.002, 0.0)})  # fmt: skip
    d = pgstats.delta(a, b)
    assert d["commits"] == 10  # the COMMIT statements (xact_commit, reported late, says 7)
    assert pgstats.delta(a, {**b, "statements": a["statements"]})["commits"] == 7  # none: 7
    assert set(d["statements"]) == {"INSERT x", "COMMIT"}  # the idle one ran no call
    assert d["statements"]["INSERT x"] == pytest.approx([30, 0, 0, 6.0, 30, 3000, 90])
    # per role: user and system seconds; pid 3 ended (lost), pid 4 started (from zero)
    assert d["cpu"]["walwriter"] == pytest.approx([0.01, 0.01])
    assert d["cpu"]["backend db 2"] == pytest.approx([0.03, 0.01])
    assert d["cpu"]["backend db 4"] == pytest.approx([0.002, 0.0])
    assert "backend db 3" not in d["cpu"]
    total = pgstats.add(pgstats.add({}, d), d)
    assert total["commits"] == 20
    assert total["statements"]["INSERT x"][0] == 60
    assert total["cpu"]["walwriter"] == pytest.approx([0.02, 0.02])
    text = pgstats.report("new Settle", d, calls=30)
    assert "new Settle: 30 calls, 10 commits (3.00 calls a commit)" in text
    # INSERT x: 3 runs a commit, 200 us a run, 600 us a commit and 200 a call, 100 B WAL a call
    assert "| `INSERT x` | 3.00 | 0.00 | 0 | 200 | 600 | 200 | 1.00 | 3.0 | 100 |" in text
    # the writer's backend: 40 ms over 10 commits = 4,000 us (3,000 user + 1,000 system)
    assert "| backend db 2 | 4,000 (3,000 + 1,000) | 1,333 |" in text
    assert "| all | 6,200 (4,200 + 2,000) | 2,067 |" in text


@pytest.mark.postgres
def test_snapshot_of_a_cluster_with_the_extension() -> None:
    extra = {**pgstats.SETTINGS, "shared_buffers": "16MB", "fsync": "off",
             "synchronous_commit": "off", "min_wal_size": "32MB"}  # fmt: skip
    cluster, create_database = pgdurable.postgres_durable(warm=False, extra=extra)
    if cluster is None:
        pytest.skip("no PostgreSQL server binaries")
    try:
        cluster.start()
        admin = cluster.url()
        url = create_database(admin, "bench_x")
        pgstats.install(admin)
        postmaster = int((cluster.data / "postmaster.pid").read_text().split()[0])
        before = pgstats.snapshot(admin, "bench_x", postmaster)
        eng = sa.create_engine(url)
        try:
            with eng.begin() as c:
                c.exec_driver_sql("CREATE TABLE t (x int)")
            for i in range(3):
                with eng.begin() as c:
                    c.exec_driver_sql("INSERT INTO t VALUES (%s)", (i,))
            after = pgstats.snapshot(admin, "bench_x", postmaster)
        finally:
            eng.dispose()
    finally:
        cluster.stop()
    d = pgstats.delta(before, after)
    assert d["commits"] >= 4
    insert = [v for q, v in d["statements"].items() if q.startswith("INSERT INTO t")]
    assert insert and insert[0][0] == 3 and insert[0][4] == 3 and insert[0][5] > 0
    roles = {r for r, *_ in after["procs"].values()}
    assert "postmaster" in roles and "checkpointer" in roles
    assert any(r.startswith("backend bench_x ") for r in roles)  # the engine's connection


def test_a_process_that_ends_while_listed_is_skipped_not_raised(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a backend may end between its parent's listing and the scan of its /proc/PID/task
    # (service_ab crashed so): its children are then none
    def gone(self: Path, pattern: str) -> Any:
        raise FileNotFoundError(2, "No such file or directory", str(self))

    monkeypatch.setattr(Path, "glob", gone)
    assert G._descendants(os.getpid()) == [os.getpid()]
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    monkeypatch.undo()
    assert pgstats.processes(proc.pid) == {}  # one that ended before: nothing
