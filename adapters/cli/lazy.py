"""Commands loaded on first use, so that an offline command never imports what it does not need.

``onestop settle`` and ``onestop policy check`` need the base install only. ``serve``,
``window``, ``bureau``, ``fund``, ``person``, ``cadre`` and ``ledger`` need the ``server`` extra
(grpcio, protobuf, SQLAlchemy), ``batch`` and ``simulate`` the ``batch`` extra (pyarrow, dask), ``publish`` the
``server`` and ``report`` extras (SQLAlchemy; matplotlib, jinja2). Each is imported when it is
invoked (or when
``--help`` lists it); if its imports fail (the extra is not installed, or an installed protobuf
or grpcio is older than the generated code needs), the command is replaced by one that says so
in one line and which extra to install, exit code 2, and every other command works as before.
``serve`` checks its options first and imports its extra then (``unavailable``: the same line).

``onestop --help`` lists them without importing them (it imported grpc, pyarrow, dask,
matplotlib, ... to print one line each: 5 s of CPU): each is listed with its line of
``SUMMARY`` (tests/test_startup.py checks the listing equals the one of the loaded commands),
and as not available when a module its extra provides is not installed (``importlib.util
.find_spec``, nothing imported); a version mismatch shows when the command is run.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from typing import Any, NoReturn

import typer
from typer.core import TyperCommand, TyperGroup

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

#: the first paragraph of each lazy command's help, as ``onestop --help`` lists it
SUMMARY: dict[str, str] = {
    "serve": "Run the settlement server (gRPC, with health and reflection) until SIGTERM/Ctrl-C.",
    "serve-http": "Serve the NHSA HTTP/JSON gateway and FHIR endpoints on uvicorn (next to "
    "`onestop\nserve`, the gRPC server, over the same store).",
    "window": "Window client: settle, trial, reverse and look up accounts on a running server.",
    "bureau": "County bureau client: put policy tables, list versions, import the person "
    "registry, reconcile with hospitals (3201/3202) and fund totals, on a running server.",
    "batch": "Settle BILLS with their ITEMS and PERSONS; write per-bill, per-layer and alert "
    "results.",
    "simulate": "What-if over a year of bills: settle BILLS under the tables in force (--policy) "
    "and\nunder the candidate tables laid over them; compare per fund and layer, per patient, "
    "by\ntag, hospital level, age band and hospital; alerts, budgets and the changed bills.",
    "ledger": "The tamper-evident audit ledger: verify, seal, checkpoint, prove, check-proof.",
    "certs": "Make a local CA, a server certificate (localhost, 127.0.0.1) and client "
    "certificates,\nand the principals file that maps them to their roles (for `onestop serve "
    "--principals`).\nAn existing CA in --out is reused unless --force.",
    "fund": "Fund operator client: declare funds, record money in, list, approve, reject and pay "
    "claims and relief cases, read a fund's statement, on a running server.",
    "person": "Insured person client: your cover, settlements and claims.",
    "cadre": "Village cadre client: the cover list of your villages, claims for villagers.",
    "publish": "Publish fund figures as a static site (index, one page per fund and county, "
    "charts,\nfigures.json and figures.csv), stamped with the ledger checkpoint.",
    "example": "Runnable examples on synthetic data (see README).",
    "simulate-report": "Render the bureau's report (report.html with charts, report.json, CSV "
    "tables) from the\nfigures of onestop simulate.",
    "warm": "Compile the settlement kernel's variants into numba's cache (once after "
    "installing),\nso that no command compiles them on first use.",
    "test": "Run case files: settle each case's bills and compare every figure it expects. Exit "
    "0\nall pass, 8 a case failed, 1 a malformed case file or refused bills, 3 -k selects none.",
}

#: the top-level modules each extra installs (pyproject.toml), looked up for the listing
EXTRA_MODULES: dict[str, tuple[str, ...]] = {
    "base": (),
    "server": ("grpc", "google.protobuf", "sqlalchemy"),
    "batch": ("pyarrow", "dask"),
    "http": ("fastapi", "uvicorn"),
    "report": ("matplotlib", "jinja2"),
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


def unavailable(name: str, e: BaseException) -> NoReturn:
    """Exit as the stand-in of a command whose extra is missing or broken does: for a command
    that imports its extra's modules only once its options are checked (``serve``, so that a
    refused option is told in ~0.2 s) and finds them missing or of the wrong version then."""
    print(_message(name, LAZY[name][3], e), file=sys.stderr)
    raise typer.Exit(EXIT_MISSING_EXTRA)


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


def installed(extra: str) -> bool:
    """Every module of ``extra`` (comma-separated extras) can be found (none is imported)."""
    for name in (m for e in extra.split(",") for m in EXTRA_MODULES[e]):
        try:
            if importlib.util.find_spec(name) is None:
                return False
        except (ImportError, ValueError):  # a parent missing; or blocked (sys.modules[x] None)
            return False
    return True


def listed(name: str) -> Any:
    """A stand-in for the lazy command ``name`` in the listing of ``onestop --help``."""
    extra = LAZY[name][3]
    line = SUMMARY[name] if installed(extra) else f"(not available: needs the {extra} extra)"
    return TyperCommand(name=name, help=line)


class LazyGroup(TyperGroup):
    """The root ``onestop`` group: its own commands, then the lazy ones."""

    _listing = False

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True  # the lazy commands are listed by their summary, not imported
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False

    def list_commands(self, ctx: Any) -> list[str]:
        names = list(super().list_commands(ctx))
        return names + [n for n in LAZY if n not in names]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        cmd = super().get_command(ctx, cmd_name)
        if cmd is None and cmd_name in LAZY and self._listing and cmd_name in SUMMARY:
            return listed(cmd_name)
        if cmd is None and cmd_name in LAZY:
            cmd = load(cmd_name)
            self.commands[cmd_name] = cmd
        return cmd
