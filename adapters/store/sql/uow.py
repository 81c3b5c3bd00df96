"""The unit of work: one database transaction on one pooled connection. Everything written
through it commits together or not at all; leaving it without ``commit`` rolls back."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa

from adapters.store.sql.accounts import Accounts
from adapters.store.sql.claims import Claims
from adapters.store.sql.connect import BUSY_TIMEOUT_S
from adapters.store.sql.funds import Funds
from adapters.store.sql.keptreads import kept_figure
from adapters.store.sql.ledger import Ledger
from adapters.store.sql.locks import (
    _ACCOUNT_KINDS,
    _LOCK,
    _LOCK_PERSON,
    _LOCK_PERSONS,
    _lock_params,
    _lock_read_keys,
)
from adapters.store.sql.pipeline import Pending, combined, send
from adapters.store.sql.policies import Policies
from adapters.store.sql.reconcile import ReconcileFacts
from adapters.store.sql.registry import PERSON_COLS, Registry
from adapters.store.sql.rows import pg_array
from adapters.store.sql.settlements import ACTIVE, Settlements
from engine.service.kepttrials import NotKept
from engine.service.ports import LockKey, LockOrderError, SettleReads, lock_order

if TYPE_CHECKING:
    from adapters.store.sql.store import SqlStore


#: a Settle's reads before its locks as one statement (one snapshot): the id of a settlement
#: stored under the request id, the id of the bill's active settlement, then the person's id
#: (NULL: not registered) and ``PERSON``'s columns, one row per tag
_SETTLE_READS = (
    "SELECT q.found, q.active, p.person_id, " + PERSON_COLS + " FROM (SELECT "
    "(SELECT settlement_id FROM settlements WHERE request_id = :rid) AS found, "
    "(" + ACTIVE + ") AS active) AS q "
    "LEFT OUTER JOIN persons p ON p.person_id = :pid "
    "LEFT OUTER JOIN person_tags t ON t.person_id = p.person_id ORDER BY t.position"
)


#: ``psycopg.pq.TransactionStatus.IDLE`` (no transaction open; psycopg not imported for SQLite)
_IDLE = 0


class SqlUnitOfWork:
    def __init__(self, store: SqlStore):
        self.s = store
        self.accounts = Accounts(self)
        self.settlements = Settlements(self)
        self.reconciliation = ReconcileFacts(self)
        self.registry = Registry(self)
        self.policies = Policies(self)
        self.ledger = Ledger(self)
        self.funds = Funds(self)
        self.claims = Claims(self)
        self._conn: sa.Connection | None = None
        # PostgreSQL: the pooled driver connection (SQLAlchemy's proxy of it), checked out
        # without a ``Connection`` around it: the hand-written statements (``run``, the
        # pipelines) use the driver, and a ``Connection`` on it is made only when ``conn``
        # asks for one (a checkout and return of a ``Connection``, its begin and commit, were
        # ~200 us of a Settle's thread CPU on a loaded machine)
        self._fairy: Any = None
        self._held = False  # the fairy is the thread's held connection (``SqlStore.held``)
        self._mode: Literal["", "read", "write"] = ""
        self._writer = False
        self._locked: set[LockKey] = set()
        # PostgreSQL: writes wait here and go to the server in one pipeline with the next read
        # or with COMMIT (one round trip for all of a settlement's writes and its commit)
        self._pending: list[Pending] = []
        self._flushes = 0  # pipelines sent (``together`` combines only what none has sent)
        # PostgreSQL: the locks held are those settle_reads took early (nothing written since)
        self._early = False
        # PostgreSQL: the write transaction's BEGIN, owed: sent first in the next pipeline
        self._begin = False

    def __enter__(self) -> SqlUnitOfWork:
        return self

    def __exit__(self, *exc: object) -> None:
        self.rollback()

    def conn(self, write: bool = False) -> sa.Connection:
        """The transaction's connection, for SQLAlchemy statements (pending writes sent
        first); ``write`` makes sure it may write (SQLite: BEGIN IMMEDIATE)."""
        self._ready(write)
        if self.s.sqlite:
            return self._connection(write)
        c = self._conn
        if c is None:  # PostgreSQL: a Connection on the driver connection checked out
            c = self._conn = sa.Connection(self.s.engine, self._fairy)
        if self._mode == "write" and not c.in_transaction():
            c.begin()  # its commit and rollback then reach the driver (ours do too)
        return c

    def _ready(self, write: bool = False) -> Any:
        """The driver connection, pending writes sent (with BEGIN: what runs on it next runs
        in the transaction); ``write`` as for ``conn``."""
        if write:
            self._early = False  # may write: the early locks are kept from here on
        raw = self._driver(write)
        if self._pending or self._begin:
            self._flush()
        return raw

    def _driver(self, write: bool = False) -> Any:
        """The driver connection of the transaction (made ready to write if ``write``)."""
        if self.s.sqlite:
            return self._connection(write).connection.dbapi_connection
        if kept_figure() is not None:  # the event loop: nothing it sends may block it
            raise NotKept("a driver connection under only_kept")
        f = self._fairy
        if f is None:
            try:
                f = self.s.held()
                self._held = f is not None
                if f is None:
                    f = self.s.engine.raw_connection()
                self._fairy = f
            except self.s.x.errors as err:
                raise sa.exc.DBAPIError.instance(
                    None, None, err, self.s.x.errors, hide_parameters=True
                ) from err
        # READ COMMITTED gives each statement its own snapshot, so reads before the first
        # write or lock run in autocommit (no BEGIN/ROLLBACK round trips); from then on one
        # transaction. The driver stays in autocommit and the transaction's BEGIN is ours,
        # owed until the next pipeline sends it before its statements: psycopg's own BEGIN
        # waits for its answer (a round trip of its own), as a COMMIT by the driver inside a
        # pipeline waits before the pipeline's end (another)
        if not self._mode:
            if not self._held:  # (a held connection stays in autocommit)
                f.dbapi_connection.autocommit = True
            self._mode = "read"
        if write and self._mode != "write":
            self._begin = True
            self._mode = "write"
        return f.dbapi_connection

    def _connection(self, write: bool = False) -> sa.Connection:
        """SQLite: the transaction's connection (BEGIN, or BEGIN IMMEDIATE to write)."""
        c = self._conn
        if c is None:
            c = self._conn = self.s.engine.connect()
        if write and self._mode != "write":
            if self._mode == "read":
                c.rollback()  # a read snapshot cannot become a writer safely; nothing written
                self.accounts.forget()
            if self.s.writer is not None:
                if not self.s.writer.acquire(timeout=BUSY_TIMEOUT_S):
                    raise sa.exc.OperationalError(
                        "BEGIN IMMEDIATE", None, Exception("timed out waiting for the writer")
                    )
                self._writer = True
            c.exec_driver_sql("BEGIN IMMEDIATE")
            self._mode = "write"
        elif not self._mode:
            c.exec_driver_sql("BEGIN")
            self._mode = "read"
        return c

    def run(self, sql: str, params: Any = (), write: bool = False) -> Any:
        """Execute hand-written SQL (``:name`` parameters) on the driver's cursor: the hot
        path, without SQLAlchemy's per-statement overhead. Driver errors are raised as
        SQLAlchemy's exceptions (IntegrityError, OperationalError, ...)."""
        raw = self._ready(write)
        assert raw is not None
        if self.s.sqlite:
            q, args = sql, params
            cur = raw.cursor()
        else:
            q, args = self.s.x.raw(sql, params)
            cur = self.s.x.cursor(raw)
        try:
            cur.execute(q, args)
        except self.s.x.errors as err:
            raise sa.exc.DBAPIError.instance(
                q, params, err, self.s.x.errors, hide_parameters=True
            ) from err
        return cur

    def run_many(self, statements: list[tuple[str, dict[str, Any]]]) -> list[list[Any]]:
        """The rows of each of several reads; on PostgreSQL sent in one pipeline (one round
        trip) after the statements waiting to go (locks, writes), on SQLite one after
        another."""
        if self.s.sqlite:
            return [self.run(sql, params).fetchall() for sql, params in statements]
        return self._pipeline(statements)

    def defer(
        self,
        sql: str,
        params: dict[str, Any],
        request_id: str | None = None,
        ctes: tuple[tuple[str, str], ...] = (),
    ) -> None:
        """A write whose result is not needed: on PostgreSQL it waits for the next read or
        COMMIT and goes with it in one pipeline; on SQLite it runs now. ``request_id``
        marks the settlement insert, whose unique violations become DuplicateRequest (request
        id) or BillSettled (the bill's active settlement). ``ctes``: (name, statement) of
        the ``WITH`` clause of ``sql``."""
        self._early = False  # written: the early locks are kept from here on
        mark = None
        if request_id is not None:
            mark = (request_id, params.get("hospital", ""), params.get("bill_id", ""))
        p = Pending(sql, params, mark, ctes)
        if self.s.sqlite:
            self.run(p.text(), params, write=True)
            return
        self._driver(write=True)
        self._pending.append(p)

    def kept(self) -> dict[Any, Any] | None:
        """None: a unit of work keeps no answers. A trial's does (``SqlStore.trial_uow``):
        its thread's answers kept while nothing has been committed since they were read
        (SQLite: ``trialreads``; PostgreSQL: ``snapshotkeep``)."""
        return None

    @contextmanager
    def together(self) -> Iterator[None]:
        """PostgreSQL: the writes deferred inside go to the server as one statement (each a
        data-modifying ``WITH`` part of it): one statement's machinery in the driver instead
        of one per write. Only for writes that touch different rows (one settlement's
        accounts, record, budgets and claims): the parts of one statement do not see each
        other's effects, and their order is not defined. SQLite: as without."""
        start, flushes = len(self._pending), self._flushes
        yield
        group = self._pending[start:]
        if self.s.sqlite or flushes != self._flushes or len(group) < 2:
            return
        self._pending[start:] = [combined(group)]

    def _flush(self, commit: bool = False) -> None:
        self._pipeline([], commit)

    def _pipeline(
        self, reads: list[tuple[str, dict[str, Any]]], commit: bool = False
    ) -> list[list[Any]]:
        """PostgreSQL: the waiting statements, then ``reads`` (their rows returned), then
        COMMIT if asked, in one pipeline: one round trip."""
        pending, self._pending = self._pending, []
        self._flushes += 1
        raw = self._driver(write=bool(pending) or commit)
        assert raw is not None
        begin, self._begin = self._begin, False
        return send(self.s.x, raw, pending, reads, begin, commit)

    def settle_reads(
        self,
        request_id: str,
        person_id: str,
        hospital: str,
        bill_id: str,
        year: int | None = None,
    ) -> SettleReads:
        """What a Settle reads before its locks, in one statement (one snapshot; PostgreSQL:
        one round trip, with any statements waiting to go). A settlement found under the
        request id (a replay, rare) is then read whole. PostgreSQL with ``year``: the
        registered person's household-year and person-year locked and read first, in the
        same round trip (``_LOCK_PERSON``), held as ``lock`` holds them; a ``lock`` that
        then needs others sorting before them starts over (``_unlock_early``)."""
        params = {"rid": request_id, "pid": person_id, "h": hospital, "id": bill_id}
        if year is None or self.s.sqlite or self._locked or self._pending:
            rows = self.run_many([(_SETTLE_READS, params)])[0]
        else:
            self._driver(write=True)  # the locks last until the transaction ends
            got, rows = self.run_many(
                [(_LOCK_PERSON, {"pid": person_id, "y": year}), (_SETTLE_READS, params)]
            )
            self._hold_early(got)
        return self._settle_reads_of(request_id, person_id, rows)

    def settle_reads_many(
        self, calls: Sequence[tuple[str, str, str, str]], years: Sequence[int] | None = None
    ) -> list[SettleReads]:
        """``settle_reads`` of several calls: their statements in one pipeline (PostgreSQL:
        one round trip; each statement its own snapshot, as one call's). PostgreSQL with
        ``years`` (each call's): the registered persons' account locks of those years taken
        and read first in the same round trip (``_LOCK_PERSONS``), held as ``settle_reads``
        holds one person's."""
        reads = [(_SETTLE_READS, {"rid": r, "pid": p, "h": h, "id": b}) for r, p, h, b in calls]
        if years is None or self.s.sqlite or self._locked or self._pending:
            got = self.run_many(reads)
        else:
            self._driver(write=True)  # the locks last until the transaction ends
            params = {"pk": pg_array([c[1] for c in calls]), "py": pg_array(years)}
            locked, *got = self.run_many([(_LOCK_PERSONS, params), *reads])
            self._hold_early(locked)
        return [self._settle_reads_of(c[0], c[1], rows) for c, rows in zip(calls, got, strict=True)]

    def _hold_early(self, got: list[Any]) -> None:
        """The account-years locked and read by ``settle_reads``' round trip (their rows
        ``got``): held as ``lock`` holds them, read (``lock`` may start over: ``_early``)."""
        held: list[LockKey] = [(sc, k, y) for sc, k, y, lid, *_ in got if lid is None]
        if held:
            self._locked.update(held)
            self._early = True
            self.accounts.take(held, got)

    def _settle_reads_of(self, request_id: str, person_id: str, rows: list[Any]) -> SettleReads:
        """The ``SettleReads`` of ``_SETTLE_READS``'s rows (a replay's record read whole)."""
        found, active, registered = rows[0][:3]
        return SettleReads(
            None if found is None else self.settlements.by_request(request_id),
            self.registry.versioned_of(person_id, [r[3:] for r in rows] if registered else []),
            active,
        )

    def holds(self, scope: str, key: str, year: int) -> bool:
        """Whether this transaction holds the lock of an account-year (SQLite: the write lock,
        which covers all), so that what it reads of it stays current until it ends."""
        return (self.s.sqlite and self._mode == "write") or (scope, key, year) in self._locked

    def lock(self, *keys: LockKey, read: Sequence[tuple[str, str, int]] = ()) -> None:
        """Hold these locks until the transaction ends (the rule: ``engine.service.ports``).
        PostgreSQL: row locks taken one after another in the global order, sent in one
        pipeline (with any writes deferred before, and the account reads of ``read``: one
        round trip); SQLite: BEGIN IMMEDIATE, the database's one write lock."""
        try:
            new = lock_order(self._locked, keys)
        except LockOrderError:
            if not self._early:
                raise
            self._unlock_early()  # locks sorting before the early ones: start over
            new = lock_order(self._locked, keys)
        self._early = False
        fused = [] if self.s.sqlite else _lock_read_keys(new, read)
        if new:
            if self.s.sqlite:
                self.conn(write=True)  # BEGIN IMMEDIATE: the one writer until commit or rollback
            else:
                self._driver(write=True)
                for kind, key, year in new:  # in order: the server runs a pipeline in order
                    if fused and kind in _ACCOUNT_KINDS:
                        continue  # taken by onestop_lock_read after the others (they sort first)
                    self._pending.append(Pending(_LOCK[kind], _lock_params(kind, key, year)))
            self.accounts.forget()  # anything read before the lock may be stale
            self._locked.update(new)
        if fused:
            self.accounts.lock_read(fused)  # the account locks and their read: one statement
        elif read:
            self.accounts.read_many(read)  # (PostgreSQL: the pipeline of the locks above)
        if new and self._pending:
            self._flush()  # the locks are held when this returns

    def _unlock_early(self) -> None:
        """Give up the account locks ``settle_reads`` took early (a rollback: nothing was
        written since), so that ``lock`` takes them again in the global order after the ones
        that sort before them (fund-years, another household)."""
        assert self._fairy is not None and not self._pending
        self._rollback_tx()
        self._mode = ""
        self._begin = False
        self._locked.clear()
        self.accounts.forget()
        self._early = False

    def commit(self) -> None:
        if self._conn is None and self._fairy is None:
            self._pending.clear()
            return
        try:
            if self._pending:
                self._flush(commit=True)  # the writes and COMMIT in one round trip
            elif self._fairy is not None:  # PostgreSQL: a transaction whose writes went before
                raw = self._fairy.dbapi_connection
                if raw.info.transaction_status != _IDLE:
                    try:
                        raw.commit()
                    except self.s.x.errors as err:
                        raise sa.exc.DBAPIError.instance(
                            "COMMIT", {}, err, self.s.x.errors, hide_parameters=True
                        ) from err
            if self._conn is not None:
                self._conn.commit()  # (the driver is idle by now: SQLAlchemy's state)
        finally:
            self._end()

    def rollback(self) -> None:
        if self._conn is None and self._fairy is None:
            self._end()
            return
        try:
            self._rollback_tx()
        finally:
            self._end()

    def _rollback_tx(self) -> None:
        """Roll the transaction back (PostgreSQL: on the driver, and the ``Connection`` on it
        if ``conn`` made one)."""
        f = self._fairy
        if f is not None and f.is_valid:
            raw = f.dbapi_connection
            if raw is not None and not raw.closed:
                try:
                    raw.rollback()  # (nothing sent when no transaction is open)
                except self.s.x.errors:
                    f.invalidate()  # lost: the server ends the transaction; do not pool it
        if self._conn is not None:
            self._conn.rollback()

    def _end(self) -> None:
        self._pending.clear()
        conn, self._conn = self._conn, None
        fairy, self._fairy = self._fairy, None
        held, self._held = self._held, False
        keep = held and conn is None  # a Connection made on it returns it to the pool
        try:
            if fairy is not None and fairy.is_valid:  # PostgreSQL
                try:
                    raw = fairy.dbapi_connection
                    if raw is not None and not raw.closed and raw.autocommit:
                        if raw.info.transaction_status != _IDLE:
                            raw.rollback()  # our BEGIN's transaction failed (a commit)
                        if not keep:
                            raw.autocommit = False  # the driver's default, for the pool
                except Exception:
                    fairy.invalidate()  # in an unknown state: do not pool it
            if conn is not None:
                conn.close()  # (PostgreSQL: returns the driver connection it is on)
            elif fairy is not None and not keep:
                fairy.close()  # back to the pool
        finally:
            if held:
                self.s.release(fairy, keep and fairy.is_valid)
            self._mode = ""
            self._begin = False
            self._locked.clear()
            self._early = False
            self.accounts.forget()
            if self._writer:
                self._writer = False
                assert self.s.writer is not None
                self.s.writer.release()
