"""``onestop``: settle bills, check policy tables, run the server, batch runs.

Exit codes: one table for every command (adapters/cli/exitcodes.py, printed by ``--help``):
0 done, 1 refused (every problem is printed), 2 usage, 3 not found, 4 conflict,
5 server or store unavailable, 6 denied, 7 server error, 8 cases failed (``onestop test``).

Output that is not a terminal is plain and whole (adapters/cli/output.py); ``--json`` prints
money in integer fen. ``settle --json`` is always a list, one object per bill, in the order
the bills were given.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from adapters.cli.exitcodes import Exit, help_epilog
from adapters.cli.lazy import LazyGroup
from adapters.cli.output import Out, console, new_table, print_json, problem_line, show, text
from adapters.cli.pydantic_plugins import skip_scan
from adapters.slip import SLIP_HELP, slip_path_problem
from engine.errors import InputError, OnestopError, PolicyError
from engine.money import yuan

if TYPE_CHECKING:
    from engine.allocation import Allocation
    from engine.bill import Bill
    from engine.policy.policyset import PolicySet
    from engine.result import Settlement

# The engine (numpy, numba, pydantic) is imported inside the commands that settle, so that
# `onestop --version`, `--help` and the lazy commands (adapters/cli/lazy.py) do not load it;
# tests/test_startup.py checks which modules each path imports.

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


class Engine(StrEnum):
    auto = "auto"
    kernel = "kernel"
    reference = "reference"


def _fail(e: OnestopError, what: str = "") -> NoReturn:
    """Print every problem (as text, never markup) and exit 1 (refused)."""
    pre = f"{what}: " if what else ""
    if isinstance(e, InputError):
        problem_line(err, "refused:", f"{pre}{len(e.problems)} problem(s)")
        for p in e.problems:
            err.print(text(f"  {p}"))
    elif isinstance(e, PolicyError):
        problem_line(err, "policy refused:", f"{pre}{len(e.problems)} problem(s)")
        for p in e.problems:
            err.print(text(f"  {p}"))
    else:
        problem_line(err, "error:", f"{pre}{e}")
    raise typer.Exit(Exit.REFUSED)


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
    if problem := slip_path_problem(slip_file):
        problem_line(err, "refused:", problem)
        raise typer.Exit(Exit.USAGE)
    from adapters.cli.files import layer_ids, opening_to_json, read_bills, read_opening
    from adapters.cli.slip import accounts_after_each, explanation_json, print_slip
    from engine.engines import settle as run
    from engine.policy.load import load_policies

    policy = policy or [Path("policies")]
    try:
        policies = load_policies(*policy)
        bill_list = read_bills(bills)
        opening = read_opening(accounts, layer_ids(policies))
        result = run(engine.value, bill_list, policies, opening, allocate_items=allocate)
    except OnestopError as e:
        _fail(e)
    closing = result.closing
    if accounts_out is not None:
        accounts_out.write_text(json.dumps(opening_to_json(closing), indent=2) + "\n")
    if slip_file is not None:
        _write_slips(slip_file, bill_list, result.settlements, policies)
    if as_json:
        docs = []
        for s, b in zip(result.settlements, bill_list, strict=True):
            d = s.to_dict()
            d["explanation"] = explanation_json(s, policies.table_for(b.region, b.discharge_date))
            if result.allocations is not None:
                d["items"] = allocation_json(result.allocations[len(docs)])
            docs.append(d)
        print_json(docs)
        return
    order = sorted(
        range(len(bill_list)),
        key=lambda i: (
            bill_list[i].discharge_date, bill_list[i].admission_date, bill_list[i].id,
            bill_list[i].hospital,
        ),
    )  # fmt: skip
    after = accounts_after_each(bill_list, result.settlements, opening)
    for i in order:
        s, b = result.settlements[i], bill_list[i]
        person, household = after[i]
        print_slip(out, s, policies.table_for(b.region, b.discharge_date), person, household)
        if result.allocations is not None:
            print_allocation(out, result.allocations[i])


def allocation_json(a: Allocation) -> list[dict[str, Any]]:
    """Per item: index, code, name, amount, shares (fund_code, layer_id, settle_at, amount),
    selfpay, window_pay; money in fen."""
    return [
        {
            "index": it.index, "code": it.code, "name": it.name, "amount": it.amount,
            "shares": [
                {"fund_code": x.fund_code, "layer_id": x.layer_id, "settle_at": x.settle_at,
                 "amount": x.amount}
                for x in it.shares
            ],
            "selfpay": it.selfpay, "window_pay": it.window_pay,
        }
        for it in a.items
    ]  # fmt: skip


def print_allocation(con: Out, a: Allocation) -> None:
    """Which fund paid which item of one bill (yuan), one row per item."""
    layers = [x.layer_id for x in a.items[0].shares] if a.items else []
    codes = [x.fund_code for x in a.items[0].shares] if a.items else []
    money = [f"{lid} ({c})" for lid, c in zip(layers, codes, strict=True)]
    cols = [("#", "right"), ("item", "left"), ("amount", "right")]
    cols += [(m, "right") for m in [*money, "selfpay", "at window"]]
    t = new_table(f"Bill {a.bill_id}: who paid each item", cols)
    for it in a.items:
        t.add_row(
            str(it.index), text(f"{it.code} {it.name}".strip()), yuan(it.amount),
            *(yuan(x.amount) for x in it.shares), yuan(it.selfpay), yuan(it.window_pay),
        )  # fmt: skip
    show(con, t)


def _write_slips(
    path: Path, bills: list[Bill], settlements: Sequence[Settlement], policies: PolicySet
) -> None:
    """The printed slips of an offline run, one page a bill in settlement order."""
    from adapters.slip.render import SlipMeta, slip_data, write_slip
    from engine.plainbatch import order_key

    meta = SlipMeta(note="离线结算，未保存 offline settlement (onestop settle): not stored, no ids")
    order = sorted(range(len(bills)), key=lambda i: order_key(bills[i]))
    write_slip(path, [
        slip_data(settlements[i], bills[i], meta=meta,
                  table=policies.table_for(bills[i].region, bills[i].discharge_date))
        for i in order
    ])  # fmt: skip
    err.print(text(f"slip written to {path}"))


@policy_app.command("check", epilog=EPILOG)
def policy_check(
    paths: Annotated[
        list[Path], typer.Argument(metavar="PATH...", help="Policy files or directories.")
    ],
) -> None:
    """Validate policy tables; print every problem found (file:line, path, reason)."""
    from engine.policy.load import load_policies, policy_files

    try:
        ps = load_policies(*paths)
    except PolicyError as e:
        _fail(e)
    t = new_table(f"{len(ps.tables)} policy table(s) OK", ["region", "name", "in force", "layers"])
    for table in ps.tables:
        t.add_row(
            text(table.region.code),
            text(table.region.name),
            text(table.label.split(" ", 1)[1]),
            text(", ".join(f"{la.id} ({la.kind})" for la in table.layers)),
        )
    show(out, t)
    out.print(text(f"files: {', '.join(str(f) for p in paths for f in policy_files(p))}"))


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


def main() -> None:
    skip_scan(sys.argv[1:])  # before pydantic builds a validator (adapters/cli/pydantic_plugins.py)
    try:
        app(prog_name="onestop")
    except OSError as e:  # a file or directory the user named cannot be read or written
        where = f"{e.filename}: " if e.filename else ""
        print(f"onestop: {where}{e.strerror or e}", file=sys.stderr)
        sys.exit(1)  # the input was refused (adapters/cli/exitcodes.py)


if __name__ == "__main__":
    sys.exit(main())
