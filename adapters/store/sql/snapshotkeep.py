"""Answers a PostgreSQL thread keeps while nothing has been committed since they were read
(``UnitOfWork.kept``: the packed stream's ``accounts_many``), SQLite's ``PRAGMA data_version``
rule (``trialreads``) in PostgreSQL's terms.

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

The check is one statement, one round trip, before the reads; it runs in autocommit (its own
snapshot), so an answer is keyed by a snapshot taken before its reads, never after: a commit
between the check and the reads moves the next check's figure, and the answer is read again.
"""

from __future__ import annotations

import threading
from typing import Any

#: the statement whose answer keys the kept answers (see the module's text)
SNAPSHOT = "SELECT pg_current_snapshot()::text, pg_postmaster_start_time()"


class SnapshotKeep:
    """Each thread's answers, kept for one snapshot figure (``answers``)."""

    def __init__(self) -> None:
        self._local = threading.local()

    def answers(self, figure: Any) -> dict[Any, Any]:
        """This thread's kept answers for ``figure`` (``SNAPSHOT``'s row, read just now):
        those kept under the same figure, else a new empty dict kept under it. Each caller
        keeps its answers under its own key, bounded by it (one answer each)."""
        local = self._local
        if getattr(local, "figure", None) != figure:
            local.figure, local.answers = figure, {}
        kept: dict[Any, Any] = local.answers
        return kept
