"""The fund views (domain.md section 12): a fund-year's facts (what statements and the public
page are summed from), a person's cover, a cadre's cover list."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from engine.bill import Person
from engine.claims import FundFacts
from engine.errors import NotFound
from engine.service.cover import (
    CoverKey,
    CoverRow,
    PersonCover,
    cover_key,
    eligible,
    fund_covers,
    fund_eligibility,
)
from engine.service.fundbase import FundBase


class FundViews(FundBase):
    def facts(self, region: str, fund_code: str, year: int, as_of: str | date) -> FundFacts:
        """Everything the fund views and the public page are computed from: the declaration,
        enrolment (registry persons of the region insured on ``as_of``), the fund's window
        pays, its claims and relief cases, money in, and the last ledger checkpoint. Records
        only: the public figures are summed elsewhere (``engine.fundstats``)."""
        from engine.service.inputs import parse_day

        day = parse_day("as_of", as_of)
        fund, layer = self._fund_known(region, fund_code)
        fy = self.book().year(region, fund_code, year)
        table = self._table_on(region, day)
        names = [t.region.name for t in self.s.policies().tables if t.region.code == region]
        e = fund_eligibility(fund, table, fund_code)
        with self._uow() as uow:
            persons = uow.registry.in_region(region)
            enrolled = 0 if e is None else sum(eligible(e, p, day) for p in persons)
            pays = uow.funds.window_pays(region, fund_code, year)
            claims = uow.claims.for_fund(region, fund_code, year)
            money = uow.claims.money_in_for(region, fund_code, year)
            head = uow.ledger.head()
        return FundFacts(
            region=region,
            region_name=(table.region.name if table is not None else (names or [""])[-1]),
            fund_code=fund_code,
            fund_name=fund.name if fund is not None else (layer.name if layer else ""),
            fund_name_zh=fund.name_zh if fund is not None else (layer.name_zh if layer else ""),
            year=year,
            as_of=day,
            enrolled=enrolled,
            budget=None if fy is None else fy.budget,
            carried_in=0 if fy is None else fy.carried_in,
            budget_mode="report" if fy is None else fy.budget_mode,
            money_in=tuple(money),
            window_pays=tuple(pays),
            claims=tuple(claims),
            checkpoint=None if head is None else (head.header.height, head.hash),
        )

    def person_cover(self, person_id: str, year: int, on: str | date | None = None) -> PersonCover:
        """A person's funds and layers (whether each covers them on ``on``: default the last
        day of ``year``, or today if earlier), their settlements of the year and their claims
        and relief cases with status."""
        from engine.service.inputs import check_key, parse_day

        check_key("person_id", person_id)
        if on is None:
            today = self._clock().date()
            day = min(date(year, 12, 31), max(today, date(year, 1, 1)))
        else:
            day = parse_day("on", on)
        with self._uow() as uow:
            person = uow.registry.get(person_id)
            if person is None:
                raise NotFound("person", person_id, "import the person registry first")
            recs = uow.settlements.for_person(person_id, year)
            claims = uow.claims.for_person(person_id, year)
        table = None if person.region is None else self._table_on(person.region, day)
        funds = tuple(fund_covers(self.book(), table, person, day))
        return PersonCover(person, year, day, funds, tuple(recs), tuple(claims))

    def cover_list(
        self,
        region: str,
        township: str | None = None,
        village: str | None = None,
        as_of: str | date | None = None,
        *,
        keep: Callable[[Person], bool] | None = None,
        after: CoverKey | None = None,
        limit: int | None = None,
    ) -> list[CoverRow]:
        """The registry persons of the region (and township, village) that ``keep`` keeps
        (None: all), with the funds covering them on ``as_of`` (default today): a cadre's
        list. In the order of ``cover_key`` (township, village, person id); at most ``limit``
        rows after the person keyed ``after`` (a keyset page)."""
        from engine.service.inputs import check_key, parse_day

        check_key("region", region)
        day = self._clock().date() if as_of is None else parse_day("as_of", as_of)
        table = self._table_on(region, day)
        chosen: list[Person] = []
        with self._uow() as uow:
            if limit is None:
                persons = uow.registry.in_region(region, township, village)
                chosen = sorted((p for p in persons if keep is None or keep(p)), key=cover_key)
                chosen = [p for p in chosen if after is None or cover_key(p) > after]
            else:  # store pages, more while ``keep`` leaves persons out
                while len(chosen) < limit:
                    got = uow.registry.page_in_region(region, township, village, after, limit)
                    chosen += [p for p in got if keep is None or keep(p)]
                    if len(got) < limit:
                        break
                    after = cover_key(got[-1])
                chosen = chosen[:limit]
        book = self.book()
        return [
            CoverRow(p.id, p.household, p.township, p.village,
                     tuple(f.fund_code for f in fund_covers(book, table, p, day) if f.covered))
            for p in chosen
        ]  # fmt: skip
