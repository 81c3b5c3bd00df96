"""The snapshot's check (``snapshotkeep.SNAPSHOT``) awaited on the event loop: one statement
on an async driver connection of the process (psycopg's ``AsyncConnection``, autocommit), so
the loop never waits on the database; it serves the other calls while the answer comes.

Calls that ask while a check is on its way wait for the next one, which they share: that
check is sent after every one of them asked, so its snapshot is taken after each call
arrived (a call never gets a figure older than itself: a Settle acknowledged before it
arrived is seen, as on the pool). A failed check is the caller's to handle (it goes to the
pool); the connection is made again for the next."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from adapters.store.sql.snapshotkeep import SNAPSHOT

if TYPE_CHECKING:
    import psycopg

    from adapters.store.sql.store import SqlStore


class SnapshotCheck:
    """``figure``: the check's row, read after the call asked; one connection a loop."""

    def __init__(self, store: SqlStore):
        self._store = store
        self._loop: asyncio.AbstractEventLoop | None = None
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._next: asyncio.Future[tuple[Any, ...]] | None = None  # the check to come
        self._sending: asyncio.Task[None] | None = None

    async def figure(self) -> tuple[Any, ...]:
        """The snapshot's figure, from a check sent after this call (raises what it raised)."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a connection and futures belong to one loop
            self._loop, self._conn, self._next, self._sending = loop, None, None, None
        fut = self._next
        if fut is None:
            fut = self._next = loop.create_future()
            if self._sending is None:
                self._sending = loop.create_task(self._send())
        return await asyncio.shield(fut)

    async def _send(self) -> None:
        """The checks asked for, one after another, each answering every call that asked
        before it was sent."""
        try:
            while self._next is not None:
                fut, self._next = self._next, None
                try:
                    got = await self._check()
                except Exception as exc:
                    fut.set_exception(exc)
                    fut.exception()  # retrieved: a call cancelled meanwhile leaves no warning
                else:
                    fut.set_result(got)
        finally:
            self._sending = None

    async def _check(self) -> tuple[Any, ...]:
        conn = self._conn
        if conn is None or conn.closed:
            import psycopg  # (not for a SQLite server's start)

            engine = self._store.engine
            _, kwargs = engine.dialect.create_connect_args(engine.url)
            conn = self._conn = await psycopg.AsyncConnection.connect(**kwargs, autocommit=True)
        try:
            cur = await conn.execute(SNAPSHOT, prepare=True)
            row = await cur.fetchone()
        except Exception:
            self._conn = None
            await conn.close()
            raise
        assert row is not None
        return tuple(row)

    async def close(self) -> None:
        """The connection closed (the server's stop)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()
