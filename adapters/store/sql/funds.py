"""Fund declarations (versions of each region's funds.yaml), what each hard-budget fund has
used in a year (its row is also the fund's lock) and the fund's window pays."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa

from adapters.store import schema as T
from engine.claims import FundPay
from engine.funds import FundsFile
from engine.service.ports import FundVersion

if TYPE_CHECKING:
    from adapters.store.sql.uow import SqlUnitOfWork

_V = T.fund_versions
_USED = "SELECT used FROM fund_used WHERE region = :r AND fund_code = :c AND year = :y"
_ADD_USED = (
    "INSERT INTO fund_used (region, fund_code, year, used) VALUES (:r, :c, :y, :d) "
    "ON CONFLICT (region, fund_code, year) DO UPDATE SET used = fund_used.used + :d"
)
_PAYS = (
    "SELECT s.settlement_id, l.layer_id, l.settle_at, l.pay, s.person_id, s.bill, "
    "s.created_at, s.status FROM settlement_layers l JOIN settlements s "
    "ON s.settlement_id = l.settlement_id WHERE s.region = :r AND s.year = :y "
    "AND l.fund_code = :c AND l.settle_at = 'window' AND l.pay > 0 "
    "ORDER BY s.created_at, s.settlement_id, l.position"
)


class Funds:
    def __init__(self, uow: SqlUnitOfWork):
        self.u = uow

    def add(self, text: str, source_name: str, file: FundsFile, at: datetime) -> FundVersion:
        c = self.u.conn(write=True)
        version = c.execute(
            _V.insert()
            .values(region=file.region, text=text, source_name=source_name, created_at=at)
            .returning(_V.c.version)
        ).scalar_one()
        return FundVersion(version, file.region, text, source_name, at, file)

    def latest_version(self) -> int:
        return int(self.u.conn().execute(sa.select(sa.func.max(_V.c.version))).scalar() or 0)

    def all(self) -> list[FundVersion]:
        rows = self.u.conn().execute(sa.select(_V).order_by(_V.c.version))
        return [
            FundVersion(
                r.version,
                r.region,
                r.text,
                r.source_name,
                r.created_at,
                self.u.s.funds_file(r.version, r.text, r.source_name),
            )
            for r in rows
        ]

    def used(self, region: str, fund_code: str, year: int) -> int:
        row = self.u.run(_USED, {"r": region, "c": fund_code, "y": year}).fetchone()
        return 0 if row is None else int(row[0])

    def add_used(self, region: str, fund_code: str, year: int, delta: int) -> None:
        if delta:
            self.u.defer(_ADD_USED, {"r": region, "c": fund_code, "y": year, "d": delta})

    def window_pays(self, region: str, fund_code: str, year: int) -> list[FundPay]:
        x = self.u.s.x
        rows = self.u.run(_PAYS, {"r": region, "c": fund_code, "y": year}).fetchall()
        return [
            FundPay(
                settlement_id=sid,
                layer_id=lid,
                settle_at=at,
                pay=int(pay),
                person_id=pid,
                discharge_date=date.fromisoformat(x.json_out(bill)["discharge_date"]),
                settled_at=x.ts_at(created),
                reversed=status == "reversed",
            )
            for sid, lid, at, pay, pid, bill, created, status in rows
        ]
