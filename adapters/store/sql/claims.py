"""Claims after discharge and relief cases (one per settlement and layer), and money into
funds (idempotent by request id)."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from adapters.store import schema as T
from engine.claims import Claim, MoneyIn
from engine.errors import Conflict, DuplicateRequest

if TYPE_CHECKING:
    from adapters.store.sql.uow import SqlUnitOfWork

_C = T.claims
_M = T.money_in


def _claim(r: Any) -> Claim:
    return Claim(**dict(r._mapping))


def _money(r: Any) -> MoneyIn:
    d = dict(r._mapping)
    d.pop("request_id")
    d["on"] = d.pop("value_date")
    return MoneyIn(**d)


class Claims:
    def __init__(self, uow: SqlUnitOfWork):
        self.u = uow

    def add(self, claim: Claim) -> None:
        c = self.u.conn(write=True)
        done = c.execute(self.u.s.insert(_C).values(**asdict(claim)).on_conflict_do_nothing())
        if done.rowcount != 1:
            raise Conflict(
                f"claim {claim.claim_id!r} (settlement {claim.settlement_id!r}, layer "
                f"{claim.layer_id!r}) exists already"
            )

    def get(self, claim_id: str) -> Claim | None:
        r = self.u.conn().execute(sa.select(_C).where(_C.c.claim_id == claim_id)).first()
        return None if r is None else _claim(r)

    def update(self, claim: Claim) -> None:
        values = {k: v for k, v in asdict(claim).items() if k != "claim_id"}
        self.u.conn(write=True).execute(
            _C.update().where(_C.c.claim_id == claim.claim_id).values(**values)
        )

    def _where(self, *cond: Any) -> list[Claim]:
        q = sa.select(_C).where(*cond).order_by(_C.c.filed_at, _C.c.claim_id)
        return [_claim(r) for r in self.u.conn().execute(q)]

    def for_settlement(self, settlement_id: str) -> list[Claim]:
        return self._where(_C.c.settlement_id == settlement_id)

    def for_fund(self, region: str, fund_code: str, year: int) -> list[Claim]:
        return self._where(_C.c.region == region, _C.c.fund_code == fund_code, _C.c.year == year)

    def for_person(self, person_id: str, year: int | None) -> list[Claim]:
        cond = [_C.c.person_id == person_id]
        if year is not None:
            cond.append(_C.c.year == year)
        return self._where(*cond)

    def add_money_in(self, record: MoneyIn, request_id: str) -> None:
        d = asdict(record)
        d["value_date"] = d.pop("on")
        stmt = self.u.s.insert(_M).values(**d, request_id=request_id)
        done = self.u.conn(write=True).execute(
            stmt.on_conflict_do_nothing(index_elements=["request_id"])
        )
        if done.rowcount != 1:
            raise DuplicateRequest(request_id)

    def money_in_by_request(self, request_id: str) -> MoneyIn | None:
        r = self.u.conn().execute(sa.select(_M).where(_M.c.request_id == request_id)).first()
        return None if r is None else _money(r)

    def money_in_for(self, region: str, fund_code: str, year: int) -> list[MoneyIn]:
        q = (
            sa.select(_M)
            .where(_M.c.region == region, _M.c.fund_code == fund_code, _M.c.year == year)
            .order_by(_M.c.value_date, _M.c.recorded_at, _M.c.record_id)
        )
        return [_money(r) for r in self.u.conn().execute(q)]
