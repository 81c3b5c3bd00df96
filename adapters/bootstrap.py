"""The composition root: a store from a URL, the settlement service over it, the policy tables
of a directory and the sample registry loaded. Everything that runs the service (the gRPC
server, tests, benchmarks) builds it here and nowhere else.

URLs: ``sqlite:///var/onestop.db`` (the default; ``var/`` is created), any SQLAlchemy URL such
as ``postgresql+psycopg://user@host/db``, or ``memory://`` for the in-memory store (not
durable: tests and demos).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapters.defaults import DEFAULT_DB, DEFAULT_POLICIES, DEFAULT_REGISTRY
from engine.bill import Person
from engine.errors import InputError
from engine.funds import funds_files
from engine.policy.load import policy_files
from engine.service.funds import FundService
from engine.service.groupcommit import GroupCommit
from engine.service.kepttrials import KeptTrials
from engine.service.ledger import LedgerService
from engine.service.ports import UnitOfWork
from engine.service.usecases import SettlementService
from engine.service.versions import effective
from engine.validation import problems_from

log = logging.getLogger("onestop.bootstrap")


@dataclass
class App:
    service: SettlementService
    store: Any
    url: str
    durable: bool
    policies_loaded: list[str] = field(default_factory=list)  # files stored as new versions
    policies_skipped: list[str] = field(default_factory=list)  # identical text already stored
    persons_imported: int = 0
    ledger: LedgerService | None = None  # the audit ledger over the same store
    funds_loaded: list[str] = field(default_factory=list)  # funds files stored as new versions
    funds: FundService | None = None  # funds, claims, relief cases, money in (issue 10)

    def __post_init__(self) -> None:
        if self.ledger is None:
            self.ledger = LedgerService(self.store.uow)
        if self.funds is None:
            self.funds = FundService(self.service)

    def close(self) -> None:
        self.service.close()  # the settle writer answers what is queued, then stops
        dispose = getattr(self.store, "close", None) or getattr(self.store, "dispose", None)
        if callable(dispose):
            dispose()


def make_store(url: str = DEFAULT_DB) -> tuple[Any, bool]:
    """(store, durable) for a URL."""
    if url.startswith("memory:"):
        from adapters.store.memory import MemoryStore

        return MemoryStore(), False
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///") :]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    from adapters.store.sql import SqlStore

    return SqlStore(url, migrate=True), True


def server_group_commit(
    url: str,
    max_group: int | None = None,
    max_wait: float = GroupCommit.max_wait,
    writers: int = 0,
) -> GroupCommit | None:
    """A server's group commit for Settle: on for SQLite and PostgreSQL (one commit and fsync
    per group), with ``GroupCommit``'s defaults where not given (``max_group`` None: 64 calls
    a group; ``writers`` 0: one writer); off for memory:// (no commit to share) and for
    ``max_group`` 1.

    Measured (benchmarks/README.md): SQLite serializes its commits (one write lock), so
    sharing one pays. PostgreSQL shares one WAL flush among concurrent commits anyway:
    grouping lost there on 2026-12-02 (96-104 against 125-138 Settle/s) and was off until its
    path was made as cheap as a lone Settle's (2026-12-04, branch groupcols: two round trips
    a group, the rows path). Then, one writer, 8 clients, interleaved against lone Settles,
    it won on calls/s and p99 in the four runs at load 1.7-5 (as shipped: 780 against 716
    Settle/s median, p99 25.4 against 28.6 ms; ~28 % less CPU a Settle in all) and lost or
    tied on calls/s in the two at load 6-8. One writer beat two in every run: two halve the
    groups (2.1-2.3 calls against 3.4-3.7)."""
    if max_group is None:
        max_group = GroupCommit.max_group
    if url.startswith("memory:") or max_group <= 1:
        return None
    return GroupCommit(
        max_group=max_group, max_wait=max_wait, writers=writers if writers > 0 else 1
    )


def load_policies(service: SettlementService, directory: Path) -> tuple[list[str], list[str]]:
    """Store every table of ``directory`` whose exact text is not stored yet (a changed file
    becomes a new version). Raises PolicyError (file, path, reason) for a bad table."""
    stored = {v.text for v in service.policy_versions()}
    loaded, skipped = [], []
    if not directory.exists():
        return [], []
    for p in policy_files(directory):
        text = p.read_text(encoding="utf-8")
        name = str(p.relative_to(directory.parent))
        if text in stored:
            skipped.append(name)
            continue
        service.put_policy(text, name)
        stored.add(text)
        loaded.append(name)
    return loaded, skipped


def load_funds(funds: FundService, directory: Path) -> list[str]:
    """Store every funds.yaml of ``directory`` whose text is not the version in force for its
    region (a changed file becomes a new version). Raises PolicyError for a bad file."""
    if not directory.exists():
        return []
    loaded = []
    for p in funds_files(directory):
        name = str(p.relative_to(directory.parent))
        v = funds.put_funds(p.read_text(encoding="utf-8"), name)
        if not v.unchanged:
            loaded.append(name)
    return loaded


def read_registry(path: Path) -> list[Person]:
    """Persons from a JSON list of person objects; InputError naming ``persons[i].<field>``."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(data, dict) and "persons" in data:
        data = data["persons"]
    if not isinstance(data, list):
        raise InputError.one(str(path), type(data).__name__, "is not a list of person objects")
    from pydantic import ValidationError

    out, problems = [], []
    for i, d in enumerate(data):
        try:
            out.append(Person.model_validate(d))
        except ValidationError as err:
            problems += problems_from(err, prefix=f"persons[{i}]")
    if problems:
        raise InputError(problems)
    return out


def kept_trials(app: App, timeout: float) -> KeptTrials | None:
    """The store's kept trials for an event loop (``engine.service.kepttrials``): PostgreSQL's
    snapshot check, each figure waited for at most ``timeout`` seconds; None for the other
    stores (their trials need no awaited figure: SQLite's is read on its kept connection)."""
    if not app.url.startswith("postgresql"):
        return None
    from adapters.store.sql.snapshotcheck import SnapshotCheck

    return SnapshotCheck(app.store, timeout)


def build(
    url: str = DEFAULT_DB,
    policies: Path | str | None = DEFAULT_POLICIES,
    registry: Path | str | None = DEFAULT_REGISTRY,
    *,
    service_factory: Callable[[Callable[[], UnitOfWork]], SettlementService] = SettlementService,
    group_commit: GroupCommit | None = None,
) -> App:
    """The service over the store at ``url`` with the tables of ``policies`` and the persons
    of ``registry`` loaded (each step skipped when the path is None or missing).
    ``group_commit``: Settle calls grouped into shared transactions (servers; see
    ``server_group_commit``); None: each Settle its own transaction."""
    store, durable = make_store(url)
    service = service_factory(store.uow)
    if hasattr(store, "trial_uow"):
        service.use_trial_reads(store.trial_uow)
    app = App(service, store, url, durable)
    if policies is not None:
        app.policies_loaded, app.policies_skipped = load_policies(service, Path(policies))
        assert app.funds is not None
        app.funds_loaded = load_funds(app.funds, Path(policies))
    if registry is not None and Path(registry).exists():
        app.persons_imported = service.import_registry(read_registry(Path(registry)))
    service.use_group_commit(group_commit)
    n = len(effective(service.policy_versions()))
    log.info(
        "store %s (%s); %d tables in force (%d new, %d already stored); %d persons imported "
        "(new or changed)",
        url,
        "durable" if durable else "in memory",
        n,
        len(app.policies_loaded),
        len(app.policies_skipped),
        app.persons_imported,
    )
    return app
