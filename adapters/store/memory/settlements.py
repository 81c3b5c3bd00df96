"""The in-memory settlements and the reconciliation facts read from them."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from engine.reconcile import Fact
from engine.service.ports import (
    SettlementRecord,
)

if TYPE_CHECKING:
    from adapters.store.memory.uow import MemoryUnitOfWork


class Settlements:
    def __init__(self, uow: MemoryUnitOfWork):
        self.u = uow

    #: the records are kept as they are: their ``bill`` dicts, not ``stored_json``
    takes_stored_json = False

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
            (r for r in self._all().values() if r.status == "settled" and bill_key(r) == key),
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


class Reconciliation:
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


def bill_key(r: SettlementRecord) -> tuple[str, str]:
    return (r.settlement.hospital, r.settlement.bill_id)
