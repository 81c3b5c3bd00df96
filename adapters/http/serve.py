"""Serving the gateway on uvicorn: ``onestop serve-http`` and ``running`` (tests).

A separate command from ``onestop serve`` (gRPC): the same bootstrap ``build`` over the same
store URL, so both processes settle into one store (a shared SQL store; ``memory://`` is
per process). Like the gRPC server: without TLS, plaintext on loopback only, every caller the ``local``
principal; with TLS (``--tls-cert/--tls-key/--client-ca`` and ``--principals``) a client
certificate chaining to the client CA is required (uvicorn ``ssl_cert_reqs=CERT_REQUIRED``,
``ssl_ca_certs``) and the caller is the one principal of ``adapters.auth.principals`` its
certificate names (SANs, then the subject CN: the names the gRPC server reads).
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
import uvicorn
from fastapi import Request
from uvicorn.protocols.http.h11_impl import H11Protocol

from adapters.auth.principals import LOCAL, Principal, PrincipalsFile, Unauthenticated
from adapters.bootstrap import DEFAULT_DB, DEFAULT_POLICIES, DEFAULT_REGISTRY, App, build
from adapters.grpc.auth import Tls, is_loopback
from adapters.http.app import Identify, create_app

PEER = "onestop.peer_names"  # the scope extension holding the peer certificate's names


def cert_names(cert: dict[str, Any] | None) -> list[str]:
    """The names of a peer certificate (``SSLObject.getpeercert()``): SANs, then the CN."""
    out: list[str] = []
    if not cert:
        return out
    for _kind, value in cert.get("subjectAltName", ()):
        if value not in out:
            out.append(value)
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName" and value not in out:
                out.append(value)
    return out


class PeerCertProtocol(H11Protocol):
    """uvicorn's h11 protocol, putting the TLS peer's certificate names in every request's
    scope (uvicorn gives the app no access to the peer certificate otherwise)."""

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        obj = transport.get_extra_info("ssl_object")
        names = cert_names(obj.getpeercert()) if obj is not None else None
        inner = self.app

        async def app(scope: Any, receive: Any, send: Any) -> None:
            scope.setdefault("extensions", {})[PEER] = names
            await inner(scope, receive, send)

        self.app = app


def cert_identify(principals: PrincipalsFile) -> Identify:
    """The principal named by the request's client certificate (exactly one), as the gRPC
    server's ``AuthInterceptor.identify``."""

    def identify(request: Request) -> Principal:
        names = (request.scope.get("extensions") or {}).get(PEER)
        if not names:
            raise Unauthenticated("a client certificate is required")
        found = {principals.get(n) for n in names} - {None}
        if len(found) != 1:
            raise Unauthenticated(
                "the client certificate names no principal of this server"
                if not found
                else "the client certificate names more than one principal"
            )
        return found.pop()  # type: ignore[return-value]

    return identify


class HttpServer:
    def __init__(self, server: uvicorn.Server, thread: threading.Thread, port: int, tls: bool):
        self.server, self.thread, self.port, self.tls = server, thread, port, tls

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{'localhost' if self.tls else '127.0.0.1'}:{self.port}"


def _check_host(host: str, tls: Tls | None) -> None:
    if tls is None and not is_loopback(host):
        raise typer.BadParameter(
            f"{host} is not a loopback address; without TLS the HTTP gateway serves "
            "plaintext on loopback only (give --tls-cert, --tls-key, --client-ca, --principals)"
        )


def check_options(host: str, tls: Tls | None, principals: PrincipalsFile | None) -> None:
    _check_host(host, tls)
    if (tls is None) != (principals is None):
        raise typer.BadParameter("TLS and a principals file go together: give both or neither")


def config(app: App, host: str, port: int, tls: Tls | None,
           principals: PrincipalsFile | None, **kw: Any) -> uvicorn.Config:  # fmt: skip
    """The uvicorn config of the gateway: TLS with required client certificates when ``tls``."""
    check_options(host, tls, principals)
    if tls is None:
        return uvicorn.Config(create_app(app, lambda r: LOCAL), host=host, port=port, **kw)
    assert principals is not None
    return uvicorn.Config(
        create_app(app, cert_identify(principals)), host=host, port=port,
        http=PeerCertProtocol, ssl_certfile=str(tls.cert), ssl_keyfile=str(tls.key),
        ssl_ca_certs=str(tls.client_ca), ssl_cert_reqs=ssl.CERT_REQUIRED, **kw,
    )  # fmt: skip


@contextmanager
def running(app: App, host: str = "127.0.0.1", port: int = 0, *, tls: Tls | None = None,
            principals: PrincipalsFile | None = None) -> Iterator[HttpServer]:  # fmt: skip
    """The gateway on its own thread; ``port=0``: the kernel's pick, read ``.port``."""
    cfg = config(app, host, port, tls, principals, log_level="warning", lifespan="off")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    server = uvicorn.Server(cfg)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        if not server.started:
            raise RuntimeError("the HTTP gateway did not start")
        yield HttpServer(server, thread, sock.getsockname()[1], tls is not None)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def serve_http(
    listen: str = typer.Option("127.0.0.1:8080", "--http", help="HOST:PORT"),
    db: str = typer.Option(DEFAULT_DB, "--db", help="store URL (as onestop serve)"),
    tls_cert: Path | None = typer.Option(None, "--tls-cert", help="server certificate (PEM)"),
    tls_key: Path | None = typer.Option(None, "--tls-key", help="server key (PEM)"),
    client_ca: Path | None = typer.Option(None, "--client-ca", help="CA of client certificates"),
    principals: Path | None = typer.Option(None, "--principals", help="principals.yaml"),
    policies: Path = typer.Option(DEFAULT_POLICIES, "--policies", help="policy tables to load"),
    registry: Path = typer.Option(DEFAULT_REGISTRY, "--registry", help="persons to import"),
) -> None:
    """Serve the NHSA HTTP/JSON gateway and FHIR endpoints on uvicorn (next to ``onestop
    serve``, the gRPC server, over the same store)."""
    host, _, port = listen.rpartition(":")
    parts = (tls_cert, tls_key, client_ca)
    if any(parts) and not all(parts):
        raise typer.BadParameter("give --tls-cert, --tls-key and --client-ca together")
    tls = Tls(tls_cert, tls_key, client_ca) if all(parts) else None  # type: ignore[arg-type]
    pf = PrincipalsFile(principals) if principals else None
    check_options(host, tls, pf)
    try:
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host.strip("[]"), int(port)))
    except OSError as err:
        print(f"onestop http: cannot listen on {listen}: {err.strerror} (address in use?)",
              flush=True)  # fmt: skip
        raise typer.Exit(5) from None
    app = build(db, policies, registry)
    try:
        cfg = config(app, host, int(port), tls, pf, log_level="info")
        scheme = "https" if tls else "http"
        print(f"onestop http: listening on {scheme}://{host}:{sock.getsockname()[1]}",
              flush=True)  # fmt: skip
        uvicorn.Server(cfg).run(sockets=[sock])
    finally:
        app.close()


if __name__ == "__main__":
    typer.run(serve_http)
