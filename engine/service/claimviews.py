"""What the funds surface (gRPC ``Funds`` service, ``onestop fund ...``) reads on top of the
fund use cases (``engine.service.funds``): a claim listing with filters and keyset pages (the
store reads the page: ``Claims.page``), and the sums of one fund's ``FundFacts`` for a
statement (the published page's figures, ``engine.fundstats``, and the operator's details).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime

from engine.claims import Claim, FundFacts, MoneyIn
from engine.errors import InputError
from engine.fundstats import FundFigures, figures
from engine.service import paging
from engine.service.ports import ClaimKey, ClaimQuery

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

    def query(self, fund_codes: tuple[str, ...] = ()) -> ClaimQuery:
        """The store's query: ``fund_codes`` (any of them) when no one fund is named."""
        codes = (self.fund_code,) if self.fund_code else fund_codes
        return ClaimQuery(self.region, codes, self.person_id, self.status, self.kind, self.year)

    def key(self) -> list[object]:
        return [self.region, self.fund_code, self.person_id, self.status, self.kind, self.year]


def _token(f: ClaimFilter, last: Claim) -> str:
    return paging.encode(f.key(), [last.filed_at.isoformat(), last.claim_id])


def _after(token: str, f: ClaimFilter) -> ClaimKey:
    at, cid = paging.decode(token, f.key(), 2)
    try:
        when = datetime.fromisoformat(at)
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        raise InputError.one(
            "page_token", token, "names no claim; start again with an empty page_token"
        )
    return when, cid


def page_size(n: int) -> int:
    return paging.page_size(n, DEFAULT_CLAIMS_PAGE, MAX_CLAIMS_PAGE, "MAX_CLAIMS_PAGE")


#: (query, after, limit) -> up to limit claims in listing order: ``FundService.claims_page``
PageReader = Callable[[ClaimQuery, ClaimKey | None, int], list[Claim]]


def claim_page(
    read: PageReader,
    f: ClaimFilter,
    size: int,
    token: str,
    *,
    fund_codes: tuple[str, ...] | None = None,
    visible: Callable[[Claim], bool] | None = None,
) -> tuple[list[Claim], str]:
    """One keyset page (by filed_at, claim_id) of the claims the filter keeps and the caller
    may see (``visible``; the others are left out without a sign: every page is full but the
    last). ``fund_codes``: the funds of a listing that names none (an empty tuple: no fund,
    no claim). The store reads one page at a time, more while ``visible`` leaves claims out;
    the token names the last claim of the page and the filters."""
    f.check()
    n = page_size(size)
    after = _after(token, f) if token else None
    if fund_codes is not None and not fund_codes and not f.fund_code:
        return [], ""
    q = f.query(fund_codes or ())
    chunk = n + 1
    kept: list[Claim] = []
    while len(kept) <= n:
        got = read(q, after, chunk)
        kept += [c for c in got if visible is None or visible(c)]
        if len(got) < chunk:
            break
        after = (got[-1].filed_at, got[-1].claim_id)
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
