"""Benchmark-only server: ``onestop serve`` exactly as shipped, plus one generic handler,
``/onestop.bench.Echo/Echo``, that answers a unary call with the bytes it received (no
deserializing, no thread-pool hop, no settlement work). ``benchmarks/grpc_bench.py`` starts
this to measure the rpc ceiling on the same server, in the same run, with a message of the
same size as a PreSettle request. ``SleepN`` (N in ``SLEEPS_MS``) answers the same way after
``time.sleep(N ms)`` in a thread pool, reached as a Settle's body is (``run_in_executor`` in
the call's context, 8 workers): a call outstanding in the pool for N ms with no work, to see
what waiting alone costs the event loop (issue 13, target 7). The production server (``onestop serve``,
``adapters.grpc``) never has this handler: it is added here, by wrapping ``grpc.aio.server``
in this process only.

    python -m benchmarks.echo_server serve --db ... --port ...   (the options of onestop serve)
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc

SERVICE = "onestop.bench.Echo"
METHOD = f"/{SERVICE}/Echo"
#: the ``SleepN`` handlers: N ms in the pool
SLEEPS_MS = (0, 5, 20, 40)
_pool: ThreadPoolExecutor | None = None


def method(rpc: str) -> str:
    """The full method name of ``Echo`` or ``SleepN``."""
    return f"/{SERVICE}/{rpc}"


async def _echo(request: bytes, context: Any) -> bytes:
    return request


def _sleep_then(ms: int, request: bytes) -> bytes:
    time.sleep(ms / 1000)
    return request


def _sleeper(ms: int) -> Any:
    async def sleep_echo(request: bytes, context: Any) -> bytes:
        global _pool
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="bench-sleep")
        loop = asyncio.get_running_loop()
        ctx = contextvars.copy_context()
        return await loop.run_in_executor(
            _pool, ctx.run, functools.partial(_sleep_then, ms, request)
        )

    return sleep_echo


def install() -> None:
    """Every grpc.aio server made in this process gets the echo handler."""
    handler = grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Echo": grpc.unary_unary_rpc_method_handler(_echo),
            **{f"Sleep{ms}": grpc.unary_unary_rpc_method_handler(_sleeper(ms)) for ms in SLEEPS_MS},
        },
    )
    made = grpc.aio.server

    def server(*args: Any, **kwargs: Any) -> Any:
        s = made(*args, **kwargs)
        s.add_generic_rpc_handlers((handler,))
        return s

    grpc.aio.server = server


def _child_with_echo(*args: Any, **kwargs: Any) -> Any:
    """``onestop serve --processes N`` (N > 1) serves from spawned children, fresh
    interpreters: each installs the handler, then runs the shipped child."""
    install()
    from adapters.grpc import server

    return server._child(*args, **kwargs)


if __name__ == "__main__":
    install()
    from adapters.grpc import server as _server

    _server._child = _child_with_echo  # the children's target
    from adapters.grpc.commands import app

    sys.exit(app())
