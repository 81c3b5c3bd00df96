"""The in-memory fund tables, the funds' use, claims and money in (domain.md sections 12-13)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from engine.claims import Claim, FundPay, MoneyIn
from engine.errors import Conflict
from engine.funds import FundsFile
from engine.service.ports import (
    ClaimKey,
    ClaimQuery,
    FundVersion,
)

if TYPE_CHECKING:
    from adapters.store.memory.uow import MemoryUnitOfWork


class Funds:
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


class Claims:
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
