"""Reverse (2305/2601): take back what a settlement moved."""

from __future__ import annotations

from dataclasses import replace

from engine.errors import Conflict
from engine.service import claimmoves, fundbook, ledger
from engine.service.base import ServiceBase
from engine.service.inputs import check_key
from engine.service.ports import SettlementRecord, UnitOfWork, account_locks
from engine.settle import undo


class Reversal(ServiceBase):
    """Reversal use cases of ``SettlementService``."""

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

    def reversed_by(self, reversal_request_id: str) -> bool:
        """Whether a reversal was made with this reversal request id (an NHSA 2305 msgid)."""
        check_key("reversal_request_id", reversal_request_id)
        with self._uow() as uow:
            return uow.settlements.by_reversal_request(reversal_request_id) is not None
