"""The benchmarks' durable PostgreSQL cluster: a throwaway cluster as tests/pg.py starts one,
run with the production settings of ``adapters/store/postgresql.conf`` (fsync,
synchronous_commit and full_page_writes on; its buffers, WAL and checkpoint sizes), and its
WAL **warmed** to the steady state of a server that has run a while: ``min_wal_size`` of
segments created once and recycled by a checkpoint before any timed call.

Why warm: a fresh cluster has no WAL segment to reuse, so under load it creates one every
~1.5 s (a Settle writes ~13 kB of WAL) and zero-fills it (16 MB written and synced) while every
commit waits: all 8 in-flight Settles stalled 50-60 ms together at each one (a per-call trace,
benchmarks/README.md, 2026-12-04). A production server recycles the segments of past
checkpoints instead (up to ``min_wal_size`` and more, by its own estimate), so that stall is a
fresh cluster's, not a running store's. Past the warmed segments a run creates new ones, as a
server whose WAL outgrows its steady state would.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "adapters/store/postgresql.conf"
SEGMENT = 16 * 1024 * 1024  # initdb's default wal_segment_size
_LINE = re.compile(r"^\s*([a-z_]+)\s*=\s*([^#\s]+)\s*(#.*)?$")
_SIZE = re.compile(r"^(\d+)(kB|MB|GB|TB)$")
_UNITS = {"kB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}


def production_settings(path: Path = CONF) -> dict[str, str]:
    """``name = value`` lines of the production settings file (comments and blanks skipped);
    any other line is refused with its line number."""
    out: dict[str, str] = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = _LINE.match(line)
        if m is None:
            raise ValueError(f"{path}:{n}: not a 'name = value' setting: {line!r}")
        out[m.group(1)] = m.group(2)
    return out


def size_bytes(value: str) -> int:
    """A PostgreSQL size setting (``1GB``, ``16MB``) in bytes."""
    m = _SIZE.match(value)
    if m is None:
        raise ValueError(f"not a PostgreSQL size with a unit (kB, MB, GB, TB): {value!r}")
    return int(m.group(1)) * _UNITS[m.group(2)]


def warm_wal(admin_url: str, segments: int) -> tuple[int, float]:
    """Create ``segments`` WAL segments (a row written, the segment switched, each time), then
    checkpoint twice so the checkpointer recycles them for reuse; (the segments now in
    ``pg_wal``, seconds taken)."""
    import sqlalchemy as sa

    t0 = time.perf_counter()
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as c:
            c.exec_driver_sql("CREATE TABLE onestop_walwarm (x int)")
            for _ in range(segments):
                c.exec_driver_sql("INSERT INTO onestop_walwarm VALUES (1)")
                c.exec_driver_sql("SELECT pg_switch_wal()")
            c.exec_driver_sql("DROP TABLE onestop_walwarm")
            c.exec_driver_sql("CHECKPOINT")
            c.exec_driver_sql("CHECKPOINT")
            have = int(c.exec_driver_sql("SELECT count(*) FROM pg_ls_waldir()").scalar() or 0)
    finally:
        engine.dispose()
    return have, time.perf_counter() - t0


def postgres_durable(warm: bool = True, extra: dict[str, str] | None = None) -> Any:
    """(a cluster to ``start()``, ``create_database``), or (None, None) without server
    binaries. ``start()`` runs the production settings (and ``extra`` ones, e.g.
    ``benchmarks/pgstats.py``'s) and, with ``warm``, warms the WAL (printing how many segments
    and how long)."""
    sys.path.insert(0, str(ROOT))
    from tests import pg

    settings = {**production_settings(), **(extra or {})}

    class Durable(pg.Cluster):
        def start(self) -> None:
            saved = dict(pg._SETTINGS)
            pg._SETTINGS.update(settings)
            try:
                super().start()
            finally:
                pg._SETTINGS.clear()
                pg._SETTINGS.update(saved)
            if warm:
                want = size_bytes(settings["min_wal_size"]) // SEGMENT
                have, took = warm_wal(self.url(), want)
                print(f"PostgreSQL WAL warmed: {have} segments in pg_wal ({want} made and "
                      f"recycled by a checkpoint) in {took:.1f} s", flush=True)  # fmt: skip

    bindir = pg.find_bindir()
    return (Durable(bindir), pg.create_database) if bindir else (None, None)


def postgres_settings(url: str) -> str:
    """The cluster's settings that the figures depend on, read back with ``SHOW``."""
    import sqlalchemy as sa

    names = ("fsync", "synchronous_commit", "full_page_writes", "wal_sync_method",
             "shared_buffers", "min_wal_size", "max_wal_size", "server_version")  # fmt: skip
    eng = sa.create_engine(url)
    try:
        with eng.connect() as c:
            got = {k: c.exec_driver_sql(f"SHOW {k}").scalar() for k in names}
    finally:
        eng.dispose()
    return "PostgreSQL, read back with SHOW: " + ", ".join(f"{k}={v}" for k, v in got.items())
