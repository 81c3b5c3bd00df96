"""Stored policy table versions."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa

from adapters.store import schema as T
from engine.policy.model import PolicyTable
from engine.service.ports import PolicyVersion

if TYPE_CHECKING:
    from adapters.store.sql.uow import SqlUnitOfWork

_V = T.policy_versions


class Policies:
    def __init__(self, uow: SqlUnitOfWork):
        self.u = uow

    def add(self, text: str, source_name: str, table: PolicyTable, at: datetime) -> PolicyVersion:
        c = self.u.conn(write=True)
        version = c.execute(
            _V.insert()
            .values(
                region=table.region.code,
                effective_from=table.effective_from,
                effective_to=table.effective_to,
                text=text,
                source_name=source_name,
                created_at=at,
            )
            .returning(_V.c.version)
        ).scalar_one()
        return PolicyVersion(
            version,
            table.region.code,
            table.effective_from,
            table.effective_to,
            text,
            source_name,
            at,
            table,
        )

    def latest_version(self) -> int:
        return int(self.u.conn().execute(sa.select(sa.func.max(_V.c.version))).scalar() or 0)

    def all(self) -> list[PolicyVersion]:
        rows = self.u.conn().execute(sa.select(_V).order_by(_V.c.version))
        return [
            PolicyVersion(
                r.version,
                r.region,
                r.effective_from,
                r.effective_to,
                r.text,
                r.source_name,
                r.created_at,
                self.u.s.table(r.version, r.text, r.source_name),
            )
            for r in rows
        ]
