"""The audit ledger's rows: events appended with their effect, sealed later into blocks.

An append is one INSERT (PostgreSQL: deferred, so it goes to the server in the pipeline with
the settlement's writes and COMMIT: no extra round trip); a settlement's events (its own and
its claims') are one multi-row INSERT, a part of the one statement of its writes. Sealing is done by one sealer at a
time: on PostgreSQL it holds a transaction-level advisory lock that no settlement takes, and
it only UPDATEs rows that are committed already, so settlements never wait for it; on SQLite
it is one more writer (BEGIN IMMEDIATE), like any settlement.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from adapters.store.sql.rows import _flat, _values
from engine.ledger import Header, StoredBlock, StoredEvent

if TYPE_CHECKING:
    from adapters.store.sql.uow import SqlUnitOfWork

SEALER_LOCK_KEY = 0x6F6E65_6C6467  # pg_advisory_xact_lock key of the sealer ("oneldg")

_APPEND_HEAD = "INSERT INTO ledger_events (method, subject, content) VALUES "
_APPEND = _APPEND_HEAD + "(:m, :s, :c)"
_EVENT_COLS = ("m", "s", "c")
_EV = "SELECT id, content, seq, digest, method, subject FROM ledger_events"
_BLOCK = (
    "SELECT height, prev_hash, merkle_root, first_seq, last_seq, sealed_at, hash FROM ledger_blocks"
)
_SEAL_PG = (
    "UPDATE ledger_events AS e SET seq = v.seq, digest = v.digest FROM unnest("
    "CAST(:ids AS bigint[]), CAST(:seqs AS bigint[]), CAST(:digests AS text[])) "
    "AS v(id, seq, digest) WHERE e.id = v.id AND e.seq IS NULL"
)
_SEAL_SQLITE = "UPDATE ledger_events SET seq = :seq, digest = :d WHERE id = :id AND seq IS NULL"
_ADD_BLOCK = (
    "INSERT INTO ledger_blocks (height, prev_hash, merkle_root, first_seq, last_seq, "
    "sealed_at, hash) VALUES (:height, :prev_hash, :merkle_root, :first_seq, :last_seq, "
    ":sealed_at, :hash)"
)


def _event(r: Any) -> StoredEvent:
    i, content, seq, digest, method, subject = r
    return StoredEvent(int(i), content, None if seq is None else int(seq), digest, method, subject)


def _block(r: Any) -> StoredBlock:
    height, prev, root, first, last, at, h = r
    return StoredBlock(Header(int(height), prev, root, int(first), int(last), at), h)


class Ledger:
    def __init__(self, uow: SqlUnitOfWork):
        self.u = uow

    def append(self, method: str, subject: str, content: str) -> None:
        self.u.defer(_APPEND, {"m": method, "s": subject, "c": content})

    def append_many(self, events: Sequence[tuple[str, str, str]]) -> None:
        """One INSERT of all the rows: their storage ids follow the order of its VALUES."""
        if len(events) == 1:
            self.append(*events[0])
        elif events:
            sql = _APPEND_HEAD + _values(_EVENT_COLS, len(events))
            self.u.defer(
                sql, _flat([dict(zip(_EVENT_COLS, e, strict=True)) for e in events], _EVENT_COLS)
            )

    def lock_sealer(self) -> None:
        if self.u.s.sqlite:
            self.u.conn(write=True)  # BEGIN IMMEDIATE: the one writer until the end
        else:
            self.u.run("SELECT pg_advisory_xact_lock(:k)", {"k": SEALER_LOCK_KEY}, write=True)

    def head(self) -> StoredBlock | None:
        r = self.u.run(_BLOCK + " ORDER BY height DESC LIMIT 1").fetchone()
        return None if r is None else _block(r)

    def unsealed(self, limit: int) -> list[StoredEvent]:
        sql = _EV + " WHERE seq IS NULL ORDER BY id LIMIT :n"
        return [_event(r) for r in self.u.run(sql, {"n": limit}).fetchall()]

    def seal(self, events: list[StoredEvent], block: StoredBlock) -> None:
        if self.u.s.sqlite:
            for e in events:
                cur = self.u.run(_SEAL_SQLITE, {"seq": e.seq, "d": e.digest, "id": e.id}, True)
                if cur.rowcount != 1:
                    raise RuntimeError(f"ledger event row {e.id} was sealed meanwhile")
        else:
            params = {
                "ids": [e.id for e in events],
                "seqs": [e.seq for e in events],
                "digests": [e.digest for e in events],
            }
            if self.u.run(_SEAL_PG, params, write=True).rowcount != len(events):
                raise RuntimeError("ledger event rows were sealed meanwhile")
        self.u.run(_ADD_BLOCK, {**block.header.to_json(), "hash": block.hash}, write=True)

    def pending(self) -> int:
        return int(self.u.run("SELECT count(*) FROM ledger_events WHERE seq IS NULL").fetchone()[0])

    def blocks(self, after: int, limit: int) -> list[StoredBlock]:
        sql = _BLOCK + " WHERE height > :a ORDER BY height LIMIT :n"
        return [_block(r) for r in self.u.run(sql, {"a": after, "n": limit}).fetchall()]

    def events(self, first_seq: int, last_seq: int) -> list[StoredEvent]:
        sql = _EV + " WHERE seq BETWEEN :a AND :b ORDER BY seq, id"
        return [_event(r) for r in self.u.run(sql, {"a": first_seq, "b": last_seq}).fetchall()]

    def stray(self, last_seq: int) -> list[StoredEvent]:
        sql = _EV + " WHERE seq < 1 OR seq > :b ORDER BY seq, id"
        return [_event(r) for r in self.u.run(sql, {"b": last_seq}).fetchall()]

    def find(self, method: str, subject: str) -> StoredEvent | None:
        sql = _EV + " WHERE subject = :s AND method = :m ORDER BY id DESC LIMIT 1"
        r = self.u.run(sql, {"s": subject, "m": method}).fetchone()
        return None if r is None else _event(r)

    def block_with(self, seq: int) -> StoredBlock | None:
        sql = _BLOCK + " WHERE first_seq <= :s ORDER BY first_seq DESC LIMIT 1"
        r = self.u.run(sql, {"s": seq}).fetchone()
        b = None if r is None else _block(r)
        return b if b is not None and seq <= b.header.last_seq else None
