"""The window client (``onestop window settle``, ``pre-settle``, ``reverse``, ``accounts``,
``settlements``) against a running server.

The commands check their options and read the bill file first, and import ``windowcalls`` (gRPC,
the client, the engine's models) only then: a bill file that cannot be sent is refused in one
line without loading them.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from types import ModuleType
from typing import Annotated

import typer

from adapters.cli.exitcodes import Exit
from adapters.cli.output import problem_line
from adapters.defaults import DEFAULT_SERVER
from adapters.grpc.clicommon import (
    EPILOG,
    CaOpt,
    CertOpt,
    JsonOpt,
    KeyOpt,
    ServerOpt,
    SlipOpt,
    _bill_file,
    err,
    this_year,
)
from adapters.slip import slip_path_problem

window_app = typer.Typer(
    help="Window client: settle, trial, reverse and look up accounts on a running server.",
    no_args_is_help=True,
    epilog=EPILOG,
)


def _check_slip(path: Path | None) -> None:
    """Refuse a bad --slip before anything is settled or reversed."""
    if problem := slip_path_problem(path):
        problem_line(err, "refused:", problem)
        raise typer.Exit(Exit.USAGE)


def _calls() -> ModuleType:
    """``windowcalls``, imported once the command's options and bill file are checked; the
    server extra missing or of the wrong version is told as ``adapters.cli.lazy`` tells it."""
    try:
        from adapters.grpc import windowcalls
    except Exception as e:
        from adapters.cli.lazy import unavailable

        unavailable("window", e)
    return windowcalls


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
    _calls().settle(bill_doc, rid, server, (ca, cert, key), as_json, slip_file)


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
    bill_doc = _bill_file(bill)
    _calls().pre_settle(bill_doc, server, (ca, cert, key), as_json)


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
    _calls().reverse(target, by_request, server, (ca, cert, key), as_json, slip_file)


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
    _calls().accounts(
        person, year if year is not None else this_year(), server, (ca, cert, key), as_json
    )


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
    _calls().settlements(person, year, server, (ca, cert, key), as_json)
