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

import errno
import socket
import ssl
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from adapters.cli.exitcodes import Exit, one_line
from adapters.defaults import DEFAULT_DB, DEFAULT_POLICIES, REGISTRY_DEFAULT_TEXT
from adapters.store.urls import unsupported

# uvicorn, FastAPI, the app and the principals are imported where they are used: a refused
# option is told before them (1.6-1.8 s of CPU to import; the options' tests run 7 processes)
if TYPE_CHECKING:
    import uvicorn
    from fastapi import Request

    from adapters.auth.principals import Principal, PrincipalsFile
    from adapters.bootstrap import App
    from adapters.grpc.auth import Tls
    from adapters.http.app import Identify

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


def peer_cert_protocol() -> type:
    """uvicorn's h11 protocol, putting the TLS peer's certificate names in every request's
    scope (uvicorn gives the app no access to the peer certificate otherwise)."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class PeerCertProtocol(H11Protocol):
        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            obj = transport.get_extra_info("ssl_object")
            names = cert_names(obj.getpeercert()) if obj is not None else None
            inner = self.app

            async def app(scope: Any, receive: Any, send: Any) -> None:
                scope.setdefault("extensions", {})[PEER] = names
                await inner(scope, receive, send)

            self.app = app

    return PeerCertProtocol


def cert_identify(principals: PrincipalsFile) -> Identify:
    """The principal named by the request's client certificate (exactly one), as the gRPC
    server's ``AuthInterceptor.identify``."""
    from adapters.auth.principals import Unauthenticated

    def identify(request: Request) -> Principal:
        names = (request.scope.get("extensions") or {}).get(PEER)
        if not names:
            raise Unauthenticated("a client certificate is required")
        found = {p for n in names if (p := principals.get(n)) is not None}
        if len(found) != 1:
            raise Unauthenticated(
                "the client certificate names no principal of this server"
                if not found
                else "the client certificate names more than one principal"
            )
        return found.pop()

    return identify


class HttpServer:
    def __init__(self, server: uvicorn.Server, thread: threading.Thread, port: int, tls: bool):
        self.server, self.thread, self.port, self.tls = server, thread, port, tls

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{'localhost' if self.tls else '127.0.0.1'}:{self.port}"


def _check_host(host: str, tls: Tls | None) -> None:
    from adapters.auth.loopback import is_loopback

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
    import uvicorn

    from adapters.auth.principals import LOCAL
    from adapters.http.app import create_app

    check_options(host, tls, principals)
    if tls is None:
        return uvicorn.Config(create_app(app, lambda r: LOCAL), host=host, port=port, **kw)
    assert principals is not None
    return uvicorn.Config(
        create_app(app, cert_identify(principals)), host=host, port=port,
        http=peer_cert_protocol(), ssl_certfile=str(tls.cert), ssl_keyfile=str(tls.key),
        ssl_ca_certs=str(tls.client_ca), ssl_cert_reqs=ssl.CERT_REQUIRED, **kw,
    )  # fmt: skip


@contextmanager
def running(app: App, host: str = "127.0.0.1", port: int = 0, *, tls: Tls | None = None,
            principals: PrincipalsFile | None = None) -> Iterator[HttpServer]:  # fmt: skip
    """The gateway on its own thread; ``port=0``: the kernel's pick, read ``.port``."""
    import uvicorn

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
    policies: Path = typer.Option(
        DEFAULT_POLICIES,
        "--policies",
        "--policy",  # the name every other command gives its tables
        help="policy tables to load",
        show_default="policies/ of onestop's tree",
    ),
    registry: Path | None = typer.Option(
        None,
        "--registry",
        help="persons to import",
        show_default=REGISTRY_DEFAULT_TEXT,
    ),
) -> None:
    """Serve the NHSA HTTP/JSON gateway and FHIR endpoints on uvicorn (next to `onestop
    serve`, the gRPC server, over the same store)."""

    # the options checked first, on this module's imports alone (a refusal in ~0.2 s, not
    # after importing uvicorn, FastAPI, the FHIR models and the service)
    EXIT_REFUSED, EXIT_UNAVAILABLE = Exit.REFUSED, Exit.UNAVAILABLE

    host, sep, port_text = listen.rpartition(":")
    if not sep or not host or not port_text.isdigit() or int(port_text) > 65535:
        one_line(f"--http {listen}: give HOST:PORT, a port 0..65535 (e.g. 127.0.0.1:8080)", 2)
    port = int(port_text)
    for opt, path, default in (("--policies", policies, DEFAULT_POLICIES),
                               ("--registry", registry, None)):  # fmt: skip
        if path is not None and path != default and not Path(path).exists():
            one_line(f"{opt} {path}: no such file or directory", EXIT_REFUSED)
    if (why := unsupported(db)) is not None:  # open_app would say it after the imports
        one_line(f"--db: {why}", EXIT_REFUSED)
    given = {"--tls-cert": tls_cert, "--tls-key": tls_key, "--client-ca": client_ca,
             "--principals": principals}  # fmt: skip
    if any(v is not None for v in given.values()):
        if tls_cert is None or tls_key is None or client_ca is None or principals is None:
            missing = [k for k, v in given.items() if v is None]
            one_line(f"TLS needs {', '.join(missing)} too (--tls-cert, --tls-key, --client-ca, "
                     "--principals go together)", 2)  # fmt: skip
        for k, v in given.items():
            if v is not None and not Path(v).is_file():
                one_line(f"{k} {v}: no such file", EXIT_REFUSED)  # a file: 1, as --policies
    from adapters.auth.principals import PrincipalsError, PrincipalsFile
    from adapters.grpc.auth import Tls

    # the TLS options go together (checked above): one given, all are
    tls = Tls(tls_cert, tls_key, client_ca) if tls_cert and tls_key and client_ca else None
    try:
        pf = PrincipalsFile(principals) if principals else None
    except PrincipalsError as e:
        one_line(f"--principals refused: {' '.join(str(e).split())}", 2)
    try:
        check_options(host, tls, pf)
    except typer.BadParameter as e:
        one_line(f"--http {listen}: {e}", 2)
    try:
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host.strip("[]"), port))
    except OSError as err:
        why = ("is already in use (another server running there?); choose another --http"
               if err.errno == errno.EADDRINUSE else f"cannot be used: {err.strerror}")  # fmt: skip
        one_line(f"cannot listen on {listen}: the address {why}", EXIT_UNAVAILABLE)
    import uvicorn

    from adapters.bootstrap import server_group_commit
    from adapters.grpc.servecmd import open_app

    app = open_app(db, policies, registry, server_group_commit(db))  # 2304: group commit
    if tls is None:
        print(f"onestop http: WARNING: plaintext, no TLS and no client certificates: every "
              f"caller that reaches {host}:{port} is the local principal with every role. Serve "
              "with --tls-cert --tls-key --client-ca --principals (see `onestop certs`).",
              file=sys.stderr, flush=True)  # fmt: skip
    try:
        try:
            cfg = config(app, host, port, tls, pf, log_level="info")
            cfg.load()  # loads the certificate and key now, to refuse them in one line
        except (OSError, ssl.SSLError) as e:  # a certificate or key file uvicorn cannot load
            why = " ".join(str(getattr(e, "strerror", None) or e).split())
            one_line(f"--tls-cert/--tls-key {tls_cert}, {tls_key}: cannot be loaded: {why}", 2)
        scheme = "https" if tls else "http"
        print(f"onestop http: listening on {scheme}://{host}:{sock.getsockname()[1]}",
              flush=True)  # fmt: skip
        uvicorn.Server(cfg).run(sockets=[sock])
    finally:
        app.close()


if __name__ == "__main__":
    typer.run(serve_http)
