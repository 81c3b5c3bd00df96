"""benchmarks.pgdurable: the durable benchmark cluster runs the production settings of
adapters/store/postgresql.conf, durable, and its WAL is warmed (segments made and recycled
before any timed call, so no fresh 16 MB segment is zero-filled while commits wait)."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from benchmarks import pgdurable
from tests.pg import fresh_database, pg_url  # noqa: F401  (fixtures)


def test_production_settings_are_durable() -> None:
    s = pgdurable.production_settings()
    assert (s["fsync"], s["synchronous_commit"], s["full_page_writes"]) == ("on", "on", "on")
    assert pgdurable.size_bytes(s["min_wal_size"]) >= 64 * pgdurable.SEGMENT
    assert pgdurable.size_bytes(s["max_wal_size"]) > pgdurable.size_bytes(s["min_wal_size"])
    assert pgdurable.size_bytes("16MB") == 16 * 1024 * 1024


def test_a_line_that_is_not_a_setting_is_refused_by_number(tmp_path: Path) -> None:
    conf = tmp_path / "pg.conf"
    conf.write_text("# a comment\n\nfsync = on  # why\nshared_buffers 1GB\n")
    with pytest.raises(ValueError, match=r"pg\.conf:4: not a 'name = value' setting"):
        pgdurable.production_settings(conf)
    with pytest.raises(ValueError, match="'1 GB'"):
        pgdurable.size_bytes("1 GB")


@pytest.mark.postgres
def test_warm_wal_leaves_recycled_segments(pg_url: str) -> None:  # noqa: F811
    url = fresh_database(pg_url)
    engine = sa.create_engine(url)
    try:
        with engine.connect() as c:
            before = c.exec_driver_sql("SELECT pg_current_wal_lsn()").scalar()
    finally:
        engine.dispose()
    have, _ = pgdurable.warm_wal(url, 3)
    assert have >= 3
    engine = sa.create_engine(url)
    try:
        with engine.connect() as c:
            diff = sa.text("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), CAST(:b AS pg_lsn))")
            moved = c.execute(diff, {"b": before}).scalar()
    finally:
        engine.dispose()
    assert moved is not None
    assert moved >= 2 * pgdurable.SEGMENT  # three switches: the LSN two segments on at least
