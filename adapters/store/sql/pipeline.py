"""PostgreSQL's pipeline of a unit of work: the statements that wait (``Pending``) until the next
read or COMMIT, several of them combined into one statement (``combined``), and one round trip
that sends them, the reads and COMMIT (``send``), with a unique violation of the settlement's
insert told as ``DuplicateRequest`` or ``BillSettled``."""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import sqlalchemy as sa

from adapters.store.sql.onewrite import command, one_write, query, statement
from adapters.store.sql.rows import PARAM, Dialect, numbered
from adapters.store.sql.settlements import ACTIVE_BILL_UNIQUE, REQUEST_UNIQUE
from engine.errors import BillSettled, DuplicateRequest


class Pending(NamedTuple):
    """A statement waiting to go to PostgreSQL with the next read or COMMIT."""

    sql: str
    params: dict[str, Any]
    #: (request id, hospital, bill id) of a settlement's insert (its unique violations)
    mark: tuple[str, str, str] | None = None
    ctes: tuple[tuple[str, str], ...] = ()  # its WITH clause: (name, statement)
    #: the parts of a ``combined`` statement (each with its own ``params``; the combined
    #: one's are empty); None: a statement of its own
    parts: tuple[Pending, ...] | None = None

    def text(self) -> str:
        if not self.ctes:
            return self.sql
        return "WITH " + ", ".join(f"{n} AS ({b})" for n, b in self.ctes) + " " + self.sql

    def sent(self) -> tuple[bytes, list[Any]]:
        """The statement as sent (``$n`` placeholders, UTF-8) and its arguments in order."""
        if self.parts is None:
            sql, order = _placed(self.sql, self.ctes)
            params = self.params
            return sql, [params[n] for n in order]
        sql, where = _combined_placed(tuple((p.sql, p.ctes) for p in self.parts))
        parts = self.parts
        return sql, [parts[i].params[n] for i, n in where]


@functools.lru_cache(maxsize=512)
def _renamed(sql: str, prefix: str) -> str:
    """``sql`` with every ``:name`` parameter as ``:<prefix>name``."""
    return PARAM.sub(lambda m: f":{prefix}{m.group(1)}", sql)


@functools.lru_cache(maxsize=512)
def _placed(sql: str, ctes: tuple[tuple[str, str], ...]) -> tuple[bytes, tuple[str, ...]]:
    """``Pending(sql, ..., ctes).text()`` with ``$n`` placeholders (``Dialect.raw``'s
    numbering: by first appearance), as UTF-8, and the parameter names in their order."""
    text, names = numbered(Pending(sql, {}, None, ctes).text())
    return text.encode(), names


@functools.lru_cache(maxsize=256)
def _combined_placed(
    parts: tuple[tuple[str, tuple[tuple[str, str], ...]], ...],
) -> tuple[bytes, tuple[tuple[int, str], ...]]:
    """The statement of ``combined`` parts (their text and WITH clause) as sent, and where
    each of its parameters comes from: (part, name), in order."""
    ctes = _combined_ctes(parts)
    sql, order = _placed("SELECT 1", ctes)
    where = []
    for n in order:  # w<i>_<name>
        head, _, name = n.partition("_")
        where.append((int(head[1:]), name))
    return sql, tuple(where)


@functools.lru_cache(maxsize=256)
def _combined_ctes(
    parts: tuple[tuple[str, tuple[tuple[str, str], ...]], ...],
) -> tuple[tuple[str, str], ...]:
    ctes: list[tuple[str, str]] = []
    for i, (sql, own) in enumerate(parts):
        ctes += [(n, _renamed(b, f"w{i}_")) for n, b in own]
        ctes.append((f"w{i}", _renamed(sql, f"w{i}_")))
    return tuple(ctes)


def combined(group: list[Pending]) -> Pending:
    """The writes of ``group`` as one statement, each a data-modifying ``WITH`` part of it
    (its parameters renamed ``w<i>_...`` in its text); its mark the first write's
    that has one. Its text and argument order are made once for each shape of group
    (``Pending.sent``)."""
    mark = next((p.mark for p in group if p.mark is not None), None)
    parts = tuple(group)
    ctes = _combined_ctes(tuple((p.sql, p.ctes) for p in parts))
    return Pending("SELECT 1", {}, mark, ctes, parts)


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
            for p in pending:
                statement(raw, *p.sent())
            for sql, params in reads:
                text, order = _placed(sql, ())
                cursors.append(query(raw, text, [params[n] for n in order]))
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
