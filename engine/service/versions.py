"""Stored policy versions: the versions in force, the version a bill is settled with, and
the cache of a value built from the store until its version changes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date
from typing import Generic, Protocol, TypeVar

from engine.policy.policyset import PolicySet
from engine.service.ports import PolicyVersion, UnitOfWork


def effective(versions: list[PolicyVersion]) -> list[PolicyVersion]:
    """The versions in force: for each region and start date, the latest version."""
    latest: dict[tuple[str, object], PolicyVersion] = {}
    for v in sorted(versions, key=lambda v: v.version):
        latest[(v.region, v.effective_from)] = v
    return list(latest.values())


class _Dated(Protocol):
    """What picks a bill's table: a ``Bill``, or ``settlecols.ColumnsBill``."""

    @property
    def region(self) -> str | None: ...
    @property
    def discharge_date(self) -> date: ...


def policy_version_of(policies: PolicySet, bill: _Dated) -> int | None:
    """The stored policy version of the table ``policies`` settles ``bill`` with (the service
    builds its set with each table's source named ``version N``); None for a set not built
    from stored versions."""
    table = policies.table_for(bill.region, bill.discharge_date)
    for source, t in zip(policies.files, policies.tables, strict=True):
        if t is table and source.startswith(VERSION_SOURCE):
            return int(source[len(VERSION_SOURCE) :])
    return None


VERSION_SOURCE = "version "

T = TypeVar("T")


class _Versioned(Generic[T]):
    """A value built from the store (the policy tables, the fund declarations in force), kept
    until the store's latest version number of it changes; that number is read at most once
    per ``recheck`` seconds (another process sharing the store may have stored a version).
    The caller holds its own lock."""

    def __init__(self) -> None:
        self.value: T | None = None
        self.version = 0
        self.checked = 0.0

    def get(
        self,
        uow: Callable[[], UnitOfWork],
        recheck: float,
        latest: Callable[[UnitOfWork], int],
        build: Callable[[UnitOfWork], T],
    ) -> T:
        now = time.monotonic()
        if self.value is not None and now - self.checked < recheck:
            return self.value
        with uow() as u:
            v = latest(u)
            if self.value is None or v != self.version:
                self.value = build(u)
                self.version = v
        self.checked = now
        return self.value

    def forget(self) -> None:
        """Build again on the next ``get`` (this service stored a version)."""
        self.value = None
