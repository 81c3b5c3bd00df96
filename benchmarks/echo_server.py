"""Benchmark-only server: ``onestop serve`` exactly as shipped, plus one generic handler,
``/onestop.bench.Echo/Echo``, that answers a unary call with the bytes it received (no
deserializing, no thread-pool hop, no settlement work). ``benchmarks/grpc_bench.py`` starts
this to measure the rpc ceiling on the same server, in the same run, with a message of the
same size as a PreSettle request. The production server (``onestop serve``,
``adapters.grpc``) never has this handler: it is added here, by wrapping ``grpc.aio.server``
in this process only.

    python -m benchmarks.echo_server serve --db ... --port ...   (the options of onestop serve)
"""

from __future__ import annotations

import sys
from typing import Any

import grpc

SERVICE = "onestop.bench.Echo"
METHOD = f"/{SERVICE}/Echo"


async def _echo(request: bytes, context: Any) -> bytes:
    return request


def install() -> None:
    """Every grpc.aio server made in this process gets the echo handler."""
    handler = grpc.method_handlers_generic_handler(
        SERVICE, {"Echo": grpc.unary_unary_rpc_method_handler(_echo)}
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

    _server._child = _child_with_echo  # type: ignore[assignment]  # the children's target
    from adapters.grpc.commands import app

    sys.exit(app())
