"""The in-memory person registry, with each person's versions."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from engine.bill import Person
from engine.service.ports import (
    PersonVersion,
)

if TYPE_CHECKING:
    from adapters.store.memory.uow import MemoryUnitOfWork


class Registry:
    def __init__(self, uow: MemoryUnitOfWork):
        self.u = uow

    def get(self, person_id: str) -> Person | None:
        return self.u.staged_persons.get(person_id) or self.u.s.persons.get(person_id)

    def get_many(self, person_ids: Sequence[str]) -> dict[str, Person]:
        return {pid: p for pid in person_ids if (p := self.get(pid)) is not None}

    def get_versioned(self, person_id: str) -> tuple[Person, int | None] | None:
        p = self.get(person_id)
        return None if p is None else (p, len(self.history(person_id)) or None)

    def upsert(self, persons: list[Person], by: str = "local", at: datetime | None = None) -> int:
        at = at or datetime.now(UTC)
        changed = 0
        for p in persons:
            history = self.history(p.id)
            if history and history[-1].person == p:
                continue  # stored exactly so: no new version
            n = len(history) + 1
            self.u.staged_persons[p.id] = p
            self.u.staged_pv.setdefault(p.id, []).append(PersonVersion(p, n, at, by))
            changed += 1
        return changed

    def history(self, person_id: str) -> list[PersonVersion]:
        return [
            *self.u.s.person_versions.get(person_id, []),
            *self.u.staged_pv.get(person_id, []),
        ]

    def in_region(
        self, region: str, township: str | None = None, village: str | None = None
    ) -> list[Person]:
        every = {**self.u.s.persons, **self.u.staged_persons}
        return [
            p
            for _, p in sorted(every.items())
            if p.region == region
            and (township is None or p.township == township)
            and (village is None or p.village == village)
        ]

    def page_in_region(
        self,
        region: str,
        township: str | None,
        village: str | None,
        after: tuple[str, str, str] | None,
        limit: int,
    ) -> list[Person]:
        place = sorted(
            self.in_region(region, township, village), key=lambda p: (p.township, p.village, p.id)
        )
        return [p for p in place if after is None or (p.township, p.village, p.id) > after][:limit]
