"""``onestop``'s typer app: settle bills, check policy tables, run the server, batch runs
(the console script's entry is adapters/cli/main.py).

Exit codes: one table for every command (adapters/cli/exitcodes.py, printed by ``--help``):
0 done, 1 refused (every problem is printed), 2 usage, 3 not found, 4 conflict,
5 server or store unavailable, 6 denied, 7 server error, 8 cases failed (``onestop test``).

Output that is not a terminal is plain and whole (adapters/cli/output.py); ``--json`` prints
money in integer fen. ``settle --json`` is always a list, one object per bill, in the order
the bills were given.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import typer

from adapters.cli.exitcodes import Exit, help_epilog
from adapters.cli.lazy import LazyGroup
from adapters.cli.output import (
    console,
    fail,
    new_table,
    print_json,
    problem_line,
    show,
    text,
    tidy_help,
)
from adapters.cli.quickargs import Engine
from adapters.slip import SLIP_HELP
from engine.errors import OnestopError, PolicyError, PolicyProblem
from engine.money import yuan

# The engine (numpy, numba, pydantic) is imported inside the commands that settle, so that
# `onestop --version`, `--help` and the lazy commands (adapters/cli/lazy.py) do not load it;
# tests/test_startup.py checks which modules each path imports.

tidy_help()
EPILOG = help_epilog()

app = typer.Typer(
    cls=LazyGroup,  # serve, window, bureau, batch, ledger, certs, publish: imported on first use (adapters/cli/lazy.py)
    no_args_is_help=True,
    add_completion=False,
    help="onestop: one-stop discharge settlement, to the fen.",
    epilog=EPILOG,
)
policy_app = typer.Typer(
    no_args_is_help=True, help="Policy tables: check them, try them.", epilog=EPILOG
)
app.add_typer(policy_app, name="policy")
out = console()
err = console(stderr=True)


def _version(value: bool) -> None:
    if value:
        from engine import __version__

        print(f"onestop {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", is_eager=True, callback=_version, help="Print the version."),
    ] = False,
) -> None:
    """onestop: one-stop discharge settlement, to the fen."""


def _fail(e: OnestopError, what: str = "") -> NoReturn:
    """Print every problem (as text, never markup) and exit 1 (refused)."""
    fail(err, e, what)


Bills = Annotated[
    list[Path],
    typer.Argument(metavar="BILL.json...", help="Bill JSON files (one bill or a list each)."),
]
PolicyOpt = Annotated[
    list[Path] | None,
    typer.Option(
        metavar="PATH",
        help="Policy table file or directory, repeatable (default: policies/).",
    ),
]


@app.command(epilog=EPILOG)
def settle(
    bills: Bills,
    policy: PolicyOpt = None,
    accounts: Annotated[
        Path | None, typer.Option(metavar="FILE", help="Opening year-to-date accounts (JSON).")
    ] = None,
    accounts_out: Annotated[
        Path | None, typer.Option(metavar="FILE", help="Write the accounts after (JSON).")
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print JSON instead of the slip: always a list, one settlement per bill in "
            "the order given, each with its explanation (money in fen).",
        ),
    ] = False,
    engine: Annotated[
        Engine,
        typer.Option(
            envvar="ONESTOP_ENGINE",
            help="kernel (numba: fast per item, ~1 s to load), reference (the plain rules: no "
            "numba) or auto: the reference below 500,000 items, the kernel from there. The "
            "same figures to the fen either way.",
        ),
    ] = Engine.auto,
    slip_file: Annotated[
        Path | None, typer.Option("--slip", metavar="FILE", help=SLIP_HELP + " One page a bill.")
    ] = None,
    allocate: Annotated[
        bool,
        typer.Option(
            "--allocate",
            help="Also show which fund paid which item (domain.md section 11): a table per "
            'bill after its slip; with --json an "items" list in each settlement.',
        ),
    ] = False,
) -> None:
    """Settle bills (in settlement order, from the opening accounts) and print the slip."""
    from adapters.cli.settle import settle_bills

    settle_bills(bills, policy, accounts, accounts_out, as_json, engine.value, slip_file, allocate)


@policy_app.command("check", epilog=EPILOG)
def policy_check(
    paths: Annotated[
        list[Path], typer.Argument(metavar="PATH...", help="Policy files or directories.")
    ],
) -> None:
    """Validate policy tables and fund declarations (funds.yaml); print every problem found
    (file:line, path, reason)."""
    from engine.funds import funds_files, load_funds
    from engine.policy.load import FUNDS_FILE, load_policies, policy_files

    # a funds.yaml named directly is a fund declaration, not a table; a folder's are checked
    # too, as the server and onestop batch load them (a bad one refuses their start)
    tables = [p for p in paths if p.is_dir() or p.name != FUNDS_FILE]
    problems: list[PolicyProblem] = []
    ps = None
    if tables:
        try:
            ps = load_policies(*tables)
        except PolicyError as e:
            problems += e.problems
    try:
        book = load_funds(*paths)
    except PolicyError as e:
        problems += e.problems
    if problems:
        _fail(PolicyError(problems))
    if ps is not None:
        t = new_table(
            f"{len(ps.tables)} policy table(s) OK", ["region", "name", "in force", "layers"]
        )
        for table in ps.tables:
            t.add_row(
                text(table.region.code),
                text(table.region.name),
                text(table.label.split(" ", 1)[1]),
                text(", ".join(f"{la.id} ({la.kind})" for la in table.layers)),
            )
        show(out, t)
        out.print(text(f"files: {', '.join(str(f) for p in tables for f in policy_files(p))}"))
    declared = [f for p in paths for f in funds_files(p)]
    if declared:
        funds = ", ".join(f"{region} {code}" for region, code in sorted(book.funds))
        out.print(text(f"funds OK: {', '.join(map(str, declared))} ({funds or 'no fund'})"))


@policy_app.command("whatif", epilog=EPILOG)
def policy_whatif(
    bills: Annotated[
        list[Path],
        typer.Argument(metavar="BILL.json...", help="Bill JSON files to settle under both."),
    ],
    candidate: Annotated[
        list[Path],
        typer.Option(
            metavar="FILE",
            help="A candidate table, laid over the base for its own region (repeatable).",
        ),
    ],
    base: Annotated[
        list[Path] | None,
        typer.Option(metavar="PATH", help="The tables in force (default: policies/)."),
    ] = None,
    accounts: Annotated[
        Path | None, typer.Option(metavar="FILE", help="Opening accounts (JSON).")
    ] = None,
    as_if_effective: Annotated[
        bool,
        typer.Option(
            "--as-if-effective",
            help="Apply each candidate to every bill of its region, whatever its dates.",
        ),
    ] = False,
    title: Annotated[str | None, typer.Option(help="Title of the figures.")] = None,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print the figures as JSON (onestop simulate's; fen)."),
    ] = False,
    engine: Annotated[
        Engine,
        typer.Option(
            envvar="ONESTOP_ENGINE",
            help="kernel, reference or auto (the reference below 500,000 items), as for "
            "onestop settle: the same figures to the fen either way.",
        ),
    ] = Engine.auto,
) -> None:
    """What-if on a handful of bills: the figures of ``onestop simulate`` (per fund and layer,
    who pays more or less, shares, alerts, the changed bills and why) for JSON bills settled
    under the tables in force and under the candidate tables laid over their regions. A
    refusal says whether the base or the candidate tables failed."""
    from adapters.cli.files import layer_ids, read_bills, read_opening
    from adapters.simulate import overlay as ov
    from adapters.simulate.settled import TablesRefused, whatif
    from adapters.simulate.terminal import print_figures

    paths = base or [Path("policies")]
    try:
        bill_list = read_bills(bills)
    except OnestopError as e:
        _fail(e)
    try:
        from adapters.simulate.settled import tables

        base_ps, _, cand_ps, _ = tables(paths, candidate, as_if_effective)
        opening = read_opening(accounts, layer_ids(base_ps) | layer_ids(cand_ps))
        doc, _, _ = whatif(
            bill_list, paths, candidate, as_if_effective, opening, title or "", engine.value
        )
    except TablesRefused as e:
        where = f"{e.which} ({', '.join(str(p) for p in (paths if e.which.startswith('base') else candidate))})"
        if isinstance(e.error, OnestopError):
            _fail(e.error, where)
        raise
    except ov.OverlayUsage as e:
        problem_line(err, "usage:", str(e))
        raise typer.Exit(Exit.USAGE) from None
    except OnestopError as e:
        _fail(e)
    if as_json:
        print_json(doc)
        return
    print_figures(out, doc)
    changed = doc["changed"]["sample"]
    for c in changed:
        out.print(text(
            f"  {c['hospital']}/{c['bill_id']}: window {yuan(c['base_window_pay'])} -> "
            f"{yuan(c['candidate_window_pay'])}, net {yuan(c['base_net_selfpay'])} -> "
            f"{yuan(c['candidate_net_selfpay'])}: {'; '.join(c['reasons'])}"
        ))  # fmt: skip
    if doc["changed"]["bills"] > len(changed):
        out.print(f"  ... and {doc['changed']['bills'] - len(changed)} more (--json, or "
                  "onestop simulate for changed.csv)")  # fmt: skip
