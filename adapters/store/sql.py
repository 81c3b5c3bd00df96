"""The SQL store behind ``engine.service.ports``: SQLAlchemy 2 Core, SQLite or PostgreSQL.

``SqlStore(url)`` migrates the database to the newest schema (Alembic, ``migrations/``) and
hands out units of work. A unit of work is one database transaction on one pooled connection:
everything written through it commits together or not at all; leaving it without ``commit``
rolls back.

Serialization (``lock(household, year)``):

- PostgreSQL: the household-year's row in ``household_years`` is created if missing
  (``INSERT ... ON CONFLICT DO NOTHING``) and locked with ``SELECT ... FOR UPDATE`` until the
  transaction ends. Transactions are READ COMMITTED, so what is read after the lock is what
  the previous holder committed.
- SQLite: the driver runs in autocommit mode and the unit of work issues its own ``BEGIN``.
  Reads run in a deferred (snapshot) transaction; the first write or ``lock`` ends that read
  transaction (nothing was written in it) and opens ``BEGIN IMMEDIATE``, which takes the
  database's single write lock, so two writers can never both read stale accounts. WAL mode
  lets readers go on meanwhile. Within one process the writers queue on a ``threading.Lock``
  first, so they are handed the write lock in turn instead of polling ``busy_timeout``.

URLs: ``sqlite:///var/onestop.db`` (relative path; parent directories are created),
``sqlite:////abs/path.db``, ``sqlite://`` (in memory, one connection, for tests only),
``postgresql+psycopg://user:password@host:5432/dbname`` (``postgresql://`` and
``postgres://`` are taken to mean psycopg 3).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, Literal

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.pool import StaticPool

from adapters.store import schema as T
from engine.accounts import ACCOUNT_FIELDS, LayerAccount, YearAccounts
from engine.bill import Person, TagSpan
from engine.errors import Conflict, NotFound
from engine.policy.load import parse_table
from engine.policy.model import PolicyTable
from engine.result import Settlement
from engine.service.ports import AccountMove, PolicyVersion, SettlementRecord

MIGRATIONS = Path(__file__).with_name("migrations")
BUSY_TIMEOUT_S = 30.0
_MIGRATION_LOCK_KEY = 0x6F6E6573746F70  # pg_advisory_xact_lock key ("onestop")
_CHUNK = 500  # ids per IN (...) list


class DuplicateRequest(Conflict):
    """Another transaction committed a settlement with this request id first.

    Raised by ``settlements.add`` (the transaction is still usable: the twin's row is
    committed and ``by_request`` in the same or a new unit of work returns it). The use case
    should answer with a replay of that record (or a Conflict if its bill differs)."""

    def __init__(self, request_id: str):
        self.request_id = request_id
        super().__init__(
            f"request_id {request_id!r} was committed by another request at the same time"
        )


# --- engine and migrations -------------------------------------------------------------------


def normalize_url(url: str | sa.URL) -> sa.URL:
    u = sa.make_url(str(url).replace("postgres://", "postgresql://", 1))
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
        memory = _is_memory(u)
        if not memory and u.database:
            Path(u.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            u,
            connect_args={
                "check_same_thread": False,
                "isolation_level": None,  # autocommit driver: BEGIN is ours
                "timeout": BUSY_TIMEOUT_S,
            },
            **({"poolclass": StaticPool} if memory else {"pool_size": 10, "max_overflow": 20}),
        )

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            if not memory:
                cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")  # a committed settlement survives power loss
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
        self.engine = make_engine(self.url)
        self.dialect: Literal["sqlite", "postgresql"] = self.engine.dialect.name  # type: ignore[assignment]
        self.sqlite = self.dialect == "sqlite"
        memory = _is_memory(self.url)
        # SQLite: in-process writers queue here before BEGIN IMMEDIATE. In memory there is
        # one shared connection, so a unit of work holds it (reentrant) from start to end.
        self.writer = threading.Lock() if self.sqlite and not memory else None
        self.memory = threading.RLock() if memory else None
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
        self._memory = False
        self._locked: set[tuple[str, int]] = set()

    def __enter__(self) -> SqlUnitOfWork:
        return self

    def __exit__(self, *exc: object) -> None:
        self.rollback()

    def conn(self, write: bool = False) -> sa.Connection:
        """The transaction's connection; ``write`` makes sure it may write (SQLite: IMMEDIATE)."""
        c = self._conn
        if c is None:
            if self.s.memory is not None:
                self.s.memory.acquire()
                self._memory = True
            try:
                c = self._conn = self.s.engine.connect()
            except BaseException:
                self._end()
                raise
        if not self.s.sqlite:
            self._mode = "write" if write else (self._mode or "read")
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

    def lock(self, household_id: str, year: int) -> None:
        key = (household_id, year)
        if key in self._locked:
            return
        if self.s.sqlite:
            self.conn(write=True)  # BEGIN IMMEDIATE: the one writer until commit or rollback
        else:
            c = self.conn(write=True)
            hy = T.household_years
            c.execute(
                pg_insert(hy)
                .values(household_id=household_id, year=year, admissions=0)
                .on_conflict_do_nothing(index_elements=["household_id", "year"])
            )
            c.execute(
                sa.select(hy.c.admissions)
                .where(hy.c.household_id == household_id, hy.c.year == year)
                .with_for_update()
            )
        self.accounts.forget()  # anything read before the lock may be stale
        self._locked.add(key)

    def commit(self) -> None:
        if self._conn is None:
            return
        try:
            self._conn.commit()
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
        conn, self._conn = self._conn, None
        try:
            if conn is not None:
                conn.close()
        finally:
            self._mode = ""
            self._locked.clear()
            self.accounts.forget()
            if self._writer:
                self._writer = False
                assert self.s.writer is not None
                self.s.writer.release()
            if self._memory:
                self._memory = False
                assert self.s.memory is not None
                self.s.memory.release()


# --- repositories ----------------------------------------------------------------------------


def _chunks(xs: Sequence[Any], n: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for i in range(0, len(xs), n):
        yield xs[i : i + n]


class _Accounts:
    """Person-year and household-year accounts: one row per key, year and layer, and one row
    per key and year for the admissions count. Saves write only what changed since the last
    read of the key in this transaction."""

    _KINDS: ClassVar[dict[str, tuple[sa.Table, sa.Table, str]]] = {
        "person": (T.person_years, T.person_year_layers, "person_id"),
        "household": (T.household_years, T.household_year_layers, "household_id"),
    }

    def __init__(self, uow: SqlUnitOfWork):
        self.u = uow
        self._seen: dict[tuple[str, str, int], YearAccounts] = {}

    def forget(self) -> None:
        self._seen.clear()

    def _read(self, scope: str, key: str, year: int) -> YearAccounts:
        years, layers, col = self._KINDS[scope]
        q = sa.union_all(
            sa.select(
                layers.c.layer_id,
                *(layers.c[f] for f in ACCOUNT_FIELDS),
            ).where(layers.c[col] == key, layers.c.year == year),
            sa.select(
                sa.cast(sa.null(), sa.String(64)).label("layer_id"),
                sa.cast(years.c.admissions, sa.BigInteger),
                sa.cast(sa.literal(0), sa.BigInteger),
                sa.cast(sa.literal(0), sa.BigInteger),
                sa.cast(sa.literal(0), sa.BigInteger),
            ).where(years.c[col] == key, years.c.year == year),
        )
        adm = 0
        acc: dict[str, LayerAccount] = {}
        for lid, a, b, c, d in self.u.conn().execute(q):
            if lid is None:
                adm = int(a)
            else:
                acc[lid] = LayerAccount(int(a), int(b), int(c), int(d))
        ya = YearAccounts(layers=dict(sorted(acc.items())), admissions=adm)
        self._seen[(scope, key, year)] = ya
        return ya

    def _save(self, scope: str, key: str, year: int, acc: YearAccounts) -> None:
        years, layers, col = self._KINDS[scope]
        c = self.u.conn(write=True)
        before = self._seen.get((scope, key, year))
        if before is None:
            before = self._read(scope, key, year)
        changed = [
            {
                col: key,
                "year": year,
                "layer_id": lid,
                **dict(zip(ACCOUNT_FIELDS, v.as_tuple(), strict=True)),
            }
            for lid, v in acc.layers.items()
            if before.layers.get(lid) != v
        ]
        gone = [lid for lid in before.layers if lid not in acc.layers]
        if changed:
            c.execute(self.u.s.upsert(layers), changed)
        if gone:
            c.execute(
                layers.delete().where(
                    layers.c[col] == key, layers.c.year == year, layers.c.layer_id.in_(gone)
                )
            )
        if acc.admissions != before.admissions:
            c.execute(
                self.u.s.upsert(years), {col: key, "year": year, "admissions": acc.admissions}
            )
        self._seen[(scope, key, year)] = acc

    def person_year(self, person_id: str, year: int) -> YearAccounts:
        return self._read("person", person_id, year)

    def household_year(self, household_id: str, year: int) -> YearAccounts:
        return self._read("household", household_id, year)

    def save_person_year(self, person_id: str, year: int, acc: YearAccounts) -> None:
        self._save("person", person_id, year, acc)

    def save_household_year(self, household_id: str, year: int, acc: YearAccounts) -> None:
        self._save("household", household_id, year, acc)


_S = T.settlements
_M = T.settlement_moves
_L = T.settlement_layers
_HEAD = [c for c in _S.c if c.name not in ("total", "funds_total", "window_pay", "net_selfpay")]


class _Settlements:
    def __init__(self, uow: SqlUnitOfWork):
        self.u = uow

    def _records(self, rows: Sequence[Any], moves: Iterable[Any]) -> list[SettlementRecord]:
        by: dict[str, list[AccountMove]] = {}
        for m in moves:
            by.setdefault(m.settlement_id, []).append(
                AccountMove(
                    m.scope,
                    m.key,
                    m.year,
                    m.layer_id,
                    LayerAccount(m.d_deductible_used, m.d_eligible_cum, m.d_paid, m.d_selfpay_cum),
                )
            )
        return [
            SettlementRecord(
                settlement_id=r.settlement_id,
                request_id=r.request_id,
                bill_digest=r.bill_digest,
                bill=r.bill,
                settlement=Settlement.from_dict(r.settlement),
                moves=tuple(by.get(r.settlement_id, ())),
                created_at=r.created_at,
                status=r.status,
                reversed_at=r.reversed_at,
                reversal_request_id=r.reversal_request_id,
            )
            for r in rows
        ]

    def _one(self, where: Any) -> SettlementRecord | None:
        c = self.u.conn()
        row = c.execute(sa.select(*_HEAD).where(where)).first()
        if row is None:
            return None
        moves = c.execute(
            sa.select(_M).where(_M.c.settlement_id == row.settlement_id).order_by(_M.c.position)
        )
        return self._records([row], moves)[0]

    def by_id(self, settlement_id: str) -> SettlementRecord | None:
        return self._one(_S.c.settlement_id == settlement_id)

    def by_request(self, request_id: str) -> SettlementRecord | None:
        return self._one(_S.c.request_id == request_id)

    def active_for_bill(self, bill_id: str) -> SettlementRecord | None:
        c = self.u.conn()
        sid = c.execute(
            sa.select(_S.c.settlement_id)
            .where(_S.c.bill_id == bill_id, _S.c.status == "settled")
            .order_by(_S.c.created_at)
            .limit(1)
        ).scalar()
        return None if sid is None else self.by_id(sid)

    def add(self, record: SettlementRecord) -> None:
        c = self.u.conn(write=True)
        s = record.settlement
        row = {
            "settlement_id": record.settlement_id,
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
            "created_at": record.created_at,
            "reversed_at": record.reversed_at,
            "reversal_request_id": record.reversal_request_id,
            "bill": record.bill,
            "settlement": s.to_dict(),
        }
        # ON CONFLICT (request_id) DO NOTHING: a twin that committed first leaves this
        # transaction usable (PostgreSQL waits for the twin, then skips the row).
        stmt = (
            self.u.s.insert(_S)
            .values(row)
            .on_conflict_do_nothing(index_elements=["request_id"])
            .returning(_S.c.settlement_id)
        )
        if c.execute(stmt).scalar() is None:
            raise DuplicateRequest(record.request_id)
        if record.moves:
            c.execute(
                _M.insert(),
                [
                    {
                        "settlement_id": record.settlement_id,
                        "position": i,
                        "scope": m.scope,
                        "key": m.key,
                        "year": m.year,
                        "layer_id": m.layer_id,
                        **{
                            f"d_{f}": v
                            for f, v in zip(ACCOUNT_FIELDS, m.delta.as_tuple(), strict=True)
                        },
                    }
                    for i, m in enumerate(record.moves)
                ],
            )
        if s.layers:
            c.execute(
                _L.insert(),
                [
                    {
                        "settlement_id": record.settlement_id,
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
                ],
            )

    def mark_reversed(self, settlement_id: str, reversal_request_id: str, at: datetime) -> None:
        c = self.u.conn(write=True)
        n = c.execute(
            _S.update()
            .where(_S.c.settlement_id == settlement_id)
            .values(status="reversed", reversed_at=at, reversal_request_id=reversal_request_id)
        ).rowcount
        if n != 1:
            raise NotFound("settlement", settlement_id)

    def for_person(self, person_id: str, year: int | None) -> list[SettlementRecord]:
        c = self.u.conn()
        where = [_S.c.person_id == person_id]
        if year is not None:
            where.append(_S.c.year == year)
        rows = c.execute(
            sa.select(*_HEAD).where(*where).order_by(_S.c.created_at, _S.c.settlement_id)
        ).all()
        if not rows:
            return []
        moves = c.execute(
            sa.select(_M)
            .join(_S, _S.c.settlement_id == _M.c.settlement_id)
            .where(*where)
            .order_by(_M.c.settlement_id, _M.c.position)
        )
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


class _Registry:
    def __init__(self, uow: SqlUnitOfWork):
        self.u = uow

    def get(self, person_id: str) -> Person | None:
        rows = (
            self.u.conn()
            .execute(
                sa.select(
                    _P.c.birth_date, _P.c.household, _TG.c.tag, _TG.c.valid_from, _TG.c.valid_to
                )
                .select_from(_P.outerjoin(_TG, _TG.c.person_id == _P.c.person_id))
                .where(_P.c.person_id == person_id)
                .order_by(_TG.c.position)
            )
            .all()
        )
        if not rows:
            return None
        return Person(
            id=person_id,
            birth_date=rows[0].birth_date,
            household=rows[0].household,
            tags=tuple(
                TagSpan(tag=r.tag, valid_from=r.valid_from, valid_to=r.valid_to)
                for r in rows
                if r.tag is not None
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


__all__ = ["DuplicateRequest", "SqlStore", "SqlUnitOfWork", "make_engine", "upgrade"]
