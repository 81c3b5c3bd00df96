"""``onestop simulate``: the bills of a year under the tables in force and under a candidate.

    onestop simulate BILLS ITEMS PERSONS --policy policies/ --candidate draft.yaml --out OUT
        [--as-if-effective] [--fund-used FILE] [--title T] [--threshold PCT ...] [--json]
        [--chunk-bills N] [--threads N] [--dask-local N | --dask-scheduler ADDR]

Two ``onestop batch`` runs (adapters/batch/cli.py ``settle_files``: the same code, the same
files): OUT/base/ with the --policy tables, OUT/candidate/ with OUT/candidate-policy/ (the
base with each candidate laid over its region: adapters/simulate/overlay.py). Then the
comparison (engine/simulate, arrays in, figures out: adapters/simulate/FIGURES.md), written as
OUT/changed.csv (every bill whose patient figure changed, with the reasons) and the report
(OUT/report.json, and report.html with adapters/simulate/report.py). Rows the batch refuses
are left out of both runs and written to OUT/base/rejects.csv and OUT/candidate/rejects.csv;
the figures count them.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from adapters.batch.cli import (
    BatchRun,
    ChunkBillsOpt,
    DaskLocalOpt,
    DaskSchedulerOpt,
    DaskTimeoutOpt,
    ThreadsOpt,
    settle_files,
)
from adapters.batch.run import CHUNK_BILLS
from adapters.cli.exitcodes import Exit, help_epilog
from adapters.cli.output import console, print_json, print_problems, problem_line
from adapters.simulate import overlay as ov
from adapters.simulate.names import fund_names, layer_info
from adapters.simulate.outputs import CHANGED_FILE, write_changed, write_report
from adapters.simulate.read import attrs_from_files, read_run
from adapters.simulate.terminal import print_figures
from engine.errors import PolicyError
from engine.funds import load_funds
from engine.policy.load import load_policies
from engine.simulate import figures
from engine.simulate.figures import budget_rows

out = console()
err = console(stderr=True)


def _policy_refused(e: PolicyError, where: str) -> None:
    print_problems(err, f"{where} refused:", e.problems)
    raise typer.Exit(Exit.REFUSED)


def default_title(candidates: list[Path], bills: Path, as_if: bool) -> str:
    names = ", ".join(c.name for c in candidates)
    return f"{names} on {bills.name}{' (as if effective)' if as_if else ''}"


def simulate(
    bills: Annotated[Path, typer.Argument(help="Bills (Parquet or CSV), as onestop batch reads")],
    items: Annotated[Path, typer.Argument(help="Items (Parquet or CSV), in the bills' order")],
    persons: Annotated[Path, typer.Argument(help="Persons, one row per person and tag")],
    policy: Annotated[
        list[Path], typer.Option(help="The tables in force and funds.yaml (directory or file)")
    ],
    candidate: Annotated[
        list[Path],
        typer.Option(help="A candidate table, laid over the base for its own region (repeatable)"),
    ],
    out_dir: Annotated[Path, typer.Option("--out", help="Output directory")],
    as_if_effective: Annotated[
        bool,
        typer.Option(
            "--as-if-effective",
            help="Apply each candidate to every bill of its region, whatever its dates "
            "(next year's table on last year's bills)",
        ),
    ] = False,
    fund_used: Annotated[
        Path | None,
        typer.Option(help="What each fund used before (CSV or JSON), as onestop batch"),
    ] = None,
    title: Annotated[str | None, typer.Option(help="Title of the report")] = None,
    threshold: Annotated[
        list[int] | None,
        typer.Option(help="Patient's share thresholds in percent (repeatable; default 10 20)"),
    ] = None,
    chunk_bills: ChunkBillsOpt = CHUNK_BILLS,
    threads: ThreadsOpt = 1,
    dask_scheduler: DaskSchedulerOpt = None,
    dask_local: DaskLocalOpt = None,
    dask_timeout: DaskTimeoutOpt = 10.0,
    encoding: Annotated[str, typer.Option(help="Text encoding of CSV inputs")] = "utf-8",
    quiet: Annotated[bool, typer.Option(help="No progress bars")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON")] = False,
) -> None:
    """What-if over a year of bills: settle BILLS under the tables in force (--policy) and
    under the candidate tables laid over them; compare per fund and layer, per patient, by
    tag, hospital level, age band and hospital; alerts, budgets and the changed bills."""
    thresholds = sorted(set(threshold or [10, 20]))
    if any(not 0 < t < 100 for t in thresholds):
        err.print("--threshold is a percentage between 1 and 99")
        raise typer.Exit(Exit.USAGE)
    for p in (bills, items, persons, *policy, *candidate):
        if not p.exists():
            problem_line(err, "refused:", f"{p} does not exist")
            raise typer.Exit(Exit.REFUSED)
    try:
        base_ps = load_policies(*policy)
        book = load_funds(*policy)
    except PolicyError as e:
        _policy_refused(e, "base tables")
    try:
        lay = ov.build(policy, candidate, as_if_effective, out_dir / "candidate-policy")
        cand_ps = load_policies(lay.directory)
    except ov.OverlayUsage as e:
        problem_line(err, "usage:", str(e))
        raise typer.Exit(Exit.USAGE) from None
    except PolicyError as e:
        _policy_refused(e, "candidate tables")
    runs: dict[str, BatchRun] = {}
    for which, pol in (("base", list(policy)), ("candidate", [lay.directory])):
        runs[which] = settle_files(
            bills, items, persons, pol, out_dir / which, fund_used=fund_used,
            chunk_bills=chunk_bills, reject_file=out_dir / which / "rejects.csv",
            threads=threads, dask_scheduler=dask_scheduler, dask_local=dask_local,
            encoding=encoding, dask_timeout=dask_timeout, quiet=quiet or as_json, label=which,
        )  # fmt: skip
    doc, cols = compare(
        runs, out_dir, bills, items, persons, policy, candidate, lay, base_ps, cand_ps, book,
        as_if_effective, title or default_title(candidate, bills, as_if_effective), thresholds,
    )  # fmt: skip
    changed = write_changed(cols, out_dir)
    written, no_html = write_report(doc, out_dir)
    if no_html:
        print(f"note: {no_html}", file=sys.stderr)
    if as_json:
        print_json(doc)
        return
    print_figures(out, doc, str(changed))
    names = ", ".join(p.name for p in written)
    out.print(f"outputs in {out_dir}/ (base, candidate, candidate-policy, {CHANGED_FILE}, {names})",
              highlight=False)  # fmt: skip


def compare(
    runs: dict[str, BatchRun], out_dir: Path, bills: Path, items: Path, persons: Path,
    policy: list[Path], candidate: list[Path], lay: ov.Overlay, base_ps: Any, cand_ps: Any,
    book: Any, as_if: bool, title: str, thresholds: list[int],
) -> tuple[dict[str, Any], dict[str, Any]]:  # fmt: skip
    """The figures of the two batch runs written under ``out_dir``."""
    rej = {k: r.fig["totals"].get("read", 0) - r.fig["totals"].get("bills", 0)
           for k, r in runs.items()}  # fmt: skip
    base, rows = read_run(out_dir / "base", rej["base"])
    cand, _ = read_run(out_dir / "candidate", rej["candidate"])
    attrs = attrs_from_files(str(bills), str(persons), rows)
    inputs = {
        "bills_file": str(bills), "items_file": str(items), "persons_file": str(persons),
        "policy_dir": ", ".join(str(p) for p in policy),
        "candidate_files": [str(c) for c in candidate],
        "candidate_regions": list(lay.regions), "candidate_policy_dir": str(lay.directory),
        "replaced_tables": list(lay.replaced), "as_if_effective": as_if,
        "bills": runs["base"].fig["totals"].get("read", 0),
        "items": runs["base"].fig["totals"].get("items", 0),
    }  # fmt: skip
    return figures(
        base, cand, layers=layer_info(base_ps, cand_ps),
        fund_names=fund_names(book, base_ps.regions), attrs=attrs,
        budgets=budget_rows(runs["base"].fig["fund_budgets"],
                            runs["candidate"].fig["fund_budgets"]),
        inputs=inputs, title=title,
        generated_at=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        thresholds=thresholds, changed_file=CHANGED_FILE,
    )  # fmt: skip


app = typer.Typer(add_completion=False, epilog=help_epilog())
app.command("simulate", epilog=help_epilog())(simulate)


@app.callback()
def _group() -> None:
    """Simulation (a group, so that the command is named ``simulate`` everywhere)."""


__all__ = ["app", "simulate"]

if __name__ == "__main__":
    app()
