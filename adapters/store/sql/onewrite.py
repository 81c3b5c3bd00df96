"""PostgreSQL: a pipeline sent to the server in one write (issue 13 target 7).

psycopg's pipeline sends each statement as it is executed: after every ``execute`` it polls
the socket and flushes what libpq has buffered, then at the pipeline's end it sends the Sync
and then a Flush request, each a write of its own. A Settle's two pipelines (BEGIN, the early
locks, the reads; the writes, COMMIT) were ~10 ``sendto`` calls and ~16 ``poll`` calls in the
server's thread, and every write woke the PostgreSQL backend for a piece of the pipeline.

``one_write(raw)`` is ``raw.pipeline()`` with the sending held back: the statements executed
inside are queued (psycopg's own queue: its parameter dumping, prepared statements and
result processing unchanged); at the end they and the Sync go into libpq's buffer and out in
one write (libpq in pipeline mode flushes only at the Sync or past 64 kB), and the results are
read back as psycopg reads them, without the Flush request (the Sync makes the server send
everything). Errors are raised as psycopg raises them at a pipeline's end.

It subclasses psycopg's ``Pipeline`` and overrides two of its private steps
(``_communicate_gen``, ``_exit_gen``), installed as ``Connection.pipeline()`` installs its own:
the same steps in psycopg 3.2.1 (pyproject's lower bound) and 3.3 (requirements.lock);
tests/test_store_sql.py counts the writes. A psycopg without them gets its own pipeline (one
write a statement, the same results) rather than an AttributeError mid-Settle.

``command(raw, sql)`` queues a statement with neither parameters nor rows (a transaction's
BEGIN and COMMIT) in that pipeline as psycopg queues its own (``Connection._exec_command``):
no cursor, no query conversion and no prepared-statement bookkeeping (a cursor's ``execute``
of BEGIN and of COMMIT cost ~30 us of the server's thread CPU a Settle); its error, or its
abort after an earlier one, is raised at the pipeline's end as a cursor's would be.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import psycopg
from psycopg.generators import send


class _OneWrite(psycopg.Pipeline):
    """A pipeline whose commands wait in its queue until it ends, then go in one write."""

    def _communicate_gen(self) -> Any:
        """After each execute: nothing sent yet (psycopg would poll and flush here)."""
        return
        yield  # (a generator, as the step it replaces)

    def _exit_gen(self) -> Any:
        """The queued commands and the Sync into libpq's buffer and out together, then every
        result read (psycopg's end of a pipeline, less one write a command and the Flush)."""
        try:
            self._enqueue_sync()
            while self.command_queue:
                self.command_queue.popleft()()  # buffered; the Sync flushes
            yield from send(self.pgconn)  # what the Sync's flush did not get out, if any
        finally:
            yield from self._fetch_gen(flush=False)


# the private steps _OneWrite relies on (present in psycopg 3.2.1 to 3.3.9)
HELD_BACK = all(
    hasattr(psycopg.Pipeline, step)
    for step in ("_communicate_gen", "_exit_gen", "_enqueue_sync", "_fetch_gen")
)


def command(raw: psycopg.Connection[Any], sql: bytes) -> None:
    """In a ``one_write`` pipeline: ``sql`` (no parameters, no rows) queued without a cursor."""
    pipeline = raw._pipeline
    if not HELD_BACK or not isinstance(pipeline, _OneWrite):
        psycopg.RawCursor(raw).execute(sql, prepare=False)  # psycopg's pipeline, or none
        return
    pipeline.command_queue.append(partial(raw.pgconn.send_query_params, sql, None))
    pipeline.result_queue.append(None)  # a command's result: checked for an error, no rows


@contextmanager
def one_write(raw: psycopg.Connection[Any]) -> Iterator[None]:
    """``raw.pipeline()``, its statements sent in one write when it ends."""
    if not HELD_BACK:
        with raw.pipeline():
            yield
        return
    with raw.lock:
        assert raw._pipeline is None, "one_write inside another pipeline"
        pipeline = raw._pipeline = _OneWrite(raw)
    try:
        with pipeline:
            yield
    finally:
        with raw.lock:
            raw._pipeline = None
