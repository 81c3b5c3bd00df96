"""What the A/B service benchmarks (``service_ab``, ``groupcommit_bench``) share: their
contenders (another tree, this tree with serve options) and one durable store each (a SQLite
file, or a database of one throwaway durable PostgreSQL cluster). The servers themselves are
``grpc_bench.start_server(..., tree=, extra=)``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks import grpc_bench as G

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


def durable_cluster(store: str) -> tuple[Any, Any]:
    """(cluster, create_database) for ``postgres`` (fsync on; not started), (None, None) for
    ``sqlite``."""
    if store == "sqlite":
        return None, None
    cluster, create_database = G.postgres_durable()
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
    return url, f"{G.postgres_settings(url)}; {G.disk(str(cluster.root))}"
