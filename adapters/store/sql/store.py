"""The store: ``SqlStore(url)`` migrates the database to the newest schema (Alembic,
``migrations/``) and hands out units of work. On PostgreSQL a thread keeps the connection of its
first unit of work for the next ones (``SqlStore.held``)."""

from __future__ import annotations

import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from adapters.store.sql.connect import _is_memory, make_engine, normalize_url, upgrade
from adapters.store.sql.rows import Dialect
from adapters.store.sql.snapshotkeep import SnapshotKeep, SnapshotTrial
from adapters.store.sql.uow import SqlUnitOfWork
from engine.funds import FundsFile, parse_funds
from engine.policy.load import parse_table
from engine.policy.model import PolicyTable

#: PostgreSQL: threads that keep a driver connection across their units of work at most, a
#: store (``SqlStore.held``): a server's worker threads (``onestop serve --workers``, 8), its
#: main thread (the warm-up) and the ledger's sealer, with room to spare; the pool holds 30
HELD_MAX = 12


def _to_pool(fairy: Any) -> None:
    """A held connection back to the pool (its driver out of autocommit, the pool's default),
    or invalidated if that fails."""
    try:
        fairy.dbapi_connection.autocommit = False
        fairy.close()
    except Exception:
        fairy.invalidate()


class SqlStore:
    def __init__(self, url: str, *, migrate: bool = True):
        self.url = normalize_url(url)
        self._tmp: str | None = None
        if _is_memory(self.url):  # one database for every connection: a throwaway file
            self._tmp = tempfile.mkdtemp(prefix="onestop-")
            self.url = self.url.set(database=str(Path(self._tmp) / "onestop.db"), query={})
        self.engine = make_engine(self.url)
        # make_engine makes no other dialect's engine
        self.dialect: Literal["sqlite", "postgresql"] = (
            "sqlite" if self.engine.dialect.name == "sqlite" else "postgresql"
        )
        self.sqlite = self.dialect == "sqlite"
        # SQLite: in-process writers queue here before BEGIN IMMEDIATE
        self.writer = threading.Lock() if self.sqlite else None
        self.x = Dialect(self.sqlite)
        self._tables: dict[int, PolicyTable] = {}
        self._tables_lock = threading.Lock()
        self._funds: dict[int, FundsFile] = {}
        self._kept: Any = None  # trialreads.KeptConnections, made on the first trial_uow
        # PostgreSQL: the trials' reads kept while nothing commits, shared by the process's
        # threads (``SnapshotTrial``)
        self.snapshots = SnapshotKeep()
        # PostgreSQL: each thread's driver connection, checked out once and kept across its
        # units of work (``held``)
        self._held = threading.local()
        self._held_by: list[tuple[threading.Thread, Any]] = []  # (thread, its connection)
        self._held_lock = threading.Lock()
        self.hold = True  # (False: every unit of work checks out of the pool, as before)
        if migrate:
            upgrade(self.engine)

    def __repr__(self) -> str:
        return f"SqlStore({self.url.render_as_string(hide_password=True)!r})"

    def uow(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self)

    def trial_uow(self) -> SqlUnitOfWork:
        """A unit of work for a trial's reads, kept while nothing commits: SQLite on a
        connection kept by this thread (``trialreads``); PostgreSQL on the thread's held
        connection, checked by the snapshot (``snapshotkeep``)."""
        if not self.sqlite:
            return SnapshotTrial(self)
        if self._kept is None:
            from adapters.store.sql.trialreads import KeptConnections

            with self._tables_lock:
                if self._kept is None:
                    self._kept = KeptConnections(self)
        return self._kept.uow()

    def held(self) -> Any:
        """PostgreSQL: this thread's pooled driver connection, checked out on its first unit
        of work and kept, in autocommit, across the next ones (issue 13 target 7: a
        checkout, a return with its reset and two autocommit flips were ~140 us of a durable
        Settle's thread CPU in place). None (the unit of work checks one out of the pool, as
        before) while a unit of work of this thread has it (one inside another), and for a
        thread beyond the first ``HELD_MAX`` alive (a server's worker threads hold theirs; a
        wider thread pool does not take the pool's connections for good; those of ended
        threads go back to the pool when a thread takes a place). A connection invalidated,
        or returned by a ``Connection`` made on it (``conn``), is replaced."""
        h = self._held
        if getattr(h, "busy", False) or not self.hold:
            return None
        f = getattr(h, "fairy", None)
        if f is None or not f.is_valid or f.dbapi_connection is None:
            me = threading.current_thread()
            with self._held_lock:  # a place taken first; the checkout may wait for the pool
                self._held_by = [(t, c) for t, c in self._held_by if t is not me]
                self._sweep()
                if len(self._held_by) >= HELD_MAX:
                    return None
                self._held_by.append((me, None))
            try:
                f = self.engine.raw_connection()
                try:
                    raw = f.dbapi_connection
                    assert raw is not None
                    raw.autocommit = True
                except BaseException:
                    f.close()
                    raise
            except BaseException:
                with self._held_lock:
                    self._held_by = [(t, c) for t, c in self._held_by if t is not me]
                raise
            h.fairy = f
            with self._held_lock:
                self._held_by = [(t, f if t is me else c) for t, c in self._held_by]
        h.busy = True
        return f

    def _sweep(self) -> None:
        """The held connections of threads that have ended, back to the pool."""
        alive = []
        for t, f in self._held_by:
            if t.is_alive():
                alive.append((t, f))
            elif f is not None and f.is_valid:
                _to_pool(f)
        self._held_by = alive

    def release(self, fairy: Any, keep: bool) -> None:
        """A unit of work is done with this thread's held connection; ``keep``: False once it
        went back to the pool (or is invalid): the next unit of work checks out another."""
        h = self._held
        h.busy = False
        if not keep and getattr(h, "fairy", None) is fairy:
            h.fairy = None
            with self._held_lock:
                self._held_by = [(t, c) for t, c in self._held_by if c is not fairy]

    def dispose(self) -> None:
        if self._kept is not None:
            self._kept.close()
        with self._held_lock:
            held, self._held_by = self._held_by, []
        for _, f in held:  # every thread's held connection, back to the pool to be closed
            if f is not None and f.is_valid:
                _to_pool(f)
        self._held = threading.local()
        self.engine.dispose()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> SqlStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.dispose()

    def table(self, version: int, text: str, source_name: str) -> PolicyTable:
        """The parsed table of a stored version (rows never change, so parsed once)."""
        with self._tables_lock:
            t = self._tables.get(version)
        if t is None:
            t = parse_table(text, source_name)
            with self._tables_lock:
                self._tables[version] = t
        return t

    def funds_file(self, version: int, text: str, source_name: str) -> FundsFile:
        """The parsed funds.yaml of a stored version (rows never change, so parsed once)."""
        with self._tables_lock:
            f = self._funds.get(version)
        if f is None:
            f = parse_funds(text, source_name)
            with self._tables_lock:
                self._funds[version] = f
        return f

    def insert(self, table: sa.Table) -> Any:
        return (pg_insert if self.dialect == "postgresql" else sqlite_insert)(table)

    def upsert(self, table: sa.Table) -> Any:
        stmt = self.insert(table)
        keys = [c.name for c in table.primary_key.columns]
        rest = {c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keys}
        return stmt.on_conflict_do_update(index_elements=keys, set_=rest)
