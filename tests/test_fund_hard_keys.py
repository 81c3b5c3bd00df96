"""``fundbook.hard_keys`` from the book's set of hard fund-years (``FundBook.hard``, made
once) answers what asking ``hard_total`` of each code answers: hard years only, a report
year or an undeclared fund or region never, and nothing from an empty book."""

from __future__ import annotations

from engine.funds import FundBook, parse_funds
from engine.service.fundbook import hard_keys

FUNDS = """
region: "990001"
sources:
  s: the test's own figures
funds:
  - fund_code: "390101"
    name: One
    source: {}
    years:
      2023: {budget: 100, carried_in: 5, budget_mode: hard, source: {budget: s, carried_in: s}}
      2024: {budget: 200, carried_in: 0, budget_mode: report, source: {budget: s, carried_in: s}}
  - fund_code: "390102"
    name: Two
    source: {}
    years:
      2024: {budget: 300, carried_in: 0, budget_mode: hard, source: {budget: s, carried_in: s}}
"""


def _asked(book: FundBook, region: str, year: int, codes: list[str]) -> list[tuple]:
    return sorted(
        {(region, c, year) for c in codes if book.hard_total(region, c, year) is not None}
    )


def test_hard_keys_are_the_years_hard_total_answers_for() -> None:
    book = FundBook.of([("funds.yaml", parse_funds(FUNDS))])
    assert book.hard == {("990001", "390101", 2023), ("990001", "390102", 2024)}
    for region in ("990001", "990002"):
        for year in (2022, 2023, 2024):
            for codes in (["390101"], ["390102", "390101", "390102"], ["390103"], []):
                assert hard_keys(book, region, year, codes) == _asked(book, region, year, codes)
    assert hard_keys(book, "990001", 2024, ["390101", "390102"]) == [("990001", "390102", 2024)]
    assert FundBook().hard == frozenset()
    assert hard_keys(FundBook(), "990001", 2024, ["390101"]) == []
