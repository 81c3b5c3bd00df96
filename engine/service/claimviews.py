"""What the funds surface (gRPC ``Funds`` service, ``onestop fund ...``) reads that the fund
use cases do not give as such: a claim listing with filters and keyset pages, and the sums of
one fund's ``FundFacts`` for a statement (the published page's figures, ``engine.fundstats``,
and the operator's details).

Kept apart from ``engine.service.funds`` (the use cases) so that the two evolve separately.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date

from engine.claims import Claim, FundFacts, MoneyIn
from engine.errors import InputError, LimitExceeded
from engine.fundstats import FundFigures, figures

MAX_CLAIMS_PAGE = 1_000
DEFAULT_CLAIMS_PAGE = 100
STATUSES = ("filed", "approved", "rejected", "paid")
KINDS = ("claim", "relief")


@dataclass(frozen=True)
class ClaimFilter:
    """ListClaims filters; '' or None = any."""

    region: str = ""
    fund_code: str = ""
    person_id: str = ""
    status: str = ""
    kind: str = ""
    year: int | None = None

    def check(self) -> None:
        if self.status and self.status not in STATUSES:
            raise InputError.one("status", self.status, f"is not one of {', '.join(STATUSES)}")
        if self.kind and self.kind not in KINDS:
            raise InputError.one("kind", self.kind, f"is not one of {', '.join(KINDS)}")

    def keeps(self, c: Claim) -> bool:
        return (
            (not self.region or c.region == self.region)
            and (not self.fund_code or c.fund_code == self.fund_code)
            and (not self.person_id or c.person_id == self.person_id)
            and (not self.status or c.status == self.status)
            and (not self.kind or c.kind == self.kind)
            and (self.year is None or c.year == self.year)
        )

    def key(self) -> list[object]:
        return [self.region, self.fund_code, self.person_id, self.status, self.kind, self.year]


def _order(c: Claim) -> tuple[str, str]:
    return (c.filed_at.isoformat(), c.claim_id)


def _token(f: ClaimFilter, last: Claim) -> str:
    raw = json.dumps([1, f.key(), *_order(last)], separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _after(token: str, f: ClaimFilter) -> tuple[str, str]:
    bad = InputError.one(
        "page_token",
        token,
        "is not a next_page_token of this listing (same filters); start again with an empty "
        "page_token",
    )
    try:
        v, key, at, cid = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, TypeError):
        raise bad from None
    if v != 1 or key != f.key() or not isinstance(at, str) or not isinstance(cid, str):
        raise bad
    return at, cid


def page_size(n: int) -> int:
    if n < 0:
        raise InputError.one("page_size", n, "is negative; give 0 (default 100) to 1000")
    if n > MAX_CLAIMS_PAGE:
        raise LimitExceeded("page_size", "MAX_CLAIMS_PAGE", MAX_CLAIMS_PAGE, n)
    return n or DEFAULT_CLAIMS_PAGE


def claim_page(
    claims: Iterable[Claim],
    f: ClaimFilter,
    size: int,
    token: str,
    visible: Callable[[Claim], bool] | None = None,
) -> tuple[list[Claim], str]:
    """One keyset page (by filed_at, claim_id) of the claims the filter keeps and the caller
    may see (``visible``; the others are left out without a sign: every page is full but the
    last). The token names the last claim of the page and the filters."""
    f.check()
    n = page_size(size)
    after = _after(token, f) if token else None
    kept = sorted((c for c in claims if f.keeps(c) and (visible is None or visible(c))), key=_order)
    if after is not None:
        kept = [c for c in kept if _order(c) > after]
    page = kept[:n]
    return page, _token(f, page[-1]) if len(kept) > n else ""


# --------------------------------------------------------------------------- statements


@dataclass(frozen=True)
class ClaimTotal:
    kind: str
    status: str
    count: int = 0
    filed_amount: int = 0
    current_amount: int = 0


@dataclass(frozen=True)
class Statement:
    """One fund of one region and year: the published figures (``engine.fundstats``, one set
    of definitions for the operator, the bureau and the public) and what the operator reads
    besides: section 12's ``used`` for any fund, per kind and status totals, the records."""

    figures: FundFigures
    used: int
    totals: tuple[ClaimTotal, ...] = field(default=())
    records: tuple[MoneyIn, ...] = field(default=())


def statement(f: FundFacts) -> Statement:
    fig = figures(f)
    totals: dict[tuple[str, str], list[int]] = {}
    for c in f.claims:
        t = totals.setdefault((c.kind, c.status), [0, 0, 0])
        t[0] += 1
        t[1] += c.filed_amount
        t[2] += c.current_amount
    return Statement(
        figures=fig,
        used=fig.window.fen + sum(c.current_amount for c in f.claims),
        totals=tuple(
            ClaimTotal(k, s, *v)
            for (k, s), v in sorted(
                totals.items(), key=lambda kv: (kv[0][0], STATUSES.index(kv[0][1]))
            )
        ),
        records=tuple(sorted(f.money_in, key=lambda m: (m.on, m.record_id))),
    )


def as_of_default(year: int, today: date) -> date:
    """The enrolment date of a year's figures: today within the year, else its last day."""
    return today if today.year == year else date(year, 12, 31)


# --------------------------------------------------------------------------- reads


class FundsSurface:
    """The fund use cases (``engine.service.funds``) plus the reads the surface needs that they
    do not offer: one claim by id, a fund-year's and a person's claims. Each read is the use
    case's own when it has it, else the store's (``uow.claims``: get, for_fund, for_person)."""

    def __init__(self, funds: object, uow: Callable[[], object] | None = None):
        self.funds = funds
        self._uow = uow

    def __getattr__(self, name: str) -> object:
        return getattr(self.funds, name)

    def _claims(self, method: str, *args: object) -> object:
        own = getattr(self.funds, method, None)
        if own is not None:
            return own(*args)
        if self._uow is None:
            raise NotImplementedError(f"{method}: no store to read claims from")
        store = {"get_claim": "get", "claims_for_fund": "for_fund",
                 "claims_for_person": "for_person"}[method]  # fmt: skip
        with self._uow() as uow:  # type: ignore[attr-defined]
            return getattr(uow.claims, store)(*args)

    def get_claim(self, claim_id: str) -> Claim:
        """The claim; NotFound when there is none."""
        from engine.errors import NotFound

        c = self._claims("get_claim", claim_id)
        if c is None:
            raise NotFound("claim", claim_id, "see ListClaims")
        return c  # type: ignore[return-value]

    def claims_for_fund(self, region: str, fund_code: str, year: int) -> list[Claim]:
        return list(self._claims("claims_for_fund", region, fund_code, year))  # type: ignore[call-overload]

    def claims_for_person(self, person_id: str, year: int | None) -> list[Claim]:
        return list(self._claims("claims_for_person", person_id, year))  # type: ignore[call-overload]


# --------------------------------------------------------------------------- cover


@dataclass(frozen=True)
class CoverRow:
    """One person of a cover list and the funds that insure them."""

    person_id: str
    household: str
    township: str
    village: str
    fund_codes: tuple[str, ...]


@dataclass(frozen=True)
class LayerCover:
    layer_id: str
    name: str = ""
    name_zh: str = ""
    settle_at: str = ""
    covered: bool = True


@dataclass(frozen=True)
class FundCover:
    """A fund of a person's region, and whether it covers them."""

    region: str
    fund_code: str
    name: str = ""
    name_zh: str = ""
    operator: str = ""
    covered: bool = True
    budget_mode: str = ""
    layers: tuple[LayerCover, ...] = ()


def _codes(x: object) -> tuple[str, ...]:
    codes = getattr(x, "fund_codes", None)
    if codes is None:
        codes = [getattr(f, "fund_code", f) for f in getattr(x, "funds", ()) or ()]
    return tuple(str(c) for c in codes)


def cover_row(x: object) -> CoverRow:
    """A row of ``cover_list`` as the use case gives it (an object with the person's fields,
    or with ``person``; with ``fund_codes`` or ``funds``)."""
    if isinstance(x, CoverRow):
        return x
    src = getattr(x, "person", None) or x
    pid = getattr(src, "id", None) or getattr(src, "person_id", "")
    return CoverRow(
        person_id=str(pid),
        household=str(getattr(src, "household", "") or ""),
        township=str(getattr(src, "township", "") or ""),
        village=str(getattr(src, "village", "") or ""),
        fund_codes=_codes(x),
    )


def fund_covers(x: object, region: str) -> list[FundCover]:
    """The funds of ``person_cover``'s answer (an object with ``funds``, or a list of funds,
    or of (region, fund) pairs), each with ``covered`` (True when the answer does not say)."""
    items = getattr(x, "funds", x)
    out: list[FundCover] = []
    for f in items or ():
        r = region
        if isinstance(f, tuple) and len(f) == 2:
            r, f = f
        if isinstance(f, FundCover):
            out.append(f)
            continue
        out.append(
            FundCover(
                region=str(getattr(f, "region", r) or r),
                fund_code=str(getattr(f, "fund_code", f)),
                name=str(getattr(f, "name", "") or getattr(f, "fund_name", "") or ""),
                name_zh=str(getattr(f, "name_zh", "") or getattr(f, "fund_name_zh", "") or ""),
                operator=str(getattr(f, "operator", "") or ""),
                covered=bool(getattr(f, "covered", True)),
                budget_mode=str(getattr(f, "budget_mode", "") or ""),
                layers=tuple(
                    LayerCover(
                        layer_id=str(getattr(la, "layer_id", "")),
                        name=str(getattr(la, "name", "") or ""),
                        name_zh=str(getattr(la, "name_zh", "") or ""),
                        settle_at=str(getattr(la, "settle_at", "") or ""),
                        covered=bool(getattr(la, "covered", True)),
                    )
                    for la in getattr(f, "layers", ()) or ()
                ),
            )
        )
    return out
