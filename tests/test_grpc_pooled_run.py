"""``_Base.run``: a servicer's body in the thread pool, answered to the loop by the worker."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from adapters.grpc.servicers import _Base

who: contextvars.ContextVar[str] = contextvars.ContextVar("who", default="nobody")


def _base(pool: ThreadPoolExecutor) -> _Base:
    # only the pool hop is used: no service behind it
    return _Base(service=None, executor=pool)  # type: ignore[arg-type]


def test_the_answer_error_and_context_come_back() -> None:
    def body(x: int) -> tuple[int, str, bool]:
        return x + 1, who.get(), threading.current_thread() is threading.main_thread()

    def fails() -> None:
        raise ValueError("no")

    def stops() -> None:
        raise StopIteration

    async def main() -> None:
        with ThreadPoolExecutor(2) as pool:
            b = _base(pool)
            who.set("cashier")
            assert await b.run(body, 1) == (2, "cashier", False)
            with pytest.raises(ValueError, match="no"):
                await b.run(fails)
            with pytest.raises(RuntimeError, match="StopIteration"):
                await b.run(stops)

    asyncio.run(main())


def test_a_call_cancelled_before_its_work_started_never_runs_it() -> None:
    started = threading.Event()
    release = threading.Event()
    ran: list[str] = []

    def hold() -> None:
        started.set()
        release.wait(5)

    def body() -> None:
        ran.append("body")

    async def main() -> None:
        with ThreadPoolExecutor(1) as pool:
            b = _base(pool)
            first = asyncio.ensure_future(b.run(hold))
            await asyncio.to_thread(started.wait, 5)
            second: asyncio.Future[Any] = asyncio.ensure_future(b.run(body))
            await asyncio.sleep(0)  # submitted, queued behind hold
            second.cancel()
            with pytest.raises(asyncio.CancelledError):
                await second
            release.set()
            await first

    asyncio.run(main())
    assert ran == []


def test_a_call_cancelled_while_its_work_runs_drops_the_answer() -> None:
    started = threading.Event()
    release = threading.Event()

    def body() -> int:
        started.set()
        release.wait(5)
        return 1

    async def main() -> None:
        with ThreadPoolExecutor(1) as pool:
            b = _base(pool)
            call = asyncio.ensure_future(b.run(body))
            await asyncio.to_thread(started.wait, 5)
            call.cancel()
            with pytest.raises(asyncio.CancelledError):
                await call
            release.set()
            assert await b.run(lambda: 2) == 2  # the loop is fine after the dropped answer

    asyncio.run(main())
