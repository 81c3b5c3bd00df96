"""The claim and relief-case lifecycle (domain.md section 13): filing, approval, rejection,
payment, and the keyset pages of a claim listing. The account moves of each step are
``engine.service.claimmoves``'s."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from typing import Any

from engine.claims import TRANSITIONS, Claim
from engine.errors import FailedPrecondition, InputError, NotFound
from engine.service import ledger
from engine.service.claimmoves import (
    adjustment,
    apply_moves,
    claim_id_of,
    claim_of,
    diff,
    transition_error,
)
from engine.service.fundbase import MAX_PAYMENT_REF, FundBase, amount_field, text_field
from engine.service.fundbook import fund_locks, hard_keys
from engine.service.ports import ClaimKey, ClaimQuery, account_locks


class ClaimCases(FundBase):
    """File, decide and pay claims and relief cases; read them."""

    def get_claim(self, claim_id: str) -> Claim:
        self._key("claim_id", claim_id)
        with self._uow() as uow:
            c = uow.claims.get(claim_id)
        if c is None:
            raise NotFound("claim", claim_id)
        return c

    def claims_of(self, settlement_id: str) -> list[Claim]:
        self._key("settlement_id", settlement_id)
        with self._uow() as uow:
            return uow.claims.for_settlement(settlement_id)

    def claims_page(self, q: ClaimQuery, after: ClaimKey | None, limit: int) -> list[Claim]:
        """Up to ``limit`` claims the query keeps, in listing order (filed_at, claim_id),
        after the claim keyed ``after`` (None: from the first)."""
        with self._uow() as uow:
            return uow.claims.page(q, after, limit)

    def file_claim(self, settlement_id: str, layer_id: str, *, principal: str = "local") -> Claim:
        """File the claim (after-discharge layer that paid) or relief case (alert) of a
        settled bill whose claim is missing (settled before claims were kept). Idempotent:
        an existing claim is returned as it is."""
        self._key("settlement_id", settlement_id)
        self._key("layer_id", layer_id)
        cid = claim_id_of(settlement_id, layer_id)
        with self._uow() as uow:
            found = uow.claims.get(cid)
            if found is not None:
                return found
            rec = uow.settlements.by_id(settlement_id)
            if rec is None:
                raise NotFound("settlement", settlement_id)
            s = rec.settlement
            r = next((x for x in s.layers if x.layer_id == layer_id), None)
            if r is None:
                raise NotFound(
                    f"layer of settlement {settlement_id!r}", layer_id,
                    f"its layers are {', '.join(x.layer_id for x in s.layers)}",
                )  # fmt: skip
            if not (r.alert or (r.settle_at == "after_discharge" and r.pay > 0)):
                raise FailedPrecondition(
                    f"layer {layer_id!r} of settlement {settlement_id!r} makes no claim: only "
                    "an after-discharge layer that paid more than 0 (a claim) or an alert "
                    "emitted (a relief case) does"
                )
            if rec.status != "settled":
                raise FailedPrecondition(
                    f"settlement {settlement_id!r} is {rec.status}; a claim is filed only for "
                    "a settled bill"
                )
            keys = hard_keys(self.book(), s.region, s.year, [r.fund_code])
            uow.lock(*fund_locks(keys), *account_locks(s.person_id, s.household, s.year))
            found = uow.claims.get(cid)
            if found is not None:
                return found
            rec = uow.settlements.by_id(settlement_id)
            if rec is None or rec.status != "settled":
                raise FailedPrecondition(f"settlement {settlement_id!r} was reversed meanwhile")
            c = claim_of(rec, layer_id, self._clock(), principal)
            uow.claims.add(c)
            for k in keys:
                uow.funds.add_used(*k, c.current_amount)
            ledger.append(uow, ledger.claim_event(c, c.filed_at, principal))
            uow.commit()
        return c

    def approve(
        self,
        claim_id: str,
        amount: int | None = None,
        note: str = "",
        *,
        principal: str = "local",
    ) -> Claim:
        """filed -> approved, at ``amount`` fen (0 to the filed amount; None: the filed
        amount). A lower amount takes the difference back (section 13)."""
        text_field("note", note)

        def step(c: Claim, now: datetime) -> Claim:
            amt = (
                c.filed_amount
                if amount is None
                else amount_field("amount", amount, 0, c.filed_amount)
            )
            return replace(c, status="approved", approved_amount=amt, decided_at=now,
                           decided_by=principal, note=note)  # fmt: skip

        return self._step(claim_id, "approved", step, principal)

    def reject(self, claim_id: str, reason: str, *, principal: str = "local") -> Claim:
        """filed -> rejected: the claim's layer moves (a relief case: its relief) are taken
        back (section 13)."""
        text_field("reason", reason, required=True)

        def step(c: Claim, now: datetime) -> Claim:
            return replace(
                c, status="rejected", decided_at=now, decided_by=principal, reason=reason
            )

        return self._step(claim_id, "rejected", step, principal)

    def pay(
        self,
        claim_id: str,
        paid_date: str | date,
        payment_ref: str,
        *,
        principal: str = "local",
    ) -> Claim:
        """approved -> paid: the approved amount was paid on ``paid_date`` (YYYY-MM-DD, not
        before discharge) under ``payment_ref``. Moves no account."""
        from engine.service.inputs import check_key, parse_day

        day = parse_day("paid_date", paid_date)
        text_field("payment_ref", payment_ref, MAX_PAYMENT_REF, required=True)
        check_key("payment_ref", payment_ref)

        def step(c: Claim, now: datetime) -> Claim:
            if day < c.discharge_date:
                raise InputError.one(
                    "paid_date", day.isoformat(),
                    f"is before the discharge date {c.discharge_date.isoformat()} of the bill",
                )  # fmt: skip
            return replace(c, status="paid", paid_at=now, paid_date=day,
                           payment_ref=payment_ref, paid_by=principal)  # fmt: skip

        return self._step(claim_id, "paid", step, principal)

    def _step(
        self,
        claim_id: str,
        target: str,
        step: Any,
        principal: str,
    ) -> Claim:
        self._key("claim_id", claim_id)
        with self._uow() as uow:
            c = uow.claims.get(claim_id)
            if c is None:
                raise NotFound("claim", claim_id)
            if target not in TRANSITIONS[c.status]:
                raise transition_error(c, target)
            keys = hard_keys(self.book(), c.region, c.year, [c.fund_code])
            uow.lock(*fund_locks(keys), *account_locks(c.person_id, c.household, c.year))
            c = uow.claims.get(claim_id)
            assert c is not None
            if target not in TRANSITIONS[c.status]:
                raise transition_error(c, target)
            rec = uow.settlements.by_id(c.settlement_id)
            assert rec is not None
            now = self._clock()
            new: Claim = step(c, now)
            apply_moves(uow, c.year, diff(adjustment(rec, new), adjustment(rec, c)))
            for k in keys:
                uow.funds.add_used(*k, new.current_amount - c.current_amount)
            uow.claims.update(new)
            ledger.append(uow, ledger.claim_event(new, now, principal))
            uow.commit()
        return new
