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

``statement(raw, sql, args)`` queues a statement whose rows nobody reads (a write, a lock)
the same way: its parameters dumped by psycopg's own ``Transformer`` (the types and formats
its cursor would send), run unnamed until psycopg's ``prepare_threshold`` runs on a
connection, then prepared there under a name of ours and run by it, as psycopg's cursor does.
``query(raw, sql, args)`` does the same for a read: its result is handed over by psycopg's
pipeline as a cursor's is, and ``fetchall()`` loads its rows by psycopg's ``Transformer`` as
a ``RawCursor``'s does. A cursor's execute and fetch were ~40 us of thread CPU a statement in
their Python steps (cursor, query conversion, prepare bookkeeping, result attach), 3 a
Settle (its two reads, its writes in one statement). The names and counts are kept in
psycopg's ``PrepareManager`` of the connection (its keys: the text and the parameter types),
so that what makes psycopg deallocate its statements (a rollback, DDL seen: ``DEALLOCATE
ALL``) forgets ours with them; the deallocations it owes are sent first. A prepare in a
pipeline that fails is forgotten (names are never reused); a statement the server does not
know (deallocated behind psycopg's back) makes the connection's all forgotten.

A connection keeps one ``_OneWrite`` for all its trips (psycopg makes a ``Pipeline`` for
each, and enters it through ``Connection.wait`` of a step with nothing to wait for): entering
is libpq's ``PQenterPipelineMode`` alone; the end is psycopg's ``Pipeline.__exit__`` step for
step (the end sent and read even after an error of the block, whose error wins).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from typing import Any

import psycopg
from psycopg import capabilities, errors
from psycopg.adapt import PyFormat, Transformer
from psycopg.generators import send
from psycopg.pq import ExecStatus

#: a statement as prepared: its text and its parameters' types (psycopg's dumpers')
_Key = tuple[bytes, tuple[int, ...]]
_log = logging.getLogger("psycopg")


class _OneWrite(psycopg.Pipeline):
    """A pipeline whose commands wait in its queue until it ends, then go in one write."""

    def _communicate_gen(self) -> Any:
        """After each execute: nothing sent yet (psycopg would poll and flush here)."""
        return
        yield  # (a generator, as the step it replaces)

    def __init__(self, conn: Any) -> None:
        super().__init__(conn)
        #: statements prepared in this pipeline, and their names (forgotten if it fails)
        self.prepared: list[tuple[_Key, bytes]] = []

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


FATAL_ERROR, PIPELINE_ABORTED, TUPLES_OK = (
    ExecStatus.FATAL_ERROR, ExecStatus.PIPELINE_ABORTED, ExecStatus.TUPLES_OK
)  # fmt: skip


def _prepare_manager_kept() -> bool:
    """psycopg's PrepareManager has the private members ``_queue`` keeps its names in."""
    try:
        from psycopg._preparing import PrepareManager

        pm = PrepareManager()
    except Exception:
        return False
    return all(hasattr(pm, a) for a in ("_names", "_counts", "_to_flush", "prepare_threshold"))


# the private steps _OneWrite relies on (present in psycopg 3.2.1 to 3.3.9); another psycopg
# without them: every statement goes through psycopg's public RawCursor, as before _OneWrite
HELD_BACK = (
    all(
        hasattr(psycopg.Pipeline, step)
        for step in ("_communicate_gen", "_exit_gen", "_exit", "_enqueue_sync", "_fetch_gen")
    )
    and _prepare_manager_kept()
)


def command(raw: psycopg.Connection[Any], sql: bytes) -> None:
    """In a ``one_write`` pipeline: ``sql`` (no parameters, no rows) queued without a cursor."""
    pipeline = raw._pipeline
    if not HELD_BACK or not isinstance(pipeline, _OneWrite):
        psycopg.RawCursor(raw).execute(sql, prepare=False)  # psycopg's pipeline, or none
        return
    pipeline.command_queue.append(partial(raw.pgconn.send_query_params, sql, None))
    pipeline.result_queue.append(None)  # a command's result: checked for an error, no rows


class _Dumper:
    """A connection's parameter dumper and row loader for ``statement`` and ``query``."""

    def __init__(self, raw: psycopg.Connection[Any]):
        self.tx = Transformer(raw)  # dumps the parameters
        self.load = Transformer(raw)  # loads a read's rows


#: the attribute of a psycopg connection that holds its ``_Dumper`` (not a weak mapping: a
#: ``Transformer`` refers to its connection, which would then live as long as the mapping)
_DUMPER = "_onestop_dumper"
_NAMES = itertools.count()  # names never reused (a failed prepare's name is dropped)
_AUTO: dict[int, list[PyFormat]] = {}
_NO_SUCH_STATEMENT = "26000"  # invalid_sql_statement_name


def statement(raw: psycopg.Connection[Any], sql: bytes, args: Sequence[Any]) -> None:
    """In a ``one_write`` pipeline: ``sql`` (``$n`` placeholders) with ``args``, its rows
    not read; prepared on this connection after psycopg's ``prepare_threshold`` runs (see
    the module's doc)."""
    pipeline = raw._pipeline
    if not HELD_BACK or not isinstance(pipeline, _OneWrite):
        psycopg.RawCursor(raw).execute(sql, args)  # psycopg's pipeline, or none
        return
    _queue(raw, pipeline, sql, args, None)


def query(raw: psycopg.Connection[Any], sql: bytes, args: Sequence[Any]) -> Any:
    """``statement``, for a read: returns what holds its rows once the pipeline has ended
    (``fetchall()``: tuples, as a ``RawCursor``'s)."""
    pipeline = raw._pipeline
    if not HELD_BACK or not isinstance(pipeline, _OneWrite):
        cur = psycopg.RawCursor(raw)
        cur.execute(sql, args)
        return cur
    rows = _Rows(_dumper(raw).load, raw.pgconn)
    _queue(raw, pipeline, sql, args, (rows, None))
    return rows


class _Rows:
    """A read's result in a ``one_write`` pipeline: handed over by psycopg's pipeline as it
    hands a cursor its results (``_check_results``, ``_set_results``), its rows loaded by
    psycopg's ``Transformer`` as a ``RawCursor``'s ``fetchall`` loads them."""

    __slots__ = ("load", "pq", "res")

    def __init__(self, load: Any, pq: Any):
        self.load = load
        self.pq = pq
        self.res: Any = None

    def _check_results(self, results: list[Any]) -> None:
        for res in results:
            if res.status == FATAL_ERROR:
                raise errors.error_from_result(res, encoding=self.pq._encoding)
            if res.status == PIPELINE_ABORTED:
                raise errors.PipelineAborted("pipeline aborted")
        if len(results) != 1 or results[0].status != TUPLES_OK:
            raise errors.InternalError("a read without its rows")

    def _set_results(self, results: list[Any]) -> None:
        self.res = results[0]

    def fetchall(self) -> list[Any]:
        res = self.res
        self.load.set_pgresult(res)
        return self.load.load_rows(0, res.ntuples, tuple)


def _dumper(raw: psycopg.Connection[Any]) -> _Dumper:
    got: _Dumper | None = getattr(raw, _DUMPER, None)
    if got is None:
        got = _Dumper(raw)
        setattr(raw, _DUMPER, got)
    return got


def _queue(
    raw: psycopg.Connection[Any], pipeline: _OneWrite, sql: bytes, args: Sequence[Any], sink: Any
) -> None:
    """Queue ``sql`` with ``args`` in the pipeline, unnamed or prepared; its result goes to
    ``sink`` (None: checked for an error only). The names are kept in psycopg's own
    ``PrepareManager`` of the connection, so that whatever makes psycopg forget its prepared
    statements (a rollback, DDL seen: then ``DEALLOCATE ALL``) forgets ours with them, and its
    cursor runs ours by name."""
    got = _dumper(raw)
    n = len(args)
    formats = _AUTO.get(n)
    if formats is None:
        formats = _AUTO[n] = [PyFormat.AUTO] * n
    tx = got.tx
    values = tx.dump_sequence(args, formats)
    types: tuple[int, ...] = tx.types or ()
    key = (sql, types)
    pm = raw._prepared
    name = pm._names.get(key)
    pq = raw.pgconn
    queue = pipeline.command_queue
    if name is None:
        while pm._to_flush:  # psycopg's deallocations owed (it runs them before a cursor's)
            old = pm._to_flush.popleft()
            command(raw, b"DEALLOCATE ALL" if old is None else b"DEALLOCATE " + old)
        threshold = pm.prepare_threshold
        runs = pm._counts.get(key, 0)
        if threshold is None or runs < threshold:  # psycopg's rule: prepared on the run after
            pm._counts[key] = runs + 1
            pm._counts.move_to_end(key)
            if len(pm._counts) > pm.prepared_max:
                pm._counts.popitem(last=False)
            queue.append(partial(pq.send_query_params, sql, values, types, tx.formats))
            pipeline.result_queue.append(sink)
            return
        pm._counts.pop(key, None)
        name = pm._names[key] = b"onestop_%d" % next(_NAMES)
        if len(pm._names) > pm.prepared_max:  # psycopg's cache size: the oldest let go
            command(raw, b"DEALLOCATE " + pm._names.popitem(last=False)[1])
        pipeline.prepared.append((key, name))
        queue.append(partial(pq.send_prepare, name, sql, types))
        pipeline.result_queue.append(None)
    else:
        pm._names.move_to_end(key)
    queue.append(partial(pq.send_query_prepared, name, values, tx.formats))
    pipeline.result_queue.append(sink)


def _forget(raw: psycopg.Connection[Any], pipeline: _OneWrite, err: BaseException) -> None:
    """After a failed pipeline: its prepares may not have run, and a missing statement means
    the connection's were deallocated (psycopg then forgets its own too)."""
    pm = raw._prepared
    if getattr(err, "sqlstate", None) == _NO_SUCH_STATEMENT:
        pm.clear()
    for key, name in pipeline.prepared:
        if pm._names.get(key) == name:
            del pm._names[key]


#: the attribute of a psycopg connection that holds its ``_OneWrite`` (made once, reused)
_PIPE = "_onestop_pipeline"


@contextmanager
def one_write(raw: psycopg.Connection[Any]) -> Iterator[None]:
    """``raw.pipeline()``, its statements sent in one write when it ends. The connection's
    one ``_OneWrite`` serves every trip (psycopg makes a ``Pipeline`` a trip and enters it
    through ``Connection.wait`` of a step that has nothing to wait for): pipeline mode is
    entered here, and the end is psycopg's ``Pipeline.__exit__``, step for step."""
    if not HELD_BACK:
        with raw.pipeline():
            yield
        return
    with raw.lock:
        assert raw._pipeline is None, "one_write inside another pipeline"
        pipeline: _OneWrite | None = getattr(raw, _PIPE, None)
        if pipeline is None or pipeline.pgconn is not raw.pgconn:
            capabilities.has_pipeline(check=True)
            pipeline = _OneWrite(raw)
            setattr(raw, _PIPE, pipeline)
        else:  # what a failed trip may have left (a broken connection's unread results)
            pipeline.command_queue.clear()
            pipeline.result_queue.clear()
            pipeline.prepared.clear()
        raw.pgconn.enter_pipeline_mode()
        pipeline.level = 1
        raw._pipeline = pipeline
    try:
        with _ended(raw, pipeline):
            yield
    except BaseException as err:
        _forget(raw, pipeline, err)
        raise
    finally:
        with raw.lock:
            raw._pipeline = None


@contextmanager
def _ended(raw: psycopg.Connection[Any], pipeline: _OneWrite) -> Iterator[None]:
    """psycopg's ``Pipeline.__exit__``: the pipeline's end sent and its results read, an
    error of that end raised unless the block raised first (then logged as psycopg does),
    and pipeline mode left."""
    err: BaseException | None = None
    try:
        yield
    except BaseException as exc:
        err = exc
        raise
    finally:
        try:
            with raw.lock:
                raw.wait(pipeline._exit_gen())
        except Exception as exc2:
            if err is not None:
                _log.warning("error ignored terminating %r: %s", pipeline, exc2)
            else:
                raise exc2.with_traceback(None) from None
        finally:
            pipeline._exit(err)
