"""Settlements, their account moves and per-layer rows."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from adapters.store import schema as T
from adapters.store.sql.rows import _chunks, _flat, _values, compact_bytes
from engine.accounts import ACCOUNT_FIELDS, LayerAccount
from engine.errors import BillSettled, DuplicateRequest, NotFound
from engine.result import Settlement
from engine.service.ports import AccountMove, SettlementRecord
from engine.service.rowsrecord import RowsRecord

if TYPE_CHECKING:
    from adapters.store.sql.uow import SqlUnitOfWork

_S = T.settlements
_L = T.settlement_layers
_HEAD_COLS = (
    "settlement_id, request_id, bill_digest, bill, settlement, created_at, status, "
    "reversed_at, reversal_request_id, registry_version, policy_version"
)
_MOVE_COLS = "settlement_id, scope, key, year, layer_id, " + ", ".join(
    f"d_{f}" for f in ACCOUNT_FIELDS
)
_BY_ID = f"SELECT {_HEAD_COLS} FROM settlements WHERE settlement_id = :id"
BY_REQUEST = f"SELECT {_HEAD_COLS} FROM settlements WHERE request_id = :id"
_BY_REVERSAL = f"SELECT {_HEAD_COLS} FROM settlements WHERE reversal_request_id = :id LIMIT 1"
_MOVES_OF = f"SELECT {_MOVE_COLS} FROM settlement_moves WHERE settlement_id = :id ORDER BY position"
#: the bill's active settlement: at most one row (the partial unique index
#: ``uq_settlements_active_bill``), read by that index alone (an ORDER BY/LIMIT here only
#: added a sort node and planning to every Settle's reads)
ACTIVE = (
    "SELECT settlement_id FROM settlements WHERE hospital = :h AND bill_id = :id "
    "AND status = 'settled'"
)
_SETTLEMENT_COLS = (
    "settlement_id", "request_id", "bill_id", "hospital", "bill_digest", "person_id", "household",
    "region", "year", "total", "funds_total", "window_pay", "net_selfpay", "status",
    "created_at", "reversed_at", "reversal_request_id", "bill", "settlement", "registry_version",
    "policy_version",
)  # fmt: skip
_ADD = (
    f"INSERT INTO settlements ({', '.join(_SETTLEMENT_COLS)}) "
    f"VALUES ({', '.join(':' + c for c in _SETTLEMENT_COLS)}) "
    "ON CONFLICT (request_id) DO NOTHING RETURNING settlement_id"
)
_M_COLS = (
    "settlement_id", "position", "scope", "key", "year", "layer_id",
    *(f"d_{f}" for f in ACCOUNT_FIELDS),
)  # fmt: skip
_L_COLS = (
    "settlement_id", "position", "layer_id", "fund_code", "kind", "settle_at", "scope",
    "reason", "variant", "base", "deductible", "eligible", "pay", "relief", "cap",
)  # fmt: skip
_D_KEYS = tuple(f"d_{f}" for f in ACCOUNT_FIELDS)  # a move's delta columns
#: a stored layer's columns read from its ``to_dict()`` entry (the same names)
_LAYER_FIELDS = _L_COLS[2:]


@functools.cache
def _add_rows_sql(table: str, cols: tuple[str, ...], n: int) -> str:
    return f"INSERT INTO {table} ({', '.join(cols)}) VALUES {_values(cols, n)}"


def _pg_type(col: str) -> str:
    if col in ("position", "year", "variant"):
        return "integer"
    if col.startswith("d_") or col in ("base", "deductible", "eligible", "pay", "relief"):
        return "bigint"
    return "text"


def _json_insert(name: str, table: str, cols: tuple[str, ...]) -> tuple[str, str]:
    """The rows of ``table`` (after its settlement id) from one JSON array of objects, the
    parameter ``:<name>`` (``json_to_recordset``: each value read by its column type's input,
    so integers exactly; one JSON text instead of an array literal a column)."""
    rest = cols[1:]
    defs = ", ".join(f"{c} {_pg_type(c)}" for c in rest)
    return name, (
        f"INSERT INTO {table} ({', '.join(cols)}) "
        f"SELECT s.settlement_id, {', '.join('v.' + c for c in rest)} "
        f"FROM s, json_to_recordset(CAST(:{name} AS json)) AS v({defs})"
    )


# PostgreSQL: the settlement, its moves and its layer rows in one statement of constant text
# (rows as JSON; the WITH parts below, then ``SELECT settlement_id FROM s``). It is sent
# with COMMIT; a taken request id fails it (unique violation of uq_settlements_request_id ->
# DuplicateRequest), as does a bill with an active settlement (uq_settlements_active_bill ->
# BillSettled), and the whole transaction with it.
REQUEST_UNIQUE = "uq_settlements_request_id"
ACTIVE_BILL_UNIQUE = T.ACTIVE_BILL_UNIQUE
_ADD_ALL_PG_CTES = (
    ("s", f"{_ADD.split(' ON CONFLICT')[0]} RETURNING settlement_id"),
    _json_insert("m", "settlement_moves", _M_COLS),
    _json_insert("l", "settlement_layers", _L_COLS),
)


_REVERSE = (
    "UPDATE settlements SET status = 'reversed', reversed_at = :at, reversal_request_id = :rid "
    "WHERE settlement_id = :id"
)
_FOR_PERSON = f"SELECT {_HEAD_COLS} FROM settlements WHERE person_id = :p"
_MOVES_FOR_PERSON = (
    "SELECT "
    + ", ".join(f"m.{c.strip()}" for c in _MOVE_COLS.split(","))
    + " FROM settlement_moves m JOIN settlements s ON s.settlement_id = m.settlement_id "
    "WHERE s.person_id = :p"
)


class Settlements:
    def __init__(self, uow: SqlUnitOfWork):
        self.u = uow

    def _records(self, rows: Sequence[Any], moves: Iterable[Any]) -> list[SettlementRecord]:
        x = self.u.s.x
        by: dict[str, list[AccountMove]] = {}
        for sid, scope, key, year, lid, a, b, c, d in moves:
            by.setdefault(sid, []).append(
                AccountMove(scope, key, year, lid, LayerAccount(int(a), int(b), int(c), int(d)))
            )
        return [
            SettlementRecord(
                settlement_id=sid,
                request_id=rid,
                bill_digest=digest,
                bill=x.json_out(bill),
                settlement=Settlement.from_dict(x.json_out(settlement)),
                moves=tuple(by.get(sid, ())),
                created_at=x.ts_at(created),
                status=status,
                reversed_at=x.ts_out(reversed_at),
                reversal_request_id=rrid,
                registry_version=rv,
                policy_version=pv,
            )
            for sid, rid, digest, bill, settlement, created, status, reversed_at, rrid, rv, pv in rows
        ]

    @property
    def takes_stored_json(self) -> bool:
        """Whether ``add`` writes a ``RowsRecord``'s ``stored_json`` as it is (PostgreSQL's
        text is that compact JSON; SQLite's json.dumps' own spacing)."""
        return not self.u.s.x.sqlite

    def _one(self, sql: str, key: str) -> SettlementRecord | None:
        return self.record_of(self.u.run(sql, {"id": key}).fetchone())

    def record_of(self, row: Any) -> SettlementRecord | None:
        """The record of a row of ``BY_REQUEST`` (its moves read now), or None."""
        if row is None:
            return None
        return self._records([row], self.u.run(_MOVES_OF, {"id": row[0]}).fetchall())[0]

    def by_id(self, settlement_id: str) -> SettlementRecord | None:
        return self._one(_BY_ID, settlement_id)

    def by_request(self, request_id: str) -> SettlementRecord | None:
        return self._one(BY_REQUEST, request_id)

    def by_reversal_request(self, reversal_request_id: str) -> SettlementRecord | None:
        return self._one(_BY_REVERSAL, reversal_request_id)

    def active_for_bill(self, hospital: str, bill_id: str) -> SettlementRecord | None:
        row = self.u.run(ACTIVE, {"h": hospital, "id": bill_id}).fetchone()
        return None if row is None else self.by_id(row[0])

    def add(self, record: SettlementRecord, plain: dict[str, Any] | None = None) -> None:
        """The record; its columns and layers read from ``plain`` (the settlement's
        ``to_dict()``: a Settle's written from the kernel's rows), else from the model."""
        x = self.u.s.x
        p = record.settlement.to_dict() if plain is None else plain
        sid = record.settlement_id
        # PostgreSQL: the request's compact JSON as written from its columns (the same text
        # as ``json_in``'s); SQLite stores json.dumps' own spacing
        stored = None
        if self.takes_stored_json and isinstance(record, RowsRecord):
            stored = record.stored_json
        row = {
            "settlement_id": sid,
            "request_id": record.request_id,
            "bill_id": p["bill_id"],
            "hospital": p["hospital"],
            "bill_digest": record.bill_digest,
            "person_id": p["person_id"],
            "household": p["household"],
            "region": p["region"],
            "year": p["year"],
            "total": p["buckets"]["total"],
            "funds_total": p["funds_total"],
            "window_pay": p["window_pay"],
            "net_selfpay": p["net_selfpay"],
            "status": record.status,
            "created_at": x.ts_in(record.created_at),
            "reversed_at": x.ts_in(record.reversed_at),
            "reversal_request_id": record.reversal_request_id,
            "bill": x.json_in(record.bill) if stored is None else stored.decode(),
            "settlement": x.json_in(p),
            "registry_version": record.registry_version,
            "policy_version": record.policy_version,
        }
        moves = [
            {
                "settlement_id": sid,
                "position": i,
                "scope": m.scope,
                "key": m.key,
                "year": m.year,
                "layer_id": m.layer_id,
                **dict(zip(_D_KEYS, m.delta.as_tuple(), strict=True)),
            }
            for i, m in enumerate(record.moves)
        ]
        layers = [
            {
                "settlement_id": sid,
                "position": i,
                **{f: r[f] for f in _LAYER_FIELDS},
            }
            for i, r in enumerate(p["layers"])
        ]
        # PostgreSQL: one statement, sent with COMMIT (see _ADD_ALL_PG). SQLite: the writer
        # lock is held, so a twin has committed already; ON CONFLICT DO NOTHING detects it.
        if not x.sqlite:
            row["m"], row["l"] = compact_bytes(moves).decode(), compact_bytes(layers).decode()
            self.u.defer("SELECT settlement_id FROM s", row, record.request_id, _ADD_ALL_PG_CTES)
            return
        try:
            added = self.u.run(_ADD, row, write=True).fetchone()
        except sa.exc.IntegrityError as err:  # ON CONFLICT covers the request id only
            if "settlements.hospital, settlements.bill_id" in str(err.orig):
                raise BillSettled(p["hospital"], p["bill_id"]) from None
            raise
        if added is None:
            raise DuplicateRequest(record.request_id)
        if moves:
            sql = _add_rows_sql("settlement_moves", _M_COLS, len(moves))
            self.u.run(sql, _flat(moves, _M_COLS), write=True)
        if layers:
            sql = _add_rows_sql("settlement_layers", _L_COLS, len(layers))
            self.u.run(sql, _flat(layers, _L_COLS), write=True)

    def mark_reversed(self, settlement_id: str, reversal_request_id: str, at: datetime) -> None:
        params = {"id": settlement_id, "rid": reversal_request_id, "at": self.u.s.x.ts_in(at)}
        if self.u.run(_REVERSE, params, write=True).rowcount != 1:
            raise NotFound("settlement", settlement_id)

    def for_person(
        self,
        person_id: str,
        year: int | None,
        limit: int | None = None,
        after: tuple[datetime, str] | None = None,
    ) -> list[SettlementRecord]:
        """The person's settlements in commit order; a keyset page of at most ``limit`` of
        them when asked, those after (created_at, settlement_id) ``after``."""
        x = self.u.s.x
        params: dict[str, Any] = {"p": person_id}
        cond = ""
        if year is not None:
            params["y"] = year
            cond = " AND year = :y"
        page = ""
        if after is not None:
            params["ac"], params["aid"] = x.ts_in(after[0]), after[1]
            page += " AND (created_at > :ac OR (created_at = :ac AND settlement_id > :aid))"
        page += " ORDER BY created_at, settlement_id"
        if limit is not None:
            params["n"] = limit
            page += " LIMIT :n"
        rows = self.u.run(_FOR_PERSON + cond + page, params).fetchall()
        if not rows:
            return []
        if limit is None and after is None:
            moves = self.u.run(
                _MOVES_FOR_PERSON
                + cond.replace("year", "s.year")
                + " ORDER BY m.settlement_id, m.position",
                params,
            ).fetchall()
        else:
            ids = [r[0] for r in rows]
            moves = []
            for part in _chunks(ids):
                names = {f"i{k}": v for k, v in enumerate(part)}
                moves += self.u.run(
                    f"SELECT {_MOVE_COLS} FROM settlement_moves WHERE settlement_id IN "
                    f"({', '.join(':' + k for k in names)}) ORDER BY settlement_id, position",
                    names,
                ).fetchall()
        return self._records(rows, moves)

    def by_fund(self, fund_code: str, year: int | None = None) -> list[tuple[str, str, int]]:
        """(settlement id, layer id, pay) of every settled (not reversed) settlement paid by
        a fund: the bureaus' query (not part of the port)."""
        where = [_L.c.fund_code == fund_code, _S.c.status == "settled"]
        if year is not None:
            where.append(_S.c.year == year)
        rows = self.u.conn().execute(
            sa.select(_L.c.settlement_id, _L.c.layer_id, _L.c.pay)
            .join(_S, _S.c.settlement_id == _L.c.settlement_id)
            .where(*where)
            .order_by(_S.c.created_at, _L.c.settlement_id, _L.c.position)
        )
        return [(r.settlement_id, r.layer_id, int(r.pay)) for r in rows]
