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
from pathlib import Path
from typing import Annotated, Any

import grpc
import typer
from rich.console import Console
from rich.table import Table

from adapters.bootstrap import DEFAULT_DB, DEFAULT_POLICIES, DEFAULT_REGISTRY
from adapters.cli.slip import accounts_table, print_slip
from adapters.grpc.client import DEFAULT_SERVER, Client, read_bill
from adapters.grpc.convert import settlement_from_pb, year_accounts_from_pb
from adapters.grpc.errors import bad_request
from adapters.grpc.gen.onestop.settlement.v1 import settlement_pb2 as pb
from adapters.grpc.limits import DEFAULT as DEFAULT_LIMITS
from adapters.grpc.limits import MIB, Limits

out = Console()
err = Console(stderr=True)

#: exit codes of the window client by gRPC status (0 = ok)
EXIT = {
    grpc.StatusCode.INVALID_ARGUMENT: 2,
    grpc.StatusCode.NOT_FOUND: 3,
    grpc.StatusCode.ALREADY_EXISTS: 4,
    grpc.StatusCode.UNAVAILABLE: 5,
    grpc.StatusCode.UNAUTHENTICATED: 6,
    grpc.StatusCode.PERMISSION_DENIED: 7,
}


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 50051,
    db: Annotated[
        str, typer.Option(help="Store URL: sqlite:///path, postgresql+psycopg://..., memory://")
    ] = DEFAULT_DB,
    policies: Annotated[
        Path, typer.Option(help="Directory of policy tables (*.yaml) to load.")
    ] = DEFAULT_POLICIES,
    registry: Annotated[
        Path, typer.Option(help="Person registry (JSON list) to import, if present.")
    ] = DEFAULT_REGISTRY,
    workers: Annotated[int, typer.Option(help="Threads running the use cases.")] = 8,
    processes: Annotated[
        int,
        typer.Option(
            help="Server processes sharing the port (SO_REUSEPORT; SQL stores only). Each "
            "reloads the tables in force within 2 s of a PutPolicy to any of them."
        ),
    ] = 1,
    grace: Annotated[float, typer.Option(help="Seconds to drain calls on SIGTERM.")] = 10.0,
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
    from adapters.bootstrap import build
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
    if tls is None:
        err.print(
            "[bold red]onestop: WARNING: plaintext, no TLS and no client certificates: every "
            f"caller that reaches {host}:{port} is the local principal with every role (settle, "
            "reverse, put policies, import the registry, read everything). Serve with "
            "--tls-cert --tls-key --client-ca --principals (see `onestop certs`).[/bold red]",
            highlight=False,
        )

    limits = Limits(
        max_message_bytes=max_message_mib * MIB,
        max_response_bytes=max_response_mib * MIB,
        max_concurrent_streams=max_concurrent_streams,
        max_bills_per_message=max_bills_per_message,
        max_items_per_message=max_items_per_message,
    )

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    app = build(db, policies, registry)
    out.print(
        f"onestop: store {app.url} ({'durable' if app.durable else 'IN MEMORY'}); "
        f"{len(app.policies_loaded)} policy tables stored, {len(app.policies_skipped)} "
        f"already there; {app.persons_imported} persons imported",
        highlight=False,
    )
    samples = Path(registry).parent if Path(registry).exists() else None
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
                insecure=insecure,
            )
        )  # fmt: skip
    server = Server(
        app, host, port, workers=workers, samples=samples, limits=limits, tls=tls,
        principals=who, insecure=insecure,
    )  # fmt: skip
    mode = "TLS, client certificates required" if tls else "PLAINTEXT"
    out.print(f"onestop: serving on {host}:{port}, {mode} (Ctrl-C to stop)", highlight=False)
    asyncio.run(serve_forever(server, grace))


window_app = typer.Typer(
    help="Window client: settle, trial, reverse and look up accounts on a running server.",
    no_args_is_help=True,
)

ServerOpt = Annotated[str, typer.Option("--server", help="host:port of the server.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of the slip.")]
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


def _fail(e: grpc.RpcError) -> None:
    code = e.code()  # type: ignore[attr-defined]
    err.print(f"[red]refused: {code.name}[/red] {e.details()}", highlight=False)  # type: ignore[attr-defined]
    for f, d in bad_request(e):
        err.print(f"  {f}: {d}", highlight=False)
    if code == grpc.StatusCode.UNAVAILABLE:
        err.print(
            "  (a server that requires client certificates closes the connection of a client "
            "without one, or with one its client CA did not sign: check --ca, --cert, --key)",
            highlight=False,
        )
    raise typer.Exit(EXIT.get(code, 1))


def _record_json(rec: pb.SettlementRecord, replay: bool | None = None) -> dict[str, Any]:
    d: dict[str, Any] = {
        "settlement_id": rec.settlement_id,
        "request_id": rec.request_id,
        "status": rec.status,
        "created_at": rec.created_at,
        "reversed_at": rec.reversed_at or None,
        "result": settlement_from_pb(rec.result).to_dict(),
    }
    if replay is not None:
        d["replay"] = replay
    return d


def _accounts(c: Client, person_id: str, year: int) -> pb.GetAccountsResponse | None:
    try:
        return c.accounts(person_id, year)
    except grpc.RpcError:
        return None


def _show(c: Client, result: pb.SettlementResult, header: str, as_json: bool, extra: Any) -> None:
    acc = _accounts(c, result.person_id, result.year)
    if as_json:
        d = dict(extra)
        if acc is not None:
            d["accounts"] = {
                "person": year_accounts_from_pb(acc.person).to_dict(),
                "household": year_accounts_from_pb(acc.household_accounts).to_dict(),
            }
        out.print_json(json.dumps(d, ensure_ascii=False))
        return
    out.print(header, highlight=False)
    print_slip(
        out,
        settlement_from_pb(result),
        None,
        year_accounts_from_pb(acc.person) if acc else None,
        year_accounts_from_pb(acc.household_accounts) if acc else None,
    )


@window_app.command("settle")
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
) -> None:
    """Settle a bill (2304). Retrying with the same --request-id pays once."""
    rid = request_id or uuid.uuid4().hex
    with _client(server, ca, cert, key) as c:
        try:
            r = c.settle(read_bill(bill), rid)
        except grpc.RpcError as e:
            _fail(e)
            return
        rec = r.settlement
        head = f"settlement {rec.settlement_id} (request {rec.request_id})" + (
            " [yellow]replay: already settled, nothing paid again[/yellow]" if r.replay else ""
        )
        _show(c, rec.result, head, as_json, _record_json(rec, r.replay))


@window_app.command("pre-settle")
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
            r = c.pre_settle(read_bill(bill))
        except grpc.RpcError as e:
            _fail(e)
            return
        s = settlement_from_pb(r.result)
        _show(c, r.result, "trial settlement (nothing stored)", as_json, {"result": s.to_dict()})


@window_app.command("reverse")
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
) -> None:
    """Reverse a settlement (2305): its account moves are taken back. Idempotent."""
    with _client(server, ca, cert, key) as c:
        try:
            r = c.reverse(request_id=target) if by_request else c.reverse(settlement_id=target)
        except grpc.RpcError as e:
            _fail(e)
            return
        rec = r.settlement
        head = f"settlement {rec.settlement_id} reversed" + (
            " [yellow](it already was: nothing moved)[/yellow]" if r.replay else ""
        )
        _show(c, rec.result, head, as_json, _record_json(rec, r.replay))


@window_app.command("accounts")
def window_accounts(
    person: Annotated[str, typer.Argument(help="Person id.")],
    year: Annotated[int | None, typer.Option(help="Accounting year (default: this year).")] = None,
    server: ServerOpt = DEFAULT_SERVER,
    ca: CaOpt = None,
    cert: CertOpt = None,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A person's and household's year-to-date accounts."""
    with _client(server, ca, cert, key) as c:
        try:
            a = c.accounts(person, year)
        except grpc.RpcError as e:
            _fail(e)
            return
    pa, ha = year_accounts_from_pb(a.person), year_accounts_from_pb(a.household_accounts)
    if as_json:
        out.print_json(
            json.dumps(
                {
                    "person_id": a.person_id,
                    "household": a.household,
                    "year": a.year,
                    "person": pa.to_dict(),
                    "household_accounts": ha.to_dict(),
                }
            )
        )
        return
    out.print(accounts_table(f"Year-to-date {a.year}: person {a.person_id}", pa))
    out.print(accounts_table(f"Household {a.household} {a.year}", ha))


@window_app.command("settlements")
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
            _fail(e)
            return
    if as_json:
        out.print_json(json.dumps([_record_json(r) for r in recs], ensure_ascii=False))
        return
    t = Table(title=f"Settlements of {person}" + (f" in {year}" if year else ""))
    for col in ("settlement", "request", "bill", "status", "stored", "window pay", "funds"):
        t.add_column(col)
    for r in recs:
        t.add_row(r.settlement_id, r.request_id, r.result.bill_id, r.status, r.created_at,
                  f"{r.result.window_pay / 100:,.2f}", f"{r.result.funds_total / 100:,.2f}")  # fmt: skip
    out.print(t)


bureau_app = typer.Typer(
    help="County bureau client: put policy tables, list versions, import the person registry "
    "on a running server.",
    no_args_is_help=True,
)


@bureau_app.command("put-policy")
def bureau_put_policy(
    files: Annotated[list[Path], typer.Argument(help="Policy table YAML files.")],
    server: ServerOpt = DEFAULT_SERVER,
    ca: CaOpt = None,
    cert: CertOpt = None,
    key: KeyOpt = None,
) -> None:
    """Store each table as a new version (validated; overlapping ranges refused). A table with
    the same region and effective_from as a stored one supersedes it."""
    with _client(server, ca, cert, key) as c:
        for f in files:
            try:
                v = c.put_policy(f.read_text(encoding="utf-8"), str(f))
            except grpc.RpcError as e:
                _fail(e)
                return
            end = v.effective_to or "open"
            out.print(f"{f}: version {v.version}, region {v.region} {v.region_name}, "
                      f"{v.effective_from}..{end}, layers {', '.join(v.layer_ids)}",
                      highlight=False)  # fmt: skip


@bureau_app.command("policies")
def bureau_policies(
    region: Annotated[str, typer.Option(help="Only this region.")] = "",
    server: ServerOpt = DEFAULT_SERVER,
    ca: CaOpt = None,
    cert: CertOpt = None,
    key: KeyOpt = None,
) -> None:
    """Every stored version, oldest first, and whether it settles bills now."""
    with _client(server, ca, cert, key) as c:
        try:
            r = c.admin.ListPolicies(pb.ListPoliciesRequest(region=region), timeout=c.timeout)
        except grpc.RpcError as e:
            _fail(e)
            return
    t = Table(title="Policy table versions")
    for col in ("version", "region", "in force from", "to", "source", "stored", "settles now"):
        t.add_column(col)
    for v in r.versions:
        t.add_row(str(v.version), f"{v.region} {v.region_name}", v.effective_from,
                  v.effective_to or "open", v.source_name, v.created_at,
                  "yes" if v.in_force else "superseded")  # fmt: skip
    out.print(t)


@bureau_app.command("import-registry")
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
        err.print(f"[red]refused:[/red] {file}: {e}", highlight=False)
        raise typer.Exit(2) from None
    with _client(server, ca, cert, key) as c:
        try:
            n = c.import_registry(persons)
        except grpc.RpcError as e:
            _fail(e)
            return
    out.print(f"{n} person(s) imported from {file}", highlight=False)


app = typer.Typer(help="onestop gRPC adapter (standalone).", no_args_is_help=True)
app.command("serve")(serve)
app.add_typer(window_app, name="window")
app.add_typer(bureau_app, name="bureau")


if __name__ == "__main__":
    sys.exit(app())
