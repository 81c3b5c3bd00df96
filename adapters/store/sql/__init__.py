"""The SQL store behind ``engine.service.ports``: SQLAlchemy 2 Core, SQLite or PostgreSQL.

``SqlStore(url)`` migrates the database to the newest schema (Alembic, ``migrations/``) and
hands out units of work. A unit of work is one database transaction on one pooled connection:
everything written through it commits together or not at all; leaving it without ``commit``
rolls back.

Serialization (``lock(*keys)``; the rule is in ``engine.service.ports``): every transaction that
writes an account row first locks each account-year it writes, ``("person", P, year)`` and
``("household", H, year)``, all in one call, taken in one global order (sorted by kind, key,
year); a later call may only add keys that sort after those held. Settle locks the person-year
and the person's current household-year, Reverse the person-year and the household-year recorded
on the settlement, so after a household move they still serialize on the person-year, and no two
transactions wait for each other in a cycle. ``("policy", region, 0)`` serializes PutPolicy.

- PostgreSQL: a row lock on the key's row in ``person_years`` or ``household_years`` (a policy
  region: the row ``("policy:<region>", 0)`` of ``household_years``; year 0 is no accounting
  year), held until the transaction ends. One statement per key creates the row if it is
  missing (admissions 0, which reads as no accounts) and locks it either way, changing nothing:
  ``INSERT ... ON CONFLICT (person_id, year) DO UPDATE SET admissions = admissions`` (like
  ``INSERT ... ON CONFLICT DO NOTHING`` + ``SELECT ... FOR UPDATE``); a call's statements go in
  one pipeline, which the server runs in order (one round trip).
  Transactions are READ COMMITTED, so what is read after the lock is what the previous holder
  committed. Reads before the first write or lock run in autocommit; the writes of a unit of
  work are held back and sent in one pipeline with COMMIT (or before the next read). A thread
  keeps the connection of its first unit of work for the next ones (``SqlStore.held``).
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

Modules: ``connect`` (engines, URLs, migrations), ``store`` (the store), ``uow`` (its unit of
work), ``locks`` (the account locks' SQL), one module per repository (``accounts``,
``settlements``, ``reconcile``, ``registry``, ``policies``), ``rows`` (what they share) and
``trialreads`` (``SqlStore.trial_uow``: a trial's reads on SQLite on a connection kept per
thread, without the pool's check-out and resets), ``snapshotkeep`` (PostgreSQL's trials, kept
while the snapshot stands), ``snapshotcheck`` (its check awaited on the event loop) and ``keptreads`` (the kept rows, account-years and answers both
keep).
"""

from adapters.store.sql.connect import (
    alembic_config,
    make_engine,
    migration_transaction,
    normalize_url,
    upgrade,
)
from adapters.store.sql.store import SqlStore
from adapters.store.sql.uow import SqlUnitOfWork

__all__ = [
    "SqlStore",
    "SqlUnitOfWork",
    "alembic_config",
    "make_engine",
    "migration_transaction",
    "normalize_url",
    "upgrade",
]
