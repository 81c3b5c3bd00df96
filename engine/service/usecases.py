"""The settlement service's use cases, over a unit of work (``engine.service.ports``).

NHSA semantics: ``pre_settle`` is 2303 (trial, changes nothing), ``settle`` is 2304
(idempotent by the client's request id), ``reverse`` is 2305/2601 (restores the accounts the
settlement moved; later settlements are not recomputed).
"""

from __future__ import annotations

import base64
import builtins
import hashlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any, Generic, TypeVar

from engine.accounts import YearAccounts
from engine.allocation import Allocation
from engine.allocation import allocate as allocation_for
from engine.batch import FundYearKey
from engine.bill import (
    HOSPITAL_RULE,
    Bill,
    BillRequest,
    Person,
    is_hospital_code,
    parse_bill_request,
)
from engine.checks import check_bill
from engine.errors import (
    BillSettled,
    Conflict,
    DuplicateRequest,
    InputError,
    LimitExceeded,
    NotFound,
    OnestopError,
    Problem,
)
from engine.funds import FundBook, balance
from engine.policy.load import parse_table
from engine.policy.model import PolicyTable
from engine.policy.policyset import PolicySet
from engine.reconcile import (
    DailyFund,
    HospitalLine,
    HospitalTotals,
    Reconciliation,
    daily,
    duplicate_lines,
    entries,
    reconcile,
    utc_bounds,
)
from engine.result import Settlement
from engine.service import billcols, claimmoves, fundbook, ledger
from engine.service.groupcommit import (
    GroupCommit,
    PreparedSettle,
    SettleAnswer,
    SettleCall,
    SettleWriter,
)
from engine.service.ports import (
    AccountMove,
    PersonVersion,
    PolicyVersion,
    SettlementRecord,
    UnitOfWork,
    account_locks,
)
from engine.settle import Outcome, settle_one, undo
from engine.validation import ID_RULE, bad_id_chars

log = logging.getLogger("onestop.service")


def check_key(field: str, value: str, limit: int = 128) -> None:
    """A request id or lookup key that would reach SQL: InputError if it holds a control
    character (NUL makes PostgreSQL fail) or is longer than ``limit``. Empty is the caller's
    business (it often means "not given")."""
    if bad_id_chars(value):
        raise InputError.one(field, value, ID_RULE)
    if len(value) > limit:
        raise InputError.one(field, value, f"is {len(value)} characters long; at most {limit}")


#: Limits of the use cases (the gRPC server states them with its own: adapters/grpc/limits.py).
MAX_VERSIONS_PER_REGION = 1_000  # stored policy versions of one region
MAX_PERSONS_PER_IMPORT = 100_000  # persons in one import_registry call
MAX_SOURCE_NAME = 200  # characters of a policy table's source name
MAX_PAGE_SIZE = 1_000  # settlements per page of ``list``
DEFAULT_PAGE_SIZE = 100
MAX_RECONCILE_DAYS = 366  # days in one reconciliation or totals range
MAX_HOSPITAL_LINES = 200_000  # lines of a hospital's own settlement list (3202)


def parse_day(field: str, value: str | date) -> date:
    """A date YYYY-MM-DD (an Asia/Shanghai calendar date); InputError naming ``field``."""
    if isinstance(value, date):
        return value
    try:
        if len(value) != 10:
            raise ValueError
        return date.fromisoformat(value)
    except (ValueError, TypeError):
        raise InputError.one(
            field, value, "is not a date YYYY-MM-DD (a calendar date in Asia/Shanghai)"
        ) from None


def date_range(start: str | date, end: str | date) -> tuple[date, date]:
    """from_date..to_date inclusive: both dates, in order, at most MAX_RECONCILE_DAYS."""
    a, b = parse_day("from_date", start), parse_day("to_date", end)
    if b < a:
        raise InputError.one("to_date", b.isoformat(), f"is before from_date {a.isoformat()}")
    days = (b - a).days + 1
    if days > MAX_RECONCILE_DAYS:
        raise LimitExceeded("to_date", "MAX_RECONCILE_DAYS", MAX_RECONCILE_DAYS, days,
                            "ask for a shorter range (a month at a time)")  # fmt: skip
    return a, b


def check_source_name(name: str) -> None:
    """A policy table's source name is stored and shown: printable text, 1 to 200 characters."""
    if not name or len(name) > MAX_SOURCE_NAME:
        raise InputError.one("source_name", name, f"must be 1 to {MAX_SOURCE_NAME} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise InputError.one(
            "source_name", name, "holds a control character (NUL, newline, ...); use plain text"
        )


def check_persons_count(n: int) -> None:
    if n > MAX_PERSONS_PER_IMPORT:
        raise LimitExceeded("persons", "MAX_PERSONS_PER_IMPORT", MAX_PERSONS_PER_IMPORT, n)


def _page_token(person_id: str, year: int | None, created_at: datetime, sid: str) -> str:
    raw = json.dumps([1, person_id, year, created_at.isoformat(), sid], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _read_token(token: str, person_id: str, year: int | None) -> tuple[datetime, str]:
    """(created_at, settlement_id) of the token's last settlement; InputError naming
    page_token when it is not a token of this listing (same person and year)."""
    bad = InputError.one(
        "page_token",
        token,
        "is not a next_page_token of this listing (same person_id and year); "
        "start again with an empty page_token",
    )
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        v, pid, y, created, sid = json.loads(raw)
        at = datetime.fromisoformat(created)
    except (ValueError, TypeError):
        raise bad from None
    if v != 1 or pid != person_id or y != year or not isinstance(sid, str) or at.tzinfo is None:
        raise bad
    return at, sid


def digest(req: BillRequest) -> str:
    """The request digest (idempotency): sha256 of the canonical bytes of the normalized
    request (``billcols.digest_of``; no model dump, no JSON of the items)."""
    return billcols.digest_of(req)


def legacy_digest(bill: dict[str, object]) -> str:
    """The digest rows stored before issue 13 carry: sha256 of the sorted JSON of the stored
    request. Compared only when a stored digest differs from the new one (a retry across the
    upgrade is still recognized as the same request)."""
    canonical = json.dumps(bill, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def effective(versions: list[PolicyVersion]) -> list[PolicyVersion]:
    """The versions in force: for each region and start date, the latest version."""
    latest: dict[tuple[str, object], PolicyVersion] = {}
    for v in sorted(versions, key=lambda v: v.version):
        latest[(v.region, v.effective_from)] = v
    return list(latest.values())


def policy_version_of(policies: PolicySet, bill: Bill) -> int | None:
    """The stored policy version of the table ``policies`` settles ``bill`` with (the service
    builds its set with each table's source named ``version N``); None for a set not built
    from stored versions."""
    table = policies.table_for(bill.region, bill.discharge_date)
    for source, t in zip(policies.files, policies.tables, strict=True):
        if t is table and source.startswith(VERSION_SOURCE):
            return int(source[len(VERSION_SOURCE) :])
    return None


VERSION_SOURCE = "version "

T = TypeVar("T")


class _Versioned(Generic[T]):
    """A value built from the store (the policy tables, the fund declarations in force), kept
    until the store's latest version number of it changes; that number is read at most once
    per ``recheck`` seconds (another process sharing the store may have stored a version).
    The caller holds its own lock."""

    def __init__(self) -> None:
        self.value: T | None = None
        self.version = 0
        self.checked = 0.0

    def get(
        self,
        uow: Callable[[], UnitOfWork],
        recheck: float,
        latest: Callable[[UnitOfWork], int],
        build: Callable[[UnitOfWork], T],
    ) -> T:
        now = time.monotonic()
        if self.value is not None and now - self.checked < recheck:
            return self.value
        with uow() as u:
            v = latest(u)
            if self.value is None or v != self.version:
                self.value = build(u)
                self.version = v
        self.checked = now
        return self.value

    def forget(self) -> None:
        """Build again on the next ``get`` (this service stored a version)."""
        self.value = None


class SettlementService:
    def __init__(
        self,
        uow: Callable[[], UnitOfWork],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
        group_commit: GroupCommit | None = None,
    ):
        self._uow = uow
        self._clock = clock
        self._new_id = new_id
        self._lock = threading.Lock()
        self._policies: _Versioned[PolicySet] = _Versioned()
        self._funds: _Versioned[FundBook] = _Versioned()
        self._version_tables: dict[int, PolicyTable] = {}  # stored policy versions by number
        self._writer: SettleWriter | None = None  # group commit's writer (off: None)
        self.use_group_commit(group_commit)

    # --- policies -------------------------------------------------------------------------
    #: how often (seconds) another process's PutPolicy is looked for
    POLICY_RECHECK = 2.0

    def policies(self) -> PolicySet:
        """The tables in force, cached; reloaded when this service stores a version, and when
        another process sharing the store has stored one (checked every POLICY_RECHECK s)."""

        def build(uow: UnitOfWork) -> PolicySet:
            versions = effective(uow.policies.all())
            if not versions:
                raise NotFound("policy table", "any", "load policy tables first")
            return PolicySet.of([(f"{VERSION_SOURCE}{v.version}", v.table) for v in versions])

        with self._lock:
            return self._policies.get(
                self._uow, self.POLICY_RECHECK, lambda u: u.policies.latest_version(), build
            )

    def fund_book(self) -> FundBook:
        """The fund declarations in force (domain.md section 12), cached like ``policies``:
        reloaded when a funds file is stored (here, or by another process: checked every
        POLICY_RECHECK s). No funds file: an empty book (no fund is limited)."""
        with self._lock:
            return self._funds.get(
                self._uow,
                self.POLICY_RECHECK,
                lambda u: u.funds.latest_version(),
                lambda u: fundbook.book_of(u.funds.all()),
            )

    def forget_funds(self) -> None:
        with self._lock:
            self._funds.forget()

    def put_policy(
        self,
        text: str,
        source_name: str = "<request>",
        *,
        principal: str = "local",
        dry_run: bool = False,
    ) -> PolicyVersion:
        """Validate and store a table as a new version. A table with the same region and
        effective_from as an earlier version supersedes it; other overlaps are refused.
        The same text as the version in force for its region and effective_from stores
        nothing: that version is returned, marked ``unchanged`` (a retried put is no new
        version). ``dry_run``: validate only; the answer is the version that would be stored
        (version 0) or the unchanged one. Every use case that changes state appends its
        ledger event in its own transaction."""
        check_source_name(source_name)
        table = parse_table(text, source_name)
        with self._uow() as uow:
            uow.lock(("policy", table.region.code, 0))  # two bureaus' puts check in turn
            now = self.in_force_for(uow.policies.all(), table.region.code, table.effective_from)
            if now is not None and now.text == text:
                return replace(now, unchanged=True)
            stored = sum(1 for v in uow.policies.all() if v.region == table.region.code)
            if stored >= MAX_VERSIONS_PER_REGION:
                raise LimitExceeded(
                    "region",
                    "MAX_VERSIONS_PER_REGION",
                    MAX_VERSIONS_PER_REGION,
                    stored + 1,
                    f"region {table.region.code} has as many stored versions as allowed",
                )
            current = [
                v
                for v in effective(uow.policies.all())
                if not (v.region == table.region.code and v.effective_from == table.effective_from)
            ]
            PolicySet.of(
                [(f"version {v.version}", v.table) for v in current] + [(source_name, table)]
            )  # refuses overlaps with PolicyError
            if dry_run:
                return PolicyVersion(0, table.region.code, table.effective_from,
                                     table.effective_to, text, source_name, self._clock(),
                                     table)  # fmt: skip
            version = uow.policies.add(text, source_name, table, self._clock())
            ledger.append(uow, ledger.policy_event(version, principal))
            uow.commit()
        with self._lock:
            self._policies.forget()
        return version

    @staticmethod
    def in_force_for(
        versions: Sequence[PolicyVersion], region: str, effective_from: date
    ) -> PolicyVersion | None:
        """The version in force for this region and start date, if any."""
        same = [v for v in versions if v.region == region and v.effective_from == effective_from]
        return max(same, key=lambda v: v.version) if same else None

    def policy_versions(self) -> list[PolicyVersion]:
        with self._uow() as uow:
            return uow.policies.all()

    # --- registry -------------------------------------------------------------------------
    def import_registry(
        self,
        persons: list[Person],
        *,
        principal: str = "local",
        check: Callable[[int, Person, Person | None], None] | None = None,
    ) -> int:
        """Insert or replace persons. ``check(i, new, stored)`` (the caller's scope check) is
        called for each person with its stored version, in the transaction that writes them;
        whatever it raises refuses the whole import."""
        check_persons_count(len(persons))
        seen: dict[str, int] = {}
        for i, p in enumerate(persons):
            if p.id in seen:
                raise InputError.one(
                    f"persons[{i}].id", p.id, f"is given twice (also persons[{seen[p.id]}])"
                )
            seen[p.id] = i
        with self._uow() as uow:
            declared = {tag for v in effective(uow.policies.all()) for tag in v.table.tags}
            undeclared = [
                Problem(f"persons[{i}].tags[{j}]", t.tag,
                        f"is not a tag declared by the policy tables in force "
                        f"({', '.join(sorted(declared)) or 'none: load the policy tables first'})")
                for i, p in enumerate(persons)
                for j, t in enumerate(p.tags)
                if t.tag not in declared
            ]  # fmt: skip
            if undeclared:
                raise InputError(undeclared)
            uow.lock(("policy", "~registry", 0))  # imports number versions in turn
            if check is not None:
                for i, p in enumerate(persons):
                    check(i, p, uow.registry.get(p.id))
            n = uow.registry.upsert(persons, by=principal, at=self._clock())
            ledger.append(uow, ledger.registry_event(persons, self._clock(), principal))
            uow.commit()
        return n

    def person_history(self, person_id: str) -> list[PersonVersion]:
        """Every imported version of the person, oldest first (each with when and by whom)."""
        with self._uow() as uow:
            return uow.registry.history(person_id)

    def person(self, person_id: str) -> Person:
        check_key("person_id", person_id)
        with self._uow() as uow:
            p = uow.registry.get(person_id)
        if p is None:
            raise NotFound("person", person_id, "import the person registry first")
        return p

    # --- settlement -----------------------------------------------------------------------
    def _bill(self, uow: UnitOfWork, req: BillRequest) -> Bill:
        return self._versioned_bill(uow, req)[0]

    def _versioned_bill(self, uow: UnitOfWork, req: BillRequest) -> tuple[Bill, int | None]:
        """The bill with its person from the registry, and the registry version used."""
        found = uow.registry.get_versioned(req.person_id)
        if found is None:
            raise InputError.one(
                "person_id", req.person_id, "is not in the person registry; import the person first"
            )
        person, version = found
        bill = req.with_person(person)
        check_bill(bill, self.policies().table_for(bill.region, bill.discharge_date))
        return bill, version

    def _hard_keys(self, bill: Bill) -> list[FundYearKey]:
        """The hard-budget fund-years the bill's table draws on (section 12)."""
        table = self.policies().table_for(bill.region, bill.discharge_date)
        codes = [x.fund_code for x in table.layers]
        return fundbook.hard_keys(self.fund_book(), table.region.code, bill.year, codes)

    def _budgets(self, uow: UnitOfWork, keys: list[FundYearKey]) -> dict[FundYearKey, int] | None:
        """Each hard fund-year's balance as stored (read under its lock when settling)."""
        book = self.fund_book()
        out = {}
        for k in keys:
            total = book.hard_total(*k)
            if total is not None:
                out[k] = balance(total, uow.funds.used(*k))
        return out or None

    def _settle(
        self,
        uow: UnitOfWork,
        bill: Bill,
        budgets: dict[FundYearKey, int] | None = None,
        allocate_items: bool = False,
        policies: PolicySet | None = None,
    ) -> Outcome:
        p = uow.accounts.person_year(bill.person.id, bill.year)
        h = uow.accounts.household_year(bill.person.household, bill.year)
        return settle_one(
            bill, policies or self.policies(), p, h, budgets=budgets, allocate_items=allocate_items
        )

    def pre_settle(self, req: BillRequest | billcols.BillColumns) -> Settlement:
        """Trial settlement (2303): what settling now would pay (hard budgets at their
        balance now, read without a lock). Changes nothing. The request may come as columns
        (``billcols.BillColumns``: the fast path, no per-item model)."""
        if isinstance(req, billcols.BillColumns):
            return self._pre_settle_columns(req)
        return self.pre_settle_allocated(req, allocate=False)[0]

    def pre_settle_allocated(
        self, req: BillRequest, allocate: bool = True
    ) -> tuple[Settlement, Allocation | None]:
        """``pre_settle`` and, if ``allocate``, the per-item allocation (domain.md section 11),
        computed by the kernel in the same run."""
        with self._uow() as uow:
            bill = self._bill(uow, req)
            budgets = self._budgets(uow, self._hard_keys(bill))
            out = self._settle(uow, bill, budgets, allocate_items=allocate)
            return out.settlement, out.allocation

    def settled_table(self, rec: SettlementRecord) -> PolicyTable | None:
        """The policy table a stored settlement was settled with: the table of its recorded
        policy version (stored versions never change, so they are cached by number). None for
        a settlement stored before settlements recorded their version (migration 0009)."""
        v = rec.policy_version
        if v is None:
            return None
        with self._lock:
            table = self._version_tables.get(v)
        if table is None:
            with self._uow() as uow:
                found = [p for p in uow.policies.all() if p.version == v]
            if not found:
                raise NotFound("policy version", v, "the settlement's table is not stored")
            table = found[0].table
            with self._lock:
                self._version_tables[v] = table
        return table

    def table_of(self, rec: SettlementRecord) -> PolicyTable:
        """The table to read a stored settlement with (slip, explanation): the one it was
        settled with, or for a settlement stored before versions were recorded the table in
        force for its region and discharge date."""
        s = rec.settlement
        return self.settled_table(rec) or self.policies().table_for(s.region, s.discharge_date)

    def _pre_settle_columns(self, cols: billcols.BillColumns) -> Settlement:
        """``pre_settle`` of a request given as columns, without a per-item model: the
        vectorized checks, the registry and accounts in one unit of work, the kernel on the
        one bill, the settlement read from its output arrays. Anything off (a bad field, an
        unknown person, a table that does not fit, the account limit) goes the model path,
        which names it exactly as before."""
        ch = billcols.checked(cols)
        if ch is not None:
            with self._uow() as uow:
                found = uow.registry.get_versioned(cols.person_id)
                if found is not None:
                    person = found[0]
                    try:
                        table = self.policies().table_for(ch.region, ch.discharge)
                    except InputError:
                        table = None
                    if table is not None and billcols.fits_table(ch, person, table):
                        codes = [x.fund_code for x in table.layers]
                        keys = fundbook.hard_keys(
                            self.fund_book(), table.region.code, ch.year, codes
                        )
                        budgets = self._budgets(uow, keys)
                        pa = uow.accounts.person_year(person.id, ch.year)
                        ha = uow.accounts.household_year(person.household, ch.year)
                        kb = billcols.run_one(ch, person, table, pa, ha, budgets)
                        if kb is not None:
                            return billcols.settlement_of(kb, ch, person, table)
        return self.pre_settle(cols.request())

    def allocation_of(self, rec: SettlementRecord) -> Allocation:
        """The per-item allocation (domain.md section 11) of a stored settlement, from its
        stored bill and figures and the policy table it was settled with (its recorded policy
        version; claim decisions do not change it). For a settlement stored before versions
        were recorded, the table in force: InputError if that is no longer the one it used
        (replaced since with other layers)."""
        s = rec.settlement
        table = self.settled_table(rec) or self.policies().table_for(s.region, s.discharge_date)
        if table.label != s.policy or [x.id for x in table.layers] != [
            r.layer_id for r in s.layers
        ]:
            raise InputError.one(
                "allocate", True, f"cannot be computed: the table {s.policy!r} the settlement "
                "used is no longer in force with the same layers",
            )  # fmt: skip
        return allocation_for(parse_bill_request(rec.bill), table, s)

    def settle(
        self, request_id: str, req: BillRequest, *, principal: str = "local"
    ) -> tuple[SettlementRecord, bool]:
        """Settle (2304). Returns the record and whether it is a replay of an earlier request
        with the same id. The same id with a different bill is a Conflict. With group commit
        on (``use_group_commit``) the call goes to the service's writer, which settles it in
        one transaction with the calls queued beside it and answers after that commit."""
        if not request_id or len(request_id) > 128:
            raise InputError.one("request_id", request_id, "must be 1 to 128 characters")
        check_key("request_id", request_id)
        d = digest(req)
        call = SettleCall(request_id, req, principal, d)
        writer = self._writer
        if writer is None:
            return self._settle_alone(call)
        ready = self._prepare(call)  # reads in this thread, beside the other callers'
        if not isinstance(ready, PreparedSettle):
            return ready  # a replay of a committed settlement: nothing to wait for
        return writer.submit(ready)

    # --- group commit (engine/service/groupcommit.py) --------------------------------------
    def use_group_commit(self, config: GroupCommit | None) -> None:
        """Group Settle calls into shared transactions (one writer thread; None or
        ``max_group`` 1: each Settle its own transaction, in the caller's thread)."""
        old, self._writer = self._writer, None
        if old is not None:
            old.close()
        if config is not None and config.on:
            self._writer = SettleWriter(self._settle_prepared, config)

    @property
    def group_commit(self) -> GroupCommit | None:
        return None if self._writer is None else self._writer.config

    @property
    def settle_writer(self) -> SettleWriter | None:
        """The writer of grouped Settle calls (its ``groups`` and ``calls`` counts), if on."""
        return self._writer

    def close(self) -> None:
        """Stop the settle writer (after the calls already queued), if there is one."""
        self.use_group_commit(None)

    def _prepare(self, c: SettleCall) -> PreparedSettle | tuple[SettlementRecord, bool]:
        """What a settle reads before its locks, as a lone settle does: a replay of the
        request (returned as the answer), the bill with its person from the registry (checked
        against its table), the bill's active settlement (BillSettled), the hard budgets the
        bill draws on. Only reads: an error here is the call's own."""
        with self._uow() as uow:
            found = uow.settlements.by_request(c.request_id)
            if found is not None:
                return self._replay(found, c.digest, c.request_id, c.req), True
            bill, person_version = self._versioned_bill(uow, c.req)
            if uow.settlements.active_for_bill(bill.hospital, bill.id) is not None:
                raise BillSettled(bill.hospital, bill.id)
            keys = self._hard_keys(bill)
        # the stored request, dumped here (beside the other callers), not in the writer
        return PreparedSettle(c, bill, person_version, keys, c.req.model_dump(mode="json"))

    def settle_group(self, calls: Sequence[SettleCall]) -> list[SettleAnswer]:
        """Settle the calls as one group (what the writer does with the calls it takes from
        its queue), in this thread; each call's answer, in order."""
        answers: list[SettleAnswer | None] = []
        ready: list[PreparedSettle] = []
        for c in calls:
            got: PreparedSettle | SettleAnswer
            try:
                got = self._prepare(c)
            except Exception as exc:
                got = exc
            if isinstance(got, PreparedSettle):
                ready.append(got)
                answers.append(None)
            else:
                answers.append(got)
        done = iter(self._settle_prepared(ready))
        return [next(done) if a is None else a for a in answers]

    def _settle_prepared(self, group: Sequence[PreparedSettle]) -> list[SettleAnswer]:
        """Settle prepared calls in one transaction, in order, as one-by-one settles would:
        each sees the account moves of the calls before it (same person or household), a
        twin of an earlier call (same request id) is its replay, a second settlement of a
        bill is BillSettled; a call's own error (a bill that does not fit its table, ...) is
        its answer alone. The locks of the whole group are taken in one ``lock`` call (the
        global order), so two writers' groups never deadlock. If anything fails after a write
        (another process settled a twin or the bill since it was prepared, the commit
        failed), the group is rolled back and its calls settled one by one, each in its own
        transaction."""
        try:
            return self._settle_together(group)
        except Exception as exc:
            log.info("settle group of %d rolled back (%s): one by one", len(group),
                     type(exc).__name__)  # fmt: skip
        out: list[SettleAnswer] = []
        for p in group:
            try:
                out.append(self._settle_alone(p.call))
            except Exception as exc:
                out.append(exc)
        return out

    def _settle_together(self, group: Sequence[PreparedSettle]) -> list[SettleAnswer]:
        answers: list[SettleAnswer] = []
        if not group:
            return answers
        with self._uow() as uow:
            uow.lock(*(k for p in group for k in p.locks()))
            uow.accounts.read_many(
                [
                    k
                    for p in group
                    for k in (
                        ("person", p.bill.person.id, p.bill.year),
                        ("household", p.bill.person.household, p.bill.year),
                    )
                ]
            )  # every account of the group, before the first write (one round trip)
            policies = self.policies()
            taken: dict[str, SettlementRecord] = {}  # request id -> settled in this group
            bills: set[tuple[str, str]] = set()
            for p in group:
                c, bill = p.call, p.bill
                twin = taken.get(c.request_id)
                try:
                    if twin is not None:
                        answers.append((self._replay(twin, c.digest, c.request_id, c.req), True))
                        continue
                    if (bill.hospital, bill.id) in bills:
                        raise BillSettled(bill.hospital, bill.id)
                    budgets = self._budgets(uow, p.keys)
                    pa = uow.accounts.person_year(bill.person.id, bill.year)
                    ha = uow.accounts.household_year(bill.person.household, bill.year)
                    out = settle_one(bill, policies, pa, ha, budgets=budgets)
                except OnestopError as exc:  # nothing of this call written
                    answers.append(exc)
                    continue
                rec = self._record(c, bill, out, p.person_version, policies, p.stored)
                self._write(uow, rec, out, p.keys, c.principal)
                taken[c.request_id] = rec
                bills.add((bill.hospital, bill.id))
                answers.append((rec, False))
            uow.commit()
        return answers

    def _record(
        self,
        c: SettleCall,
        bill: Bill,
        out: Outcome,
        person_version: int | None,
        policies: PolicySet,
        stored: dict[str, Any] | None = None,
    ) -> SettlementRecord:
        """The settlement record of a call settled now (its time taken under its locks);
        ``stored``: the request as stored (JSON-ready), if dumped already."""
        y = bill.year
        moves = tuple(
            [
                AccountMove("person", bill.person.id, y, k, v)
                for k, v in sorted(out.person_moves.items())
            ]
            + [
                AccountMove("household", bill.person.household, y, k, v)
                for k, v in sorted(out.household_moves.items())
            ]
        )
        return SettlementRecord(
            settlement_id=self._new_id(), request_id=c.request_id, bill_digest=c.digest,
            bill=c.req.model_dump(mode="json") if stored is None else stored,
            settlement=out.settlement, moves=moves,
            created_at=self._clock(), registry_version=person_version,
            policy_version=policy_version_of(policies, bill),
        )  # fmt: skip

    @staticmethod
    def _write(
        uow: UnitOfWork,
        rec: SettlementRecord,
        out: Outcome,
        keys: list[FundYearKey],
        principal: str,
    ) -> None:
        """Everything a settlement writes, in its transaction: the accounts it moved, the
        record, its ledger event, the hard budgets it used, its claims and relief cases."""
        s = rec.settlement
        uow.accounts.save_person_year(s.person_id, s.year, out.person_after)
        uow.accounts.save_household_year(s.household, s.year, out.household_after)
        uow.settlements.add(rec)
        ledger.append(uow, ledger.settle_event(rec, principal))
        for k in keys:  # section 12: the bill's pays and reliefs are used
            spent = sum(r.pay + r.relief for r in s.layers if r.fund_code == k[1])
            uow.funds.add_used(*k, spent)
        for cl in claimmoves.new_claims(rec, rec.created_at, principal):  # section 13
            uow.claims.add(cl)
            ledger.append(uow, ledger.claim_event(cl, cl.filed_at, principal))

    def _settle_alone(self, c: SettleCall) -> tuple[SettlementRecord, bool]:
        """One settle in its own transaction (group commit off, or a failed group's calls)."""
        request_id, req, d = c.request_id, c.req, c.digest
        with self._uow() as uow:
            found = uow.settlements.by_request(request_id)
            if found is not None:
                return self._replay(found, d, request_id, req), True
            bill, person_version = self._versioned_bill(uow, req)
            keys = self._hard_keys(bill)
            uow.lock(
                *fundbook.fund_locks(keys),
                *account_locks(bill.person.id, bill.person.household, bill.year),
            )
            found = uow.settlements.by_request(request_id)  # a twin may have won the lock
            if found is not None:
                return self._replay(found, d, request_id, req), True
            # a bill is (hospital, id); the store's unique index on active settlements backs
            # this check when two requests race past it (BillSettled from add or commit)
            if uow.settlements.active_for_bill(bill.hospital, bill.id) is not None:
                raise BillSettled(bill.hospital, bill.id)  # names no other settlement
            policies = self.policies()  # one set: the table settled with is the one recorded
            out = self._settle(uow, bill, self._budgets(uow, keys), policies=policies)
            rec = self._record(c, bill, out, person_version, policies)
            try:
                self._write(uow, rec, out, keys, c.principal)
                uow.commit()
            except (DuplicateRequest, BillSettled):  # a twin of this request may have won
                uow.rollback()
                with self._uow() as again:
                    twin = again.settlements.by_request(request_id)
                if twin is None:
                    raise
                return self._replay(twin, d, request_id, req), True
        return rec, False

    @staticmethod
    def _replay(
        found: SettlementRecord, d: str, request_id: str, req: BillRequest
    ) -> SettlementRecord:
        if found.bill_digest != d and found.bill_digest != legacy_digest(
            req.model_dump(mode="json")
        ):
            raise Conflict(
                f"request_id {request_id!r} was already used for bill "
                f"{found.bill.get('id')!r} with different content; use a new "
                "request id for a new bill"
            )
        return found

    def reverse(
        self,
        *,
        settlement_id: str = "",
        request_id: str = "",
        reversal_request_id: str = "",
        principal: str = "local",
    ) -> tuple[SettlementRecord, bool]:
        """Reverse (2305/2601) a settlement by its id or the original request id: take back
        every account move as it stands, reject its filed and approved claims and relief
        cases, give its pays back to hard budgets. Refused (FailedPrecondition) when a claim
        or case of it is paid. Reversing a reversed settlement returns it unchanged (replay)."""
        check_key("settlement_id", settlement_id)
        check_key("request_id", request_id)
        check_key("reversal_request_id", reversal_request_id)
        with self._uow() as uow:
            rec = self._find(uow, settlement_id, request_id)
            self._reversal_id_free(uow, reversal_request_id, rec.settlement_id)
            if rec.status == "reversed":
                return rec, True
            s = rec.settlement
            claimmoves.refuse_paid(uow.claims.for_settlement(rec.settlement_id), rec.settlement_id)
            codes = [r.fund_code for r in s.layers]
            keys = fundbook.hard_keys(self.fund_book(), s.region, s.year, codes)
            uow.lock(
                *fundbook.fund_locks(keys), *account_locks(s.person_id, s.household, s.year)
            )  # the moved rows, and the hard budgets given back
            rec = self._find(uow, rec.settlement_id, "")
            self._reversal_id_free(uow, reversal_request_id, rec.settlement_id)
            if rec.status == "reversed":
                return rec, True
            claims = uow.claims.for_settlement(rec.settlement_id)
            claimmoves.refuse_paid(claims, rec.settlement_id)
            pm, hm = claimmoves.standing_moves(rec, claims)
            now = self._clock()
            for _, code, _ in keys:  # section 12: a reversal gives its amount back
                back = sum(r.pay for r in s.layers
                           if r.fund_code == code and r.settle_at == "window")  # fmt: skip
                back += sum(c.current_amount for c in claims if c.fund_code == code)
                used = uow.funds.used(s.region, code, s.year)
                uow.funds.add_used(s.region, code, s.year, -min(back, used))
            for c in claims:  # section 13: a reversal rejects what is filed or approved
                if c.status in ("filed", "approved"):
                    done_c = replace(c, status="rejected", decided_at=now,
                                     decided_by=principal, reason=claimmoves.REVERSAL_REASON)  # fmt: skip
                    uow.claims.update(done_c)
                    ledger.append(uow, ledger.claim_event(done_c, now, principal))
            pa = uow.accounts.person_year(s.person_id, s.year)
            ha = uow.accounts.household_year(s.household, s.year)
            uow.accounts.save_person_year(s.person_id, s.year, undo(pa, pm, 1))
            uow.accounts.save_household_year(s.household, s.year, undo(ha, hm, 0))
            rid = reversal_request_id or f"reverse:{rec.settlement_id}"
            uow.settlements.mark_reversed(rec.settlement_id, rid, now)
            done = replace(rec, status="reversed", reversed_at=now, reversal_request_id=rid)
            ledger.append(uow, ledger.reverse_event(done, principal))
            uow.commit()
        return done, False

    @staticmethod
    def _reversal_id_free(uow: UnitOfWork, reversal_request_id: str, settlement_id: str) -> None:
        """A reversal request id names one reversal: used before for another settlement, it is
        a Conflict (which names neither that settlement nor its bill)."""
        if not reversal_request_id:
            return
        other = uow.settlements.by_reversal_request(reversal_request_id)
        if other is not None and other.settlement_id != settlement_id:
            raise Conflict(
                f"reversal_request_id {reversal_request_id!r} was already used to reverse "
                "another settlement; use a new reversal request id for a new reversal"
            )

    @staticmethod
    def _find(uow: UnitOfWork, settlement_id: str, request_id: str) -> SettlementRecord:
        if settlement_id:
            rec = uow.settlements.by_id(settlement_id)
            if rec is None:
                raise NotFound("settlement", settlement_id)
            return rec
        if request_id:
            rec = uow.settlements.by_request(request_id)
            if rec is None:
                raise NotFound("settlement with request_id", request_id)
            return rec
        raise InputError.one(
            "settlement_id",
            "",
            "is empty and so is request_id; name the settlement to reverse by one of them",
        )

    def reversed_by(self, reversal_request_id: str) -> bool:
        """Whether a reversal was made with this reversal request id (an NHSA 2305 msgid)."""
        check_key("reversal_request_id", reversal_request_id)
        with self._uow() as uow:
            return uow.settlements.by_reversal_request(reversal_request_id) is not None

    # --- queries --------------------------------------------------------------------------
    def get(self, settlement_id: str = "", request_id: str = "") -> SettlementRecord:
        check_key("settlement_id", settlement_id)
        check_key("request_id", request_id)
        with self._uow() as uow:
            return self._find(uow, settlement_id, request_id)

    def list(self, person_id: str, year: int | None = None) -> list[SettlementRecord]:
        """Every settlement of the person (in the year), in commit order."""
        check_key("person_id", person_id)
        with self._uow() as uow:
            return uow.settlements.for_person(person_id, year)

    def list_page(
        self,
        person_id: str,
        year: int | None = None,
        page_size: int = 0,
        page_token: str = "",
        visible: Callable[[SettlementRecord], bool] | None = None,
    ) -> tuple[builtins.list[SettlementRecord], str]:
        """One page of ``list``: at most ``page_size`` settlements (0 = DEFAULT_PAGE_SIZE; at
        most MAX_PAGE_SIZE) after the one ``page_token`` names, and the next page's token
        ('' after the last page). A token names the last settlement of its page (created_at,
        settlement_id): pages stay exact while settlements are added. With ``visible`` (the
        caller's scope), only the settlements it accepts are listed and counted: a page is
        full unless it is the last, so nothing hints at the others."""
        check_key("person_id", person_id)
        if page_size < 0:
            raise InputError.one(
                "page_size", page_size, "is negative; give 0 (the default) or more"
            )
        size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        after = _read_token(page_token, person_id, year) if page_token else None
        with self._uow() as uow:
            if visible is None:
                recs = uow.settlements.for_person(person_id, year, limit=size + 1, after=after)
            else:
                recs = []
                while len(recs) <= size:
                    chunk = uow.settlements.for_person(person_id, year, limit=size + 1, after=after)
                    recs += [r for r in chunk if visible(r)]
                    if len(chunk) <= size:
                        break
                    after = (chunk[-1].created_at, chunk[-1].settlement_id)
        if len(recs) <= size:
            return recs, ""
        recs = recs[:size]
        last = recs[-1]
        return recs, _page_token(person_id, year, last.created_at, last.settlement_id)

    # --- reconciliation (domain.md section 14; NHSA 3201 / 3202) -----------------------------
    # Scope: the hospital (or region) is an explicit argument, so the caller (the gRPC layer,
    # which knows the principal) checks that it may see it before calling.
    def reconcile(
        self,
        hospital: str,
        start: str | date,
        end: str | date,
        theirs: HospitalTotals | None = None,
        lines: Sequence[HospitalLine] | None = None,
        *,
        region: str | None = None,
    ) -> Reconciliation:
        """The totals of a hospital's settlements and reversals dated start..end (Asia/Shanghai
        commit dates, inclusive), compared with the hospital's own totals (3201) and list of
        settlements (3202) when given. ``region``: count only the settlements of that region
        (a bureau's scope; None = every region)."""
        if not is_hospital_code(hospital):
            raise InputError.one("hospital", hospital, HOSPITAL_RULE)
        a, b = date_range(start, end)
        if lines is not None:
            if len(lines) > MAX_HOSPITAL_LINES:
                raise LimitExceeded(
                    "their_list.settlements", "MAX_HOSPITAL_LINES", MAX_HOSPITAL_LINES, len(lines)
                )
            for i, ln in enumerate(lines):
                if not ln.settlement_id:
                    raise InputError.one(
                        f"their_list.settlements[{i}].settlement_id", "", "is empty"
                    )
            dup = duplicate_lines(lines)
            if dup:
                i, first = dup[0]
                raise InputError.one(
                    f"their_list.settlements[{i}].settlement_id",
                    lines[i].settlement_id,
                    f"is listed twice with the same reversal flag "
                    f"(also their_list.settlements[{first}])",
                )
        lo, hi = utc_bounds(a, b)
        with self._uow() as uow:
            facts = uow.reconciliation.facts(lo, hi, hospital=hospital, region=region)
        return reconcile(hospital, a, b, facts, theirs, lines)

    def daily_totals(
        self, region: str, start: str | date, end: str | date, hospital: str | None = None
    ) -> builtins.list[DailyFund]:
        """Per day, hospital and fund code, the settlements and reversals of a region dated
        start..end (Asia/Shanghai): the bureau's monthly settlement with its hospitals."""
        if not region:
            raise InputError.one("region", "", "is empty; name the region (its code)")
        if hospital is not None and not is_hospital_code(hospital):
            raise InputError.one("hospital", hospital, HOSPITAL_RULE)
        a, b = date_range(start, end)
        lo, hi = utc_bounds(a, b)
        with self._uow() as uow:
            facts = uow.reconciliation.facts(lo, hi, hospital=hospital, region=region)
        return daily(entries(facts, a, b))

    def accounts(self, person_id: str, year: int) -> tuple[Person, YearAccounts, YearAccounts]:
        check_key("person_id", person_id)
        with self._uow() as uow:
            person = uow.registry.get(person_id)
            if person is None:
                raise NotFound("person", person_id, "import the person registry first")
            return (
                person,
                uow.accounts.person_year(person_id, year),
                uow.accounts.household_year(person.household, year),
            )

    def accounts_many(
        self, keys: Sequence[tuple[str, int]]
    ) -> dict[tuple[str, int], tuple[Person, YearAccounts, YearAccounts] | None]:
        """``accounts`` of many (person, year) pairs in one unit of work (one snapshot, one
        registry read per person, one read per household-year): None for a person not in
        the registry. The stream's trials read a message's person-years so."""
        for pid, _ in keys:
            check_key("person_id", pid)
        out: dict[tuple[str, int], tuple[Person, YearAccounts, YearAccounts] | None] = {}
        persons: dict[str, Person | None] = {}
        households: dict[tuple[str, int], YearAccounts] = {}
        with self._uow() as uow:
            for pid, year in keys:
                if (pid, year) in out:
                    continue
                if pid not in persons:
                    persons[pid] = uow.registry.get(pid)
                person = persons[pid]
                if person is None:
                    out[(pid, year)] = None
                    continue
                hk = (person.household, year)
                if hk not in households:
                    households[hk] = uow.accounts.household_year(*hk)
                out[(pid, year)] = (person, uow.accounts.person_year(pid, year), households[hk])
        return out
