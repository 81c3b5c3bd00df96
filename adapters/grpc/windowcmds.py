"""The window client (``onestop window settle``, ``pre-settle``, ``reverse``, ``accounts``,
``settlements``) against a running server.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Annotated, Any

import grpc
import typer

from adapters.cli.exitcodes import Exit
from adapters.cli.output import new_table, print_json, problem_line, show, text
from adapters.cli.slip import Reversal, explanation_json, print_accounts, print_slip
from adapters.grpc.clicommon import (
    EPILOG,
    CaOpt,
    CertOpt,
    JsonOpt,
    KeyOpt,
    ServerOpt,
    SlipOpt,
    _bill_file,
    _client,
    _fail,
    err,
    out,
    this_year,
)
from adapters.grpc.client import DEFAULT_SERVER, Client
from adapters.grpc.convert import settlement_from_pb, year_accounts_from_pb
from adapters.grpc.figures import money
from adapters.grpc.gen.onestop.settlement.v1 import settlement_pb2 as pb
from adapters.slip import slip_path_problem

window_app = typer.Typer(
    help="Window client: settle, trial, reverse and look up accounts on a running server.",
    no_args_is_help=True,
    epilog=EPILOG,
)


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
         ("funds", "right")],
    )  # fmt: skip
    for r in recs:
        t.add_row(text(r.settlement_id), text(r.request_id), text(r.result.bill_id),
                  text(r.status), text(r.created_at), money(r.result.window_pay),
                  money(r.result.funds_total))  # fmt: skip
    show(out, t)
