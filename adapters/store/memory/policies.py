"""The in-memory policy versions."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from engine.policy.model import PolicyTable
from engine.service.ports import (
    PolicyVersion,
)

if TYPE_CHECKING:
    from adapters.store.memory.uow import MemoryUnitOfWork


class Policies:
    def __init__(self, uow: MemoryUnitOfWork):
        self.u = uow

    def add(self, text: str, source_name: str, table: PolicyTable, at: datetime) -> PolicyVersion:
        n = len(self.u.s.versions) + len(self.u.staged_v) + 1
        v = PolicyVersion(
            n,
            table.region.code,
            table.effective_from,
            table.effective_to,
            text,
            source_name,
            at,
            table,
        )
        self.u.staged_v.append(v)
        return v

    def latest_version(self) -> int:
        return len(self.u.s.versions) + len(self.u.staged_v)

    def all(self) -> list[PolicyVersion]:
        return [*self.u.s.versions, *self.u.staged_v]
