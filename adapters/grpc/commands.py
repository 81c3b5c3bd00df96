"""Commands of the gRPC adapter: ``serve`` and the window client (``window settle``, ...).

Mounted by the ``onestop`` CLI (``onestop serve``, ``onestop window ...``); also runnable alone:

    python -m adapters.grpc.commands serve
    python -m adapters.grpc.commands window settle policies/samples/longzhou-1.json
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn

import grpc
import typer
from rich.table import Table

from adapters.bootstrap import DEFAULT_DB, DEFAULT_POLICIES, DEFAULT_REGISTRY
from adapters.cli.exitcodes import Exit, for_status, help_epilog
from adapters.cli.output import console, new_table, print_json, problem_line, show, text
from adapters.cli.slip import Reversal, explanation_json, print_accounts, print_slip
from adapters.grpc.client import DEFAULT_SERVER, BillFileError, Client, read_bill
from adapters.grpc.convert import settlement_from_pb, theirs_from_json, year_accounts_from_pb
from adapters.grpc.errors import bad_request
from adapters.grpc.gen.onestop.settlement.v1 import settlement_pb2 as pb
from adapters.grpc.limits import DEFAULT as DEFAULT_LIMITS
from adapters.grpc.limits import MIB, Limits
from adapters.slip import SLIP_HELP, slip_path_problem
from engine.reconcile import local_date

out = console()
err = console(stderr=True)
EPILOG = help_epilog()


def this_year() -> int:
    """The current accounting year in the region's time zone (Asia/Shanghai, UTC+8): from
    00:00 to 08:00 Beijing time on 1 January it is already the new year, while UTC is not."""
    return local_date(datetime.now(UTC)).year


#: a user mistake in a file or option (adapters/cli/exitcodes.py: REFUSED), and a server or
#: address that cannot be reached or used (UNAVAILABLE)
EXIT_REFUSED, EXIT_UNAVAILABLE = Exit.REFUSED, Exit.UNAVAILABLE


def _one_line(message: str, code: int) -> None:
    """A user mistake: one line on stderr (no markup, no wrapping), then exit ``code``."""
    print(f"onestop: {message}", file=sys.stderr)
    raise typer.Exit(code)


def _bill_file(path: Path) -> dict[str, Any]:
    try:
        return read_bill(path)
    except BillFileError as e:
        _one_line(f"refused: {e}", EXIT_REFUSED)
        raise


def _safe_url(url: str) -> str:
    """The store URL without its password."""
    import re

    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def open_app(db: str, policies: str, registry: str, group_commit: Any = None) -> Any:
    """The composition root of a server command (``serve``, ``serve-http``), or one line and
    the documented exit code: bad tables or registry (REFUSED, the first problem and how many
    more), a store URL of another kind (REFUSED), a store that cannot be opened (UNAVAILABLE,
    the URL without its password)."""
    from sqlalchemy.exc import SQLAlchemyError

    from adapters.bootstrap import build
    from engine.errors import OnestopError

    try:
        return build(db, policies, registry, group_commit=group_commit)
    except OnestopError as e:
        problems = getattr(e, "problems", None) or [e]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        _one_line(f"refused: {problems[0]}{more}", EXIT_REFUSED)
    except ValueError as e:  # a store URL of another kind
        _one_line(f"--db: {e}", EXIT_REFUSED)
    except (OSError, SQLAlchemyError) as e:
        reason = " ".join(str(getattr(e, "orig", None) or e).split())[:300]
        _one_line(f"cannot open the store {_safe_url(db)}: {reason}", EXIT_UNAVAILABLE)
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
            help="Directory of policy tables (*.yaml) to load.",
            show_default="policies/ of onestop's tree",  # a long absolute path was cut with …
        ),
    ] = DEFAULT_POLICIES,
    registry: Annotated[
        Path,
        typer.Option(
            help="Person registry (JSON list) to import, if present.",
            show_default="policies/samples/registry.json of onestop's tree",
        ),
    ] = DEFAULT_REGISTRY,
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
        int,
        typer.Option(
            help="Group commit: at most this many Settle calls share one transaction and one "
            "commit (fsync); 1 turns grouping off (each Settle its own transaction). SQL stores."
        ),
    ] = 64,
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
            "waits for its commit, another runs the next group). 0 (default): 4 on PostgreSQL, "
            "1 on SQLite."
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
) -> None:
    """Run the settlement server (gRPC, with health and reflection) until SIGTERM/Ctrl-C.

    With --tls-cert, --tls-key, --client-ca and --principals: TLS, client certificates
    required, each caller's role and scope from the principals file. Without them: plaintext
    on loopback only, every caller with every role."""

    from adapters.auth.principals import PrincipalsError, PrincipalsFile
    from adapters.bootstrap import server_group_commit
    from adapters.grpc.auth import Tls, is_loopback
    from adapters.grpc.server import Server, serve_forever, serve_processes

    def usage(msg: str) -> None:
        typer.echo(f"onestop serve: {msg}", err=True)  # one line, unwrapped
        raise typer.Exit(2)

    given = {"--tls-cert": tls_cert, "--tls-key": tls_key, "--client-ca": client_ca,
             "--principals": principals}  # fmt: skip
    tls: Tls | None = None
    who: PrincipalsFile | None = None
    if any(v is not None for v in given.values()):
        missing = [k for k, v in given.items() if v is None]
        if missing:
            usage(f"TLS needs {', '.join(missing)} too (--tls-cert, --tls-key, --client-ca, "
                  "--principals go together)")  # fmt: skip
        for k, v in given.items():
            if not Path(v).is_file():  # type: ignore[arg-type]
                usage(f"{k} {v}: no such file")
        tls = Tls(tls_cert, tls_key, client_ca)  # type: ignore[arg-type]
        try:
            who = PrincipalsFile(principals)  # type: ignore[arg-type]
        except PrincipalsError as e:
            typer.echo(f"onestop serve: --principals refused:\n{e}", err=True)
            raise typer.Exit(2) from None
    elif not is_loopback(host) and not insecure:
        usage(f"--host {host} is not a loopback address without TLS: serve TLS (--tls-cert, "
              "--tls-key, --client-ca, --principals) or give --insecure")  # fmt: skip

    if group_max < 1:
        usage(f"--group-max {group_max}: at least 1 (1 turns group commit off)")
    if not 0 <= group_wait_ms <= 1000:
        usage(f"--group-wait-ms {group_wait_ms:g}: 0 to 1000 ms")
    if group_writers < 0:
        usage(f"--group-writers {group_writers}: 0 (automatic) or more")
    group = server_group_commit(db, group_max, group_wait_ms / 1000, group_writers)
    limits = Limits(
        max_message_bytes=max_message_mib * MIB,
        max_response_bytes=max_response_mib * MIB,
        max_concurrent_streams=max_concurrent_streams,
        max_bills_per_message=max_bills_per_message,
        max_items_per_message=max_items_per_message,
    )

    _check_listen(host, port)
    for opt, path, default in (("--policies", policies, DEFAULT_POLICIES),
                               ("--registry", registry, DEFAULT_REGISTRY)):  # fmt: skip
        if Path(path) != Path(default) and not Path(path).exists():
            _one_line(f"{opt} {path}: no such file or directory", EXIT_REFUSED)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
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
        f"already there; {app.persons_imported} persons imported; {grouping}",
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
    samples = Path(registry).parent if Path(registry).exists() else None
    if processes <= 0:
        processes = default_processes(db)
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
        principals=who, insecure=insecure,
    )  # fmt: skip
    mode = "TLS, client certificates required" if tls else "PLAINTEXT"
    out.print(f"onestop: serving on {host}:{port}, {mode} (Ctrl-C to stop)", highlight=False)
    try:
        asyncio.run(serve_forever(server, grace))
    except (OSError, RuntimeError) as e:  # taken between the check above and the bind
        if "bind" not in str(e).lower() and "listen" not in str(e).lower():
            raise
        _one_line(f"cannot listen on {host}:{port}: {' '.join(str(e).split())}", EXIT_UNAVAILABLE)


window_app = typer.Typer(
    help="Window client: settle, trial, reverse and look up accounts on a running server.",
    no_args_is_help=True,
    epilog=EPILOG,
)

ServerOpt = Annotated[str, typer.Option("--server", help="host:port of the server.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of the slip.")]
SlipOpt = Annotated[Path | None, typer.Option("--slip", metavar="FILE", help=SLIP_HELP)]
CaOpt = Annotated[
    Path | None,
    typer.Option("--ca", envvar="ONESTOP_CA", help="CA of the server's certificate (TLS)."),
]
CertOpt = Annotated[
    Path | None,
    typer.Option("--cert", envvar="ONESTOP_CERT", help="This client's certificate (TLS)."),
]
KeyOpt = Annotated[
    Path | None,
    typer.Option("--key", envvar="ONESTOP_KEY", help="This client's private key (TLS)."),
]


def _client(server: str, ca: Path | None, cert: Path | None, key: Path | None) -> Client:
    """A client for ``server``: TLS when any of --ca/--cert/--key is given (all three for a
    server that requires client certificates), plaintext otherwise."""
    if (cert is None) != (key is None):
        err.print("[red]refused:[/red] give --cert and --key together", highlight=False)
        raise typer.Exit(2)
    for name, f in (("--ca", ca), ("--cert", cert), ("--key", key)):
        if f is not None and not f.is_file():
            err.print(f"[red]refused:[/red] {name} {f}: no such file", highlight=False)
            raise typer.Exit(2)
    return Client(server, ca=ca, cert=cert, key=key)


def _fail(e: grpc.RpcError, server: str = "") -> NoReturn:
    """Print the refusal once (the problems of its BadRequest, else its message) and exit with
    the code of the table (adapters/cli/exitcodes.py)."""
    code = e.code()  # type: ignore[attr-defined]
    details = e.details() or ""  # type: ignore[attr-defined]
    fields = bad_request(e)
    exit_code = for_status(code.name)
    if exit_code is Exit.UNAVAILABLE:
        where = f" {server}" if server else ""
        problem_line(err, f"unavailable: {code.name}", f"server{where} not reachable: {details}")
        err.print(
            text(
                "  (a server that requires client certificates closes the connection of a "
                "client without one, or with one its client CA did not sign: check --ca, "
                "--cert, --key)"
            )
        )
    elif fields:
        n = sum(1 for f, _ in fields if f != "(more)")
        problem_line(err, f"refused: {code.name}", f"{n} problem(s)")
        for f, d in fields:
            err.print(text(f"  {d}" if f == "(more)" else f"  {f}: {d}"))
    else:
        problem_line(err, f"refused: {code.name}", details)
    raise typer.Exit(exit_code)


def _record_json(rec: pb.SettlementRecord, replay: bool | None = None) -> dict[str, Any]:
    s = settlement_from_pb(rec.result)
    d: dict[str, Any] = {
        "settlement_id": rec.settlement_id,
        "request_id": rec.request_id,
        "status": rec.status,
        "created_at": rec.created_at,
        "reversed_at": rec.reversed_at or None,
        "result": s.to_dict(),
        "explanation": explanation_json(s),
    }
    if replay is not None:
        d["replay"] = replay
    return d


def _accounts(c: Client, person_id: str, year: int) -> pb.GetAccountsResponse | None:
    try:
        return c.accounts(person_id, year)
    except grpc.RpcError:
        return None


def _show(
    c: Client,
    result: pb.SettlementResult,
    header: str,
    as_json: bool,
    extra: Any,
    reversal: Reversal | None = None,
) -> None:
    acc = _accounts(c, result.person_id, result.year)
    if as_json:
        d = dict(extra)
        if acc is not None:
            d["accounts"] = {
                "person": year_accounts_from_pb(acc.person).to_dict(),
                "household": year_accounts_from_pb(acc.household_accounts).to_dict(),
            }
        print_json(d)
        return
    out.print(text(header))
    print_slip(
        out,
        settlement_from_pb(result),
        None,
        year_accounts_from_pb(acc.person) if acc else None,
        year_accounts_from_pb(acc.household_accounts) if acc else None,
        reversal=reversal,
    )


def _check_slip(path: Path | None) -> None:
    """Refuse a bad --slip before anything is settled or reversed."""
    if problem := slip_path_problem(path):
        problem_line(err, "refused:", problem)
        raise typer.Exit(Exit.USAGE)


def _write_slip(path: Path | None, rec: pb.SettlementRecord, bill: dict[str, Any] | None) -> None:
    """The printed slip of a stored record (a reversal slip when it is reversed). ``bill``:
    the bill file sent (admission date, level, category totals); the server's record does not
    carry the bill, so a reversal slip shows those as not in the record."""
    if path is None:
        return
    from adapters.slip.render import SlipMeta, slip_data, write_slip

    meta = SlipMeta(
        settlement_id=rec.settlement_id,
        request_id=rec.request_id,
        settled_at=rec.created_at,
        reversed=rec.status == "reversed",
        reversed_at=rec.reversed_at,
        reversal_request_id=rec.reversal_request_id,
    )
    write_slip(path, [slip_data(settlement_from_pb(rec.result), bill, meta=meta)])
    err.print(text(f"slip written to {path}"))


@window_app.command("settle", epilog=EPILOG)
def window_settle(
    bill: Annotated[Path, typer.Argument(help="Bill JSON (person by person_id or person.id).")],
    request_id: Annotated[
        str | None, typer.Option("--request-id", help="Idempotency key (default: new uuid).")
    ] = None,
    server: ServerOpt = DEFAULT_SERVER,
    ca: CaOpt = None,
    cert: CertOpt = None,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
    slip_file: SlipOpt = None,
) -> None:
    """Settle a bill (2304). Retrying with the same --request-id pays once."""
    _check_slip(slip_file)
    rid = request_id or uuid.uuid4().hex
    bill_doc = _bill_file(bill)
    with _client(server, ca, cert, key) as c:
        try:
            r = c.settle(bill_doc, rid)
        except grpc.RpcError as e:
            _fail(e, server)
        rec = r.settlement
        head = f"settlement {rec.settlement_id} (request {rec.request_id})" + (
            " replay: already settled, nothing paid again" if r.replay else ""
        )
        _show(c, rec.result, head, as_json, _record_json(rec, r.replay))
        _write_slip(slip_file, rec, bill_doc)


@window_app.command("pre-settle", epilog=EPILOG)
def window_pre_settle(
    bill: Annotated[Path, typer.Argument(help="Bill JSON.")],
    server: ServerOpt = DEFAULT_SERVER,
    ca: CaOpt = None,
    cert: CertOpt = None,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Trial settlement (2303): what settling now would pay. Changes nothing."""
    with _client(server, ca, cert, key) as c:
        try:
            r = c.pre_settle(_bill_file(bill))
        except grpc.RpcError as e:
            _fail(e, server)
        s = settlement_from_pb(r.result)
        _show(
            c, r.result, "trial settlement (nothing stored; the accounts are as they stand)",
            as_json, {"result": s.to_dict(), "explanation": explanation_json(s)},
        )  # fmt: skip


@window_app.command("reverse", epilog=EPILOG)
def window_reverse(
    target: Annotated[str, typer.Argument(help="Settlement id (or request id with --by-request).")],
    by_request: Annotated[
        bool, typer.Option("--by-request", help="TARGET is the original request id.")
    ] = False,
    server: ServerOpt = DEFAULT_SERVER,
    ca: CaOpt = None,
    cert: CertOpt = None,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
    slip_file: SlipOpt = None,
) -> None:
    """Reverse a settlement (2305): its account moves are taken back. Idempotent."""
    _check_slip(slip_file)
    with _client(server, ca, cert, key) as c:
        try:
            r = c.reverse(request_id=target) if by_request else c.reverse(settlement_id=target)
        except grpc.RpcError as e:
            _fail(e, server)
        rec = r.settlement
        head = f"settlement {rec.settlement_id} reversed (冲正)" + (
            " (it already was: nothing moved)" if r.replay else ""
        )
        _show(
            c, rec.result, head, as_json, _record_json(rec, r.replay),
            reversal=Reversal(rec.settlement_id, rec.created_at, rec.reversed_at),
        )  # fmt: skip
        _write_slip(slip_file, rec, None)


@window_app.command("accounts", epilog=EPILOG)
def window_accounts(
    person: Annotated[str, typer.Argument(help="Person id.")],
    year: Annotated[
        int | None,
        typer.Option(help="Accounting year (default: this year in Asia/Shanghai, UTC+8)."),
    ] = None,
    server: ServerOpt = DEFAULT_SERVER,
    ca: CaOpt = None,
    cert: CertOpt = None,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A person's and household's year-to-date accounts."""
    with _client(server, ca, cert, key) as c:
        try:
            a = c.accounts(person, year if year is not None else this_year())
        except grpc.RpcError as e:
            _fail(e, server)
    pa, ha = year_accounts_from_pb(a.person), year_accounts_from_pb(a.household_accounts)
    if as_json:
        print_json(
            {
                "person_id": a.person_id,
                "household": a.household,
                "year": a.year,
                "person": pa.to_dict(),
                "household_accounts": ha.to_dict(),
            }
        )
        return
    print_accounts(out, a.year, a.person_id, pa, a.household, ha)


@window_app.command("settlements", epilog=EPILOG)
def window_settlements(
    person: Annotated[str, typer.Argument(help="Person id.")],
    year: Annotated[int | None, typer.Option(help="Accounting year (default: every year).")] = None,
    server: ServerOpt = DEFAULT_SERVER,
    ca: CaOpt = None,
    cert: CertOpt = None,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A person's settlements, oldest first (every page of ListSettlements)."""
    with _client(server, ca, cert, key) as c:
        try:
            recs = c.list(person, year)
        except grpc.RpcError as e:
            _fail(e, server)
    if as_json:
        print_json([_record_json(r) for r in recs])
        return
    if not recs:
        out.print(text(f"no settlements of {person}" + (f" in {year}" if year else "")))
        return
    t = new_table(
        f"Settlements of {person}" + (f" in {year}" if year else ""),
        ["settlement", "request", "bill", "status", "stored (UTC)", ("window pay", "right"),
         ("funds", "right")],  # type: ignore[list-item]
    )  # fmt: skip
    for r in recs:
        t.add_row(text(r.settlement_id), text(r.request_id), text(r.result.bill_id),
                  text(r.status), text(r.created_at), money(r.result.window_pay),
                  money(r.result.funds_total))  # fmt: skip
    show(out, t)


bureau_app = typer.Typer(
    help="County bureau client: put policy tables, list versions, import the person registry, "
    "reconcile with hospitals (3201/3202) and fund totals, on a running server.",
    no_args_is_help=True,
    epilog=EPILOG,
)


@bureau_app.command("put-policy", epilog=EPILOG)
def bureau_put_policy(
    files: Annotated[list[Path], typer.Argument(help="Policy table YAML files.")],
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Validate and show the difference from the version in "
            "force (unified diff, layers and parameters); store nothing.",
        ),
    ] = False,
    server: ServerOpt = DEFAULT_SERVER,
    ca: CaOpt = None,
    cert: CertOpt = None,
    key: KeyOpt = None,
) -> None:
    """Store each table as a new version (validated; overlapping ranges refused). A table with
    the same region and effective_from as a stored one supersedes it; the same text as the
    version in force stores nothing (that version is answered, unchanged)."""
    with _client(server, ca, cert, key) as c:
        for f in files:
            yaml_text = f.read_text(encoding="utf-8")
            try:
                v = c.put_policy(yaml_text, str(f), dry_run=dry_run)
                before = _in_force_text(c, v) if dry_run and not v.unchanged else None
            except grpc.RpcError as e:
                _fail(e, server)
            end = v.effective_to or "open"
            what = f"region {v.region} {v.region_name}, {v.effective_from}..{end}"
            if v.unchanged:
                out.print(f"{f}: unchanged: the same text as version {v.version} in force "
                          f"({what}); nothing stored", highlight=False, markup=False)  # fmt: skip
            elif dry_run:
                _print_dry_run(f, what, yaml_text, before)
            else:
                out.print(
                    text(f"{f}: version {v.version}, {what}, layers {', '.join(v.layer_ids)}")
                )


def _in_force_text(c: Client, v: pb.PolicyVersion) -> tuple[int, str] | None:
    """(version, text) in force for the region and effective_from of ``v``, if any."""
    r = c.admin.ListPolicies(pb.ListPoliciesRequest(region=v.region), timeout=c.timeout)
    live = [x for x in r.versions if x.in_force and x.effective_from == v.effective_from]
    if not live:
        return None
    got = c.get_policy(live[-1].version)
    return got.version, got.yaml


def _print_dry_run(f: Path, what: str, text: str, before: tuple[int, str] | None) -> None:
    from engine.policy.diff import changes, unified

    if before is None:
        out.print(f"{f}: valid; dry run, nothing stored: a new table ({what}), no version in "
                  "force for this region and start", highlight=False, markup=False)  # fmt: skip
        return
    version, old = before
    out.print(f"{f}: valid; dry run, nothing stored: would supersede version {version} "
              f"({what})", highlight=False, markup=False)  # fmt: skip
    out.print("changes:", highlight=False)
    for line in changes(old, text) or ["(none in layers or parameters; text only)"]:
        out.print(f"  {line}", highlight=False, markup=False)
    print(unified(old, text, f"version {version}", str(f)), end="")


@bureau_app.command("policies", epilog=EPILOG)
def bureau_policies(
    region: Annotated[str, typer.Option(help="Only this region.")] = "",
    server: ServerOpt = DEFAULT_SERVER,
    ca: CaOpt = None,
    cert: CertOpt = None,
    key: KeyOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Every stored version, oldest first, and whether it settles bills now."""
    with _client(server, ca, cert, key) as c:
        try:
            r = c.admin.ListPolicies(pb.ListPoliciesRequest(region=region), timeout=c.timeout)
        except grpc.RpcError as e:
            _fail(e, server)
    if as_json:
        print_json([
            {"version": v.version, "region": v.region, "region_name": v.region_name,
             "effective_from": v.effective_from, "effective_to": v.effective_to or None,
             "source_name": v.source_name, "created_at": v.created_at,
             "in_force": v.in_force, "layer_ids": list(v.layer_ids)}
            for v in r.versions
        ])  # fmt: skip
        return
    if not r.versions:
        out.print(text("no policy table stored" + (f" for region {region}" if region else "")))
        return
    t = new_table(
        "Policy table versions",
        ["version", "region", "in force from", "to", "source", "stored (UTC)", "settles now"],
    )
    for v in r.versions:
        t.add_row(text(v.version), text(f"{v.region} {v.region_name}"), text(v.effective_from),
                  text(v.effective_to or "open"), text(v.source_name), text(v.created_at),
                  "yes" if v.in_force else "superseded")  # fmt: skip
    show(out, t)


@bureau_app.command("import-registry", epilog=EPILOG)
def bureau_import_registry(
    file: Annotated[
        Path, typer.Argument(help="JSON list of persons (id, birth_date, household, tags).")
    ],
    server: ServerOpt = DEFAULT_SERVER,
    ca: CaOpt = None,
    cert: CertOpt = None,
    key: KeyOpt = None,
) -> None:
    """Import (insert or update) the persons of the registry file."""
    try:
        persons = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        problem_line(err, "refused:", f"{file}: {e}")
        raise typer.Exit(Exit.REFUSED) from None
    with _client(server, ca, cert, key) as c:
        try:
            n = c.import_registry(persons)
        except grpc.RpcError as e:
            _fail(e, server)
    out.print(text(f"{n} person(s) imported from {file}"))


# --------------------------------------------------------------------------- reconciliation


def money(fen: int) -> str:
    """Yuan with thousands separators, exact (integer arithmetic)."""
    from engine.money import yuan as grouped

    return grouped(fen)


def yuan(fen: int) -> str:
    """Exact yuan with 2 decimals (no float, no thousands separators, never shortened)."""
    sign = "-" if fen < 0 else ""
    y, f = divmod(abs(fen), 100)
    return f"{sign}{y}.{f:02d}"


def _emit(title: str, columns: list[str], rows: list[list[str]]) -> None:
    """A table on a terminal (cells fold, never cut); plain tab-separated text otherwise,
    every figure in full."""
    if out.is_terminal:
        t = Table(title=title)
        for c in columns:
            t.add_column(c, overflow="fold", justify="right" if c in _RIGHT else "left")
        for r in rows:
            t.add_row(*r)
        out.print(t)
        return
    typer.echo(f"# {title}")
    typer.echo("\t".join(columns))
    for r in rows:
        typer.echo("\t".join(r))


_RIGHT = {"ours", "theirs", "count", "pay", "amount", "medfee_sumamt", "fund_pay_sumamt",
          "psn_cash_pay", "pay (yuan)"}  # fmt: skip


def _say(text: str) -> None:
    if out.is_terminal:
        out.print(text, highlight=False)
    else:
        typer.echo(text)


def _funds_json(xs: Any) -> dict[str, int]:
    return {f.fund_code: f.pay for f in xs}


def _entry_json(e: pb.ReconEntry) -> dict[str, Any]:
    return {
        "settlement_id": e.settlement_id,
        "reversal": e.reversal,
        "date": e.date,
        "at": e.at,
        "hospital": e.hospital,
        "medfee_sumamt": e.medfee_sumamt,
        "fund_pay_sumamt": e.fund_pay_sumamt,
        "psn_cash_pay": e.psn_cash_pay,
        "window_funds": _funds_json(e.window_funds),
        "after_discharge_funds": _funds_json(e.after_discharge_funds),
    }


def _line_json(x: pb.HospitalSettlement) -> dict[str, Any]:
    d: dict[str, Any] = {"settlement_id": x.settlement_id, "reversal": x.reversal}
    for k in ("medfee_sumamt", "fund_pay_sumamt", "psn_cash_pay"):
        if x.HasField(k):
            d[k] = getattr(x, k)
    return d


def reconcile_json(r: pb.ReconcileResponse) -> dict[str, Any]:
    """The Reconcile answer as JSON (money in integer fen)."""
    t = r.totals
    return {
        "hospital": r.hospital,
        "from_date": r.from_date,
        "to_date": r.to_date,
        "totals": {
            "fixmedins_setl_cnt": t.fixmedins_setl_cnt,
            "medfee_sumamt": t.medfee_sumamt,
            "fund_pay_sumamt": t.fund_pay_sumamt,
            "psn_cash_pay": t.psn_cash_pay,
            "window_funds": _funds_json(t.window_funds),
            "after_discharge_funds": _funds_json(t.after_discharge_funds),
        },
        "compared": r.compared,
        "match": r.match,
        "differences": [
            {
                "field": d.field,
                "ours": d.ours,
                "theirs": d.theirs,
                "entries": [_entry_json(e) for e in d.entries],
            }
            for d in r.differences
        ],
        "line_differences": [
            {
                "settlement_id": d.settlement_id,
                "reversal": d.reversal,
                "problem": d.problem,
                "fields": list(d.fields),
                "ours": _entry_json(d.ours) if d.HasField("ours") else None,
                "theirs": _line_json(d.theirs) if d.HasField("theirs") else None,
            }
            for d in r.line_differences
        ],
        "entries": [_entry_json(e) for e in r.entries],
    }


def _amount(name: str, v: int) -> str:
    return str(v) if name == "fixmedins_setl_cnt" else yuan(v)


def _entry_rows(es: Any) -> list[list[str]]:
    return [
        [e.settlement_id, "reversal" if e.reversal else "settlement", e.date, e.at,
         yuan(e.medfee_sumamt), yuan(e.fund_pay_sumamt), yuan(e.psn_cash_pay),
         " ".join(f"{f.fund_code}={yuan(f.pay)}" for f in e.window_funds)]
        for e in es
    ]  # fmt: skip


_ENTRY_COLS = ["settlement", "kind", "date", "at (UTC)", "medfee_sumamt", "fund_pay_sumamt",
               "psn_cash_pay", "window funds"]  # fmt: skip


FromOpt = Annotated[
    str, typer.Option("--from", help="First settlement date, YYYY-MM-DD (Asia/Shanghai).")
]
ToOpt = Annotated[
    str, typer.Option("--to", help="Last settlement date, inclusive, YYYY-MM-DD (Asia/Shanghai).")
]


@bureau_app.command("reconcile", epilog=EPILOG)
def bureau_reconcile(
    hospital: Annotated[str, typer.Option(help="Hospital code (NHSA fixmedins_code).")],
    from_date: FromOpt,
    to_date: ToOpt,
    theirs: Annotated[
        Path | None,
        typer.Option(
            help='The hospital\'s own figures, JSON: {"totals": {fixmedins_setl_cnt, '
            "medfee_sumamt, fund_pay_sumamt, psn_cash_pay, funds: {code: fen}}, "
            '"settlements": [{settlement_id, reversal, medfee_sumamt, ...}]} (fen).'
        ),
    ] = None,
    server: ServerOpt = DEFAULT_SERVER,
    ca: CaOpt = None,
    cert: CertOpt = None,
    key: KeyOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (fen).")] = False,
) -> None:
    """Reconcile a hospital's settlements over a range of settlement dates (NHSA 3201 totals,
    3202 detail; domain.md section 14). Exit 1 when the hospital's figures differ."""
    their_totals = their_list = None
    if theirs is not None:
        try:
            their_totals, their_list = theirs_from_json(
                json.loads(theirs.read_text(encoding="utf-8"))
            )
        except (OSError, ValueError) as e:
            problem_line(err, "refused:", f"{theirs}: {e}")
            raise typer.Exit(Exit.REFUSED) from None
    with _client(server, ca, cert, key) as c:
        try:
            r = c.reconcile(hospital, from_date, to_date, their_totals, their_list)
        except grpc.RpcError as e:
            _fail(e, server)
    code = Exit.REFUSED if r.compared and not r.match else Exit.OK
    if as_json:
        typer.echo(json.dumps(reconcile_json(r), ensure_ascii=False, indent=2))
        raise typer.Exit(code)
    t = r.totals
    theirs_of = {d.field: d.theirs for d in r.differences}
    sent = their_totals
    rows = []
    for name, v in (("fixmedins_setl_cnt", t.fixmedins_setl_cnt),
                    ("medfee_sumamt", t.medfee_sumamt),
                    ("fund_pay_sumamt", t.fund_pay_sumamt),
                    ("psn_cash_pay", t.psn_cash_pay),
                    *((f"fund:{f.fund_code}", f.pay) for f in t.window_funds)):  # fmt: skip
        if name in theirs_of:
            th, mark = _amount(name, theirs_of[name]), "DIFFERS"
        elif sent is not None and (
            (name.startswith("fund:") and sent.HasField("funds"))
            or (not name.startswith("fund:") and sent.HasField(name))
        ):
            th, mark = _amount(name, v), "ok"
        else:
            th, mark = "", ""
        rows.append([name, _amount(name, v), th, mark])
    for name in theirs_of:  # a fund only the hospital has
        if name.startswith("fund:") and name not in {x[0] for x in rows}:
            rows.append([name, yuan(0), _amount(name, theirs_of[name]), "DIFFERS"])
    for f in t.after_discharge_funds:
        rows.append([f"after_discharge:{f.fund_code}", yuan(f.pay), "", "not compared"])
    _emit(
        f"Reconciliation of {r.hospital}, settlement dates {r.from_date}..{r.to_date} "
        "(Asia/Shanghai; yuan)",
        ["total", "ours", "theirs", ""],
        rows,
    )
    if not r.compared:
        _say("nothing to compare (no --theirs)")
    elif r.match:
        _say("MATCH (stmt_rslt 0)")
    else:
        _say(f"DIFFERENT: {len(r.differences)} total(s), "
             f"{len(r.line_differences)} settlement line(s)")  # fmt: skip
    for d in r.differences:
        _emit(
            f"{d.field}: ours {_amount(d.field, d.ours)}, theirs {_amount(d.field, d.theirs)}; "
            f"the {len(d.entries)} entries behind ours",
            _ENTRY_COLS,
            _entry_rows(d.entries),
        )
    if r.line_differences:
        _emit(
            "Settlements the lists disagree on",
            ["settlement", "kind", "problem", "amounts", "ours", "theirs"],
            [
                [d.settlement_id, "reversal" if d.reversal else "settlement", d.problem,
                 " ".join(d.fields),
                 " ".join(f"{k}={yuan(getattr(d.ours, k))}" for k in
                          ("medfee_sumamt", "fund_pay_sumamt", "psn_cash_pay"))
                 if d.HasField("ours") else "",
                 " ".join(f"{k}={yuan(getattr(d.theirs, k))}" for k in
                          ("medfee_sumamt", "fund_pay_sumamt", "psn_cash_pay")
                          if d.theirs.HasField(k))
                 if d.HasField("theirs") else ""]
                for d in r.line_differences
            ],
        )  # fmt: skip
    raise typer.Exit(code)


TOTALS_COLUMNS = ("date", "hospital", "fund_code", "settle_at", "count", "pay_fen")


def _totals_table(rows: Any) -> Any:
    import pyarrow as pa

    return pa.table(
        {
            "date": pa.array([date.fromisoformat(x.date) for x in rows], pa.date32()),
            "hospital": pa.array([x.hospital for x in rows], pa.string()),
            "fund_code": pa.array([x.fund_code for x in rows], pa.string()),
            "settle_at": pa.array([x.settle_at for x in rows], pa.string()),
            "count": pa.array([x.count for x in rows], pa.int64()),
            "pay_fen": pa.array([x.pay for x in rows], pa.int64()),
        }
    )


@bureau_app.command("totals", epilog=EPILOG)
def bureau_totals(
    region: Annotated[str, typer.Option(help="Region code.")],
    from_date: FromOpt,
    to_date: ToOpt,
    hospital: Annotated[str, typer.Option(help="Only this hospital ('' = all).")] = "",
    csv_file: Annotated[
        Path | None, typer.Option("--csv", help="Write the rows as CSV (pay in fen).")
    ] = None,
    parquet_file: Annotated[
        Path | None, typer.Option("--parquet", help="Write the rows as Parquet (pay in fen).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON rows (fen).")] = False,
    server: ServerOpt = DEFAULT_SERVER,
    ca: CaOpt = None,
    cert: CertOpt = None,
    key: KeyOpt = None,
) -> None:
    """Totals per day, hospital and fund of a region (settlement dates in Asia/Shanghai,
    reversals netted on their own date): the bureau's monthly settlement with its hospitals."""
    if sum(x is not None and x is not False for x in (csv_file, parquet_file, as_json)) > 1:
        problem_line(err, "usage:", "give one of --csv, --parquet, --json")
        raise typer.Exit(Exit.USAGE)
    with _client(server, ca, cert, key) as c:
        try:
            r = c.daily_totals(region, from_date, to_date, hospital)
        except grpc.RpcError as e:
            _fail(e, server)
    if as_json:
        typer.echo(
            json.dumps(
                [
                    dict(
                        zip(
                            TOTALS_COLUMNS,
                            (x.date, x.hospital, x.fund_code, x.settle_at, x.count, x.pay),
                            strict=True,
                        )
                    )
                    for x in r.rows
                ],
                ensure_ascii=False,
                indent=2,
            )
        )
        return
    if csv_file is not None or parquet_file is not None:
        table = _totals_table(r.rows)
        if csv_file is not None:
            import pyarrow.csv as pcsv

            pcsv.write_csv(table, csv_file)
            target = csv_file
        else:
            import pyarrow.parquet as pq

            assert parquet_file is not None
            pq.write_table(table, parquet_file)
            target = parquet_file
        _say(f"{len(r.rows)} row(s) written to {target}")
        return
    _emit(
        f"Totals of region {region}, settlement dates {from_date}..{to_date} (Asia/Shanghai; yuan)",
        ["date", "hospital", "fund_code", "settle_at", "count", "pay (yuan)"],
        [[x.date, x.hospital, x.fund_code, x.settle_at, str(x.count), yuan(x.pay)] for x in r.rows],
    )
    per: dict[tuple[str, str], list[int]] = {}
    for x in r.rows:
        acc = per.setdefault((x.settle_at, x.fund_code), [0, 0])
        acc[0] += x.count
        acc[1] += x.pay
    _emit(
        "Per fund over the range",
        ["settle_at", "fund_code", "count", "pay (yuan)"],
        [[at, code, str(n), yuan(p)] for (at, code), (n, p) in sorted(per.items())],
    )


app = typer.Typer(help="onestop gRPC adapter (standalone).", no_args_is_help=True, epilog=EPILOG)
app.command("serve", epilog=EPILOG)(serve)
app.add_typer(window_app, name="window")
app.add_typer(bureau_app, name="bureau")


if __name__ == "__main__":
    sys.exit(app())
