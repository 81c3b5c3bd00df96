"""Claims after discharge and relief cases (one per settlement and layer), and money into
funds (idempotent by request id)."""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from adapters.store import schema as T
from engine.claims import Claim, MoneyIn
from engine.errors import DuplicateRequest
from engine.service.ports import ClaimKey, ClaimQuery

if TYPE_CHECKING:
    from adapters.store.sql.uow import SqlUnitOfWork

_C = T.claims
_M = T.money_in
_COLS = tuple(c.name for c in _C.columns)
_ADD = f"INSERT INTO claims ({', '.join(_COLS)}) VALUES ({', '.join(':' + c for c in _COLS)})"


_FIELDS = tuple(f.name for f in fields(Claim))


def claim_row(claim: Claim) -> dict[str, Any]:
    """``asdict(claim)`` without its deep copy (every field is a plain value: str, int, date,
    datetime, None), which copied each date and time field by field on a Settle's path."""
    return {k: getattr(claim, k) for k in _FIELDS}


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
        """Deferred (PostgreSQL: sent with the settlement's other writes and COMMIT); a claim
        id is new with its settlement, and ``file_claim`` checks under the account lock, so a
        duplicate can only be a programming error (IntegrityError at the latest at commit)."""
        x = self.u.s.x
        d = claim_row(claim)
        for k in ("filed_at", "decided_at", "paid_at"):
            d[k] = x.ts_in(d[k])
        for k in ("discharge_date", "paid_date"):
            d[k] = x.date_in(d[k])
        self.u.defer(_ADD, d)

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

    def page(self, q: ClaimQuery, after: ClaimKey | None, limit: int) -> list[Claim]:
        """A keyset page: the filters as equalities (indexes ``ix_claims_fund_page`` and
        ``ix_claims_person_page`` end in the order), then (filed_at, claim_id) > ``after``."""
        c = _C.c
        cond: list[Any] = []
        if q.region:
            cond.append(c.region == q.region)
        if q.fund_codes:
            cond.append(c.fund_code.in_(q.fund_codes))
        if q.person_id:
            cond.append(c.person_id == q.person_id)
        if q.status:
            cond.append(c.status == q.status)
        if q.kind:
            cond.append(c.kind == q.kind)
        if q.year is not None:
            cond.append(c.year == q.year)
        if after is not None:
            at, cid = after
            cond.append(sa.or_(c.filed_at > at, sa.and_(c.filed_at == at, c.claim_id > cid)))
        sel = sa.select(_C).where(*cond).order_by(c.filed_at, c.claim_id).limit(limit)
        return [_claim(r) for r in self.u.conn().execute(sel)]

    def add_money_in(self, record: MoneyIn, request_id: str) -> None:
        d = asdict(record)
        d["value_date"] = d.pop("on")
        stmt = self.u.s.insert(_M).values(**d, request_id=request_id)
        done = self.u.conn(write=True).execute(
            stmt.on_conflict_do_nothing(index_elements=["request_id"]).returning(_M.c.record_id)
        )
        if done.first() is None:
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
