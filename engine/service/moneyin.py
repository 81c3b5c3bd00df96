"""Money into a fund (domain.md section 12): premiums, donations, government money;
idempotent by request id."""

from __future__ import annotations

from datetime import date
from typing import get_args

from engine.claims import MoneyIn, MoneyInKind
from engine.errors import Conflict, DuplicateRequest, InputError
from engine.money import MAX_ACCOUNT
from engine.service import ledger
from engine.service.fundbase import FundBase, amount_field, text_field

#: the kinds of money in, by their names (a name given as a str checked into the Literal)
_KINDS: dict[str, MoneyInKind] = {k: k for k in get_args(MoneyInKind)}


class MoneyInRecords(FundBase):
    def record_money_in(
        self,
        request_id: str,
        region: str,
        fund_code: str,
        year: int,
        kind: str,
        payer: str,
        amount: int,
        on: str | date,
        note: str = "",
        *,
        principal: str = "local",
    ) -> tuple[MoneyIn, bool]:
        """Money into a fund (a premium, a donation, government money). Idempotent by
        ``request_id``: the same request again returns the stored record (True: a replay);
        the same id with other content is a Conflict."""
        from engine.service.inputs import check_key, parse_day

        if not request_id or len(request_id) > 128:
            raise InputError.one("request_id", request_id, "must be 1 to 128 characters")
        check_key("request_id", request_id)
        self._fund_known(region, fund_code)
        if isinstance(year, bool) or not isinstance(year, int) or not 1900 <= year <= 2999:
            raise InputError.one("year", year, "is not an accounting year (1900..2999)")
        money_kind = _KINDS.get(kind) if isinstance(kind, str) else None  # a str: hashable
        if money_kind is None:
            raise InputError.one("kind", kind, f"is not one of {', '.join(_KINDS)}")
        text_field("payer", payer, 200, required=True)
        amount_field("amount", amount, 1, MAX_ACCOUNT)
        day = parse_day("on", on)
        text_field("note", note)
        with self._uow() as uow:
            found = uow.claims.money_in_by_request(request_id)
            if found is not None:
                return self._money_replay(found, request_id, region, fund_code, year, kind,
                                          payer, amount, day, note), True  # fmt: skip
            m = MoneyIn(
                record_id=self._new_id(), region=region, fund_code=fund_code, year=year,
                kind=money_kind, payer=payer, amount=amount, on=day, note=note,
                recorded_by=principal, recorded_at=self._clock(),
            )  # fmt: skip
            try:
                uow.claims.add_money_in(m, request_id)
                ledger.append(uow, ledger.money_in_event(m, request_id, principal))
                uow.commit()
            except DuplicateRequest:
                uow.rollback()
                with self._uow() as again:
                    twin = again.claims.money_in_by_request(request_id)
                if twin is None:
                    raise
                return self._money_replay(twin, request_id, region, fund_code, year, kind,
                                          payer, amount, day, note), True  # fmt: skip
        return m, False

    @staticmethod
    def _money_replay(found: MoneyIn, request_id: str, *same: object) -> MoneyIn:
        stored = (found.region, found.fund_code, found.year, found.kind, found.payer,
                  found.amount, found.on, found.note)  # fmt: skip
        if stored != same:
            raise Conflict(
                f"request_id {request_id!r} was already used for money in "
                f"{found.record_id!r} with different content; use a new request id"
            )
        return found
