"""PostgreSQL's pipeline of a unit of work: the statements that wait (``Pending``) until the next
read or COMMIT, several of them combined into one statement (``combined``), and one round trip
that sends them, the reads and COMMIT (``send``), with a unique violation of the settlement's
insert told as ``DuplicateRequest`` or ``BillSettled``."""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import sqlalchemy as sa

from adapters.store.sql.onewrite import command, one_write
from adapters.store.sql.rows import PARAM, Dialect
from adapters.store.sql.settlements import ACTIVE_BILL_UNIQUE, REQUEST_UNIQUE
from engine.errors import BillSettled, DuplicateRequest


class Pending(NamedTuple):
    """A statement waiting to go to PostgreSQL with the next read or COMMIT."""

    sql: str
    params: dict[str, Any]
    #: (request id, hospital, bill id) of a settlement's insert (its unique violations)
    mark: tuple[str, str, str] | None = None
    ctes: tuple[tuple[str, str], ...] = ()  # its WITH clause: (name, statement)

    def text(self) -> str:
        if not self.ctes:
            return self.sql
        return "WITH " + ", ".join(f"{n} AS ({b})" for n, b in self.ctes) + " " + self.sql


@functools.lru_cache(maxsize=512)
def _renamed(sql: str, prefix: str) -> str:
    """``sql`` with every ``:name`` parameter as ``:<prefix>name``."""
    return PARAM.sub(lambda m: f":{prefix}{m.group(1)}", sql)


def combined(group: list[Pending]) -> Pending:
    """The writes of ``group`` as one statement, each a data-modifying ``WITH`` part of it
    (its parameters renamed ``w<i>_...``); its mark the first write's that has one."""
    ctes: list[tuple[str, str]] = []
    params: dict[str, Any] = {}
    mark = None
    for i, p in enumerate(group):
        ctes += [(n, _renamed(b, f"w{i}_")) for n, b in p.ctes]
        ctes.append((f"w{i}", _renamed(p.sql, f"w{i}_")))
        params.update({f"w{i}_{k}": v for k, v in p.params.items()})
        mark = mark or p.mark
    return Pending("SELECT 1", params, mark, tuple(ctes))


def send(
    x: Dialect,
    raw: Any,
    pending: list[Pending],
    reads: list[tuple[str, dict[str, Any]]],
    begin: bool,
    commit: bool,
) -> list[list[Any]]:
    """On the driver connection ``raw``: BEGIN if owed, the waiting statements, ``reads``
    (their rows returned), then COMMIT if asked, in one pipeline: one round trip. A single
    read with nothing else goes alone, without the pipeline."""
    cursors: list[Any] = []
    try:
        if not (pending or commit or begin) and len(reads) == 1:  # one statement alone
            cur = x.cursor(raw)
            cur.execute(*x.raw(*reads[0]))
            return [cur.fetchall()]
        with one_write(raw):  # sent when it ends, in one write
            if begin:
                command(raw, b"BEGIN")
            if pending:
                w = x.cursor(raw)
                for p in pending:
                    w.execute(*x.raw(p.text(), p.params))
            for sql, params in reads:
                cur = x.cursor(raw)
                cur.execute(*x.raw(sql, params))
                cursors.append(cur)
            if commit:
                command(raw, b"COMMIT")  # answered with the pipeline's end
        return [cur.fetchall() for cur in cursors]
    except x.errors as err:
        constraint = getattr(getattr(err, "diag", None), "constraint_name", "")
        mark = next((p.mark for p in pending if p.mark is not None), ("", "", ""))
        if constraint == REQUEST_UNIQUE:
            raise DuplicateRequest(mark[0]) from err
        if constraint == ACTIVE_BILL_UNIQUE:
            raise BillSettled(mark[1], mark[2]) from None
        sql = "; ".join([p.text() for p in pending] + [q for q, _ in reads])
        raise sa.exc.DBAPIError.instance(sql, {}, err, x.errors, hide_parameters=True) from err
