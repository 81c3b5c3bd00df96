"""The fund declarations in force and the fund-years whose budget is hard (domain.md section
12): what Settle, Reverse and the claim steps lock and count ``used`` on."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from engine.batch import FundYearKey
from engine.funds import FundBook
from engine.service.ports import FundVersion, fund_lock


def fund_in_force(versions: Sequence[FundVersion]) -> list[FundVersion]:
    """The latest stored version of each region's funds file."""
    latest: dict[str, FundVersion] = {}
    for v in sorted(versions, key=lambda v: v.version):
        latest[v.region] = v
    return sorted(latest.values(), key=lambda v: v.region)


def book_of(versions: Sequence[FundVersion]) -> FundBook:
    return FundBook.of([(f"funds version {v.version}", v.file) for v in fund_in_force(versions)])


def hard_keys(book: FundBook, region: str, year: int, codes: Sequence[str]) -> list[FundYearKey]:
    """The hard-budget fund-years among ``codes`` of the region and year, sorted."""
    hard = book.hard
    if not hard:  # no fund limited (no funds file, or none hard): no key to make
        return []
    return sorted({k for c in codes if (k := (region, c, year)) in hard})


def fund_locks(keys: Sequence[FundYearKey]) -> list[tuple[Any, str, int]]:
    return [fund_lock(*k) for k in keys]
