"""What a benchmark's PostgreSQL spends, per statement and per process (``service_ab
--pg-stats``; issue 13, target 7): where its CPU a Settle goes, and how much of it is a group
commit's (a transaction's) rather than a call's.

- Statements: ``pg_stat_statements`` (contrib; ``SETTINGS`` loads it with planning tracked and
  the statements inside functions counted, ``track = all``: a function's own statements then
  appear both nested and inside its caller's time) of one database over a run: calls, plans,
  planning and execution ms, rows, WAL bytes, shared buffers hit or read.
- Processes: the CPU (user + system, ``/proc``) of each of the cluster's processes over the run,
  by role as its command line names it (``walwriter``, ``checkpointer``, a database's backend).
- Commits: the ``COMMIT`` statements among them (each group commit is one; so is each seal of
  the ledger sealer, each read transaction that ends with one); without any,
  ``pg_stat_database.xact_commit`` (which a backend reports up to a second late).

The report gives each figure per transaction and per call of the run. Not for production: the
extension's bookkeeping and planning's timing cost some CPU themselves.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

#: the cluster settings ``service_ab --pg-stats`` adds to the production ones
SETTINGS = {
    "shared_preload_libraries": "pg_stat_statements",
    "pg_stat_statements.track": "all",
    "pg_stat_statements.track_planning": "on",
    "pg_stat_statements.max": "5000",
}

_STATEMENTS = (
    "SELECT s.query, s.calls, s.plans, s.total_plan_time, s.total_exec_time, s.rows, "
    "s.wal_bytes, s.shared_blks_hit + s.shared_blks_read FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid "
    "WHERE d.datname = %s"
)
#: statement text shown up to this many characters
WIDTH = 90
_SPACE = re.compile(r"\s+")


def install(admin_url: str) -> None:
    """``CREATE EXTENSION pg_stat_statements`` in the admin database (its view shows all)."""
    import sqlalchemy as sa

    eng = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with eng.connect() as c:
            c.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    finally:
        eng.dispose()


def role(cmdline: str) -> str:
    """A PostgreSQL process's role from its command line (``postgres: walwriter`` ->
    ``walwriter``; a backend ``postgres: user db [local] idle`` -> ``backend db``); the
    postmaster's own (no ``postgres:`` prefix) -> ``postmaster``."""
    text = cmdline.replace("\0", " ").strip()
    if not text.startswith("postgres: "):
        return "postmaster"
    words = text[len("postgres: ") :].split()
    if len(words) >= 3 and (words[2].startswith("[") or ":" in words[2] or words[2][:1].isdigit()):
        return f"backend {words[1]}"
    return " ".join(w for w in words if not w.startswith("(")) or "?"


def processes(postmaster: int) -> dict[int, tuple[str, float, float]]:
    """pid -> (role, user CPU seconds, system CPU seconds so far) of the postmaster and its
    children; a backend's role names its pid too (a server's connections are long-lived)."""
    from benchmarks.grpc_bench import _descendants
    from benchmarks.harness import stat_cpu

    out: dict[int, tuple[str, float, float]] = {}
    for p in _descendants(postmaster):
        try:
            user, system = stat_cpu(f"/proc/{p}/stat")
            cmd = Path(f"/proc/{p}/cmdline").read_text()
        except OSError:  # the process ended meanwhile
            continue
        name = role(cmd)
        out[p] = (f"{name} {p}" if name.startswith("backend") else name, user, system)
    return out


def snapshot(admin_url: str, database: str, postmaster: int) -> dict[str, Any]:
    """The counters of ``database`` (statements, commits) and the cluster's processes now."""
    import sqlalchemy as sa

    eng = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with eng.connect() as c:
            rows = c.exec_driver_sql(_STATEMENTS, (database,)).all()
            commits = c.exec_driver_sql(
                "SELECT xact_commit FROM pg_stat_database WHERE datname = %s", (database,)
            ).scalar()
    finally:
        eng.dispose()
    stmts: dict[str, list[float]] = {}
    for q, *nums in rows:  # one text may have several entries (users, top-level or nested)
        acc = stmts.setdefault(q, [0.0] * len(nums))
        for i, v in enumerate(nums):
            acc[i] += float(v or 0)
    return {"statements": stmts, "commits": int(commits or 0), "procs": processes(postmaster)}


def delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """What happened between two snapshots: the statements that ran (calls, plans, plan ms,
    exec ms, rows, WAL bytes, buffers hit or read), the commits (``COMMIT`` statements; else
    ``xact_commit``'s), and the user and system CPU seconds by role (a process that ended
    meanwhile is lost; one that started counts from zero)."""
    stmts = {}
    for q, a in after["statements"].items():
        b = before["statements"].get(q, [0.0] * len(a))
        d = [x - y for x, y in zip(a, b, strict=True)]
        if d[0] > 0:
            stmts[q] = d
    commits = int(sum(v[0] for q, v in stmts.items() if q.strip().upper() in ("COMMIT", "END")))
    cpu: dict[str, list[float]] = {}
    for pid, (name, usr, sys_) in after["procs"].items():
        prev = before["procs"].get(pid)
        u0, s0 = prev[1:] if prev and prev[0] == name else (0.0, 0.0)
        acc = cpu.setdefault(name, [0.0, 0.0])
        acc[0] += usr - u0
        acc[1] += sys_ - s0
    return {"statements": stmts, "commits": commits or after["commits"] - before["commits"],
            "cpu": cpu}  # fmt: skip


def add(total: dict[str, Any], d: dict[str, Any]) -> dict[str, Any]:
    """``total`` with the delta ``d`` added (an empty ``total`` is ``d``'s copy)."""
    out = {"statements": dict(total.get("statements", {})), "commits": total.get("commits", 0)}
    out["cpu"] = dict(total.get("cpu", {}))
    for q, v in d["statements"].items():
        prev = out["statements"].get(q, [0.0] * len(v))
        out["statements"][q] = [x + y for x, y in zip(prev, v, strict=True)]
    for k, (usr, sys_) in d["cpu"].items():
        u0, s0 = out["cpu"].get(k, (0.0, 0.0))
        out["cpu"][k] = [u0 + usr, s0 + sys_]
    out["commits"] += d["commits"]
    return out


def report(title: str, d: dict[str, Any], calls: int, top: int = 16) -> str:
    """Markdown tables of a delta (its busiest statements by plan + exec time, its CPU by
    role), each figure also per commit and per call (``calls``: the run's calls)."""
    n, g = max(calls, 1), max(d["commits"], 1)
    lines = [f"{title}: {calls} calls, {d['commits']} commits ({calls / g:.2f} calls a commit)",
             "| statement | runs/commit | plans/run | plan us/commit | exec us/run | "
             "exec us/commit | exec us/call | rows/run | buffers/run | WAL B/call |",
             "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    busy = sorted(d["statements"].items(), key=lambda kv: -(kv[1][2] + kv[1][3]))
    for q, (c, plans, plan, ex, rows, wal, blocks) in busy[:top]:
        text = _SPACE.sub(" ", q)[:WIDTH].replace("|", "/")
        k = max(c, 1)
        lines.append(f"| `{text}` | {c / g:.2f} | {plans / k:.2f} | {plan * 1e3 / g:,.0f} | "
                     f"{ex * 1e3 / k:,.0f} | {ex * 1e3 / g:,.0f} | {ex * 1e3 / n:,.0f} | "
                     f"{rows / k:.2f} | {blocks / k:.1f} | {wal / n:,.0f} |")  # fmt: skip
    plan = sum(v[2] for v in d["statements"].values())
    lines += ["", f"planning, all statements: {plan * 1e3 / g:,.0f} us a commit, "
              f"{plan * 1e3 / n:,.0f} us a call", "",
              "| PostgreSQL process | CPU us/commit (user + system) | CPU us/call |",
              "|---|---|---|"]  # fmt: skip
    for name, (usr, sys_) in sorted(d["cpu"].items(), key=lambda kv: -sum(kv[1])):
        if usr + sys_ > 0:
            lines.append(f"| {name} | {(usr + sys_) * 1e6 / g:,.0f} ({usr * 1e6 / g:,.0f} + "
                         f"{sys_ * 1e6 / g:,.0f}) | {(usr + sys_) * 1e6 / n:,.0f} |")  # fmt: skip
    usr, sys_ = (sum(v[i] for v in d["cpu"].values()) for i in (0, 1))
    lines.append(f"| all | {(usr + sys_) * 1e6 / g:,.0f} ({usr * 1e6 / g:,.0f} + "
                 f"{sys_ * 1e6 / g:,.0f}) | {(usr + sys_) * 1e6 / n:,.0f} |")  # fmt: skip
    return "\n".join(lines)
