"""What the A/B service benchmarks (``service_ab``, ``groupcommit_bench``) share: their
contenders (another tree, this tree with serve options), one durable store each (a SQLite
file, or a database of one throwaway durable PostgreSQL cluster), a server each for the run
(``serving``: ``grpc_bench.start_server(..., tree=, extra=)``), the rounds' load and lines,
and the summary of a contender's rounds."""

from __future__ import annotations

import asyncio
import statistics as st
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks import grpc_bench as G
from benchmarks import pgdurable

ROOT = Path(__file__).resolve().parents[1]

Contender = tuple[str, Path, list[str]]  # name, source tree, serve options


def contenders(old: Path | None, own: list[tuple[str, str]], also: list[str]) -> list[Contender]:
    """``old`` (another tree, if given), this tree's ``own`` (NAME, serve options) and every
    ``--also`` NAME=OPTIONS."""
    out: list[Contender] = [] if old is None else [("old", old.resolve(), [])]
    for spec in [f"{n}={o}" for n, o in own] + also:
        name, _, args = spec.partition("=")
        out.append((name, ROOT, args.split()))
    return out


def durable_cluster(store: str, extra: dict[str, str] | None = None) -> tuple[Any, Any]:
    """(cluster, create_database) for ``postgres`` (fsync on; not started; ``extra``
    settings added), (None, None) for ``sqlite``."""
    if store == "sqlite":
        return None, None
    cluster, create_database = pgdurable.postgres_durable(extra=extra)
    if cluster is None:
        raise SystemExit("no PostgreSQL server binaries")
    return cluster, create_database


def store_of(cluster: Any, create_database: Any, tmp: Path, name: str) -> tuple[str, str]:
    """(the URL of contender ``name``'s durable store, its settings as read back and its disk)."""
    if cluster is None:
        (tmp / name).mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{tmp / name / 'onestop.db'}?synchronous=full"
        return url, f"{G.sqlite_settings(url)}; {G.disk(str(tmp))}"
    url = create_database(cluster.url(), f"bench_{name}")
    return url, f"{pgdurable.postgres_settings(url)}; {G.disk(str(cluster.root))}"


#: a contender's running server: (process, target, its work directory)
Server = tuple[subprocess.Popen[Any], str, Path]


@contextmanager
def serving(
    store: str,
    contenders: list[Contender],
    start: Callable[[str, Path, Path, list[str]], tuple[subprocess.Popen[Any], str]],
    prefix: str,
    pids: dict[str, int] | None = None,
    pg: dict[str, Any] | None = None,
) -> Iterator[dict[str, Server]]:
    """A server per contender, each on its own durable store: ``start(url, work, tree,
    extra)`` starts one. Stop them inside (``grpc_bench.stop_server``) to read their logs;
    any still running at the end is killed, and the PostgreSQL cluster stopped. ``pids``
    gets the cluster's postmaster pid (``"postmaster"``), for ``measure``'s cluster CPU.
    ``pg``: the cluster's ``"settings"`` to add; gets its ``"admin_url"``."""
    cluster, create_database = durable_cluster(store, (pg or {}).get("settings"))
    servers: dict[str, Server] = {}
    try:
        if cluster is not None:
            cluster.start()
            if pids is not None:
                pids["postmaster"] = int((cluster.data / "postmaster.pid").read_text().split()[0])
            if pg is not None:
                pg["admin_url"] = cluster.url()
        with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
            for name, tree, extra in contenders:
                url, settings = store_of(cluster, create_database, Path(tmp), name)
                if not servers:
                    print(settings, flush=True)
                work = Path(tmp) / name
                servers[name] = (*start(url, work, tree, extra), work)
            yield servers
    finally:
        for proc, _, _ in servers.values():
            if proc.poll() is None:
                proc.kill()
        if cluster is not None:
            cluster.stop()


def measure(server: Server, rpc: str, clients: int, seconds: float, items: int, tag: str,
            what: str, label: str, pg: int | None = None) -> dict[str, Any]:  # fmt: skip
    """One timed run of ``rpc`` at ``clients`` clients on ``server`` (``grpc_bench.load``),
    printed as a line: ``what`` (warm-up, round i/n), ``label`` (contender, rpc, clients).
    ``pg``: the PostgreSQL postmaster's pid, whose processes' CPU over the run (its warm-up
    calls included: one run at a time, so it is this server's) is ``postgres_cpu_us`` a
    call."""
    proc, target, _ = server
    pg0 = G.proc_cpu(pg)
    row: dict[str, Any] = asyncio.run(G.load(target, rpc, clients, seconds, items, tag, proc.pid))
    row["postgres_cpu_us"] = (G.proc_cpu(pg) - pg0) / max(row["calls"], 1) * 1e6
    print(f"  {what} {label}: {row['per_s']:.0f}/s p50 {row['p50_ms']:.1f} ms p99 "
          f"{row['p99_ms']:.1f} ms, server CPU/call {row['server_cpu_us']:.0f} us (event loop "
          f"{row['loop_cpu_us']:.0f}), PostgreSQL {row['postgres_cpu_us']:.0f} us, client "
          f"{row['client_cpu_us']:.0f} us (load "
          f"{row['load_before']:.2f}->{row['load_after']:.2f})", flush=True)  # fmt: skip
    return row


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """A contender's timed rounds: calls/s min / median / max, p50 / p99 over every call,
    server CPU a call (median, min) and its event loop's part (median: the main threads), the
    load first, last and highest."""
    xs = [x["per_s"] for x in rows]
    lat = [v for x in rows for v in x["lat"]]
    cpu = [x["server_cpu_us"] for x in rows]
    return {
        "min": min(xs), "median": st.median(xs), "max": max(xs),
        "p50_ms": G.pct(lat, 0.5) * 1e3, "p99_ms": G.pct(lat, 0.99) * 1e3,
        "server_cpu_us": st.median(cpu), "server_cpu_us_min": min(cpu),
        "loop_cpu_us": st.median(x["loop_cpu_us"] for x in rows),
        "postgres_cpu_us": st.median(x.get("postgres_cpu_us", float("nan")) for x in rows),
        "client_cpu_us": st.median(x["client_cpu_us"] for x in rows),
        "load_first": rows[0]["load_before"], "load_last": rows[-1]["load_after"],
        "load_max": max(max(x["load_before"], x["load_after"]) for x in rows),
    }  # fmt: skip
