"""Serving the gateway on uvicorn: ``onestop serve-http`` and ``running`` (tests).

A separate command from ``onestop serve`` (gRPC): the same bootstrap ``build`` over the same
store URL, so both processes settle into one store (a shared SQL store; ``memory://`` is
per process). Plaintext on loopback only, with the ``local`` principal, as the gRPC server.
TLS with client certificates is not served yet (see README: gaps): a non-loopback host is
refused.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import typer
import uvicorn

from adapters.bootstrap import DEFAULT_DB, App, build
from adapters.grpc.auth import is_loopback
from adapters.http.app import create_app


class HttpServer:
    def __init__(self, server: uvicorn.Server, thread: threading.Thread, port: int):
        self.server, self.thread, self.port = server, thread, port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _check_host(host: str) -> None:
    if not is_loopback(host):
        raise typer.BadParameter(
            f"{host} is not a loopback address; the HTTP gateway serves plaintext on "
            "loopback only (TLS with client certificates is not implemented yet)"
        )


@contextmanager
def running(app: App, host: str = "127.0.0.1", port: int = 0) -> Iterator[HttpServer]:
    """The gateway on its own thread; ``port=0``: the kernel's pick, read ``.port``."""
    _check_host(host)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    config = uvicorn.Config(create_app(app), log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield HttpServer(server, thread, sock.getsockname()[1])
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def serve_http(
    listen: str = typer.Option("127.0.0.1:8080", "--http", help="HOST:PORT (loopback)"),
    db: str = typer.Option(DEFAULT_DB, "--db", help="store URL (as onestop serve)"),
) -> None:
    """Serve the NHSA HTTP/JSON gateway (2301, 2303, 2304, 2305, 3201, 3202) on uvicorn."""
    host, _, port = listen.rpartition(":")
    _check_host(host)
    app = build(db)
    print(f"onestop http: listening on http://{host}:{port}", flush=True)
    uvicorn.run(create_app(app), host=host, port=int(port), log_level="info")
