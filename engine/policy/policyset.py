"""The tables in force: by region and discharge date (domain.md section 5)."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property

from engine.errors import InputError, PolicyError, PolicyProblem, some
from engine.policy.model import PolicyTable


@dataclass(frozen=True)
class PolicySet:
    """Tables by region; within a region, effective ranges never overlap."""

    tables: tuple[PolicyTable, ...]
    files: tuple[str, ...] = field(default=())

    @classmethod
    def of(cls, tables: Iterable[tuple[str, PolicyTable] | PolicyTable]) -> PolicySet:
        pairs = [t if isinstance(t, tuple) else ("<memory>", t) for t in tables]
        problems = overlaps(pairs)
        if problems:
            raise PolicyError(problems)
        pairs.sort(key=lambda ft: (ft[1].region.code, ft[1].effective_from))
        return cls(tuple(t for _, t in pairs), tuple(f for f, _ in pairs))

    @cached_property
    def regions(self) -> list[str]:
        """The region codes, sorted; computed once (the set never changes; read it, do not
        modify it): every PreSettle asks."""
        return sorted({t.region.code for t in self.tables})

    @cached_property
    def _by_region(self) -> dict[str, tuple[PolicyTable, ...]]:
        """Each region's tables, in ``tables`` order (``table_for`` looks at one region's)."""
        out: dict[str, list[PolicyTable]] = {}
        for t in self.tables:
            out.setdefault(t.region.code, []).append(t)
        return {k: tuple(v) for k, v in out.items()}

    def region_of(self, region: str | None) -> str:
        if region is not None:
            if region not in self.regions:
                raise InputError.one(
                    "region",
                    region,
                    f"has no policy table; known regions are {some(self.regions)}",
                )
            return region
        if len(self.regions) == 1:
            return self.regions[0]
        raise InputError.one(
            "region",
            None,
            "is missing; the loaded policies cover several "
            f"regions ({some(self.regions)}): say which",
        )

    def table_for(self, region: str | None, discharge: date) -> PolicyTable:
        code = self.region_of(region)
        for t in self._by_region.get(code, ()):
            if t.covers_date(discharge):
                return t
        ranges = some([t.label for t in self.tables if t.region.code == code])
        raise InputError.one(
            "discharge_date",
            discharge.isoformat(),
            f"is outside every policy table of region {code} (tables: {ranges})",
        )


def overlaps(pairs: list[tuple[str, PolicyTable]]) -> list[PolicyProblem]:
    """Problems for every two tables of one region whose effective ranges overlap."""
    problems = []
    by_region: dict[str, list[tuple[str, PolicyTable]]] = {}
    for f, t in pairs:
        by_region.setdefault(t.region.code, []).append((f, t))
    for code, group in by_region.items():
        group.sort(key=lambda ft: ft[1].effective_from)
        for (fa, a), (fb, b) in itertools.pairwise(group):
            if a.effective_to is None or a.effective_to >= b.effective_from:
                end = a.effective_to or "open end"
                problems.append(
                    PolicyProblem(
                        fb,
                        "effective_from",
                        f"{b.effective_from} overlaps "
                        f"the table of region {code} in {fa} ({a.effective_from}..{end}); "
                        "effective ranges of one region must not overlap",
                    )
                )
    return problems
