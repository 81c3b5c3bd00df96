"""A fund's statement: the sums of one fund-year's ``FundFacts`` (the published page's figures,
``engine.fundstats``, one set of definitions for the operator, the bureau and the public) and
what the operator reads besides."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from engine.claims import FundFacts, MoneyIn
from engine.fundstats import FundFigures, figures
from engine.service.claimviews import STATUSES


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
