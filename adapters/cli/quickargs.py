"""The command line of a plain ``onestop settle``, read without typer (issue 13, target 12).

typer (0.29) costs a cached ``onestop settle`` about a fifth of its CPU: importing it and its
bundled click (``inspect``, ``subprocess``, shell detection, ...) and building a pydantic
``TypeAdapter`` for each of the command's eight parameters (benchmarks/README.md, target 12).
So ``onestop settle`` whose command line is plainly well formed is read here and settled
directly (adapters/cli/settle.py); every other command line, ``--help``, a mistake of any
kind (an unknown or repeated option, a missing value, a bad ``--engine`` or
``ONESTOP_ENGINE``, an unreadable path, no bill) goes to typer, which prints its help or its
usage error and exit code as before. The two fronts read a command line they both accept
the same way: tests/test_quickargs.py checks this table against the typer command's
parameters and the outputs of both fronts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Any

#: the settle command's options: name -> (keyword of settle_bills, kind); "one": a value
#: (``--x V`` or ``--x=V``), "many": a value, repeatable (a list), "flag": no value
OPTIONS: dict[str, tuple[str, str]] = {
    "--policy": ("policy", "many"),
    "--accounts": ("accounts", "one"),
    "--accounts-out": ("accounts_out", "one"),
    "--json": ("as_json", "flag"),
    "--engine": ("engine", "one"),
    "--slip": ("slip_file", "one"),
    "--allocate": ("allocate", "flag"),
}


class Engine(StrEnum):
    """The values of ``--engine`` (engine/engines.py)."""

    auto = "auto"
    kernel = "kernel"
    reference = "reference"


ENGINES = tuple(Engine)
#: the variable that sets ``--engine``'s default
ENGINE_VAR = "ONESTOP_ENGINE"
#: the options whose values are paths (typer checks that an existing one is readable)
PATHS = ("policy", "accounts", "accounts_out", "slip_file")
#: click's shell-completion request for ``onestop``: typer answers it
COMPLETE_VAR = "_ONESTOP_COMPLETE"


def settle_args(argv: Sequence[str], environ: Mapping[str, str]) -> dict[str, Any] | None:
    """The keywords of ``settle_bills`` for ``onestop ARGV``, or None when typer should read
    the command line (not ``settle``, or anything but a plain well-formed one)."""
    if not argv or argv[0] != "settle" or COMPLETE_VAR in environ or os.name == "nt":
        return None
    bills: list[Path] = []
    got: dict[str, Any] = {}
    rest = list(argv[1:])
    while rest:
        token = rest.pop(0)
        if token and not token.startswith("-"):
            bills.append(Path(token))
            continue
        name, eq, value = token.partition("=")
        if name not in OPTIONS:
            return None  # --help, --, a short or unknown option, -, '': typer's
        key, kind = OPTIONS[name]
        if kind == "flag":
            if eq or key in got:
                return None
            got[key] = True
            continue
        if not eq:
            if not rest:
                return None
            value = rest.pop(0)
        if not value or value.startswith("-") or (kind == "one" and key in got):
            return None
        if kind == "many":
            got.setdefault(key, []).append(Path(value))
        else:
            got[key] = value if key == "engine" else Path(value)
    if not bills:
        return None
    if "engine" not in got and environ.get(ENGINE_VAR):
        got["engine"] = environ[ENGINE_VAR]
    if got.get("engine", "auto") not in ENGINES:
        return None
    for p in [*bills, *(q for k in PATHS for q in _paths(got.get(k)))]:
        if os.path.exists(p) and not os.access(p, os.R_OK):
            return None  # typer: "Path '...' is not readable."
    return {"bills": bills, **got}


def _paths(value: Path | list[Path] | None) -> list[Path]:
    return [] if value is None else value if isinstance(value, list) else [value]
