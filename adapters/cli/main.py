"""``onestop``: settle bills, check policy tables, run the server, batch runs.

Exit codes: 0 done, 1 the input or a policy table was refused (every problem is printed),
2 usage error.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from adapters.cli.files import opening_to_json, read_bills, read_opening
from adapters.cli.lazy import LazyGroup
from adapters.cli.slip import print_slip
from engine.batch import reference_batch, settle_batch
from engine.compare import compare
from engine.errors import InputError, OnestopError, PolicyError
from engine.explain import explain
from engine.money import yuan
from engine.policy.load import load_policies, policy_files

app = typer.Typer(
    cls=LazyGroup,  # serve, window, bureau, batch, ledger: imported on first use (adapters/cli/lazy.py)
    no_args_is_help=True,
    add_completion=False,
    help="onestop: one-stop discharge settlement, to the fen.",
)
policy_app = typer.Typer(no_args_is_help=True, help="Policy tables: check them, try them.")
app.add_typer(policy_app, name="policy")
out = Console()
err = Console(stderr=True)


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


def _fail(e: OnestopError) -> None:
    if isinstance(e, InputError):
        err.print(f"[red]refused:[/red] {len(e.problems)} problem(s)")
        for p in e.problems:
            err.print(f"  {p}", highlight=False, markup=False)
    elif isinstance(e, PolicyError):
        err.print(f"[red]policy refused:[/red] {len(e.problems)} problem(s)")
        for p in e.problems:
            err.print(f"  {p}", highlight=False, markup=False)
    else:
        err.print(f"[red]error:[/red] {e}", highlight=False)
    raise typer.Exit(1)


@app.command()
def settle(
    bills: Annotated[list[Path], typer.Argument(help="Bill JSON files (one bill or a list each)")],
    policy: Annotated[
        list[Path] | None, typer.Option(help="Policy table file or directory [policies/]")
    ] = None,
    accounts: Annotated[
        Path | None, typer.Option(help="Opening year-to-date accounts (JSON)")
    ] = None,
    accounts_out: Annotated[Path | None, typer.Option(help="Write the accounts after")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of the slip")] = False,
    engine: Annotated[
        str, typer.Option(help="kernel (fast) or reference (plain rules)")
    ] = "kernel",
) -> None:
    """Settle bills (in settlement order, from the opening accounts) and print the slip."""
    policy = policy or [Path("policies")]
    if engine not in ("kernel", "reference"):
        raise typer.BadParameter(f"{engine!r}: use kernel or reference", param_hint="--engine")
    try:
        policies = load_policies(*policy)
        bill_list = read_bills(bills)
        opening = read_opening(accounts)
        run = settle_batch if engine == "kernel" else reference_batch
        result = run(bill_list, policies, opening)
    except OnestopError as e:
        _fail(e)
        return
    closing = result.closing
    if accounts_out is not None:
        accounts_out.write_text(json.dumps(opening_to_json(closing), indent=2) + "\n")
    if as_json:
        docs = []
        for s, b in zip(result.settlements, bill_list, strict=True):
            table = policies.table_for(b.region, b.discharge_date)
            d = s.to_dict()
            d["explanation"] = [{"en": x.en, "zh": x.zh} for x in explain(s, table)]
            docs.append(d)
        print(json.dumps(docs if len(docs) > 1 else docs[0], indent=2, ensure_ascii=False))
        return
    order = sorted(
        range(len(bill_list)),
        key=lambda i: (
            bill_list[i].discharge_date, bill_list[i].admission_date, bill_list[i].id,
            bill_list[i].hospital,
        ),
    )  # fmt: skip
    for i in order:
        s, b = result.settlements[i], bill_list[i]
        print_slip(
            out,
            s,
            policies.table_for(b.region, b.discharge_date),
            closing.person_year(s.person_id, s.year),
            closing.household_year(s.household, s.year),
        )


@policy_app.command("check")
def policy_check(
    paths: Annotated[list[Path], typer.Argument(help="Policy files or directories")],
) -> None:
    """Validate policy tables; print every problem found (file:line, path, reason)."""
    try:
        ps = load_policies(*paths)
    except PolicyError as e:
        _fail(e)
        return
    t = Table(title=f"{len(ps.tables)} policy table(s) OK")
    for col in ("region", "name", "in force", "layers"):
        t.add_column(col)
    for table in ps.tables:
        t.add_row(
            table.region.code,
            table.region.name,
            table.label.split(" ", 1)[1],
            ", ".join(f"{la.id} ({la.kind})" for la in table.layers),
        )
    out.print(t)
    out.print(
        f"files: {', '.join(str(f) for p in paths for f in policy_files(p))}", highlight=False
    )


@policy_app.command("whatif")
def policy_whatif(
    bills: Annotated[list[Path], typer.Argument(help="Bill JSON files to settle under both")],
    candidate: Annotated[list[Path], typer.Option(help="The candidate tables (file or dir)")],
    base: Annotated[list[Path] | None, typer.Option(help="The tables in force [policies/]")] = None,
    accounts: Annotated[Path | None, typer.Option(help="Opening accounts (JSON)")] = None,
) -> None:
    """What-if: settle the same bills under the tables in force and under candidate tables;
    print the totals per fund and every bill whose figures change."""
    try:
        cmp = compare(
            read_bills(bills),
            load_policies(*(base or [Path("policies")])),
            load_policies(*candidate),
            read_opening(accounts),
        )
    except OnestopError as e:
        _fail(e)
        return
    t = Table(title=f"What-if over {len(cmp.base)} bill(s): per fund")
    for col in (
        "fund",
        "layers",
        "bills base",
        "amount base",
        "bills cand.",
        "amount cand.",
        "change",
    ):
        t.add_column(col, justify="left" if col in ("fund", "layers") else "right")
    for f in sorted(set(cmp.base_funds) | set(cmp.candidate_funds)):
        a, b = cmp.base_funds.get(f), cmp.candidate_funds.get(f)
        ids = sorted(set(a.layer_ids if a else ()) | set(b.layer_ids if b else ()))
        aa, ba = (a.amount if a else 0), (b.amount if b else 0)
        t.add_row(
            f,
            ", ".join(ids),
            str(a.bills if a else 0),
            yuan(aa),
            str(b.bills if b else 0),
            yuan(ba),
            yuan(ba - aa),
        )
    for label, i in (("funds total", 0), ("patients at the window", 1), ("patients net", 2)):
        x, y = cmp.totals("base")[i], cmp.totals("candidate")[i]
        t.add_row(label, "", "", yuan(x), "", yuan(y), yuan(y - x))
    out.print(t)
    changed = cmp.changed
    out.print(f"{len(changed)} bill(s) change")
    for a, b in changed[:50]:
        out.print(
            f"  {a.hospital}/{a.bill_id}: window {yuan(a.window_pay)} -> {yuan(b.window_pay)}, "
            f"net {yuan(a.net_selfpay)} -> {yuan(b.net_selfpay)}",
            highlight=False,
        )


def main() -> None:
    try:
        app(prog_name="onestop")
    except OSError as e:  # a file or directory the user named cannot be read or written
        where = f"{e.filename}: " if e.filename else ""
        print(f"onestop: {where}{e.strerror or e}", file=sys.stderr)
        sys.exit(1)  # the input was refused (adapters/cli/exitcodes.py)


if __name__ == "__main__":
    sys.exit(main())
