"""An in-memory store behind the service ports: for tests, what-if runs and demos.

Not durable. Writes are staged in the unit of work and applied on commit; ``lock`` holds one
lock per key (person-year, household-year, policy region) until the unit of work ends, taken in
the global order, as the SQL store's row locks are (the rule: ``engine.service.ports``).
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from engine.accounts import YearAccounts
from engine.bill import Person
from engine.claims import Claim, FundPay, MoneyIn
from engine.errors import BillSettled, Conflict, DuplicateRequest
from engine.funds import FundsFile
from engine.ledger import StoredBlock, StoredEvent
from engine.policy.model import PolicyTable
from engine.reconcile import Fact
from engine.service.ports import (
    ClaimKey,
    ClaimQuery,
    FundVersion,
    LockKey,
    PersonVersion,
    PolicyVersion,
    SettlementRecord,
    SettleReads,
    lock_order,
)


class MemoryStore:
    def __init__(self) -> None:
        self.person_acc: dict[tuple[str, int], YearAccounts] = {}
        self.household_acc: dict[tuple[str, int], YearAccounts] = {}
        self.settlements: dict[str, SettlementRecord] = {}
        self.persons: dict[str, Person] = {}
        self.person_versions: dict[str, list[PersonVersion]] = {}
        self.versions: list[PolicyVersion] = []
        self.mutex = threading.Lock()
        self._locks: dict[LockKey, threading.Lock] = {}
        # the ledger: events by storage id (given at commit), blocks by height
        self.events: dict[int, StoredEvent] = {}
        self.blocks: list[StoredBlock] = []
        self.event_ids = itertools.count(1)
        self.sealer = threading.Lock()
        # funds, claims and money in (domain.md sections 12-13)
        self.fund_versions: list[FundVersion] = []
        self.fund_used: dict[tuple[str, str, int], int] = {}
        self.claims: dict[str, Claim] = {}
        self.money_in: dict[str, tuple[MoneyIn, str]] = {}  # record id -> (record, request id)

    def key_lock(self, key: LockKey) -> threading.Lock:
        with self.mutex:
            return self._locks.setdefault(key, threading.Lock())

    def uow(self) -> MemoryUnitOfWork:
        return MemoryUnitOfWork(self)


class _Accounts:
    def __init__(self, uow: MemoryUnitOfWork):
        self.u = uow

    def person_year(self, person_id: str, year: int) -> YearAccounts:
        k = (person_id, year)
        return self.u.staged_p.get(k) or self.u.s.person_acc.get(k, YearAccounts())

    def household_year(self, household_id: str, year: int) -> YearAccounts:
        k = (household_id, year)
        return self.u.staged_h.get(k) or self.u.s.household_acc.get(k, YearAccounts())

    def read_many(
        self, keys: Sequence[tuple[str, str, int]]
    ) -> dict[tuple[str, str, int], YearAccounts]:
        """The reads themselves: they are free here."""
        read = {"person": self.person_year, "household": self.household_year}
        return {(s, k, y): read[s](k, y) for s, k, y in keys}

    def save_person_year(self, person_id: str, year: int, acc: YearAccounts) -> None:
        self.u.staged_p[(person_id, year)] = acc

    def save_household_year(self, household_id: str, year: int, acc: YearAccounts) -> None:
        self.u.staged_h[(household_id, year)] = acc


class _Settlements:
    def __init__(self, uow: MemoryUnitOfWork):
        self.u = uow

    def _all(self) -> dict[str, SettlementRecord]:
        return {**self.u.s.settlements, **self.u.staged_s}

    def by_id(self, settlement_id: str) -> SettlementRecord | None:
        return self._all().get(settlement_id)

    def by_request(self, request_id: str) -> SettlementRecord | None:
        return next((r for r in self._all().values() if r.request_id == request_id), None)

    def by_reversal_request(self, reversal_request_id: str) -> SettlementRecord | None:
        return next(
            (r for r in self._all().values() if r.reversal_request_id == reversal_request_id),
            None,
        )

    def active_for_bill(self, hospital: str, bill_id: str) -> SettlementRecord | None:
        key = (hospital, bill_id)
        return next(
            (r for r in self._all().values() if r.status == "settled" and _bill_key(r) == key),
            None,
        )

    def add(self, record: SettlementRecord, plain: dict[str, Any] | None = None) -> None:
        self.u.staged_s[record.settlement_id] = record

    def mark_reversed(self, settlement_id: str, reversal_request_id: str, at: datetime) -> None:
        rec = self._all()[settlement_id]
        self.u.staged_s[settlement_id] = replace(
            rec, status="reversed", reversed_at=at, reversal_request_id=reversal_request_id
        )

    def for_person(
        self,
        person_id: str,
        year: int | None,
        limit: int | None = None,
        after: tuple[datetime, str] | None = None,
    ) -> list[SettlementRecord]:
        rows = sorted(
            (
                r
                for r in self._all().values()
                if r.settlement.person_id == person_id
                and (year is None or r.settlement.year == year)
                and (after is None or (r.created_at, r.settlement_id) > after)
            ),
            key=lambda r: (r.created_at, r.settlement_id),
        )
        return rows if limit is None else rows[:limit]


class _Reconciliation:
    def __init__(self, uow: MemoryUnitOfWork):
        self.u = uow

    def facts(
        self, start: datetime, end: datetime, *, hospital: str | None, region: str | None
    ) -> list[Fact]:
        def within(t: datetime | None) -> bool:
            return t is not None and start <= t < end

        rows = sorted(
            (
                r
                for r in {**self.u.s.settlements, **self.u.staged_s}.values()
                if (hospital is None or r.settlement.hospital == hospital)
                and (region is None or r.settlement.region == region)
                and (within(r.created_at) or within(r.reversed_at))
            ),
            key=lambda r: (r.created_at, r.settlement_id),
        )
        return [
            Fact(
                settlement_id=r.settlement_id,
                hospital=r.settlement.hospital,
                region=r.settlement.region,
                committed_at=r.created_at,
                reversed_at=r.reversed_at,
                total=r.settlement.buckets.total,
                window_pay=r.settlement.window_pay,
                layers=tuple((x.fund_code, x.settle_at, x.pay) for x in r.settlement.layers),
            )
            for r in rows
        ]


def _bill_key(r: SettlementRecord) -> tuple[str, str]:
    return (r.settlement.hospital, r.settlement.bill_id)


class _Registry:
    def __init__(self, uow: MemoryUnitOfWork):
        self.u = uow

    def get(self, person_id: str) -> Person | None:
        return self.u.staged_persons.get(person_id) or self.u.s.persons.get(person_id)

    def get_many(self, person_ids: Sequence[str]) -> dict[str, Person]:
        return {pid: p for pid in person_ids if (p := self.get(pid)) is not None}

    def get_versioned(self, person_id: str) -> tuple[Person, int | None] | None:
        p = self.get(person_id)
        return None if p is None else (p, len(self.history(person_id)) or None)

    def upsert(self, persons: list[Person], by: str = "local", at: datetime | None = None) -> int:
        at = at or datetime.now(UTC)
        for p in persons:
            history = self.history(p.id)
            if history and history[-1].person == p:
                continue  # stored exactly so: no new version
            n = len(history) + 1
            self.u.staged_persons[p.id] = p
            self.u.staged_pv.setdefault(p.id, []).append(PersonVersion(p, n, at, by))
        return len(persons)

    def history(self, person_id: str) -> list[PersonVersion]:
        return [
            *self.u.s.person_versions.get(person_id, []),
            *self.u.staged_pv.get(person_id, []),
        ]

    def in_region(
        self, region: str, township: str | None = None, village: str | None = None
    ) -> list[Person]:
        every = {**self.u.s.persons, **self.u.staged_persons}
        return [
            p
            for _, p in sorted(every.items())
            if p.region == region
            and (township is None or p.township == township)
            and (village is None or p.village == village)
        ]

    def page_in_region(
        self,
        region: str,
        township: str | None,
        village: str | None,
        after: tuple[str, str, str] | None,
        limit: int,
    ) -> list[Person]:
        place = sorted(
            self.in_region(region, township, village), key=lambda p: (p.township, p.village, p.id)
        )
        return [p for p in place if after is None or (p.township, p.village, p.id) > after][:limit]


class _Funds:
    def __init__(self, uow: MemoryUnitOfWork):
        self.u = uow

    def add(self, text: str, source_name: str, file: FundsFile, at: datetime) -> FundVersion:
        v = FundVersion(self.latest_version() + 1, file.region, text, source_name, at, file)
        self.u.staged_fv.append(v)
        return v

    def latest_version(self) -> int:
        return len(self.u.s.fund_versions) + len(self.u.staged_fv)

    def all(self) -> list[FundVersion]:
        return [*self.u.s.fund_versions, *self.u.staged_fv]

    def used(self, region: str, fund_code: str, year: int) -> int:
        k = (region, fund_code, year)
        return self.u.s.fund_used.get(k, 0) + self.u.staged_used.get(k, 0)

    def add_used(self, region: str, fund_code: str, year: int, delta: int) -> None:
        k = (region, fund_code, year)
        self.u.staged_used[k] = self.u.staged_used.get(k, 0) + delta

    def window_pays(self, region: str, fund_code: str, year: int) -> list[FundPay]:
        rows = sorted(
            {**self.u.s.settlements, **self.u.staged_s}.values(),
            key=lambda r: (r.created_at, r.settlement_id),
        )
        return [
            FundPay(r.settlement_id, x.layer_id, x.settle_at, x.pay, r.settlement.person_id,
                    r.settlement.discharge_date, r.created_at, r.status == "reversed")
            for r in rows
            if r.settlement.region == region and r.settlement.year == year
            for x in r.settlement.layers
            if x.fund_code == fund_code and x.settle_at == "window" and x.pay > 0
        ]  # fmt: skip


class _Claims:
    def __init__(self, uow: MemoryUnitOfWork):
        self.u = uow

    def _all(self) -> dict[str, Claim]:
        return {**self.u.s.claims, **self.u.staged_c}

    def add(self, claim: Claim) -> None:
        if any(
            (c.settlement_id, c.layer_id) == (claim.settlement_id, claim.layer_id)
            for c in self._all().values()
        ):
            raise Conflict(f"claim {claim.claim_id!r} exists already")
        self.u.staged_c[claim.claim_id] = claim

    def get(self, claim_id: str) -> Claim | None:
        return self._all().get(claim_id)

    def update(self, claim: Claim) -> None:
        self.u.staged_c[claim.claim_id] = claim

    def _sorted(self, keep: Callable[[Claim], bool]) -> list[Claim]:
        return sorted(
            (c for c in self._all().values() if keep(c)), key=lambda c: (c.filed_at, c.claim_id)
        )

    def for_settlement(self, settlement_id: str) -> list[Claim]:
        return self._sorted(lambda c: c.settlement_id == settlement_id)

    def for_fund(self, region: str, fund_code: str, year: int) -> list[Claim]:
        return self._sorted(lambda c: (c.region, c.fund_code, c.year) == (region, fund_code, year))

    def for_person(self, person_id: str, year: int | None) -> list[Claim]:
        return self._sorted(lambda c: c.person_id == person_id and (year is None or c.year == year))

    def page(self, q: ClaimQuery, after: ClaimKey | None, limit: int) -> list[Claim]:
        def keep(c: Claim) -> bool:
            return (
                (not q.region or c.region == q.region)
                and (not q.fund_codes or c.fund_code in q.fund_codes)
                and (not q.person_id or c.person_id == q.person_id)
                and (not q.status or c.status == q.status)
                and (not q.kind or c.kind == q.kind)
                and (q.year is None or c.year == q.year)
                and (after is None or (c.filed_at, c.claim_id) > after)
            )

        return self._sorted(keep)[:limit]

    def add_money_in(self, record: MoneyIn, request_id: str) -> None:
        self.u.staged_m[record.record_id] = (record, request_id)

    def money_in_by_request(self, request_id: str) -> MoneyIn | None:
        every = {**self.u.s.money_in, **self.u.staged_m}
        return next((m for m, r in every.values() if r == request_id), None)

    def money_in_for(self, region: str, fund_code: str, year: int) -> list[MoneyIn]:
        every = {**self.u.s.money_in, **self.u.staged_m}
        return sorted(
            (m for m, _ in every.values() if (m.region, m.fund_code, m.year) == (region, fund_code, year)),
            key=lambda m: (m.on, m.recorded_at or datetime.min.replace(tzinfo=UTC), m.record_id),
        )  # fmt: skip


class _Policies:
    def __init__(self, uow: MemoryUnitOfWork):
        self.u = uow

    def add(self, text: str, source_name: str, table: PolicyTable, at: datetime) -> PolicyVersion:
        n = len(self.u.s.versions) + len(self.u.staged_v) + 1
        v = PolicyVersion(
            n,
            table.region.code,
            table.effective_from,
            table.effective_to,
            text,
            source_name,
            at,
            table,
        )
        self.u.staged_v.append(v)
        return v

    def latest_version(self) -> int:
        return len(self.u.s.versions) + len(self.u.staged_v)

    def all(self) -> list[PolicyVersion]:
        return [*self.u.s.versions, *self.u.staged_v]


class _Ledger:
    def __init__(self, uow: MemoryUnitOfWork):
        self.u = uow

    def append(self, method: str, subject: str, content: str) -> None:
        self.u.staged_events.append(StoredEvent(0, content, None, None, method, subject))

    def append_many(self, events: Sequence[tuple[str, str, str]]) -> None:
        for method, subject, content in events:
            self.append(method, subject, content)

    def lock_sealer(self) -> None:
        if self.u.s.sealer not in self.u._held:
            self.u.s.sealer.acquire()
            self.u._held.append(self.u.s.sealer)

    def head(self) -> StoredBlock | None:
        with self.u.s.mutex:
            return self.u.s.blocks[-1] if self.u.s.blocks else None

    def unsealed(self, limit: int) -> list[StoredEvent]:
        with self.u.s.mutex:
            return [e for e in self.u.s.events.values() if e.seq is None][:limit]

    def seal(self, events: list[StoredEvent], block: StoredBlock) -> None:
        self.u.staged_seal = (events, block)

    def pending(self) -> int:
        with self.u.s.mutex:
            return sum(e.seq is None for e in self.u.s.events.values())

    def blocks(self, after: int, limit: int) -> list[StoredBlock]:
        with self.u.s.mutex:
            return [b for b in self.u.s.blocks if b.header.height > after][:limit]

    def _sealed(self, keep: Callable[[int], bool]) -> list[StoredEvent]:
        with self.u.s.mutex:
            rows = [e for e in self.u.s.events.values() if e.seq is not None and keep(e.seq)]
        return sorted(rows, key=lambda e: (e.seq, e.id))

    def events(self, first_seq: int, last_seq: int) -> list[StoredEvent]:
        return self._sealed(lambda s: first_seq <= s <= last_seq)

    def stray(self, last_seq: int) -> list[StoredEvent]:
        return self._sealed(lambda s: s < 1 or s > last_seq)

    def find(self, method: str, subject: str) -> StoredEvent | None:
        with self.u.s.mutex:
            found = [
                e for e in self.u.s.events.values() if e.method == method and e.subject == subject
            ]
        return found[-1] if found else None

    def block_with(self, seq: int) -> StoredBlock | None:
        with self.u.s.mutex:
            return next(
                (b for b in self.u.s.blocks if b.header.first_seq <= seq <= b.header.last_seq),
                None,
            )


class MemoryUnitOfWork:
    def __init__(self, store: MemoryStore):
        self.s = store
        self.accounts = _Accounts(self)
        self.settlements = _Settlements(self)
        self.reconciliation = _Reconciliation(self)
        self.registry = _Registry(self)
        self.policies = _Policies(self)
        self.ledger = _Ledger(self)
        self.funds = _Funds(self)
        self.claims = _Claims(self)
        self._held: list[threading.Lock] = []
        self._keys: set[LockKey] = set()
        self._reset()

    def _reset(self) -> None:
        self.staged_p: dict[tuple[str, int], YearAccounts] = {}
        self.staged_h: dict[tuple[str, int], YearAccounts] = {}
        self.staged_s: dict[str, SettlementRecord] = {}
        self.staged_persons: dict[str, Person] = {}
        self.staged_pv: dict[str, list[PersonVersion]] = {}
        self.staged_v: list[PolicyVersion] = []
        self.staged_events: list[StoredEvent] = []
        self.staged_seal: tuple[list[StoredEvent], StoredBlock] | None = None
        self.staged_fv: list[FundVersion] = []
        self.staged_used: dict[tuple[str, str, int], int] = {}
        self.staged_c: dict[str, Claim] = {}
        self.staged_m: dict[str, tuple[MoneyIn, str]] = {}

    def __enter__(self) -> MemoryUnitOfWork:
        return self

    def __exit__(self, *exc: object) -> None:
        self.rollback()

    def together(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def kept(self) -> None:
        return None  # reads nothing it could keep: the store's dicts are read in place

    def settle_reads(
        self,
        request_id: str,
        person_id: str,
        hospital: str,
        bill_id: str,
        year: int | None = None,  # no locks taken early here
    ) -> SettleReads:
        active = self.settlements.active_for_bill(hospital, bill_id)
        return SettleReads(
            self.settlements.by_request(request_id),
            self.registry.get_versioned(person_id),
            None if active is None else active.settlement_id,
        )

    def lock(self, *keys: LockKey, read: Sequence[tuple[str, str, int]] = ()) -> None:
        for key in lock_order(self._keys, keys):
            lk = self.s.key_lock(key)
            lk.acquire()
            self._held.append(lk)
            self._keys.add(key)
        self.accounts.read_many(read)

    def commit(self) -> None:
        with self.s.mutex:
            for r in self.staged_s.values():
                if r.settlement_id not in self.s.settlements and any(
                    o.request_id == r.request_id for o in self.s.settlements.values()
                ):
                    raise DuplicateRequest(r.request_id)
            # as the SQL store's partial unique index: one active settlement per bill
            merged = {**self.s.settlements, **self.staged_s}
            active: set[tuple[str, str]] = set()
            for r in merged.values():
                if r.status == "settled":
                    if _bill_key(r) in active:
                        raise BillSettled(*_bill_key(r))
                    active.add(_bill_key(r))
            for _m, rid in self.staged_m.values():
                if any(r == rid for _, r in self.s.money_in.values()):
                    raise DuplicateRequest(rid)
            for c in self.staged_c.values():
                if c.claim_id not in self.s.claims and any(
                    (o.settlement_id, o.layer_id) == (c.settlement_id, c.layer_id)
                    for o in self.s.claims.values()
                ):
                    raise Conflict(f"claim {c.claim_id!r} exists already")
            self.s.person_acc.update(self.staged_p)
            self.s.household_acc.update(self.staged_h)
            self.s.settlements.update(self.staged_s)
            self.s.persons.update(self.staged_persons)
            for pid, vs in self.staged_pv.items():
                self.s.person_versions.setdefault(pid, []).extend(vs)
            self.s.versions.extend(self.staged_v)
            self.s.fund_versions.extend(self.staged_fv)
            for k, d in self.staged_used.items():
                self.s.fund_used[k] = self.s.fund_used.get(k, 0) + d
            self.s.claims.update(self.staged_c)
            self.s.money_in.update(self.staged_m)
            for e in self.staged_events:
                i = next(self.s.event_ids)
                self.s.events[i] = replace(e, id=i)
            if self.staged_seal is not None:
                events, block = self.staged_seal
                for e in events:
                    self.s.events[e.id] = e
                self.s.blocks.append(block)
        self._reset()
        self._release()

    def rollback(self) -> None:
        self._reset()
        self._release()

    def _release(self) -> None:
        self._keys.clear()
        while self._held:
            self._held.pop().release()
