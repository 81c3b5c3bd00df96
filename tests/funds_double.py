"""A stand-in for the fund use cases (``engine.service.funds``, branch ``claims``) while they
are being built: the same method names and arguments, over the real store repositories
(``uow.funds``, ``uow.claims``), without the account moves of domain.md section 13 (no claim
is made at settlement; a rejection takes nothing back). The surface tests use the real use
cases once they are merged (``fund_service`` below picks them)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, date, datetime
from types import SimpleNamespace
from typing import Any

from engine.claims import TRANSITIONS, Claim, FundFacts, MoneyIn
from engine.errors import Conflict, InputError, NotFound
from engine.funds import parse_funds
from engine.service.ports import FundVersion


class FundsDouble:
    def __init__(self, uow: Any):
        self._uow = uow

    def _file(self, region: str) -> Any:
        with self._uow() as u:
            vs = [v for v in u.funds.all() if v.region == region]
        return vs[-1].file if vs else None

    def put_funds(self, text: str, source_name: str, principal: str = "", dry_run: bool = False):
        file = parse_funds(text, source_name)
        now = datetime.now(UTC)
        if dry_run:
            return FundVersion(0, file.region, text, source_name, now, file)
        with self._uow() as u:
            v = u.funds.add(text, source_name, file, now)
            u.commit()
        return v

    def record_money_in(self, request_id, region, fund_code, year, kind, payer, amount, on,
                        note="", principal=""):  # fmt: skip
        with self._uow() as u:
            old = u.claims.money_in_by_request(request_id)
            if old is not None:
                same = (old.region, old.fund_code, old.year, old.kind, old.payer, old.amount,
                        old.on) == (region, fund_code, year, kind, payer, amount, on)  # fmt: skip
                if not same:
                    raise Conflict(f"request_id {request_id!r} was recorded with other figures")
                return old, True
            m = MoneyIn(request_id, region, fund_code, year, kind, payer, amount, on, note,
                        principal, datetime.now(UTC))  # fmt: skip
            u.claims.add_money_in(m, request_id)
            u.commit()
        return m, False

    def file_claim(self, settlement_id: str, layer_id: str, principal: str = "") -> Claim:
        with self._uow() as u:
            rec = u.settlements.by_id(settlement_id)
            if rec is None:
                raise NotFound("settlement", settlement_id)
            s = rec.settlement
            la = next((x for x in s.layers if x.layer_id == layer_id), None)
            if la is None or la.settle_at != "after_discharge" or la.pay <= 0:
                raise InputError.one("layer_id", layer_id, "is no after-discharge layer that paid")
            c = Claim(
                uuid.uuid4().hex, "claim", settlement_id, layer_id, la.fund_code, s.region,
                s.year, s.person_id, s.household, s.hospital, s.bill_id, s.discharge_date,
                la.pay, "filed", datetime.now(UTC), principal,
            )  # fmt: skip
            u.claims.add(c)
            u.commit()
        return c

    def _step(self, claim_id: str, to: str, **changes: Any) -> Claim:
        with self._uow() as u:
            c = u.claims.get(claim_id)
            if c is None:
                raise NotFound("claim", claim_id)
            if to not in TRANSITIONS[c.status]:
                raise Conflict(f"claim {claim_id!r} is {c.status}; it cannot become {to}")
            c = replace(c, status=to, **changes)
            u.claims.update(c)
            u.commit()
        return c

    def approve(self, claim_id: str, amount: int | None, note: str, principal: str = ""):
        with self._uow() as u:
            c = u.claims.get(claim_id)
        if c is not None and amount is not None and not 0 <= amount <= c.filed_amount:
            raise InputError.one("amount", amount, f"must be 0 to {c.filed_amount}")
        a = c.filed_amount if c is not None and amount is None else amount
        return self._step(claim_id, "approved", approved_amount=a, note=note,
                          decided_at=datetime.now(UTC), decided_by=principal)  # fmt: skip

    def reject(self, claim_id: str, reason: str, principal: str = "") -> Claim:
        return self._step(claim_id, "rejected", reason=reason, decided_at=datetime.now(UTC),
                          decided_by=principal)  # fmt: skip

    def pay(self, claim_id: str, paid_date: date, payment_ref: str, principal: str = ""):
        return self._step(claim_id, "paid", paid_date=paid_date, payment_ref=payment_ref,
                          paid_at=datetime.now(UTC), paid_by=principal)  # fmt: skip

    def facts(self, region: str, fund_code: str, year: int, as_of: date) -> FundFacts:
        file = self._file(region)
        fund = next((f for f in file.funds if f.fund_code == fund_code), None) if file else None
        if fund is None:
            raise NotFound("fund", f"{region}/{fund_code}")
        fy = fund.years.get(year)
        with self._uow() as u:
            return FundFacts(
                region=region, region_name="", fund_code=fund_code, fund_name=fund.name,
                fund_name_zh=fund.name_zh, year=year, as_of=as_of,
                enrolled=len(u.registry.in_region(region)),
                budget=fy.budget if fy else None, carried_in=fy.carried_in if fy else 0,
                budget_mode=fy.budget_mode if fy else "report",
                money_in=tuple(u.claims.money_in_for(region, fund_code, year)),
                window_pays=tuple(u.funds.window_pays(region, fund_code, year)),
                claims=tuple(u.claims.for_fund(region, fund_code, year)),
            )  # fmt: skip

    def person_cover(self, person_id: str, year: int) -> Any:
        with self._uow() as u:
            person = u.registry.get(person_id)
        if person is None:
            raise NotFound("person", person_id)
        file = self._file(person.region or "")
        return SimpleNamespace(funds=[(file.region, f) for f in file.funds] if file else [])

    def cover_list(self, region: str, township: str | None, village: str | None, as_of: date):
        file = self._file(region)
        codes = [f.fund_code for f in file.funds] if file else []
        with self._uow() as u:
            persons = u.registry.in_region(region, township, village)
        return [SimpleNamespace(person=p, fund_codes=codes) for p in persons]


def fund_service(app: Any) -> Any:
    """The real fund use cases when the branch has them, else the stand-in."""
    try:
        from engine.service.funds import FundService  # type: ignore[import-not-found]
    except ImportError:
        return FundsDouble(app.store.uow)
    return FundService(app.store.uow, app.service)  # pragma: no cover - signature to confirm
