"""Commands loaded on first use, so that an offline command never imports what it does not need.

``onestop settle`` and ``onestop policy check`` need the base install only. ``serve``,
``window``, ``bureau``, ``fund``, ``person``, ``cadre`` and ``ledger`` need the ``server`` extra
(grpcio, protobuf, SQLAlchemy), ``batch`` and ``simulate`` the ``batch`` extra (pyarrow, dask), ``publish`` the
``server`` and ``report`` extras (SQLAlchemy; matplotlib, jinja2). Each is imported when it is
invoked (or when
``--help`` lists it); if its imports fail (the extra is not installed, or an installed protobuf
or grpcio is older than the generated code needs), the command is replaced by one that says so
in one line and which extra to install, exit code 2, and every other command works as before.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import typer
from typer.core import TyperGroup

from adapters.cli.exitcodes import help_epilog

#: name -> (module, attribute, "command" or "group", extra that provides its imports)
LAZY: dict[str, tuple[str, str, str, str]] = {
    "serve": ("adapters.grpc.servecmd", "serve", "command", "server"),
    "serve-http": ("adapters.http.serve", "serve_http", "command", "http,server"),
    "window": ("adapters.grpc.windowcmds", "window_app", "group", "server"),
    "bureau": ("adapters.grpc.bureaucmds", "bureau_app", "group", "server"),
    "batch": ("adapters.batch.cli", "batch", "command", "batch"),
    "simulate": ("adapters.simulate.command", "simulate", "command", "batch"),
    "ledger": ("adapters.cli.ledger", "ledger_app", "group", "server"),
    "certs": ("adapters.auth.certs", "certs", "command", "server"),
    "fund": ("adapters.grpc.fundcommands", "fund_app", "group", "server"),
    "person": ("adapters.grpc.fundcommands", "person_app", "group", "server"),
    "cadre": ("adapters.grpc.fundcommands", "cadre_app", "group", "server"),
    "publish": ("adapters.cli.publish", "publish", "command", "server,report"),
    "example": ("adapters.examples.cli", "example_app", "group", "batch,server"),
    "simulate-report": ("adapters.simulate.cli", "simulate_report", "command", "report"),
    "warm": ("adapters.cli.warm", "warm", "command", "base"),
    "test": ("adapters.cli.cases", "test_cases", "command", "base"),
}

#: exit code of a command whose extra is missing (like an unknown command: a usage error)
EXIT_MISSING_EXTRA = 2


def _message(name: str, extra: str, e: BaseException) -> str:
    fix = f"pip install 'onestop[{extra}]'"
    which = (
        f"the {extra} extra" if "," not in extra else f"the {extra.replace(',', ' and ')} extras"
    )
    if isinstance(e, ModuleNotFoundError) and e.name:
        return f"onestop {name}: needs {which} (module {e.name!r} is not installed): {fix}"
    text = " ".join(str(e).split())[:300]
    return (
        f"onestop {name}: cannot load ({type(e).__name__}: {text}); "
        f"install the versions {which} declare{'' if ',' in extra else 's'}: {fix}"
    )


def _missing(name: str, extra: str, e: BaseException) -> Any:
    message = _message(name, extra, e)

    stub = typer.Typer(add_completion=False)

    @stub.command(
        name,
        help=f"(not available: needs the {extra} extra)",
        context_settings={
            "allow_extra_args": True,
            "ignore_unknown_options": True,
            "help_option_names": [],
        },
        add_help_option=False,
    )
    def _unavailable(ctx: typer.Context) -> None:
        print(message, file=sys.stderr)
        raise typer.Exit(EXIT_MISSING_EXTRA)

    return typer.main.get_command(stub)


def load(name: str) -> Any:
    """The click command of a lazy ``name`` (or a stub naming the missing extra)."""
    module, attr, kind, extra = LAZY[name]
    try:
        obj = getattr(importlib.import_module(module), attr)
    except Exception as e:  # ImportError, protobuf VersionError, grpc's RuntimeError guard
        return _missing(name, extra, e)
    if kind == "group":
        cmd = typer.main.get_command(obj)
    else:
        one = typer.Typer(add_completion=False)
        one.command(name, epilog=help_epilog())(obj)
        cmd = typer.main.get_command(one)
    cmd.name = name
    return cmd


class LazyGroup(TyperGroup):
    """The root ``onestop`` group: its own commands, then the lazy ones."""

    def list_commands(self, ctx: Any) -> list[str]:
        names = list(super().list_commands(ctx))
        return names + [n for n in LAZY if n not in names]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        cmd = super().get_command(ctx, cmd_name)
        if cmd is None and cmd_name in LAZY:
            cmd = load(cmd_name)
            self.commands[cmd_name] = cmd
        return cmd
