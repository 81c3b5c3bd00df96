"""Engines and migrations for the SQL store: URLs, SQLite pragmas, Alembic upgrades."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from adapters.store.urls import UNSUPPORTED

MIGRATIONS = Path(__file__).parent.parent / "migrations"
BUSY_TIMEOUT_S = 30.0
_MIGRATION_LOCK_KEY = 0x6F6E6573746F70  # pg_advisory_xact_lock key ("onestop")


def normalize_url(url: str | sa.URL) -> sa.URL:
    if isinstance(url, str):
        if url.startswith("postgres://"):
            url = "postgresql://" + url[len("postgres://") :]
        url = sa.make_url(url)
    u = url
    if u.drivername == "postgresql":
        u = u.set(drivername="postgresql+psycopg")
    return u


def _is_memory(u: sa.URL) -> bool:
    return u.get_backend_name() == "sqlite" and (
        u.database in (None, "", ":memory:") or "mode=memory" in str(u)
    )


def make_engine(url: str | sa.URL) -> sa.Engine:
    """An engine set up for the store: SQLite in WAL mode with a busy timeout and foreign keys
    on, its driver in autocommit mode (the store issues BEGIN itself); PostgreSQL via psycopg."""
    u = normalize_url(url)
    backend = u.get_backend_name()
    if backend == "sqlite":
        if _is_memory(u):
            raise ValueError("make_engine needs a database file; SqlStore maps sqlite:// to one")
        if u.database:
            Path(u.database).parent.mkdir(parents=True, exist_ok=True)
        sync = str(u.query.get("synchronous", "full")).lower()
        if sync not in ("off", "normal", "full", "extra"):
            raise ValueError(f"synchronous={sync!r}: use off, normal, full or extra")
        u = u.difference_update_query(["synchronous"])
        engine = sa.create_engine(
            u,
            connect_args={
                "check_same_thread": False,
                "isolation_level": None,  # autocommit driver: BEGIN is ours
                "timeout": BUSY_TIMEOUT_S,
            },
            pool_size=10,
            max_overflow=20,
            hide_parameters=True,  # an error's text never carries person data
        )

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            # FULL (default): a committed settlement survives a power cut, not only a crash
            cur.execute(f"PRAGMA synchronous={sync.upper()}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
            cur.close()

        return engine
    if backend == "postgresql":
        # LIFO: the connection returned last is handed out next, so units of work one after
        # another run on one backend (its caches, prepared statements and the driver's
        # objects warm) instead of going round every pooled connection in turn; a Settle's
        # thread CPU in process -6 to -17 %, PostgreSQL's -4 to -8 % (benchmarks/README.md)
        return sa.create_engine(
            u, pool_size=10, max_overflow=20, hide_parameters=True, pool_use_lifo=True
        )
    raise ValueError(f"store URL {u.render_as_string(hide_password=True)!r}: {UNSUPPORTED}")


@contextmanager
def migration_transaction(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A connection in a transaction that no other migrating process can enter at once."""
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_MIGRATION_LOCK_KEY)))
        try:
            yield conn
        except BaseException:
            conn.rollback()
            raise
        conn.commit()


def alembic_config() -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    """Run the Alembic migrations up to ``revision`` in one transaction."""
    from alembic import command

    cfg = alembic_config()
    with migration_transaction(engine) as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
