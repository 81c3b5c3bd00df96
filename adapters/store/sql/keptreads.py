"""Kept reads, valid for one figure of the store's "nothing committed since" check: SQLite's
``PRAGMA data_version`` on a thread's kept connection (``trialreads``: the thread's),
PostgreSQL's snapshot (``snapshotkeep``: the process's, shared by its threads). The rows of each statement and parameters, the account-years built from
them, and the callers' answers built from them (``UnitOfWork.kept``), dropped all at once when
the figure moves."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from engine.accounts import YearAccounts

#: kept rows (and account-years) at most, each set of kept reads (dropped all at once when full)
KEPT_MAX = 4096


_ONLY = threading.local()


@contextmanager
def only_kept(figure: Any) -> Iterator[None]:
    """This thread's PostgreSQL units of work inside send nothing: a trial answers from the
    reads kept under ``figure`` (the snapshot's check, awaited by the caller:
    ``snapshotcheck``), and anything that would take a driver connection (a read that is not
    kept, the check, any other unit of work) raises ``kepttrials.NotKept`` first. For the
    event loop, which must never wait on the database."""
    before = getattr(_ONLY, "figure", None)
    _ONLY.figure = figure
    try:
        yield
    finally:
        _ONLY.figure = before


def kept_figure() -> Any:
    """The figure of this thread's ``only_kept``, None outside it."""
    return getattr(_ONLY, "figure", None)


class KeptReads:
    """The rows read by ``(sql, parameters)``, valid for one figure (``at``)."""

    __slots__ = ("accounts", "answers", "rows", "version")

    def __init__(self) -> None:
        self.version: Any = None
        self.rows: dict[tuple[Any, ...], list[Any]] = {}
        self.accounts: dict[tuple[str, str, int], YearAccounts] = {}  # built from the rows
        self.answers: dict[Any, Any] = {}  # the callers' answers built from them (``kept``)

    def at(self, version: Any) -> KeptReads:
        """Drop what is kept unless it was kept under ``version`` (the figure read just now,
        before the reads it will key); then it is kept under it."""
        if version != self.version:
            self.rows.clear()
            self.accounts.clear()
            self.answers.clear()
            self.version = version
        return self

    def rows_for(self, sql: str, params: Any, read: Callable[[], list[Any]]) -> Rows | None:
        """The kept rows of ``sql`` with ``params``, else ``read()``'s, kept; None for a
        parameter that is no key (a list: the caller reads it, not kept)."""
        try:
            key: Any = (sql, *params.items()) if type(params) is dict else (sql, *params)
            rows = self.rows.get(key)
        except TypeError:
            return None
        if rows is None:
            rows = read()
            self.keep_rows(key, rows)
        return Rows(rows)

    def keep_rows(self, key: tuple[Any, ...], rows: list[Any]) -> None:
        """The rows of one statement and its parameters, read under this figure."""
        _bounded(self.rows, 1)[key] = rows

    def keep_accounts(self, seen: dict[tuple[str, str, int], YearAccounts]) -> None:
        """The account-years a trial read under this figure."""
        _bounded(self.accounts, len(seen)).update(seen)


def _bounded(kept: dict[Any, Any], more: int) -> dict[Any, Any]:
    """``kept``, emptied first if ``more`` entries would take it past ``KEPT_MAX``."""
    if len(kept) + more > KEPT_MAX:
        kept.clear()
    return kept


class Rows:
    """Kept rows with the cursor methods the repositories use on ``run``'s result."""

    __slots__ = ("_rows",)

    def __init__(self, rows: list[Any]):
        self._rows = rows

    def fetchall(self) -> list[Any]:
        return list(self._rows)

    def fetchone(self) -> Any:
        return self._rows[0] if self._rows else None

    def __iter__(self) -> Any:
        return iter(self._rows)
