"""A claim listing (ListClaims, ``onestop fund claims``): its filters and keyset pages over
the store's pages (``Claims.page``, read through ``FundService.claims_page``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from engine.claims import Claim
from engine.errors import InputError
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
