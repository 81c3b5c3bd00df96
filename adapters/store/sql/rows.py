"""What the repositories share: the drivers' differences and multi-row statement text."""

from __future__ import annotations

import functools
import json
import operator
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from typing import Any

_CHUNK = 500  # ids per IN (...) list
#: a ``:name`` parameter of the statements as written (not a ``::type`` cast)
PARAM = re.compile(r"(?<![:\w]):(\w+)")


def numbered(q: str) -> tuple[str, tuple[str, ...]]:
    """``q`` with ``$n`` placeholders for its ``:name`` parameters (numbered by first
    appearance) and the parameter names in that order."""
    names: dict[str, int] = {}

    def place(m: re.Match[str]) -> str:
        return f"${names.setdefault(m.group(1), len(names) + 1)}"

    return PARAM.sub(place, q), tuple(names)


class Dialect:
    """What differs between the drivers on the hand-written hot path: parameter style and how
    JSON, dates and timestamps go in and come out (matching what SQLAlchemy's types write)."""

    def __init__(self, sqlite: bool):
        self.sqlite = sqlite
        self._raw: dict[str, tuple[str, tuple[str, ...]]] = {}
        if sqlite:
            import sqlite3

            self.errors: type[Exception] = sqlite3.Error
            self.json_in: Any = lambda v: json.dumps(v, ensure_ascii=False)
        else:
            import psycopg

            self.errors = psycopg.Error
            #: the raw cursor (``$n`` placeholders, text sent as it is: ``raw``)
            self.cursor: Any = psycopg.RawCursor
            # compact, UTF-8 as it is: the same JSON value as psycopg's default dumps, fewer
            # bytes to encode and send; by orjson, the same text as ``_compact``
            # (tests/test_store_json.py) at a fraction of the CPU (a Settle's request and
            # result: ~10 % of its server CPU with the json module). Sent as a string of
            # unknown type: the ``text`` columns (migration 0015) take it unchecked
            self.json_in = lambda v: compact_bytes(v).decode()

    def raw(self, q: str, params: Any) -> tuple[str, list[Any]]:
        """PostgreSQL: ``q`` with ``$n`` placeholders and its parameters in their order, for
        psycopg's raw cursor, which sends the text as it is. (psycopg parses a ``%(name)s``
        query on every execute when it is longer than 4 kB or has more than 50 parameters,
        as a settlement's writes in one statement have: a tenth of a Settle's CPU.)"""
        got = self._raw.get(q)
        if got is None:
            got = self._raw[q] = numbered(q)
        text, order = got
        return text, [params[n] for n in order]

    def json_out(self, v: Any) -> Any:
        return json.loads(v) if isinstance(v, str | bytes) else v

    def ts_in(self, v: datetime | None) -> Any:
        if v is None:
            return None
        v = v.replace(tzinfo=UTC) if v.tzinfo is None else v.astimezone(UTC)
        return v.strftime("%Y-%m-%d %H:%M:%S.%f") if self.sqlite else v

    def ts_at(self, v: Any) -> datetime:
        """A NOT NULL timestamp column's value, as UTC."""
        if isinstance(v, str):
            v = datetime.fromisoformat(v)
        return v.replace(tzinfo=UTC) if v.tzinfo is None else v.astimezone(UTC)

    def ts_out(self, v: Any) -> datetime | None:
        """A nullable timestamp column's value, as UTC, or None."""
        return None if v is None else self.ts_at(v)

    def date_in(self, v: date | None) -> Any:
        return v.isoformat() if self.sqlite and v is not None else v

    def date_out(self, v: Any) -> date | None:
        return date.fromisoformat(v) if isinstance(v, str) else v


def _compact(v: Any) -> str:
    return json.dumps(v, ensure_ascii=False, separators=(",", ":"))


def compact_bytes(v: Any) -> bytes:
    """``_compact(v)`` encoded as UTF-8, by orjson (keys that are not strings as json turns
    them into strings)."""
    import orjson

    return orjson.dumps(v, option=orjson.OPT_NON_STR_KEYS)


def pg_array(values: Iterable[Any]) -> str:
    """A PostgreSQL array literal (``{1,2}``, ``{"a","b\\"c"}``) of ints or strings (None:
    NULL), for a ``CAST(:x AS bigint[])`` / ``text[]`` parameter: psycopg adapts a Python list
    by scanning it for its element type on every execute (a Settle sends ~30 short arrays);
    one string is sent as it is and the server casts it. Strings are always quoted, so any
    text (commas, braces, quotes, backslashes, ``NULL``) comes back as it went in."""
    out = []
    for v in values:
        if v is None:
            out.append("NULL")
        elif isinstance(v, str):
            out.append('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"')
        else:  # an integer (int, numpy's); anything else is a TypeError, as psycopg's would be
            out.append(str(operator.index(v)))
    return "{" + ",".join(out) + "}"


def _chunks(xs: Sequence[Any], n: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for i in range(0, len(xs), n):
        yield xs[i : i + n]


@functools.cache
def _values(cols: tuple[str, ...], n: int, p: str = "r") -> str:
    """``(:r0_0, :r0_1), (:r1_0, :r1_1), ...``: n rows of parameters in one statement. Short
    names keep the SQL small (psycopg caches and prepares statements up to 4 kB)."""
    return ", ".join(
        "(" + ", ".join(f":{p}{i}_{j}" for j in range(len(cols))) + ")" for i in range(n)
    )


def _flat(rows: list[dict[str, Any]], cols: tuple[str, ...], p: str = "r") -> dict[str, Any]:
    return {f"{p}{i}_{j}": r[c] for i, r in enumerate(rows) for j, c in enumerate(cols)}
