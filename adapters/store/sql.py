"""The SQL store behind ``engine.service.ports``: SQLAlchemy 2 Core, SQLite or PostgreSQL.

``SqlStore(url)`` migrates the database to the newest schema (Alembic, ``migrations/``) and
hands out units of work. A unit of work is one database transaction on one pooled connection:
everything written through it commits together or not at all; leaving it without ``commit``
rolls back.

Serialization (``lock(household, year)``):

- PostgreSQL: a row lock on the household-year's row in ``household_years``, held until the
  transaction ends. One statement creates the row if it is missing and locks it either way:
  ``INSERT ... ON CONFLICT (household_id, year) DO UPDATE SET admissions = admissions`` (like
  ``INSERT ... ON CONFLICT DO NOTHING`` + ``SELECT ... FOR UPDATE``, in one round trip).
  Transactions are READ COMMITTED, so what is read after the lock is what the previous holder
  committed. Reads before the first write or lock run in autocommit; the writes of a unit of
  work are held back and sent in one pipeline with COMMIT (or before the next read).
- SQLite: the driver runs in autocommit mode and the unit of work issues its own ``BEGIN``.
  Reads run in a deferred (snapshot) transaction; the first write or ``lock`` ends that read
  transaction (nothing was written in it) and opens ``BEGIN IMMEDIATE``, which takes the
  database's single write lock, so two writers can never both read stale accounts. WAL mode
  lets readers go on meanwhile. Within one process the writers queue on a ``threading.Lock``
  first, so they are handed the write lock in turn instead of polling ``busy_timeout``.

URLs: ``sqlite:///var/onestop.db`` (relative path; parent directories are created;
``?synchronous=normal`` trades power-loss durability for speed, default ``full``),
``sqlite:////abs/path.db``, ``sqlite://`` (a throwaway file, deleted by ``dispose``),
``postgresql+psycopg://user:password@host:5432/dbname`` (``postgresql://`` and
``postgres://`` are taken to mean psycopg 3).
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import tempfile
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, ClassVar, Literal

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from adapters.store import schema as T
from engine.accounts import ACCOUNT_FIELDS, LayerAccount, YearAccounts
from engine.bill import Person, TagSpan
from engine.errors import DuplicateRequest, NotFound
from engine.policy.load import parse_table
from engine.policy.model import PolicyTable
from engine.result import Settlement
from engine.service.ports import AccountMove, PolicyVersion, SettlementRecord

MIGRATIONS = Path(__file__).with_name("migrations")
BUSY_TIMEOUT_S = 30.0
_MIGRATION_LOCK_KEY = 0x6F6E6573746F70  # pg_advisory_xact_lock key ("onestop")
_CHUNK = 500  # ids per IN (...) list


# --- engine and migrations -------------------------------------------------------------------


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
        return sa.create_engine(u, pool_size=10, max_overflow=20)
    raise ValueError(
        f"store URL {u.render_as_string(hide_password=True)!r}: only sqlite:/// and "
        "postgresql+psycopg:// are supported"
    )


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


# --- the store -------------------------------------------------------------------------------


class SqlStore:
    def __init__(self, url: str, *, migrate: bool = True):
        self.url = normalize_url(url)
        self._tmp: str | None = None
        if _is_memory(self.url):  # one database for every connection: a throwaway file
            self._tmp = tempfile.mkdtemp(prefix="onestop-")
            self.url = self.url.set(database=str(Path(self._tmp) / "onestop.db"), query={})
        self.engine = make_engine(self.url)
        self.dialect: Literal["sqlite", "postgresql"] = self.engine.dialect.name  # type: ignore[assignment]
        self.sqlite = self.dialect == "sqlite"
        # SQLite: in-process writers queue here before BEGIN IMMEDIATE
        self.writer = threading.Lock() if self.sqlite else None
        self.x = _Dialect(self.sqlite)
        self._tables: dict[int, PolicyTable] = {}
        self._tables_lock = threading.Lock()
        if migrate:
            upgrade(self.engine)

    def __repr__(self) -> str:
        return f"SqlStore({self.url.render_as_string(hide_password=True)!r})"

    def uow(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self)

    def dispose(self) -> None:
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

    def insert(self, table: sa.Table) -> Any:
        return (pg_insert if self.dialect == "postgresql" else sqlite_insert)(table)

    def upsert(self, table: sa.Table) -> Any:
        stmt = self.insert(table)
        keys = [c.name for c in table.primary_key.columns]
        rest = {c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keys}
        return stmt.on_conflict_do_update(index_elements=keys, set_=rest)


# --- unit of work ----------------------------------------------------------------------------


class SqlUnitOfWork:
    def __init__(self, store: SqlStore):
        self.s = store
        self.accounts = _Accounts(self)
        self.settlements = _Settlements(self)
        self.registry = _Registry(self)
        self.policies = _Policies(self)
        self._conn: sa.Connection | None = None
        self._mode: Literal["", "read", "write"] = ""
        self._writer = False
        self._locked: set[tuple[str, int]] = set()
        # PostgreSQL: writes wait here and go to the server in one pipeline with the next read
        # or with COMMIT (one round trip for all of a settlement's writes and its commit)
        self._pending: list[tuple[str, dict[str, Any], str | None]] = []

    def __enter__(self) -> SqlUnitOfWork:
        return self

    def __exit__(self, *exc: object) -> None:
        self.rollback()

    def conn(self, write: bool = False) -> sa.Connection:
        """The transaction's connection, for SQLAlchemy statements (pending writes sent
        first); ``write`` makes sure it may write (SQLite: BEGIN IMMEDIATE)."""
        if self._pending:
            self._flush()
        return self._connection(write)

    def _connection(self, write: bool = False) -> sa.Connection:
        c = self._conn
        if c is None:
            c = self._conn = self.s.engine.connect()
        if not self.s.sqlite:
            # READ COMMITTED gives each statement its own snapshot, so reads before the first
            # write or lock run in autocommit (no BEGIN/ROLLBACK round trips); from then on
            # one transaction.
            if write and self._mode != "write":
                c.connection.dbapi_connection.autocommit = False  # type: ignore[union-attr]
                if not c.in_transaction():
                    c.begin()  # so that SQLAlchemy's commit reaches the driver
                self._mode = "write"
            elif not self._mode:
                c.connection.dbapi_connection.autocommit = True  # type: ignore[union-attr]
                self._mode = "read"
            return c
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
        raw = self.conn(write).connection.dbapi_connection
        assert raw is not None
        q = self.s.x.sql(sql)
        cur = raw.cursor()
        try:
            cur.execute(q, params)
        except self.s.x.errors as err:
            raise sa.exc.DBAPIError.instance(q, params, err, self.s.x.errors) from err
        return cur

    def defer(self, sql: str, params: dict[str, Any], request_id: str | None = None) -> None:
        """A write whose result is not needed: on PostgreSQL it waits for the next read or
        COMMIT and goes with it in one pipeline; on SQLite it runs now. ``request_id``
        marks the settlement insert, whose unique violation becomes DuplicateRequest."""
        if self.s.sqlite:
            self.run(sql, params, write=True)
            return
        self._connection(write=True)
        self._pending.append((sql, params, request_id))

    def _flush(self, commit: bool = False) -> None:
        pending, self._pending = self._pending, []
        raw = self._connection(write=True).connection.dbapi_connection
        assert raw is not None
        cur = raw.cursor()
        try:
            with raw.pipeline():
                for sql, params, _ in pending:
                    cur.execute(self.s.x.sql(sql), params)
                if commit:
                    raw.commit()
        except self.s.x.errors as err:
            if getattr(getattr(err, "diag", None), "constraint_name", "") == _REQUEST_UNIQUE:
                rid = next((r for _, _, r in pending if r is not None), "")
                raise DuplicateRequest(rid) from err
            sql = "; ".join(q for q, _, _ in pending)
            raise sa.exc.DBAPIError.instance(sql, {}, err, self.s.x.errors) from err

    @property
    def exclusive(self) -> bool:
        """Whether this transaction holds a lock (SQLite: the write lock), so that what it
        reads of the locked accounts stays current until it ends."""
        return bool(self._locked) or (self.s.sqlite and self._mode == "write")

    def lock(self, household_id: str, year: int) -> None:
        key = (household_id, year)
        if key in self._locked:
            return
        if self.s.sqlite:
            self.conn(write=True)  # BEGIN IMMEDIATE: the one writer until commit or rollback
            self.accounts.forget()  # anything read before the lock may be stale
        else:
            # one statement: creates the household-year's row if missing and, either way,
            # holds its row lock until the transaction ends (a concurrent one waits here)
            self.run(_LOCK, {"h": household_id, "y": year}, write=True)
            self.accounts.forget()  # anything read before the lock may be stale
        self._locked.add(key)

    def commit(self) -> None:
        if self._conn is None:
            self._pending.clear()
            return
        try:
            if self._pending:
                self._flush(commit=True)  # the writes and COMMIT in one round trip
            self._conn.commit()  # (the driver is idle by now when the pipeline committed)
        finally:
            self._end()

    def rollback(self) -> None:
        if self._conn is None:
            self._end()
            return
        try:
            self._conn.rollback()
        finally:
            self._end()

    def _end(self) -> None:
        self._pending.clear()
        conn, self._conn = self._conn, None
        try:
            if conn is not None:
                if not self.s.sqlite and not conn.invalidated:
                    try:
                        raw = conn.connection.dbapi_connection
                        if raw is not None and not raw.closed and raw.autocommit:
                            raw.autocommit = False  # the driver's default, for the pool
                    except Exception:
                        conn.invalidate()  # in an unknown state: do not pool it
                conn.close()
        finally:
            self._mode = ""
            self._locked.clear()
            self.accounts.forget()
            if self._writer:
                self._writer = False
                assert self.s.writer is not None
                self.s.writer.release()


# --- repositories ----------------------------------------------------------------------------


class _Dialect:
    """What differs between the drivers on the hand-written hot path: parameter style and how
    JSON, dates and timestamps go in and come out (matching what SQLAlchemy's types write)."""

    def __init__(self, sqlite: bool):
        self.sqlite = sqlite
        self._sql: dict[str, str] = {}
        if sqlite:
            import sqlite3

            self.errors: type[Exception] = sqlite3.Error
            self.json_in: Any = lambda v: json.dumps(v, ensure_ascii=False)
        else:
            import psycopg
            from psycopg.types.json import Json

            self.errors = psycopg.Error
            self.json_in = Json

    def sql(self, q: str) -> str:
        """``:name`` parameters as the driver wants them (sqlite3 takes them as they are)."""
        if self.sqlite:
            return q
        out = self._sql.get(q)
        if out is None:
            out = self._sql[q] = re.sub(r"(?<![:\w]):(\w+)", r"%(\1)s", q.replace("%", "%%"))
        return out

    def json_out(self, v: Any) -> Any:
        return json.loads(v) if isinstance(v, str | bytes) else v

    def ts_in(self, v: datetime | None) -> Any:
        if v is None:
            return None
        v = v.replace(tzinfo=UTC) if v.tzinfo is None else v.astimezone(UTC)
        return v.strftime("%Y-%m-%d %H:%M:%S.%f") if self.sqlite else v

    def ts_out(self, v: Any) -> datetime | None:
        if v is None:
            return None
        if isinstance(v, str):
            v = datetime.fromisoformat(v)
        return v.replace(tzinfo=UTC) if v.tzinfo is None else v.astimezone(UTC)

    def date_in(self, v: date | None) -> Any:
        return v.isoformat() if self.sqlite and v is not None else v

    def date_out(self, v: Any) -> date | None:
        return date.fromisoformat(v) if isinstance(v, str) else v


def _chunks(xs: Sequence[Any], n: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for i in range(0, len(xs), n):
        yield xs[i : i + n]


_LOCK = (
    "INSERT INTO household_years (household_id, year, admissions) VALUES (:h, :y, 0) "
    "ON CONFLICT (household_id, year) DO UPDATE SET admissions = household_years.admissions"
)
_FOUR = ", ".join(ACCOUNT_FIELDS)


@functools.cache
def _values(cols: tuple[str, ...], n: int, p: str = "r") -> str:
    """``(:r0_0, :r0_1), (:r1_0, :r1_1), ...``: n rows of parameters in one statement. Short
    names keep the SQL small (psycopg caches and prepares statements up to 4 kB)."""
    return ", ".join(
        "(" + ", ".join(f":{p}{i}_{j}" for j in range(len(cols))) + ")" for i in range(n)
    )


def _flat(rows: list[dict[str, Any]], cols: tuple[str, ...], p: str = "r") -> dict[str, Any]:
    return {f"{p}{i}_{j}": r[c] for i, r in enumerate(rows) for j, c in enumerate(cols)}


_ACC_COLS = ("k", "y", "l", *ACCOUNT_FIELDS)


def _account_sql(years: str, layers: str, col: str) -> tuple[str, tuple[str, str], str, str, str]:
    read = (
        f"SELECT layer_id, {_FOUR} FROM {layers} WHERE {col} = :k AND year = :y "
        f"UNION ALL SELECT NULL, admissions, 0, 0, 0 FROM {years} WHERE {col} = :k AND year = :y"
    )
    upsert_layers = (  # + VALUES ... + ON CONFLICT
        f"INSERT INTO {layers} ({col}, year, layer_id, {_FOUR}) VALUES ",
        f" ON CONFLICT ({col}, year, layer_id) DO UPDATE SET "
        + ", ".join(f"{f} = excluded.{f}" for f in ACCOUNT_FIELDS),
    )
    delete_layer = f"DELETE FROM {layers} WHERE {col} = :k AND year = :y AND layer_id = :l"
    # PostgreSQL: every changed layer in one statement of constant text (arrays, unnest)
    upsert_layers_pg = (
        f"INSERT INTO {layers} ({col}, year, layer_id, {_FOUR}) "
        f"SELECT :k, :y, v.* FROM unnest(CAST(:l AS text[]), "
        + ", ".join(f"CAST(:{f} AS bigint[])" for f in ACCOUNT_FIELDS)
        + ") AS v"
        + upsert_layers[1]
    )
    upsert_year = (
        f"INSERT INTO {years} ({col}, year, admissions) VALUES (:k, :y, :a) "
        f"ON CONFLICT ({col}, year) DO UPDATE SET admissions = excluded.admissions"
    )
    return read, upsert_layers, delete_layer, upsert_year, upsert_layers_pg


class _Accounts:
    """Person-year and household-year accounts: one row per key, year and layer, and one row
    per key and year for the admissions count. Saves write only what changed since the last
    read of the key in this transaction."""

    _SQL: ClassVar[dict[str, tuple[str, tuple[str, str], str, str, str]]] = {
        "person": _account_sql("person_years", "person_year_layers", "person_id"),
        "household": _account_sql("household_years", "household_year_layers", "household_id"),
    }

    def __init__(self, uow: SqlUnitOfWork):
        self.u = uow
        self._seen: dict[tuple[str, str, int], YearAccounts] = {}  # last read or saved
        self._fresh: set[tuple[str, str, int]] = set()  # ... and still current (lock held)

    def forget(self) -> None:
        self._seen.clear()
        self._fresh.clear()

    @staticmethod
    def _from_rows(rows: Iterable[Any]) -> YearAccounts:
        adm = 0
        acc: dict[str, LayerAccount] = {}
        for lid, a, b, c, d in rows:
            if lid is None:
                adm = int(a)
            else:
                acc[lid] = LayerAccount(int(a), int(b), int(c), int(d))
        return YearAccounts(layers=dict(sorted(acc.items())), admissions=adm)

    def _read(self, scope: str, key: str, year: int) -> YearAccounts:
        k = (scope, key, year)
        if k in self._fresh:
            return self._seen[k]
        ya = self._from_rows(self.u.run(self._SQL[scope][0], {"k": key, "y": year}))
        self._seen[k] = ya
        if self.u.exclusive:  # read under the lock: nobody else changes it before we end
            self._fresh.add(k)
        return ya

    def _save(self, scope: str, key: str, year: int, acc: YearAccounts) -> None:
        _, upsert_layers, delete_layer, upsert_year, upsert_layers_pg = self._SQL[scope]
        self.u._connection(write=True)
        k0 = (scope, key, year)
        before = self._seen[k0] if k0 in self._fresh else self._read(scope, key, year)
        changed = [
            {"k": key, "y": year, "l": lid, **dict(zip(ACCOUNT_FIELDS, v.as_tuple(), strict=True))}
            for lid, v in acc.layers.items()
            if before.layers.get(lid) != v
        ]
        k = {"k": key, "y": year, "a": acc.admissions}
        admissions = acc.admissions != before.admissions
        if changed and not self.u.s.sqlite:
            k["l"] = [r["l"] for r in changed]
            for f in ACCOUNT_FIELDS:
                k[f] = [r[f] for r in changed]
            # the admissions row rides along in the same statement
            sql = (
                f"WITH y AS ({upsert_year}) {upsert_layers_pg}" if admissions else upsert_layers_pg
            )
            self.u.defer(sql, k)
            admissions = False
        elif changed:
            head, tail = upsert_layers
            sql = head + _values(_ACC_COLS, len(changed)) + tail
            self.u.defer(sql, _flat(changed, _ACC_COLS))
        for lid in before.layers:
            if lid not in acc.layers:
                self.u.defer(delete_layer, {"k": key, "y": year, "l": lid})
        if admissions:
            self.u.defer(upsert_year, k)
        # what this transaction wrote is current until it ends: our row locks keep others out
        self._seen[(scope, key, year)] = acc
        self._fresh.add((scope, key, year))

    def person_year(self, person_id: str, year: int) -> YearAccounts:
        return self._read("person", person_id, year)

    def household_year(self, household_id: str, year: int) -> YearAccounts:
        return self._read("household", household_id, year)

    def save_person_year(self, person_id: str, year: int, acc: YearAccounts) -> None:
        self._save("person", person_id, year, acc)

    def save_household_year(self, household_id: str, year: int, acc: YearAccounts) -> None:
        self._save("household", household_id, year, acc)


_S = T.settlements
_L = T.settlement_layers
_HEAD_COLS = (
    "settlement_id, request_id, bill_digest, bill, settlement, created_at, status, "
    "reversed_at, reversal_request_id"
)
_MOVE_COLS = "settlement_id, scope, key, year, layer_id, " + ", ".join(
    f"d_{f}" for f in ACCOUNT_FIELDS
)
_BY_ID = f"SELECT {_HEAD_COLS} FROM settlements WHERE settlement_id = :id"
_BY_REQUEST = f"SELECT {_HEAD_COLS} FROM settlements WHERE request_id = :id"
_MOVES_OF = f"SELECT {_MOVE_COLS} FROM settlement_moves WHERE settlement_id = :id ORDER BY position"
_ACTIVE = (
    "SELECT settlement_id FROM settlements WHERE bill_id = :id AND status = 'settled' "
    "ORDER BY created_at LIMIT 1"
)
_SETTLEMENT_COLS = (
    "settlement_id", "request_id", "bill_id", "bill_digest", "person_id", "household",
    "region", "year", "total", "funds_total", "window_pay", "net_selfpay", "status",
    "created_at", "reversed_at", "reversal_request_id", "bill", "settlement",
)  # fmt: skip
_ADD = (
    f"INSERT INTO settlements ({', '.join(_SETTLEMENT_COLS)}) "
    f"VALUES ({', '.join(':' + c for c in _SETTLEMENT_COLS)}) "
    "ON CONFLICT (request_id) DO NOTHING RETURNING settlement_id"
)
_M_COLS = (
    "settlement_id", "position", "scope", "key", "year", "layer_id",
    *(f"d_{f}" for f in ACCOUNT_FIELDS),
)  # fmt: skip
_L_COLS = (
    "settlement_id", "position", "layer_id", "fund_code", "kind", "settle_at", "scope",
    "reason", "variant", "base", "deductible", "eligible", "pay", "relief", "cap",
)  # fmt: skip


@functools.cache
def _add_rows_sql(table: str, cols: tuple[str, ...], n: int) -> str:
    return f"INSERT INTO {table} ({', '.join(cols)}) VALUES {_values(cols, n)}"


def _pg_type(col: str) -> str:
    if col in ("position", "year", "variant"):
        return "integer"
    if col.startswith("d_") or col in ("base", "deductible", "eligible", "pay", "relief"):
        return "bigint"
    return "text"


def _unnest_insert(name: str, table: str, cols: tuple[str, ...]) -> str:
    rest = cols[1:]
    arrays = ", ".join(f"CAST(:{name}_{c} AS {_pg_type(c)}[])" for c in rest)
    return (
        f", {name} AS (INSERT INTO {table} ({', '.join(cols)}) "
        f"SELECT s.settlement_id, v.* FROM s, unnest({arrays}) AS v)"
    )


# PostgreSQL: the settlement, its moves and its layer rows in one statement of constant text
# (rows as arrays). It is sent with COMMIT; a taken request id fails it (unique violation of
# uq_settlements_request_id -> DuplicateRequest) and the whole transaction with it.
_REQUEST_UNIQUE = "uq_settlements_request_id"
_ADD_ALL_PG = (
    f"WITH s AS ({_ADD.split(' ON CONFLICT')[0]} RETURNING settlement_id)"
    + _unnest_insert("m", "settlement_moves", _M_COLS)
    + _unnest_insert("l", "settlement_layers", _L_COLS)
    + " SELECT settlement_id FROM s"
)


_REVERSE = (
    "UPDATE settlements SET status = 'reversed', reversed_at = :at, reversal_request_id = :rid "
    "WHERE settlement_id = :id"
)
_FOR_PERSON = f"SELECT {_HEAD_COLS} FROM settlements WHERE person_id = :p"
_MOVES_FOR_PERSON = (
    "SELECT "
    + ", ".join(f"m.{c.strip()}" for c in _MOVE_COLS.split(","))
    + " FROM settlement_moves m JOIN settlements s ON s.settlement_id = m.settlement_id "
    "WHERE s.person_id = :p"
)


class _Settlements:
    def __init__(self, uow: SqlUnitOfWork):
        self.u = uow

    def _records(self, rows: Sequence[Any], moves: Iterable[Any]) -> list[SettlementRecord]:
        x = self.u.s.x
        by: dict[str, list[AccountMove]] = {}
        for sid, scope, key, year, lid, a, b, c, d in moves:
            by.setdefault(sid, []).append(
                AccountMove(scope, key, year, lid, LayerAccount(int(a), int(b), int(c), int(d)))
            )
        return [
            SettlementRecord(
                settlement_id=sid,
                request_id=rid,
                bill_digest=digest,
                bill=x.json_out(bill),
                settlement=Settlement.from_dict(x.json_out(settlement)),
                moves=tuple(by.get(sid, ())),
                created_at=x.ts_out(created),  # type: ignore[arg-type]
                status=status,
                reversed_at=x.ts_out(reversed_at),
                reversal_request_id=rrid,
            )
            for sid, rid, digest, bill, settlement, created, status, reversed_at, rrid in rows
        ]

    def _one(self, sql: str, key: str) -> SettlementRecord | None:
        row = self.u.run(sql, {"id": key}).fetchone()
        if row is None:
            return None
        return self._records([row], self.u.run(_MOVES_OF, {"id": row[0]}).fetchall())[0]

    def by_id(self, settlement_id: str) -> SettlementRecord | None:
        return self._one(_BY_ID, settlement_id)

    def by_request(self, request_id: str) -> SettlementRecord | None:
        return self._one(_BY_REQUEST, request_id)

    def active_for_bill(self, bill_id: str) -> SettlementRecord | None:
        row = self.u.run(_ACTIVE, {"id": bill_id}).fetchone()
        return None if row is None else self.by_id(row[0])

    def add(self, record: SettlementRecord) -> None:
        x = self.u.s.x
        s = record.settlement
        sid = record.settlement_id
        row = {
            "settlement_id": sid,
            "request_id": record.request_id,
            "bill_id": s.bill_id,
            "bill_digest": record.bill_digest,
            "person_id": s.person_id,
            "household": s.household,
            "region": s.region,
            "year": s.year,
            "total": s.buckets.total,
            "funds_total": s.funds_total,
            "window_pay": s.window_pay,
            "net_selfpay": s.net_selfpay,
            "status": record.status,
            "created_at": x.ts_in(record.created_at),
            "reversed_at": x.ts_in(record.reversed_at),
            "reversal_request_id": record.reversal_request_id,
            "bill": x.json_in(record.bill),
            "settlement": x.json_in(s.to_dict()),
        }
        moves = [
            {
                "settlement_id": sid,
                "position": i,
                "scope": m.scope,
                "key": m.key,
                "year": m.year,
                "layer_id": m.layer_id,
                **{f"d_{f}": v for f, v in zip(ACCOUNT_FIELDS, m.delta.as_tuple(), strict=True)},
            }
            for i, m in enumerate(record.moves)
        ]
        layers = [
            {
                "settlement_id": sid,
                "position": i,
                "layer_id": r.layer_id,
                "fund_code": r.fund_code,
                "kind": r.kind,
                "settle_at": r.settle_at,
                "scope": r.scope,
                "reason": r.reason,
                "variant": r.variant,
                "base": r.base,
                "deductible": r.deductible,
                "eligible": r.eligible,
                "pay": r.pay,
                "relief": r.relief,
                "cap": r.cap,
            }
            for i, r in enumerate(s.layers)
        ]
        # PostgreSQL: one statement, sent with COMMIT (see _ADD_ALL_PG). SQLite: the writer
        # lock is held, so a twin has committed already; ON CONFLICT DO NOTHING detects it.
        if not x.sqlite:
            for name, rows, cols in (("m", moves, _M_COLS), ("l", layers, _L_COLS)):
                for c in cols[1:]:
                    row[f"{name}_{c}"] = [r[c] for r in rows]
            self.u.defer(_ADD_ALL_PG, row, record.request_id)
            return
        if self.u.run(_ADD, row, write=True).fetchone() is None:
            raise DuplicateRequest(record.request_id)
        if moves:
            sql = _add_rows_sql("settlement_moves", _M_COLS, len(moves))
            self.u.run(sql, _flat(moves, _M_COLS), write=True)
        if layers:
            sql = _add_rows_sql("settlement_layers", _L_COLS, len(layers))
            self.u.run(sql, _flat(layers, _L_COLS), write=True)

    def mark_reversed(self, settlement_id: str, reversal_request_id: str, at: datetime) -> None:
        params = {"id": settlement_id, "rid": reversal_request_id, "at": self.u.s.x.ts_in(at)}
        if self.u.run(_REVERSE, params, write=True).rowcount != 1:
            raise NotFound("settlement", settlement_id)

    def for_person(self, person_id: str, year: int | None) -> list[SettlementRecord]:
        params: dict[str, Any] = {"p": person_id}
        cond = ""
        if year is not None:
            params["y"] = year
            cond = " AND year = :y"
        rows = self.u.run(
            _FOR_PERSON + cond + " ORDER BY created_at, settlement_id", params
        ).fetchall()
        if not rows:
            return []
        moves = self.u.run(
            _MOVES_FOR_PERSON
            + cond.replace("year", "s.year")
            + " ORDER BY m.settlement_id, m.position",
            params,
        ).fetchall()
        return self._records(rows, moves)

    def by_fund(self, fund_code: str, year: int | None = None) -> list[tuple[str, str, int]]:
        """(settlement id, layer id, pay) of every settled (not reversed) settlement paid by
        a fund: the bureaus' query (not part of the port)."""
        where = [_L.c.fund_code == fund_code, _S.c.status == "settled"]
        if year is not None:
            where.append(_S.c.year == year)
        rows = self.u.conn().execute(
            sa.select(_L.c.settlement_id, _L.c.layer_id, _L.c.pay)
            .join(_S, _S.c.settlement_id == _L.c.settlement_id)
            .where(*where)
            .order_by(_S.c.created_at, _L.c.settlement_id, _L.c.position)
        )
        return [(r.settlement_id, r.layer_id, int(r.pay)) for r in rows]


_P = T.persons
_TG = T.person_tags
_PERSON = (
    "SELECT p.birth_date, p.household, t.tag, t.valid_from, t.valid_to FROM persons p "
    "LEFT OUTER JOIN person_tags t ON t.person_id = p.person_id "
    "WHERE p.person_id = :id ORDER BY t.position"
)


class _Registry:
    def __init__(self, uow: SqlUnitOfWork):
        self.u = uow

    def get(self, person_id: str) -> Person | None:
        rows = self.u.run(_PERSON, {"id": person_id}).fetchall()
        if not rows:
            return None
        d = self.u.s.x.date_out
        return Person(
            id=person_id,
            birth_date=d(rows[0][0]),  # type: ignore[arg-type]
            household=rows[0][1],
            tags=tuple(
                TagSpan(tag=tag, valid_from=d(vf), valid_to=d(vt))
                for _, _, tag, vf, vt in rows
                if tag is not None
            ),
        )

    def upsert(self, persons: list[Person]) -> int:
        if not persons:
            return 0
        c = self.u.conn(write=True)
        for part in _chunks(persons):
            c.execute(
                self.u.s.upsert(_P),
                [
                    {"person_id": p.id, "birth_date": p.birth_date, "household": p.household}
                    for p in part
                ],
            )
            c.execute(_TG.delete().where(_TG.c.person_id.in_([p.id for p in part])))
            tags = [
                {
                    "person_id": p.id,
                    "position": i,
                    "tag": t.tag,
                    "valid_from": t.valid_from,
                    "valid_to": t.valid_to,
                }
                for p in part
                for i, t in enumerate(p.tags)
            ]
            if tags:
                c.execute(_TG.insert(), tags)
        return len(persons)


_V = T.policy_versions


class _Policies:
    def __init__(self, uow: SqlUnitOfWork):
        self.u = uow

    def add(self, text: str, source_name: str, table: PolicyTable, at: datetime) -> PolicyVersion:
        c = self.u.conn(write=True)
        version = c.execute(
            _V.insert()
            .values(
                region=table.region.code,
                effective_from=table.effective_from,
                effective_to=table.effective_to,
                text=text,
                source_name=source_name,
                created_at=at,
            )
            .returning(_V.c.version)
        ).scalar_one()
        return PolicyVersion(
            version,
            table.region.code,
            table.effective_from,
            table.effective_to,
            text,
            source_name,
            at,
            table,
        )

    def latest_version(self) -> int:
        return int(self.u.conn().execute(sa.select(sa.func.max(_V.c.version))).scalar() or 0)

    def all(self) -> list[PolicyVersion]:
        rows = self.u.conn().execute(sa.select(_V).order_by(_V.c.version))
        return [
            PolicyVersion(
                r.version,
                r.region,
                r.effective_from,
                r.effective_to,
                r.text,
                r.source_name,
                r.created_at,
                self.u.s.table(r.version, r.text, r.source_name),
            )
            for r in rows
        ]


__all__ = ["SqlStore", "SqlUnitOfWork", "make_engine", "upgrade"]
