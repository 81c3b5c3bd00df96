"""Group commit for Settle: writer threads of a service (``GroupCommit.writers``, one by
default) draining one queue of settle calls.

Callers (the server's worker threads) put their call on the queue and wait. A writer takes
whatever is queued (up to ``max_group`` calls, waiting up to ``max_wait`` seconds for more
after the first), hands the group to ``run`` (``SettlementService.settle_group``: the
group's reads before its locks in one round trip (the replays, the bills' persons, their
active settlements), then its settlements in one transaction, one commit and so one fsync),
and answers each caller with its own answer once ``run`` returns, so that nobody is answered
before the commit that holds its settlement. A call's answer is its (record, replay) or the
exception it raised; one caller's error is never another's.

While the writer commits one group the next one queues, so groups grow with the load; a call
that finds no other Settle in flight (``in_flight``) settles alone in its caller's thread, as
without grouping, so a lone client waits for no one and pays no hand-over (``max_wait`` 0,
the default, adds no wait either).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from engine.batch import FundYearKey
from engine.bill import Bill
from engine.service import fundbook
from engine.service.ports import LockKey, SettlementRecord, account_locks
from engine.service.settlecols import ColumnsBill, Request

log = logging.getLogger("onestop.groupcommit")

#: what a settle call ends with: its record and whether it is a replay, or its own error
SettleAnswer = tuple[SettlementRecord, bool] | Exception


@dataclass(frozen=True)
class GroupCommit:
    """How Settle calls are grouped into transactions (``onestop serve --group-max``,
    ``--group-wait-ms``). ``max_group`` 1: no grouping, each Settle its own transaction."""

    max_group: int = 64
    max_wait: float = 0.0  # seconds the writer waits for more calls after the first
    #: writer threads draining the queue: while one waits for its commit, another may run
    #: the next group (its locks wait for the first's where they share a person or household)
    writers: int = 1

    def __post_init__(self) -> None:
        if self.writers < 1:
            raise ValueError(f"writers {self.writers}: at least 1")
        if self.max_group < 1:
            raise ValueError(f"max_group {self.max_group}: at least 1")
        if not 0.0 <= self.max_wait <= 1.0:
            raise ValueError(f"max_wait {self.max_wait} s: 0 to 1 s")

    @property
    def on(self) -> bool:
        return self.max_group > 1


@dataclass(frozen=True)
class SettleCall:
    """One Settle call (request id checked, digest computed by the caller)."""

    request_id: str
    req: Request  # the model, or checked columns (``engine.service.settlecols``)
    principal: str
    digest: str


@dataclass(frozen=True)
class PreparedSettle:
    """A call after its reads before the locks: the bill with its person, the registry
    version used, the hard-budget fund-years it draws on."""

    call: SettleCall
    bill: Bill | ColumnsBill
    person_version: int | None
    keys: list[FundYearKey]
    #: the request as stored (``settlecols.stored_of``); None: written by the writer as
    #: JSON from the columns (a store that ``takes_stored_json``, a columns bill)
    stored: dict[str, Any] | None

    def locks(self) -> tuple[LockKey, ...]:
        b = self.bill
        return (
            *fundbook.fund_locks(self.keys),
            *account_locks(b.person.id, b.person.household, b.year),
        )


_STOP = object()


class SettleWriter:
    """The writer of a service (``config.writers`` threads on one queue): ``submit`` queues a
    call and blocks until its group is committed (or has failed and been settled one by
    one); ``close`` stops the writer after the calls already queued."""

    def __init__(
        self,
        run: Callable[[Sequence[SettleCall]], list[SettleAnswer]],
        config: GroupCommit,
    ):
        self._run = run
        self.config = config
        self._q: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._start = threading.Lock()
        self._closed = False
        #: groups run and calls answered (for tests and the log)
        self.groups = 0
        self.calls = 0
        self._flight = 0  # Settle calls in flight (``in_flight``)

    @contextmanager
    def in_flight(self) -> Iterator[bool]:
        """Count a Settle call in flight while inside; True: no other one was, so there is no
        commit to share and it may settle alone in its own thread (no hand-over to the
        writer and back: a lone client's Settle costs what it costs without grouping)."""
        with self._start:
            first = self._flight == 0
            self._flight += 1
        try:
            yield first
        finally:
            with self._start:
                self._flight -= 1

    def submit(self, call: SettleCall) -> tuple[SettlementRecord, bool]:
        if self._closed:
            raise RuntimeError("the settle writer is closed")
        fut: Future[Any] = Future()
        self._q.put((call, fut))
        self._ensure_thread()
        out = fut.result()
        if isinstance(out, BaseException):
            raise out
        return out

    def _ensure_thread(self) -> None:
        if self._threads:
            return
        with self._start:
            if not self._threads:
                for _ in range(self.config.writers):
                    t = threading.Thread(
                        target=self._loop, name="onestop-settle-writer", daemon=True
                    )
                    t.start()
                    self._threads.append(t)

    def close(self) -> None:
        """Answer what is queued, then stop the writer thread."""
        self._closed = True
        with self._start:
            threads = list(self._threads)
        for _ in threads:
            self._q.put(_STOP)
        for t in threads:
            t.join()
        if threads:
            log.info("settle writer stopped: %d Settle calls in %d groups (%.1f a group)",
                     self.calls, self.groups, self.calls / max(self.groups, 1))  # fmt: skip
        while True:  # a call queued while closing: refused, not left waiting
            try:
                item = self._q.get_nowait()
            except queue.Empty:
                return
            if item is not _STOP:
                item[1].set_result(RuntimeError("the settle writer is closed"))

    def _take(self) -> tuple[list[tuple[SettleCall, Future[Any]]], bool]:
        """The next group (blocks for its first call) and whether to stop after it."""
        first = self._q.get()
        if first is _STOP:
            return [], True
        group = [first]
        cfg = self.config
        deadline = time.monotonic() + cfg.max_wait
        while len(group) < cfg.max_group:
            try:
                if cfg.max_wait <= 0:
                    item = self._q.get_nowait()
                else:
                    item = self._q.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if item is _STOP:
                return group, True
            group.append(item)
        return group, False

    def _loop(self) -> None:
        stop = False
        while not stop:
            group, stop = self._take()
            if not group:
                continue
            try:
                answers = self._run([c for c, _ in group])
                if len(answers) != len(group):
                    raise RuntimeError(f"{len(answers)} answers for {len(group)} calls")
            except BaseException as exc:  # the writer never dies; every caller hears of it
                log.exception("settle group of %d failed", len(group))
                err = exc if isinstance(exc, Exception) else RuntimeError(repr(exc))
                answers = [err] * len(group)
            with self._start:
                self.groups += 1
                self.calls += len(group)
            for (_, fut), a in zip(group, answers, strict=True):
                fut.set_result(a)
