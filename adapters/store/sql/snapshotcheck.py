"""The snapshot's check (``snapshotkeep.SNAPSHOT``) awaited on the event loop: one statement
on an async driver connection of the process (psycopg's ``AsyncConnection``, autocommit), so
the loop never waits on the database; it serves the other calls while the answer comes.
PostgreSQL's ``kepttrials.KeptTrials`` (the gRPC server's inline PreSettle).

Calls that ask while a check is on its way wait for the next one, which they share: that
check is sent after every one of them asked, so its snapshot is taken after each call
arrived (a call never gets a figure older than itself: a Settle acknowledged before it
arrived is seen, as on the pool). A failed check is the caller's to handle (it goes to the
pool); the connection is made again for the next.

A check is bounded (``timeout`` seconds from its first caller's ask, one timer a check): past
it every call waiting (on it and on the next) gets ``TimeoutError`` (the pool's path, with the
store's own timeouts), and the stuck check is abandoned with its connection: its task is
cancelled (psycopg then cancels the query and closes the connection, within ~10 s even when
the server does not answer) and the next check opens a fresh connection."""

from __future__ import annotations

import asyncio
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from adapters.store.sql.keptreads import only_kept
from adapters.store.sql.snapshotkeep import SNAPSHOT

if TYPE_CHECKING:
    import psycopg

    from adapters.store.sql.store import SqlStore

Figure = tuple[Any, ...]


class SnapshotCheck:
    """``figure``: the check's row, read after the call asked, within ``timeout`` seconds;
    one connection a loop."""

    def __init__(self, store: SqlStore, timeout: float):
        self._store = store
        self.timeout = timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._next: asyncio.Future[Figure] | None = None  # the check to come
        self._sent: asyncio.Future[Figure] | None = None  # the check on its way
        self._sending: asyncio.Task[None] | None = None
        self._abandoned: set[asyncio.Task[None]] = set()  # stuck checks, being cancelled

    async def figure(self) -> Figure:
        """The snapshot's figure, from a check sent after this call (raises what it raised;
        ``TimeoutError`` past ``timeout``)."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a connection and futures belong to one loop
            self._loop, self._conn, self._next, self._sent = loop, None, None, None
            self._sending, self._abandoned = None, set()
        fut = self._next
        if fut is None:
            fut = self._next = loop.create_future()
            timer = loop.call_later(self.timeout, self._expire, fut)
            fut.add_done_callback(lambda _: timer.cancel())
            if self._sending is None:
                self._sending = loop.create_task(self._send())
        return await asyncio.shield(fut)

    def only_kept(self, figure: Any) -> AbstractContextManager[None]:
        """This thread's units of work answer from the reads kept under ``figure`` only
        (``keptreads.only_kept``)."""
        return only_kept(figure)

    async def _send(self) -> None:
        """The checks asked for, one after another, each answering every call that asked
        before it was sent."""
        me = asyncio.current_task()
        try:
            while self._sending is me and (fut := self._next) is not None:
                self._sent, self._next = fut, None
                try:
                    got = await self._check()
                except Exception as exc:
                    _answer(fut, exc=exc)
                else:
                    _answer(fut, got)
        finally:
            if self._sending is me:
                self._sending = self._sent = None

    def _expire(self, fut: asyncio.Future[Figure]) -> None:
        """``fut``'s calls waited ``timeout``: every waiting call fails, the check on its way
        is abandoned (cancelled, its connection with it) and the next opens a fresh one."""
        if fut.done():
            return
        stuck, self._sending, self._conn = self._sending, None, None
        late = TimeoutError(f"the snapshot's check took over {self.timeout:g} s")
        for waiting in (self._sent, self._next, fut):
            if waiting is not None:
                _answer(waiting, exc=late)
        self._sent = self._next = None
        if stuck is not None:
            self._abandoned.add(stuck)  # held until it ends (a task is only weakly held)
            stuck.add_done_callback(self._abandoned.discard)
            stuck.cancel()

    async def _check(self) -> Figure:
        conn = self._conn
        if conn is None or conn.closed:
            import psycopg  # (not for a SQLite server's start)

            engine = self._store.engine
            _, kwargs = engine.dialect.create_connect_args(engine.url)
            conn = await psycopg.AsyncConnection.connect(**kwargs, autocommit=True)
            if asyncio.current_task() is not self._sending:  # abandoned meanwhile
                await conn.close()
                raise TimeoutError("the snapshot's check was abandoned")
            self._conn = conn
        try:
            cur = await conn.execute(SNAPSHOT, prepare=True)
            row = await cur.fetchone()
        except BaseException:  # a failure, or abandoned (cancelled): never used again
            if self._conn is conn:
                self._conn = None
            await conn.close()
            raise
        assert row is not None
        return tuple(row)

    async def close(self) -> None:
        """The connection closed (the server's stop). An abandoned check's closes its own
        when psycopg's cancellation ends."""
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()


def _answer(fut: asyncio.Future[Figure], got: Figure = (), exc: Exception | None = None) -> None:
    """``fut``'s answer, unless it has one (expired)."""
    if fut.done():
        return
    if exc is None:
        fut.set_result(got)
    else:
        fut.set_exception(exc)
        fut.exception()  # retrieved: a call cancelled meanwhile leaves no warning
