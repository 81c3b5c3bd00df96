"""``onestop serve``: the store and tables opened (or one line and its exit code), the address
checked, the gRPC server started in one or more processes.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from adapters.auth.loopback import is_loopback
from adapters.cli.exitcodes import Exit, one_line
from adapters.defaults import (
    DEFAULT_DB,
    DEFAULT_POLICIES,
    DEFAULT_REGISTRY,
    REGISTRY_DEFAULT_TEXT,
    server_registry,
)
from adapters.grpc.limits import DEFAULT as DEFAULT_LIMITS
from adapters.grpc.limits import MIB, Limits
from adapters.store.urls import safe_url, unsupported

# gRPC, the service, the store and the principals are imported once the options are checked:
# a refused option is told on this module's imports alone (~0.2 s of CPU; it was ~1.3-2 s when
# clicommon's client and the kernel's helpers came first)
EXIT_REFUSED, EXIT_UNAVAILABLE = Exit.REFUSED, Exit.UNAVAILABLE
_one_line = one_line


def open_app(
    db: str, policies: str | Path, registry: str | Path | None, group_commit: Any = None
) -> Any:
    """The composition root of a server command (``serve``, ``serve-http``), or one line and
    the documented exit code: bad tables or registry (REFUSED, the first problem and how many
    more), a store URL of another kind (REFUSED), a store that cannot be opened (UNAVAILABLE,
    the URL without its password). ``registry`` None: the servers' default
    (``defaults.server_registry``: the sample persons on SQLite and memory://, none on
    PostgreSQL)."""
    from sqlalchemy.exc import SQLAlchemyError

    from adapters.bootstrap import build
    from engine.errors import OnestopError

    try:
        return build(db, policies, server_registry(db, registry), group_commit=group_commit)
    except OnestopError as e:
        problems = getattr(e, "problems", None) or [e]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        _one_line(f"refused: {problems[0]}{more}", EXIT_REFUSED)
    except ValueError as e:  # a store URL of another kind
        _one_line(f"--db: {e}", EXIT_REFUSED)
    except (OSError, SQLAlchemyError) as e:
        reason = " ".join(str(getattr(e, "orig", None) or e).split())[:300]
        _one_line(f"cannot open the store {safe_url(db)}: {reason}", EXIT_UNAVAILABLE)
    raise AssertionError("unreachable: _one_line exits")


def _check_listen(host: str, port: int) -> None:
    """Refuse an address in use before the store is opened and the tables loaded (a probe with
    SO_REUSEADDR fails only when something listens there)."""
    import errno
    import socket

    if not 0 <= port <= 65535:
        _one_line(f"--port {port}: a port is 0..65535", 2)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        _one_line(f"--host {host}: cannot be resolved ({e.strerror})", 2)
        return
    family, kind, proto, _name, addr = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(addr)
        except OSError as e:
            why = (
                "is already in use (another server running there?); choose another --port"
                if e.errno == errno.EADDRINUSE
                else f"cannot be used: {e.strerror}"
            )
            _one_line(f"cannot listen on {host}:{port}: the address {why}", EXIT_UNAVAILABLE)


def default_processes(db: str) -> int:
    """One server process per core this process may run on (a process uses one core at most:
    the use cases hold the GIL); one for memory:// (a store per process)."""
    import os

    if db.startswith("memory:"):
        return 1
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 50051,
    db: Annotated[
        str, typer.Option(help="Store URL: sqlite:///path, postgresql+psycopg://..., memory://")
    ] = DEFAULT_DB,
    policies: Annotated[
        Path,
        typer.Option(
            "--policies",
            "--policy",  # the name every other command gives its tables
            help="Directory of policy tables (*.yaml) to load.",
            show_default="policies/ of onestop's tree",  # a long absolute path was cut with …
        ),
    ] = DEFAULT_POLICIES,
    registry: Annotated[
        Path | None,
        typer.Option(
            help="Person registry (JSON list) to import, if present.",
            show_default=REGISTRY_DEFAULT_TEXT,
        ),
    ] = None,
    workers: Annotated[int, typer.Option(help="Threads running the use cases.")] = 8,
    processes: Annotated[
        int,
        typer.Option(
            help="Server processes sharing the port (SO_REUSEPORT; SQL stores only). Each "
            "reloads the tables in force within 2 s of a PutPolicy to any of them. "
            "0 (default): one per core this process may use for a SQL store, 1 for memory://."
        ),
    ] = 0,
    grace: Annotated[float, typer.Option(help="Seconds to drain calls on SIGTERM.")] = 10.0,
    group_max: Annotated[
        int | None,
        typer.Option(
            help="Group commit: at most this many Settle calls share one transaction and one "
            "commit (fsync); 1 turns grouping off (each Settle its own transaction). Default: "
            "64."
        ),
    ] = None,
    group_wait_ms: Annotated[
        float,
        typer.Option(
            help="Group commit: how long the writer waits for more Settle calls after the "
            "first of a group, ms (0: it takes what is queued; groups still grow with the load)."
        ),
    ] = 0.0,
    group_writers: Annotated[
        int,
        typer.Option(
            help="Group commit: writer threads per process draining the queue (while one "
            "waits for its commit, another runs the next group). 0 (default): 1."
        ),
    ] = 0,
    max_message_mib: Annotated[
        int, typer.Option(help="Largest request message, MiB.")
    ] = DEFAULT_LIMITS.max_message_bytes // MIB,
    max_response_mib: Annotated[
        int, typer.Option(help="Largest response message, MiB.")
    ] = DEFAULT_LIMITS.max_response_bytes // MIB,
    max_concurrent_streams: Annotated[
        int, typer.Option(help="Calls in flight per client connection.")
    ] = DEFAULT_LIMITS.max_concurrent_streams,
    max_bills_per_message: Annotated[
        int, typer.Option(help="Bills in one SettleStream message.")
    ] = DEFAULT_LIMITS.max_bills_per_message,
    max_items_per_message: Annotated[
        int, typer.Option(help="Items in one SettleStream message.")
    ] = DEFAULT_LIMITS.max_items_per_message,
    kept_figure_ms: Annotated[
        int,
        typer.Option(
            help="PostgreSQL: longest wait of a PreSettle on the event loop for the snapshot's "
            "check, ms; past it the call goes to the thread pool."
        ),
    ] = round(DEFAULT_LIMITS.kept_figure_seconds * 1000),
    tls_cert: Annotated[
        Path | None, typer.Option("--tls-cert", help="Server certificate (PEM): serve TLS.")
    ] = None,
    tls_key: Annotated[
        Path | None, typer.Option("--tls-key", help="Server private key (PEM).")
    ] = None,
    client_ca: Annotated[
        Path | None,
        typer.Option("--client-ca", help="CA that signs client certificates (required)."),
    ] = None,
    principals: Annotated[
        Path | None,
        typer.Option(
            "--principals",
            help="Principals file (YAML): certificate identity -> role and scope; read again "
            "when it changes.",
        ),
    ] = None,
    insecure: Annotated[
        bool,
        typer.Option(
            "--insecure",
            help="Serve plaintext on a non-loopback address (every caller has every role).",
        ),
    ] = False,
    stream_worker: Annotated[
        bool,
        typer.Option(
            "--stream-worker",
            help="Settle every other TRIAL packed SettleStream message in a second process "
            "(both cores for one stream; SQL stores, one server process).",
        ),
    ] = False,
) -> None:
    """Run the settlement server (gRPC, with health and reflection) until SIGTERM/Ctrl-C.

    With --tls-cert, --tls-key, --client-ca and --principals: TLS, client certificates
    required, each caller's role and scope from the principals file. Without them: plaintext
    on loopback only, every caller with every role."""

    if TYPE_CHECKING:
        from adapters.auth.principals import PrincipalsFile
        from adapters.grpc.auth import Tls

    def usage(msg: str) -> NoReturn:
        typer.echo(f"onestop serve: {msg}", err=True)  # one line, unwrapped
        raise typer.Exit(2)

    given = {"--tls-cert": tls_cert, "--tls-key": tls_key, "--client-ca": client_ca,
             "--principals": principals}  # fmt: skip
    tls: Tls | None = None
    who: PrincipalsFile | None = None
    if any(v is not None for v in given.values()):
        if tls_cert is None or tls_key is None or client_ca is None or principals is None:
            missing = [k for k, v in given.items() if v is None]
            usage(f"TLS needs {', '.join(missing)} too (--tls-cert, --tls-key, --client-ca, "
                  "--principals go together)")  # fmt: skip
        for k, v in given.items():
            if v is not None and not Path(v).is_file():
                _one_line(f"{k} {v}: no such file", EXIT_REFUSED)  # a file: 1, as --policies
        try:
            from adapters.auth.principals import PrincipalsError, PrincipalsFile
            from adapters.grpc.auth import Tls
        except Exception as e:  # the server extra missing or of the wrong version
            from adapters.cli.lazy import unavailable

            unavailable("serve", e)
        tls = Tls(tls_cert, tls_key, client_ca)
        try:
            who = PrincipalsFile(principals)
        except PrincipalsError as e:
            typer.echo(f"onestop serve: --principals refused:\n{e}", err=True)
            raise typer.Exit(2) from None
    elif not is_loopback(host) and not insecure:
        usage(f"--host {host} is not a loopback address without TLS: serve TLS (--tls-cert, "
              "--tls-key, --client-ca, --principals) or give --insecure")  # fmt: skip

    if group_max is not None and group_max < 1:
        usage(f"--group-max {group_max}: at least 1 (1 turns group commit off)")
    if not 0 <= group_wait_ms <= 1000:
        usage(f"--group-wait-ms {group_wait_ms:g}: 0 to 1000 ms")
    if group_writers < 0:
        usage(f"--group-writers {group_writers}: 0 (automatic) or more")
    if not 1 <= kept_figure_ms <= 60_000:
        usage(f"--kept-figure-ms {kept_figure_ms}: 1 to 60000 ms")
    limits = Limits(
        max_message_bytes=max_message_mib * MIB,
        max_response_bytes=max_response_mib * MIB,
        max_concurrent_streams=max_concurrent_streams,
        max_bills_per_message=max_bills_per_message,
        max_items_per_message=max_items_per_message,
        kept_figure_seconds=kept_figure_ms / 1000,
    )

    _check_listen(host, port)
    for opt, path, default in (("--policies", policies, DEFAULT_POLICIES),
                               ("--registry", registry, None)):  # fmt: skip
        if path is not None and path != default and not Path(path).exists():
            _one_line(f"{opt} {path}: no such file or directory", EXIT_REFUSED)
    if (why := unsupported(db)) is not None:  # open_app would say it after the imports below
        _one_line(f"--db: {why}", EXIT_REFUSED)

    import asyncio

    from adapters.cli.output import console

    try:
        from adapters.bootstrap import server_group_commit
        from adapters.grpc.server import Server, lean_log_records, serve_forever, serve_processes
    except Exception as e:  # the server extra missing or of the wrong version (as cli.lazy says)
        from adapters.cli.lazy import unavailable

        unavailable("serve", e)

    out, err = console(), console(stderr=True)
    group = server_group_commit(db, group_max, group_wait_ms / 1000, group_writers)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    lean_log_records()
    app = open_app(db, policies, registry, group)
    grouping = (
        f"group commit up to {group.max_group} Settle calls"
        + (f", waiting {group_wait_ms:g} ms" if group.max_wait else "")
        + (f", {group.writers} writers" if group.writers > 1 else "")
        if group
        else "no group commit"
    )
    out.print(
        f"onestop: store {app.url} ({'durable' if app.durable else 'IN MEMORY'}); "
        f"{len(app.policies_loaded)} policy tables stored, {len(app.policies_skipped)} "
        f"already there; {app.persons_imported} persons imported (new or changed); {grouping}",
        highlight=False,
    )
    if tls is None:  # said once the server can start (a refusal above is one line alone)
        err.print(
            "[bold red]onestop: WARNING: plaintext, no TLS and no client certificates: every "
            f"caller that reaches {host}:{port} is the local principal with every role (settle, "
            "reverse, put policies, import the registry, read everything). Serve with "
            "--tls-cert --tls-key --client-ca --principals (see `onestop certs`).[/bold red]",
            highlight=False,
        )
    samples = (registry or DEFAULT_REGISTRY).parent  # the warm-up's sample bills
    if processes <= 0:
        processes = default_processes(db) if not stream_worker else 1
    if stream_worker and (processes > 1 or db.startswith("memory")):
        app.close()
        usage("--stream-worker needs one server process (--processes 1) and a SQL store")
    if processes > 1:
        app.close()
        out.print(
            f"onestop: serving on {host}:{port} from {processes} processes (Ctrl-C to stop)",
            highlight=False,
        )
        raise typer.Exit(
            serve_processes(
                db, host, port, processes=processes, workers=workers, grace=grace,
                samples=samples, limits=limits, tls=tls, principals=principals,
                insecure=insecure, group_commit=group,
            )
        )  # fmt: skip
    server = Server(
        app, host, port, workers=workers, samples=samples, limits=limits, tls=tls,
        principals=who, insecure=insecure, stream_worker=stream_worker,
    )  # fmt: skip
    mode = "TLS, client certificates required" if tls else "PLAINTEXT"
    out.print(f"onestop: serving on {host}:{port}, {mode} (Ctrl-C to stop)", highlight=False)
    try:
        asyncio.run(serve_forever(server, grace))
    except (OSError, RuntimeError) as e:  # taken between the check above and the bind
        if "bind" not in str(e).lower() and "listen" not in str(e).lower():
            raise
        _one_line(f"cannot listen on {host}:{port}: {' '.join(str(e).split())}", EXIT_UNAVAILABLE)
