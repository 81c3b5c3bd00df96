"""Funds, claims after discharge, relief cases and money in (domain.md sections 12-13).

``FundService`` works over the same units of work as ``SettlementService`` (it is built on
one). It is assembled from one class per concept:

- fund declarations and budgets (here): ``put_funds``, ``fund_versions``, ``book``,
  ``balance``;
- the claim and relief-case lifecycle (``engine.service.claimcases``): ``file_claim``,
  ``approve``, ``reject``, ``pay``, ``get_claim``, ``claims_of``, ``claims_page``; their
  account moves are ``engine.service.claimmoves``'s;
- money in (``engine.service.moneyin``): ``record_money_in``;
- the views (``engine.service.fundviews``): ``facts``, ``person_cover``, ``cover_list``, on
  the cover types of ``engine.service.cover``.

Settle and Reverse (``engine.service.settlewrite``, ``engine.service.reversal``) use ``engine.service.fundbook`` (hard
fund-years and their locks) and ``engine.service.claimmoves`` (a settlement's claims).
"""

from __future__ import annotations

from dataclasses import replace

from engine.funds import parse_funds
from engine.service import ledger
from engine.service.claimcases import ClaimCases
from engine.service.fundbook import fund_in_force
from engine.service.fundviews import FundViews
from engine.service.moneyin import MoneyInRecords
from engine.service.ports import FundVersion


class FundService(ClaimCases, MoneyInRecords, FundViews):
    """The use cases of issue 10 on the stores of ``service`` (a ``SettlementService``)."""

    def put_funds(
        self,
        text: str,
        source_name: str = "<request>",
        *,
        principal: str = "local",
        dry_run: bool = False,
    ) -> FundVersion:
        """Validate (``engine.funds.parse_funds``) and store a region's funds file as a new
        version, in force from now on (a region has one funds file: the latest). The same
        text as the version in force stores nothing (``unchanged``); ``dry_run`` validates
        only (version 0)."""
        from engine.service.inputs import check_source_name

        check_source_name(source_name)
        f = parse_funds(text, source_name)
        with self._uow() as uow:
            uow.lock(("policy", f.region, 0))  # a region's declarations change in turn
            now = next((v for v in fund_in_force(uow.funds.all()) if v.region == f.region), None)
            if now is not None and now.text == text:
                return replace(now, unchanged=True)
            if dry_run:
                return FundVersion(0, f.region, text, source_name, self._clock(), f)
            v = uow.funds.add(text, source_name, f, self._clock())
            ledger.append(uow, ledger.funds_event(v, principal))
            uow.commit()
        self.s.forget_funds()
        return v

    def fund_versions(self) -> list[FundVersion]:
        with self._uow() as uow:
            return uow.funds.all()

    def balance(self, region: str, fund_code: str, year: int) -> int | None:
        """The remaining balance of a hard-budget fund-year (None: not limited)."""
        total = self.book().hard_total(region, fund_code, year)
        if total is None:
            return None
        with self._uow() as uow:
            return max(0, total - uow.funds.used(region, fund_code, year))
