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
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import grpc
import typer
from rich.console import Console
from rich.table import Table

from adapters.bootstrap import DEFAULT_DB, DEFAULT_POLICIES, DEFAULT_REGISTRY
from adapters.cli.slip import accounts_table, print_slip
from adapters.grpc.client import DEFAULT_SERVER, BillFileError, Client, read_bill
from adapters.grpc.convert import settlement_from_pb, theirs_from_json, year_accounts_from_pb
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
}
#: a user mistake in a file or option (adapters/cli/exitcodes.py: REFUSED), and a server or
#: address that cannot be reached or used (UNAVAILABLE)
EXIT_REFUSED, EXIT_UNAVAILABLE = 1, 5


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
) -> None:
    """Run the settlement server (gRPC, with health and reflection) until SIGTERM/Ctrl-C."""
    from sqlalchemy.exc import SQLAlchemyError

    from adapters.bootstrap import build
    from adapters.grpc.server import Server, serve_forever, serve_processes
    from engine.errors import OnestopError

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
    try:
        app = build(db, policies, registry)
    except OnestopError as e:
        problems = getattr(e, "problems", None) or [e]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        _one_line(f"refused: {problems[0]}{more}", EXIT_REFUSED)
        return
    except ValueError as e:  # a store URL of another kind
        _one_line(f"--db: {e}", EXIT_REFUSED)
        return
    except (OSError, SQLAlchemyError) as e:
        reason = " ".join(str(getattr(e, "orig", None) or e).split())[:300]
        _one_line(f"cannot open the store {_safe_url(db)}: {reason}", EXIT_UNAVAILABLE)
        return
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
                samples=samples, limits=limits,
            )
        )  # fmt: skip
    server = Server(app, host, port, workers=workers, samples=samples, limits=limits)
    out.print(f"onestop: serving on {host}:{port} (Ctrl-C to stop)", highlight=False)
    try:
        asyncio.run(serve_forever(server, grace))
    except (OSError, RuntimeError) as e:  # taken between the check above and the bind
        if "bind" not in str(e).lower() and "listen" not in str(e).lower():
            raise
        _one_line(f"cannot listen on {host}:{port}: {' '.join(str(e).split())}", EXIT_UNAVAILABLE)


window_app = typer.Typer(
    help="Window client: settle, trial, reverse and look up accounts on a running server.",
    no_args_is_help=True,
)

ServerOpt = Annotated[str, typer.Option("--server", help="host:port of the server.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of the slip.")]


def _fail(e: grpc.RpcError) -> None:
    code = e.code()  # type: ignore[attr-defined]
    err.print(f"[red]refused: {code.name}[/red] {e.details()}", highlight=False)  # type: ignore[attr-defined]
    for f, d in bad_request(e):
        err.print(f"  {f}: {d}", highlight=False)
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
    as_json: JsonOpt = False,
) -> None:
    """Settle a bill (2304). Retrying with the same --request-id pays once."""
    rid = request_id or uuid.uuid4().hex
    with Client(server) as c:
        try:
            r = c.settle(_bill_file(bill), rid)
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
    as_json: JsonOpt = False,
) -> None:
    """Trial settlement (2303): what settling now would pay. Changes nothing."""
    with Client(server) as c:
        try:
            r = c.pre_settle(_bill_file(bill))
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
    as_json: JsonOpt = False,
) -> None:
    """Reverse a settlement (2305): its account moves are taken back. Idempotent."""
    with Client(server) as c:
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
    as_json: JsonOpt = False,
) -> None:
    """A person's and household's year-to-date accounts."""
    with Client(server) as c:
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
    as_json: JsonOpt = False,
) -> None:
    """A person's settlements, oldest first (every page of ListSettlements)."""
    with Client(server) as c:
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
    help="County bureau client: put policy tables, list versions, import the person registry, "
    "reconcile with hospitals (3201/3202) and fund totals, on a running server.",
    no_args_is_help=True,
)


@bureau_app.command("put-policy")
def bureau_put_policy(
    files: Annotated[list[Path], typer.Argument(help="Policy table YAML files.")],
    server: ServerOpt = DEFAULT_SERVER,
) -> None:
    """Store each table as a new version (validated; overlapping ranges refused). A table with
    the same region and effective_from as a stored one supersedes it."""
    with Client(server) as c:
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
) -> None:
    """Every stored version, oldest first, and whether it settles bills now."""
    with Client(server) as c:
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
) -> None:
    """Import (insert or update) the persons of the registry file."""
    try:
        persons = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        err.print(f"[red]refused:[/red] {file}: {e}", highlight=False)
        raise typer.Exit(2) from None
    with Client(server) as c:
        try:
            n = c.import_registry(persons)
        except grpc.RpcError as e:
            _fail(e)
            return
    out.print(f"{n} person(s) imported from {file}", highlight=False)


# --------------------------------------------------------------------------- reconciliation


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


@bureau_app.command("reconcile")
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
            err.print(f"[red]refused:[/red] {theirs}: {e}", highlight=False)
            raise typer.Exit(2) from None
    with Client(server) as c:
        try:
            r = c.reconcile(hospital, from_date, to_date, their_totals, their_list)
        except grpc.RpcError as e:
            _fail(e)
            return
    code = 1 if r.compared and not r.match else 0
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


@bureau_app.command("totals")
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
) -> None:
    """Totals per day, hospital and fund of a region (settlement dates in Asia/Shanghai,
    reversals netted on their own date): the bureau's monthly settlement with its hospitals."""
    if sum(x is not None and x is not False for x in (csv_file, parquet_file, as_json)) > 1:
        err.print("[red]refused:[/red] give one of --csv, --parquet, --json", highlight=False)
        raise typer.Exit(2)
    with Client(server) as c:
        try:
            r = c.daily_totals(region, from_date, to_date, hospital)
        except grpc.RpcError as e:
            _fail(e)
            return
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


app = typer.Typer(help="onestop gRPC adapter (standalone).", no_args_is_help=True)
app.command("serve")(serve)
app.add_typer(window_app, name="window")
app.add_typer(bureau_app, name="bureau")


if __name__ == "__main__":
    sys.exit(app())
