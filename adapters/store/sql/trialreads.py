"""Reads for a trial settlement (PreSettle) on SQLite without a pooled connection per call.

A trial reads the registry, the person's and household's year accounts and the hard budgets'
use, and writes nothing. Through ``SqlStore.uow`` each trial checked a connection out of
SQLAlchemy's pool, issued BEGIN, its SELECTs, then ROLLBACK twice (the unit of work's and the
pool's reset on check-in): ~8 % of a PreSettle's server CPU (benchmarks/README.md, gRPC).
Here each thread keeps one driver connection (made by the store's engine, so with its
pragmas; detached from the pool) and a trial's reads run on it in one deferred transaction
(``BEGIN`` ... ``ROLLBACK``: one snapshot, as before); sqlite3 keeps each SELECT prepared on
the connection. The reads are the repositories' own (``Registry``, ``Accounts``, ``Funds``), on
a ``SqlUnitOfWork`` whose ``run`` uses the kept connection; writing through it is refused.

A thread's connection also keeps what its trials read (``KeptReads``: the rows of each
statement and parameters), valid while ``PRAGMA data_version`` stays the same: SQLite changes
that figure on a connection whenever any *other* connection (another thread's, another
process's) has committed since, and this connection writes nothing. Each trial asks it first
thing inside its ``BEGIN`` (the figure is then that of the trial's snapshot); the same figure
as when the kept rows were read means the database is still as they were read, so they are
the trial's snapshot's rows: a trial repeating the last trials' reads runs three statements
(``BEGIN``, the pragma, ``ROLLBACK``), not one per read, and takes the account-years the
last trials built from them (``Accounts.keep_current``); callers keep answers built from
them beside them (``TrialUnitOfWork.kept``: the packed stream's ``accounts_many``). Any other
figure drops them all. (Commits through this process's pool are another connection's too:
they move it.)

PostgreSQL's trials keep their reads under the same rule in its terms (``snapshotkeep``: the
snapshot's figure), on the connection their thread holds (``SqlStore.held``), in autocommit.
The kept rows, account-years and answers are ``keptreads``'s on both.
"""

from __future__ import annotations

import sqlite3
import threading
from typing import TYPE_CHECKING, Any, cast

import sqlalchemy as sa

from adapters.store.sql.keptreads import KeptReads
from adapters.store.sql.uow import SqlUnitOfWork

if TYPE_CHECKING:
    from adapters.store.sql.store import SqlStore


_NO_READS = KeptReads()  # (a trial unit of work's before its transaction begins: never used)


class KeptConnections:
    """One driver connection per thread, made on first use; ``close`` closes them all."""

    def __init__(self, store: SqlStore):
        self.store = store
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def reads(self) -> KeptReads:
        """This thread's kept rows (those of its connection)."""
        kept: KeptReads | None = getattr(self._local, "reads", None)
        if kept is None:
            kept = self._local.reads = KeptReads()
        return kept

    def get(self) -> sqlite3.Connection:
        raw = getattr(self._local, "conn", None)
        if raw is None:
            fairy = self.store.engine.raw_connection()  # the engine's connect event: pragmas
            fairy.detach()  # ours from now on: never returned to the pool
            raw = cast(sqlite3.Connection, fairy.dbapi_connection)  # a SQLite store's engine
            assert raw is not None
            self._local.conn = raw
            with self._lock:
                self._all.append(raw)
        return raw

    def uow(self) -> TrialUnitOfWork:
        """This thread's trial unit of work, made once and handed out again once the last
        trial has left it (``__exit__``): not eight repositories and a reference cycle for the
        collector on every trial. One handed out and not yet left (a trial inside a trial, a
        caller without ``with``) makes the next a fresh one."""
        u: TrialUnitOfWork | None = getattr(self._local, "uow", None)
        if u is None or u.busy:
            u = TrialUnitOfWork(self.store, self)
            if getattr(self._local, "uow", None) is None:
                self._local.uow = u
        u.busy = True
        return u

    def close(self) -> None:
        with self._lock:
            conns, self._all = self._all, []
        for c in conns:
            c.close()
        self._local = threading.local()


class TrialUnitOfWork(SqlUnitOfWork):
    """A unit of work that only reads, on this thread's kept connection, in one snapshot."""

    def __init__(self, store: SqlStore, kept: KeptConnections):
        super().__init__(store)
        self._kept = kept
        self._raw: sqlite3.Connection | None = None
        self._reads = _NO_READS  # the thread's, once the trial's transaction has begun
        self.busy = False  # handed out and not yet left (``KeptConnections.uow``)

    def __exit__(self, *exc: object) -> None:
        try:
            self.rollback()
        finally:
            self.busy = False

    def kept(self) -> dict[Any, Any]:
        """The answers kept with this thread's kept rows (``KeptReads.answers``), begun in
        this trial's snapshot: dropped with the rows when another connection commits, so a
        caller's answer built from this version's reads stands while it is found here. Each
        caller keeps its answers under its own key, bounded by it (one answer each)."""
        try:
            if self._raw is None:
                self._start()
        except sqlite3.Error as err:
            raise sa.exc.DBAPIError.instance(
                "BEGIN", (), err, sqlite3.Error, hide_parameters=True
            ) from err
        return self._reads.answers

    def _start(self) -> sqlite3.Connection:
        """The trial's transaction on the thread's connection, its kept reads checked."""
        raw = self._kept.get()
        raw.execute("BEGIN")
        self._raw = raw
        # inside the trial's transaction: what is kept is dropped if another connection
        # committed since it was read (the pragma's figure moved)
        self._reads = self._kept.reads().at(raw.execute("PRAGMA data_version").fetchone()[0])
        self.accounts.keep_current(self._reads.accounts)
        return raw

    def run(self, sql: str, params: Any = (), write: bool = False) -> Any:
        if write:
            raise RuntimeError("a trial's unit of work writes nothing")
        raw = self._raw
        try:
            if raw is None:
                raw = self._start()
            got = self._reads.rows_for(sql, params, lambda: raw.execute(sql, params).fetchall())
            # (sqlite3 takes ``:name`` parameters as written; a list parameter: read, not kept)
            return raw.execute(sql, params) if got is None else got
        except sqlite3.Error as err:
            raise sa.exc.DBAPIError.instance(
                sql, params, err, sqlite3.Error, hide_parameters=True
            ) from err

    def _connection(self, write: bool = False) -> sa.Connection:
        raise RuntimeError("a trial's unit of work reads through run() only")

    def commit(self) -> None:
        self.rollback()  # nothing was written

    def rollback(self) -> None:
        raw, self._raw = self._raw, None
        if raw is not None and raw.in_transaction:  # what it read is as of the kept version
            self._reads.keep_accounts(self.accounts.seen())
        self._reads = _NO_READS
        self.accounts.forget()
        if raw is not None and raw.in_transaction:  # (SQLite may have ended it on an error)
            raw.execute("ROLLBACK")
