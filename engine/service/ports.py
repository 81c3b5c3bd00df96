"""The interfaces the use cases need from a store. Adapters implement them (SQL, in-memory).

A unit of work is one transaction: everything done through it commits together or not at all.
``lock(household, year)`` serializes settlements and reversals that move the same accounts
(all persons of a household share its household-scope accounts), until commit or rollback.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal, Protocol

from engine.accounts import LayerAccount, YearAccounts
from engine.bill import Person
from engine.policy.model import PolicyTable
from engine.result import Settlement


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


class Accounts(Protocol):
    def person_year(self, person_id: str, year: int) -> YearAccounts: ...
    def household_year(self, household_id: str, year: int) -> YearAccounts: ...
    def save_person_year(self, person_id: str, year: int, acc: YearAccounts) -> None: ...
    def save_household_year(self, household_id: str, year: int, acc: YearAccounts) -> None: ...


class Settlements(Protocol):
    def by_id(self, settlement_id: str) -> SettlementRecord | None: ...
    def by_request(self, request_id: str) -> SettlementRecord | None: ...
    def active_for_bill(self, hospital: str, bill_id: str) -> SettlementRecord | None: ...
    #: raises DuplicateRequest (request id taken) or BillSettled (the bill has an active
    #: settlement), from ``add`` or at the latest from ``commit``; nothing is then written
    def add(self, record: SettlementRecord) -> None: ...
    def mark_reversed(self, settlement_id: str, reversal_request_id: str, at: datetime) -> None: ...
    def for_person(self, person_id: str, year: int | None) -> list[SettlementRecord]: ...


class Registry(Protocol):
    def get(self, person_id: str) -> Person | None: ...
    def upsert(self, persons: list[Person]) -> int: ...


class Policies(Protocol):
    def add(
        self, text: str, source_name: str, table: PolicyTable, at: datetime
    ) -> PolicyVersion: ...
    def latest_version(self) -> int: ...  # 0 when none stored
    def all(self) -> list[PolicyVersion]: ...


class UnitOfWork(Protocol):
    accounts: Accounts
    settlements: Settlements
    registry: Registry
    policies: Policies

    def __enter__(self) -> UnitOfWork: ...
    def __exit__(self, *exc: object) -> None: ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...
    def lock(self, household_id: str, year: int) -> None: ...
