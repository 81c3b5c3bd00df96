"""Who a fund and its layers insure, and the cover views built on it (domain.md section 12):
``PersonCover`` (a person's funds, layers, settlements and claims), ``FundCover`` and
``LayerCover`` (one fund of the person's region), ``CoverRow`` (a cadre's list).

One definition of each view: the ``FundsService`` servicer renders these types as they are."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from engine.bill import Person
from engine.claims import Claim
from engine.errors import InputError
from engine.funds import Fund, FundBook
from engine.policy.model import Eligibility, Layer, PolicyTable
from engine.service import paging
from engine.service.ports import SettlementRecord


def eligible(e: Eligibility, person: Person, on: date) -> bool:
    """Whether the person is insured under ``e`` on ``on`` (tags and age; hospital levels are
    a property of a bill, not of cover, so they are not looked at)."""
    tags = person.tags_on(on)
    age = person.age_on(on)
    if e.tags_any and not tags & set(e.tags_any):
        return False
    if tags & set(e.tags_none):
        return False
    if e.age_min is not None and age < e.age_min:
        return False
    return e.age_max is None or age <= e.age_max


def layer_covers(layer: Layer, person: Person, on: date) -> bool:
    """The layer would apply to the person on ``on`` at some hospital level: eligible, and a
    variant's ``when`` tags match (levels not looked at)."""
    if not eligible(layer.eligibility, person, on):
        return False
    tags = person.tags_on(on)
    return any(
        v.when is None or not v.when.tags_any or bool(tags & set(v.when.tags_any))
        for v in layer.variants
    )


def fund_eligibility(fund: Fund | None, table: PolicyTable | None, code: str) -> Eligibility | None:
    """Who a fund insures: its declared eligibility, else the first layer with its code in
    the table in force (None: no way to tell)."""
    if fund is not None and fund.eligibility is not None:
        return fund.eligibility
    if table is None:
        return None
    layer = next((x for x in table.layers if x.fund_code == code), None)
    return None if layer is None else layer.eligibility


@dataclass(frozen=True)
class LayerCover:
    layer_id: str
    name: str
    name_zh: str
    settle_at: str
    covered: bool


@dataclass(frozen=True)
class FundCover:
    """A fund of a person's region, and whether it covers them."""

    region: str
    fund_code: str
    name: str
    name_zh: str
    operator: str  # from the fund's declaration ('' when the fund is only on a layer)
    budget_mode: str
    covered: bool  # the fund's eligibility (declared, or its first layer's)
    layers: tuple[LayerCover, ...]


@dataclass(frozen=True)
class PersonCover:
    person: Person
    year: int
    on: date
    funds: tuple[FundCover, ...]
    settlements: tuple[SettlementRecord, ...]
    claims: tuple[Claim, ...]  # claims and relief cases, with their status


@dataclass(frozen=True)
class CoverRow:
    """One person of a cover list and the funds that insure them."""

    person_id: str
    household: str
    township: str
    village: str
    fund_codes: tuple[str, ...]  # fund codes covering the person on the date


CoverKey = tuple[str, str, str]  # (township, village, person id): the order of a cover list
MAX_COVER_PAGE = 1_000
DEFAULT_COVER_PAGE = 500


def cover_key(p: Person) -> CoverKey:
    return (p.township, p.village, p.id)


def cover_page_size(n: int) -> int:
    return paging.page_size(n, DEFAULT_COVER_PAGE, MAX_COVER_PAGE, "MAX_COVER_PAGE")


def cover_token(listing: list[object], on: date, last: CoverRow) -> str:
    """The next page's token of a cover list (``listing``: its region, township, village and
    date as asked) on ``on`` after ``last``."""
    return paging.encode(listing, [on.isoformat(), last.township, last.village, last.person_id])


def cover_after(token: str, listing: list[object]) -> tuple[date, CoverKey]:
    """The date and the last person of the page before (a token of ``cover_token``)."""
    on, township, village, person_id = paging.decode(token, listing, 4)
    try:
        day = date.fromisoformat(on)
    except ValueError:
        raise InputError.one("page_token", token, "names no date; start again") from None
    return day, (township, village, person_id)


def fund_covers(
    book: FundBook, table: PolicyTable | None, person: Person, on: date
) -> list[FundCover]:
    """The funds of the person's region (the layers' of ``table`` in their order, then the
    other declared ones by code), each with whether it and its layers cover the person."""
    if person.region is None:
        return []
    region = person.region
    codes: list[str] = []
    if table is not None:
        codes += [x.fund_code for x in table.layers if x.fund_code not in codes]
    codes += sorted(c for (r, c) in book.funds if r == region and c not in codes)
    out = []
    for code in codes:
        fund = book.get(region, code)
        layers = [] if table is None else [x for x in table.layers if x.fund_code == code]
        e = fund_eligibility(fund, table, code)
        fy = book.year(region, code, on.year)
        out.append(FundCover(
            region=region,
            fund_code=code,
            name=fund.name if fund is not None else (layers[0].name if layers else ""),
            name_zh=fund.name_zh if fund is not None else (layers[0].name_zh if layers else ""),
            operator="" if fund is None else fund.operator,
            budget_mode="report" if fy is None else fy.budget_mode,
            covered=e is not None and eligible(e, person, on),
            layers=tuple(
                LayerCover(x.id, x.name, x.name_zh, x.settle_at, layer_covers(x, person, on))
                for x in layers
            ),
        ))  # fmt: skip
    return out
