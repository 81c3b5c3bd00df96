"""What the gRPC adapter's commands share: the consoles, one-line refusals, the client
options (--server, TLS), the client and how a refused call is printed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from adapters.cli.exitcodes import Exit, for_status, help_epilog, one_line
from adapters.cli.output import console, problem_line, text
from adapters.grpc.billfile import BillFileError, read_bill
from adapters.slip import SLIP_HELP
from engine.reconcile import local_date

if TYPE_CHECKING:  # imported where used: a refused bill file or option never loads gRPC
    import grpc

    from adapters.grpc.client import Client

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


#: a user mistake: one line on stderr, then exit (``adapters.cli.exitcodes.one_line``)
_one_line = one_line


def _read_texts(files: list[Path]) -> list[tuple[Path, str]]:
    """Every file's text, read before the first is sent (an unreadable one stores nothing):
    a file that cannot be read is refused in one line naming it."""
    texts = []
    for f in files:
        try:
            texts.append((f, f.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError) as e:
            _one_line(f"refused: {f}: cannot be read: {getattr(e, 'strerror', None) or e}",
                      EXIT_REFUSED)  # fmt: skip
    return texts


def _bill_file(path: Path) -> dict[str, Any]:
    try:
        return read_bill(path)
    except BillFileError as e:
        _one_line(f"refused: {e}", EXIT_REFUSED)
        raise


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


def _client(
    server: str, ca: Path | None, cert: Path | None, key: Path | None, command: str = "window"
) -> Client:
    """A client for ``server``: TLS when any of --ca/--cert/--key is given (all three for a
    server that requires client certificates), plaintext otherwise. The client (gRPC, protobuf)
    is imported here, once the options are checked; if the server extra is missing or broken,
    ``onestop COMMAND`` says so in one line (``adapters.cli.lazy.unavailable``)."""
    if (cert is None) != (key is None):
        err.print("[red]refused:[/red] give --cert and --key together", highlight=False)
        raise typer.Exit(2)
    for name, f in (("--ca", ca), ("--cert", cert), ("--key", key)):
        if f is not None and not f.is_file():
            err.print(f"[red]refused:[/red] {name} {f}: no such file", highlight=False)
            raise typer.Exit(Exit.REFUSED)  # a file that cannot be read: 1, as a bill file
    try:
        from adapters.grpc.client import Client
    except Exception as e:  # ImportError, protobuf's VersionError, grpc's RuntimeError guard
        from adapters.cli.lazy import unavailable

        unavailable(command, e)
    return Client(server, ca=ca, cert=cert, key=key)


def _call(c: Client, server: str, fn: Any) -> Any:
    """``fn(c)``, a refused call printed once and exited by ``_fail`` (gRPC imported here: a
    command that never calls never loads it)."""
    import grpc

    try:
        return fn(c)
    except grpc.RpcError as e:
        _fail(e, server)


def _unreachable_hint(details: str) -> str:
    """What to check: nothing listening at the address (refused, no such host), or a server
    that closed the connection (one that requires client certificates closes it on a client
    without one, or with one its client CA did not sign)."""
    said = details.lower()
    if "connection refused" in said or "dns resolution failed" in said:
        return (
            "  (nothing answers at that address: is the server running? `make serve` starts "
            "one on 127.0.0.1:50051; give its address with --server HOST:PORT)"
        )
    return (
        "  (a server that requires client certificates closes the connection of a client "
        "without one, or with one its client CA did not sign: check --ca, --cert, --key)"
    )


def _fail(e: grpc.RpcError, server: str = "") -> NoReturn:
    """Print the refusal once (the problems of its BadRequest, else its message) and exit with
    the code of the table (adapters/cli/exitcodes.py)."""
    from adapters.grpc.errors import bad_request

    code = e.code()
    details = e.details() or ""
    fields = bad_request(e)
    exit_code = for_status(code.name)
    if exit_code is Exit.UNAVAILABLE:
        where = f" {server}" if server else ""
        problem_line(err, f"unavailable: {code.name}", f"server{where} not reachable: {details}")
        err.print(text(_unreachable_hint(details)))
    elif len(fields) == 1 and fields[0][0] != "(more)":  # one problem: one line
        problem_line(err, f"refused: {code.name}", f"{fields[0][0]}: {fields[0][1]}")
    elif fields:
        n = sum(1 for f, _ in fields if f != "(more)")
        problem_line(err, f"refused: {code.name}", f"{n} problem(s)")
        for f, d in fields:
            err.print(text(f"  {d}" if f == "(more)" else f"  {f}: {d}"))
    else:
        problem_line(err, f"refused: {code.name}", details)
    raise typer.Exit(exit_code)
