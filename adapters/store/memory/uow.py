"""The in-memory store and its unit of work: writes staged and applied on commit, one lock
per key held until the unit of work ends."""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Sequence
from dataclasses import replace

from adapters.store.memory.accounts import Accounts
from adapters.store.memory.funds import Claims, Funds
from adapters.store.memory.ledger import Ledger
from adapters.store.memory.policies import Policies
from adapters.store.memory.registry import Registry
from adapters.store.memory.settlements import Reconciliation, Settlements, bill_key
from engine.accounts import YearAccounts
from engine.bill import Person
from engine.claims import Claim, MoneyIn
from engine.errors import BillSettled, Conflict, DuplicateRequest
from engine.ledger import StoredBlock, StoredEvent
from engine.service.ports import (
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


class MemoryUnitOfWork:
    def __init__(self, store: MemoryStore):
        self.s = store
        self.accounts = Accounts(self)
        self.settlements = Settlements(self)
        self.reconciliation = Reconciliation(self)
        self.registry = Registry(self)
        self.policies = Policies(self)
        self.ledger = Ledger(self)
        self.funds = Funds(self)
        self.claims = Claims(self)
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

    def settle_reads_many(
        self,
        calls: Sequence[tuple[str, str, str, str]],
        years: Sequence[int] | None = None,  # no locks taken early here
    ) -> list[SettleReads]:
        return [self.settle_reads(*c) for c in calls]

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
                    if bill_key(r) in active:
                        raise BillSettled(*bill_key(r))
                    active.add(bill_key(r))
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
