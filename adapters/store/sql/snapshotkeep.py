"""A PostgreSQL trial's reads (PreSettle, the packed stream's ``accounts_many``) kept while
nothing has been committed since they were read: SQLite's ``PRAGMA data_version`` rule
(``trialreads``) in PostgreSQL's terms, on ``keptreads``'s kept rows, account-years and answers.

A statement's snapshot (``pg_current_snapshot()``: xmin, xmax and the transaction ids in
progress below xmax) says which transactions' writes it sees. Every write belongs to a
transaction with an id, and a transaction that commits after a snapshot was taken was, at
that moment, either listed as in progress (and is not listed in any snapshot taken after its
commit) or at or past its xmax (and a snapshot taken after its commit has a higher xmax). So a
snapshot equal to the one taken before an answer's reads means nothing was committed since,
by any connection or process, in any database of the cluster: the answer is what the reads
would return now. (The reverse does not hold: a transaction that only began, or rolled back,
or wrote in another database moves the figure too; the answer is then read again, never
wrong.) The postmaster's start time goes with it: a restarted server (a restore, a failover)
starts another history whose snapshots could repeat an old figure.

The check is one statement, one round trip, the first a trial sends (``SnapshotTrial``); it
runs in autocommit (its own snapshot), so what a trial reads is keyed by a snapshot taken
before its reads, never after: a commit between the check and the reads moves the next check's
figure, and they are read again. A trial whose reads are all kept sends that one statement
(a PreSettle read the registry, the hard budgets' use and two account-years: four round trips).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from adapters.store.sql.keptreads import KeptReads, kept_figure
from adapters.store.sql.uow import SqlUnitOfWork
from engine.service.kepttrials import NotKept

if TYPE_CHECKING:
    from adapters.store.sql.store import SqlStore

#: the statement whose answer keys the kept reads (see the module's text)
SNAPSHOT = "SELECT pg_current_snapshot()::text, pg_postmaster_start_time()"


class SnapshotKeep:
    """The kept reads of the newest figure a trial of this process checked (``reads``),
    shared by its threads: what a trial reads after a check that gave a figure is kept
    under that figure only, and a figure once moved never comes back (xmax only grows, and
    an id once out of the in-progress list never returns to it), so whichever thread reads
    it, a later check that gives the same figure may take it. (The pool's threads fill what
    the event loop's trials answer from: ``only_kept``.)"""

    def __init__(self) -> None:
        self._current: KeptReads | None = None

    def reads(self, figure: Any) -> KeptReads:
        """The kept reads for ``figure`` (``SNAPSHOT``'s row, read just now): those kept
        under the same figure, else new ones kept under it (new, not emptied: a trial still
        open under an older figure keeps what it reads into the old ones, never into those
        of a later figure)."""
        kept = self._current
        if kept is None or kept.version != figure:
            kept = self._current = KeptReads().at(figure)
        return kept

    def standing(self, figure: Any) -> KeptReads | None:
        """The kept reads if they were kept under ``figure`` (a check awaited on the event
        loop: ``snapshotcheck``), else None (nothing kept under it: the pool reads it)."""
        kept = self._current
        return kept if kept is not None and kept.version == figure else None


class SnapshotTrial(SqlUnitOfWork):
    """PostgreSQL: a unit of work that only reads, its rows kept while the snapshot's figure
    stands (``SqlStore.trial_uow``). Every statement it sends comes after the check (its
    driver connection is made ready by it: ``_driver``); ``run``'s reads are answered from
    the kept rows or read and kept; the account-years it built are kept when it ends. Under
    ``keptreads.only_kept`` (the event loop) the figure is the one its caller awaited and it
    sends nothing: a read that is not kept raises ``NotKept`` (``SqlUnitOfWork._driver``)."""

    def __init__(self, store: SqlStore):
        super().__init__(store)
        self._reads: KeptReads | None = None

    def _driver(self, write: bool = False) -> Any:
        if write:
            raise RuntimeError("a trial's unit of work writes nothing")
        raw = super()._driver()
        if self._reads is None:
            try:
                cur = self.s.x.cursor(raw)
                cur.execute(SNAPSHOT)
                figure = tuple(cur.fetchone())
            except self.s.x.errors as err:
                raise sa.exc.DBAPIError.instance(
                    SNAPSHOT, (), err, self.s.x.errors, hide_parameters=True
                ) from err
            self._use(self.s.snapshots.reads(figure))
        return raw

    def _use(self, reads: KeptReads) -> None:
        """This trial's reads are ``reads`` (kept under its figure), its account-years too."""
        self._reads = reads
        self.accounts.keep_current(reads.accounts)

    def _checked(self) -> KeptReads:
        """The kept reads under this trial's figure: the check sent first if not yet, or,
        under ``only_kept``, the awaited figure's (``NotKept`` if nothing is kept under it)."""
        if self._reads is None:
            figure = kept_figure()
            if figure is None:
                self._driver()
            else:
                reads = self.s.snapshots.standing(figure)
                if reads is None:
                    raise NotKept(SNAPSHOT)
                self._use(reads)
        assert self._reads is not None
        return self._reads

    def kept(self) -> dict[Any, Any]:
        """The answers kept with the kept reads (the check made first, if not yet): dropped
        with the rows when anything commits, so a caller's answer built from reads under this
        figure stands while it is found here. Each caller keeps its answers under its own
        key, bounded by it (one answer each)."""
        return self._checked().answers

    def run(self, sql: str, params: Any = (), write: bool = False) -> Any:
        if write:
            raise RuntimeError("a trial's unit of work writes nothing")
        read = super().run
        got = self._checked().rows_for(sql, params, lambda: read(sql, params).fetchall())
        return read(sql, params) if got is None else got

    def _end(self) -> None:
        reads, self._reads = self._reads, None
        if reads is not None:  # what it read, it read under this figure
            reads.keep_accounts(self.accounts.seen())
        super()._end()
