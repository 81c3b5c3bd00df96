"""The in-memory year-to-date accounts of persons and households."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from engine.accounts import YearAccounts

if TYPE_CHECKING:
    from adapters.store.memory.uow import MemoryUnitOfWork


class Accounts:
    def __init__(self, uow: MemoryUnitOfWork):
        self.u = uow

    def person_year(self, person_id: str, year: int) -> YearAccounts:
        k = (person_id, year)
        return self.u.staged_p.get(k) or self.u.s.person_acc.get(k, YearAccounts())

    def household_year(self, household_id: str, year: int) -> YearAccounts:
        k = (household_id, year)
        return self.u.staged_h.get(k) or self.u.s.household_acc.get(k, YearAccounts())

    def read_many(
        self, keys: Sequence[tuple[str, str, int]]
    ) -> dict[tuple[str, str, int], YearAccounts]:
        """The reads themselves: they are free here."""
        read = {"person": self.person_year, "household": self.household_year}
        return {(s, k, y): read[s](k, y) for s, k, y in keys}

    def save_person_year(self, person_id: str, year: int, acc: YearAccounts) -> None:
        self.u.staged_p[(person_id, year)] = acc

    def save_household_year(self, household_id: str, year: int, acc: YearAccounts) -> None:
        self.u.staged_h[(household_id, year)] = acc
