"""The interfaces the use cases need from a store. Adapters implement them (SQL, in-memory).

A unit of work is one transaction: everything done through it commits together or not at all.

Locking rule: a transaction that writes an account row first locks every account-year it
writes, ``lock(("person", P, year), ("household", H, year))`` (``account_locks``), and holds the
locks until commit or rollback. So every writer of one person-year (or household-year) holds the
same lock, whichever household it goes through: a Settle (the person's current household) and a
Reverse (the household recorded on the settlement) of one person serialize on the person-year
even after a household move. A transaction takes all of its locks in one ``lock`` call; they are
acquired in one global order (sorted by kind, key, year), and a later call may only add keys
that sort after every key already held (``lock_order`` refuses the rest), so two transactions
never wait for each other in a cycle (no deadlock). ``("policy", region, 0)`` serializes the
policy writes of one region, ``("policy", "~registry", 0)`` the registry imports.
``("fund", "<region>/<fund code>", year)`` (``fund_lock``) serializes the writers of a
hard-budget fund's ``used`` (domain.md section 12): a Settle, a Reverse or a claim decision
takes it in the same ``lock`` call as its account locks ("fund" sorts before "household" and
"person", so the fund locks are always taken first).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal, Protocol, get_args

from engine.accounts import LayerAccount, YearAccounts
from engine.bill import Person
from engine.claims import Claim, FundPay, MoneyIn
from engine.funds import FundsFile
from engine.ledger import StoredBlock, StoredEvent
from engine.policy.model import PolicyTable
from engine.reconcile import Fact
from engine.result import Settlement

LockKind = Literal["fund", "household", "person", "policy"]
#: what a unit of work locks: ("person", person id, year), ("household", household id, year),
#: ("fund", "<region>/<fund code>", year) or ("policy", region code, 0); the global lock order
#: is the tuples' order
LockKey = tuple[LockKind, str, int]
_KINDS = frozenset(get_args(LockKind))


class LockOrderError(RuntimeError):
    """A lock asked for out of the global order (a programming error: it could deadlock)."""


def account_locks(person_id: str, household_id: str, year: int) -> tuple[LockKey, LockKey]:
    """The locks of a transaction that writes one person-year and one household-year."""
    return ("person", person_id, year), ("household", household_id, year)


def fund_lock(region: str, fund_code: str, year: int) -> LockKey:
    """The lock of a hard-budget fund-year (its ``used``)."""
    return ("fund", f"{region}/{fund_code}", year)


def lock_order(held: set[LockKey], keys: tuple[LockKey, ...]) -> list[LockKey]:
    """The keys not yet held, in the global lock order (sorted). Refuses a malformed key, and
    a key that would be taken after a key that sorts after it (LockOrderError)."""
    for k in keys:
        if (
            not isinstance(k, tuple)
            or len(k) != 3
            or k[0] not in _KINDS
            or not isinstance(k[1], str)
            or not isinstance(k[2], int)
        ):
            raise TypeError(
                f"lock key {k!r} is not a (kind, key, year) tuple with kind one of "
                f"{sorted(_KINDS)}; take all of a transaction's locks in one lock(*keys) call"
            )
    new = sorted(set(keys) - held)
    if new and held and new[0] < max(held):
        raise LockOrderError(
            f"lock {new[0]!r} asked for while holding {max(held)!r}, which sorts after it; "
            "take all of a transaction's locks in one lock() call"
        )
    return new


@dataclass(frozen=True)
class AccountMove:
    """How one settlement moved one year-to-date account (after minus before)."""

    scope: Literal["person", "household"]
    key: str  # person id or household id
    year: int
    layer_id: str
    delta: LayerAccount


@dataclass(frozen=True)
class SettlementRecord:
    settlement_id: str
    request_id: str
    bill_digest: str  # sha256 of the canonical bill request: same id + same bill = same digest
    bill: dict[str, Any]  # the bill request as received (JSON-ready)
    settlement: Settlement
    moves: tuple[AccountMove, ...]
    created_at: datetime
    status: Literal["settled", "reversed"] = "settled"
    reversed_at: datetime | None = None
    reversal_request_id: str | None = None
    #: the version of the person's registry entry the settlement used (None: settled before
    #: the registry kept versions)
    registry_version: int | None = None
    #: the stored policy version of the table the settlement was settled with (None: settled
    #: before settlements recorded it; re-reads then use the table in force)
    policy_version: int | None = None


@dataclass(frozen=True)
class SettleReads:
    """What a Settle reads before its locks (``UnitOfWork.settle_reads``): a settlement
    already stored under the request id, the person in force with its registry version, and
    the id of the bill's active settlement."""

    found: SettlementRecord | None
    person: tuple[Person, int | None] | None
    active_id: str | None


@dataclass(frozen=True)
class PersonVersion:
    """One import of one person: the registry keeps every version, none is overwritten."""

    person: Person
    version: int  # 1, 2, ... per person
    valid_from: datetime  # when it was imported; in force until the next version
    imported_by: str  # the principal that imported it


@dataclass(frozen=True)
class PolicyVersion:
    version: int
    region: str
    effective_from: date
    effective_to: date | None
    text: str  # the YAML as submitted
    source_name: str
    created_at: datetime
    table: PolicyTable = field(compare=False)
    #: answers to put_policy only: the same text was in force for this region and start, so
    #: that version is returned and nothing is stored
    unchanged: bool = field(default=False, compare=False)


@dataclass(frozen=True)
class FundVersion:
    """One stored ``funds.yaml`` of a region; the latest version of a region is in force."""

    version: int
    region: str
    text: str  # the YAML as submitted
    source_name: str
    created_at: datetime
    file: FundsFile = field(compare=False)
    #: answers to put_funds only: the same text is in force for the region; nothing stored
    unchanged: bool = field(default=False, compare=False)


class Accounts(Protocol):
    def person_year(self, person_id: str, year: int) -> YearAccounts: ...
    def household_year(self, household_id: str, year: int) -> YearAccounts: ...
    def read_many(
        self, keys: Sequence[tuple[Literal["person", "household"], str, int]]
    ) -> dict[tuple[str, str, int], YearAccounts]:
        """Read these (scope, person or household id, year) accounts at once (few statements or
        one round trip where the store can), so that the reads of them that follow under their
        locks need none; returns them by key (what ``person_year`` / ``household_year`` would
        return). Changes nothing a read returns."""
        ...

    def save_person_year(self, person_id: str, year: int, acc: YearAccounts) -> None: ...
    def save_household_year(self, household_id: str, year: int, acc: YearAccounts) -> None: ...


class Settlements(Protocol):
    def by_id(self, settlement_id: str) -> SettlementRecord | None: ...
    def by_request(self, request_id: str) -> SettlementRecord | None: ...
    def active_for_bill(self, hospital: str, bill_id: str) -> SettlementRecord | None: ...
    def by_reversal_request(self, reversal_request_id: str) -> SettlementRecord | None:
        """The settlement reversed by this reversal request id, if any."""
        ...

    @property
    def takes_stored_json(self) -> bool:
        """Whether ``add`` stores a ``RowsRecord``'s ``stored_json`` (the request's compact
        JSON written from its columns) as it is: then a Settle writes it so, and the record's
        ``bill`` dicts are made only if read."""
        ...

    #: raises DuplicateRequest (request id taken) or BillSettled (the bill has an active
    #: settlement), from ``add`` or at the latest from ``commit``; nothing is then written.
    #: ``plain``: the settlement's ``to_dict()`` when the caller has built it already (a
    #: Settle builds it once, for the record and its ledger event's digest; on the columns
    #: path from the kernel's rows, ``SettledRows.plain``): the columns and layers are then
    #: read from it, not from ``record.settlement``; not changed
    def add(self, record: SettlementRecord, plain: dict[str, Any] | None = None) -> None: ...
    def mark_reversed(self, settlement_id: str, reversal_request_id: str, at: datetime) -> None: ...
    def for_person(
        self,
        person_id: str,
        year: int | None,
        limit: int | None = None,
        after: tuple[datetime, str] | None = None,
    ) -> list[SettlementRecord]:
        """In commit order (created_at, settlement_id); with ``limit``, at most that many;
        with ``after``, only those after that (created_at, settlement_id): a keyset page."""
        ...


class Registry(Protocol):
    def get(self, person_id: str) -> Person | None: ...
    def get_many(self, person_ids: Sequence[str]) -> dict[str, Person]:
        """The persons in force among these ids (an unknown id is left out), in one read."""
        ...

    def get_versioned(self, person_id: str) -> tuple[Person, int | None] | None:
        """The person in force and its version (None for a person imported before the
        registry kept versions)."""
        ...

    #: insert or replace; each person's new version is appended to its history (a person
    #: stored exactly so already gets no new version); the number of persons inserted or
    #: replaced (new versions)
    def upsert(
        self, persons: list[Person], by: str = "local", at: datetime | None = None
    ) -> int: ...
    def history(self, person_id: str) -> list[PersonVersion]: ...  # oldest first
    def in_region(
        self, region: str, township: str | None = None, village: str | None = None
    ) -> list[Person]:
        """The persons in force of a region (and township, village), by id."""
        ...

    def page_in_region(
        self,
        region: str,
        township: str | None,
        village: str | None,
        after: tuple[str, str, str] | None,
        limit: int,
    ) -> list[Person]:
        """Up to ``limit`` persons of ``in_region`` by (township, village, id), after
        ``after`` (a keyset page of a cover list)."""
        ...


class Policies(Protocol):
    def add(
        self, text: str, source_name: str, table: PolicyTable, at: datetime
    ) -> PolicyVersion: ...
    def latest_version(self) -> int: ...  # 0 when none stored
    def all(self) -> list[PolicyVersion]: ...


class Funds(Protocol):
    """Fund declarations (versions of each region's funds.yaml), what each hard-budget fund
    has used, and the fund's window pays (read from the settlements)."""

    def add(self, text: str, source_name: str, file: FundsFile, at: datetime) -> FundVersion: ...
    def latest_version(self) -> int: ...  # 0 when none stored
    def all(self) -> list[FundVersion]: ...  # by version
    def used(self, region: str, fund_code: str, year: int) -> int: ...  # 0 when no row
    #: add ``delta`` (fen, may be negative) to the fund-year's used; the caller holds fund_lock
    def add_used(self, region: str, fund_code: str, year: int, delta: int) -> None: ...
    def window_pays(self, region: str, fund_code: str, year: int) -> list[FundPay]:
        """Pays > 0 of the fund's window layers in settlements of the region and year (settled
        and reversed), in commit order."""
        ...


@dataclass(frozen=True)
class ClaimQuery:
    """Which claims a listing holds; '', () or None: any."""

    region: str = ""
    fund_codes: tuple[str, ...] = ()  # any of these funds
    person_id: str = ""
    status: str = ""
    kind: str = ""
    year: int | None = None


#: (filed_at, claim_id): the order of a claim listing, and a keyset page's position
ClaimKey = tuple[datetime, str]


class Claims(Protocol):
    """Claims and relief cases (one per settlement and layer) and money into funds."""

    #: a claim (settlement, layer) stored twice is refused (Conflict or IntegrityError, at the
    #: latest at commit): callers look first, under the account locks
    def add(self, claim: Claim) -> None: ...
    def get(self, claim_id: str) -> Claim | None: ...
    def update(self, claim: Claim) -> None: ...  # the stored claim with this id, replaced
    def for_settlement(self, settlement_id: str) -> list[Claim]: ...  # by layer order of filing
    def for_fund(self, region: str, fund_code: str, year: int) -> list[Claim]: ...
    def for_person(self, person_id: str, year: int | None) -> list[Claim]: ...
    def page(self, q: ClaimQuery, after: ClaimKey | None, limit: int) -> list[Claim]:
        """Up to ``limit`` claims ``q`` keeps, by (filed_at, claim_id), after ``after``."""
        ...

    def add_money_in(self, record: MoneyIn, request_id: str) -> None: ...
    def money_in_by_request(self, request_id: str) -> MoneyIn | None: ...
    def money_in_for(self, region: str, fund_code: str, year: int) -> list[MoneyIn]: ...


class ReconcileFacts(Protocol):
    def facts(
        self, start: datetime, end: datetime, *, hospital: str | None, region: str | None
    ) -> list[Fact]:
        """The settlements committed, or reversed, at a time in [start, end) (aware UTC
        datetimes), of the hospital and/or the region (None: any), in commit order
        (created_at, settlement_id); each with its per-layer (fund_code, settle_at, pay)."""
        ...


class Ledger(Protocol):
    """The audit ledger's rows (domain.md section 15). ``append`` writes an event in the
    transaction of its effect, without seq (a storage id orders it); only the sealer, holding
    ``lock_sealer``, gives the committed events their seqs and digests and adds a block."""

    def append(self, method: str, subject: str, content: str) -> None:
        """``content``: the canonical JSON of the event without its seq."""
        ...

    def append_many(self, events: Sequence[tuple[str, str, str]]) -> None:
        """``append`` of each (method, subject, content), in this order (their storage ids),
        as one write where the store can (PostgreSQL: one multi-row INSERT, which may go
        in ``together``)."""
        ...

    def lock_sealer(self) -> None:
        """Be the one sealer until the unit of work ends (it does not block appends)."""
        ...

    def head(self) -> StoredBlock | None: ...
    def unsealed(self, limit: int) -> list[StoredEvent]:
        """Committed events without seq, by storage id."""
        ...

    def seal(self, events: list[StoredEvent], block: StoredBlock) -> None:
        """Store the seqs and digests given to ``events`` and the block holding them."""
        ...

    def pending(self) -> int: ...
    def blocks(self, after: int, limit: int) -> list[StoredBlock]:
        """Blocks of height > ``after``, by height."""
        ...

    def events(self, first_seq: int, last_seq: int) -> list[StoredEvent]:
        """Events with first_seq <= seq <= last_seq, by seq then storage id."""
        ...

    def stray(self, last_seq: int) -> list[StoredEvent]:
        """Events with a seq below 1 or above ``last_seq``, by seq then storage id."""
        ...

    def find(self, method: str, subject: str) -> StoredEvent | None:
        """The latest event of ``method`` about ``subject``."""
        ...

    def block_with(self, seq: int) -> StoredBlock | None:
        """The block whose range holds ``seq``."""
        ...


class UnitOfWork(Protocol):
    # the stores, read-only: a protocol's plain attribute is invariant (settable), and each
    # adapter's unit of work holds its own implementation of each port, a subtype of it
    @property
    def accounts(self) -> Accounts: ...
    @property
    def settlements(self) -> Settlements: ...
    @property
    def reconciliation(self) -> ReconcileFacts: ...
    @property
    def registry(self) -> Registry: ...
    @property
    def policies(self) -> Policies: ...
    @property
    def ledger(self) -> Ledger: ...
    @property
    def funds(self) -> Funds: ...
    @property
    def claims(self) -> Claims: ...

    def __enter__(self) -> UnitOfWork: ...
    def __exit__(self, *exc: object) -> None: ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...
    def kept(self) -> dict[Any, Any] | None:
        """A dict for answers built from this unit of work's reads, which the store keeps with
        them and empties as soon as a read could return anything else (a commit elsewhere):
        an answer found there is what the reads would give now. None where the store keeps
        no reads (every unit of work but SQLite's trials: ``adapters.store.sql.trialreads``).
        Callers keep one answer each under their own key."""
        ...

    def lock(
        self,
        *keys: LockKey,
        read: Sequence[tuple[Literal["person", "household"], str, int]] = (),
    ) -> None:
        """Hold these locks until the unit of work ends, taken in the global order (see the
        module docstring); what was read before may be stale and is read again. ``read``:
        these account-years read under the locks (``accounts.read_many``), on PostgreSQL in
        the locks' round trip."""
        ...

    def together(self) -> AbstractContextManager[None]:
        """The writes inside as one statement where the store can (PostgreSQL): for writes
        that each touch other rows, none reading what another wrote."""
        ...

    def settle_reads(
        self,
        request_id: str,
        person_id: str,
        hospital: str,
        bill_id: str,
        year: int | None = None,
    ) -> SettleReads:
        """``settlements.by_request``, ``registry.get_versioned`` and the id of
        ``settlements.active_for_bill`` at once (PostgreSQL: one round trip). ``year``: the
        bill's accounting year, when the caller will lock no fund-year: a store may then take
        the registered person's account locks of that year (and read those accounts) in the
        same round trip, as ``lock`` would; a later ``lock`` that needs locks sorting before
        them starts the transaction over (nothing is written before ``lock``)."""
        ...

    def settle_reads_many(
        self, calls: Sequence[tuple[str, str, str, str]], years: Sequence[int] | None = None
    ) -> list[SettleReads]:
        """``settle_reads`` of several calls' (request id, person id, hospital, bill id),
        each its own statement, in order (PostgreSQL: one round trip). ``years``: each
        call's bill's accounting year, when the caller will lock no fund-year: a store may
        then take the registered persons' account locks of those years (and read them) in
        the same round trip, as ``settle_reads`` may for one."""
        ...
