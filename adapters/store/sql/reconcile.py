"""Reconciliation facts: the settlements of a hospital or region committed or reversed in a
time range, with their per-layer rows (domain.md section 14; ``engine.reconcile``).

Times are stored in UTC; the caller turns Asia/Shanghai dates into a UTC range
(``engine.reconcile.utc_bounds``), so the query is a plain range on ``created_at`` or
``reversed_at``. Read-only: runs in the unit of work's read snapshot.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from engine.reconcile import Fact

if TYPE_CHECKING:
    from adapters.store.sql.uow import SqlUnitOfWork

_IN_RANGE = (
    "((s.created_at >= :a AND s.created_at < :b) OR (s.reversed_at >= :a AND s.reversed_at < :b))"
)
_HEADS = (
    "SELECT s.settlement_id, s.hospital, s.region, s.created_at, s.reversed_at, s.total, "
    "s.window_pay FROM settlements s WHERE "
)
_LAYERS = (
    "SELECT l.settlement_id, l.fund_code, l.settle_at, l.pay FROM settlement_layers l "
    "JOIN settlements s ON s.settlement_id = l.settlement_id WHERE "
)


class ReconcileFacts:
    def __init__(self, uow: SqlUnitOfWork):
        self.u = uow

    def facts(
        self, start: datetime, end: datetime, *, hospital: str | None, region: str | None
    ) -> list[Fact]:
        x = self.u.s.x
        params: dict[str, Any] = {"a": x.ts_in(start), "b": x.ts_in(end)}
        where = _IN_RANGE
        if hospital is not None:
            params["h"] = hospital
            where += " AND s.hospital = :h"
        if region is not None:
            params["r"] = region
            where += " AND s.region = :r"
        heads = self.u.run(_HEADS + where + " ORDER BY s.created_at, s.settlement_id", params)
        heads = heads.fetchall()
        layers: dict[str, list[tuple[str, str, int]]] = {}
        for sid, code, at, pay in self.u.run(
            _LAYERS + where + " ORDER BY l.settlement_id, l.position", params
        ).fetchall():
            layers.setdefault(sid, []).append((code, at, int(pay)))
        return [
            Fact(
                settlement_id=sid,
                hospital=h,
                region=r,
                committed_at=x.ts_at(created),
                reversed_at=x.ts_out(reversed_at),
                total=int(total),
                window_pay=int(window_pay),
                layers=tuple(layers.get(sid, ())),
            )
            for sid, h, r, created, reversed_at, total, window_pay in heads
        ]
