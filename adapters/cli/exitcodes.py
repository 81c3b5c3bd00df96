"""The exit codes of every ``onestop`` command: one table, used by every command and printed
in ``--help`` and the README.

A gRPC refusal maps to the same codes (``for_status``), so a script can tell "fix the input"
(1) from "nothing there" (3), "already done another way" (4), "try again later" (5),
"not allowed" (6) and "the server failed" (7) without reading the message. ``onestop test``
adds "a case failed" (8).
"""

from __future__ import annotations

import sys
from enum import IntEnum
from typing import NoReturn


class Exit(IntEnum):
    OK = 0
    REFUSED = 1
    USAGE = 2
    NOT_FOUND = 3
    CONFLICT = 4
    UNAVAILABLE = 5
    DENIED = 6
    SERVER_ERROR = 7
    CASES_FAILED = 8


#: code -> what it means (the README's table is this one)
MEANING: dict[Exit, str] = {
    Exit.OK: "done (for reconcile: the figures match; for the ledger: intact, proof valid)",
    Exit.REFUSED: "refused: the input, a policy table or the request was refused (every "
    "problem printed, nothing written); a file cannot be read or written; reconcile: the "
    "figures differ; ledger: damaged, or the proof is invalid",
    Exit.USAGE: "usage: the command line is wrong (unknown option, missing argument, a bad "
    "choice, options that exclude each other)",
    Exit.NOT_FOUND: "not found: the settlement, person, policy, fund or sealed block asked for "
    "does not exist (publish: or the fund has no data for the year)",
    Exit.CONFLICT: "conflict: it clashes with what is stored (a request id used for another "
    "bill, a bill settled under another request id; ledger: the event is not sealed yet)",
    Exit.UNAVAILABLE: "unavailable: the server or store cannot be reached or opened (down, "
    "wrong address, timed out); try again",
    Exit.DENIED: "denied: the server does not accept this client (certificate, permission)",
    Exit.SERVER_ERROR: "server error: the server failed (the message gives its incident id)",
    Exit.CASES_FAILED: "cases failed (onestop test): a figure a case expects differs from "
    "what the engine computed (every difference printed); a malformed case file is 1",
}


def table_text() -> str:
    """The table as plain lines, for --help epilogs."""
    return "\n".join(f"{int(c)}  {m}" for c, m in MEANING.items())


def help_epilog() -> str:
    """The table for a typer --help epilog (each line kept as its own paragraph)."""
    return "Exit codes:\n\n" + "\n\n".join(f"{int(c)}  {m}" for c, m in MEANING.items())


def one_line(message: str, code: int) -> NoReturn:
    """A user mistake: one line on stderr (no markup, no wrapping), then exit ``code``."""
    import typer  # here: ``onestop --version`` reads this module without typer

    print(f"onestop: {message}", file=sys.stderr)
    raise typer.Exit(code)


def for_status(name: str) -> Exit:
    """The exit code of a gRPC status, by its name (``grpc.StatusCode.X.name``)."""
    return _STATUS.get(name, Exit.SERVER_ERROR)


_STATUS: dict[str, Exit] = {
    "OK": Exit.OK,
    "INVALID_ARGUMENT": Exit.REFUSED,
    "FAILED_PRECONDITION": Exit.REFUSED,
    "OUT_OF_RANGE": Exit.REFUSED,
    "RESOURCE_EXHAUSTED": Exit.REFUSED,
    "NOT_FOUND": Exit.NOT_FOUND,
    "ALREADY_EXISTS": Exit.CONFLICT,
    "ABORTED": Exit.CONFLICT,
    "UNAVAILABLE": Exit.UNAVAILABLE,
    "DEADLINE_EXCEEDED": Exit.UNAVAILABLE,
    "CANCELLED": Exit.UNAVAILABLE,
    "UNAUTHENTICATED": Exit.DENIED,
    "PERMISSION_DENIED": Exit.DENIED,
}
