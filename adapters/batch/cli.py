"""``onestop batch``: settle bills from Parquet/CSV files in household and date order.

    python -m adapters.batch.cli batch BILLS ITEMS PERSONS --policy P --out DIR
        [--opening FILE] [--chunk-bills N] [--reject-file F] [--threads N]
        [--dask-scheduler ADDR | --dask-local N]

Writes DIR/bills, DIR/layers, DIR/alerts and DIR/closing (Parquet parts, one per chunk; the
closing accounts can be the --opening of the next run). Exit codes: 0 done, 1 input refused
(rejected rows without --reject-file, unsorted input, a bad policy table), 2 usage error.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import pyarrow as pa
import pyarrow.csv as pcsv
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from adapters.batch import io
from adapters.batch.run import (
    PartResult,
    SchedulerUnreachable,
    Spec,
    combine,
    connect_dask,
    finish,
    plan,
    run_dask,
    run_local,
)
from engine.columnar import Reject
from engine.errors import PolicyError
from engine.money import yuan
from engine.policy.load import load_policies

#: the scheduler cannot be reached (adapters/cli/exitcodes.py: UNAVAILABLE)
EXIT_UNAVAILABLE = 5

app = typer.Typer(add_completion=False, help="Batch settlement of bills from Parquet/CSV.")
out = Console()
err = Console(stderr=True, soft_wrap=True)


@app.callback()
def _group() -> None:
    """Batch settlement (a group, so that the command is named ``batch`` everywhere)."""


def write_rejects(rejects: list[Reject], path: Path) -> None:
    t = pa.table({
        "file": pa.array([r.file for r in rejects], pa.string()),
        "row": pa.array([r.row for r in rejects], pa.int64()),
        "field": pa.array([r.field for r in rejects], pa.string()),
        "value": pa.array([None if r.value is None else str(r.value) for r in rejects], pa.string()),
        "rule": pa.array([r.rule for r in rejects], pa.string()),
        "bill_id": pa.array([r.bill_id for r in rejects], pa.string()),
        "hospital": pa.array([r.hospital for r in rejects], pa.string()),
    })  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    if io.is_csv(path):
        pcsv.write_csv(t, str(path))
    else:
        io.write_parquet(t, path)


def _share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.2f}%" if whole else "-"


def print_summary(fig: dict, seconds: float) -> None:
    tot, layers = fig["totals"], fig["layers"]
    t = Table(title="Funds", title_justify="left")
    for c in ("layer", "fund", "name", "bills", "persons", "amount (yuan)"):
        t.add_column(c, justify="right" if c in ("bills", "persons", "amount (yuan)") else "left")
    for lid, f in layers.items():
        amount = f["amount"] if f["kind"] != "alert" else f["relief"]
        name = f["name"] + (" (suggested relief, not paid)" if f["kind"] == "alert" else "")
        t.add_row(lid, f["fund_code"], name, f"{f['bills']:,}", f"{f['persons']:,}", yuan(amount))
    out.print(t)
    total = tot.get("total", 0)
    s = Table(title="Patients", title_justify="left", show_header=False)
    s.add_column("what")
    s.add_column("value", justify="right")
    s.add_column("share", justify="right")
    s.add_row("billed", yuan(total), "")
    s.add_row("funds", yuan(total - tot.get("net_selfpay", 0)),
              _share(total - tot.get("net_selfpay", 0), total))  # fmt: skip
    s.add_row("paid at the window", yuan(tot.get("window_pay", 0)),
              _share(tot.get("window_pay", 0), total))  # fmt: skip
    s.add_row("net self-pay", yuan(tot.get("net_selfpay", 0)),
              _share(tot.get("net_selfpay", 0), total))  # fmt: skip
    s.add_row("alerts", f"{tot.get('alerts', 0):,}", f"relief {yuan(tot.get('relief', 0))}")
    out.print(s)
    rate = tot.get("read", 0) / seconds if seconds else 0
    out.print(
        f"{tot.get('bills', 0):,} bills settled of {tot.get('read', 0):,} read "
        f"({tot.get('items', 0):,} items), {tot.get('rejected_rows', 0):,} rejected row(s); "
        f"{seconds:.1f} s, {rate:,.0f} bills/s",
        highlight=False,
    )


@app.command()
def batch(
    bills: Annotated[Path, typer.Argument(help="Bills (Parquet or CSV), sorted by household")],
    items: Annotated[Path, typer.Argument(help="Items (Parquet or CSV), in the bills' order")],
    persons: Annotated[Path, typer.Argument(help="Persons, one row per person and tag")],
    policy: Annotated[list[Path], typer.Option(help="Policy table file or directory")],
    out_dir: Annotated[Path, typer.Option("--out", help="Output directory")],
    opening: Annotated[
        Path | None, typer.Option(help="Opening accounts (file, or a closing/ directory)")
    ] = None,
    chunk_bills: Annotated[int, typer.Option(help="Bills per part (memory bound)")] = 200_000,
    reject_file: Annotated[
        Path | None,
        typer.Option(help="Settle the good bills and write rejected rows here (default: fail)"),
    ] = None,
    threads: Annotated[int, typer.Option(help="Kernel threads per part")] = 1,
    dask_scheduler: Annotated[
        str | None, typer.Option(help="Run the parts on this Dask scheduler (tcp://host:8786)")
    ] = None,
    dask_local: Annotated[
        int | None, typer.Option(help="Run the parts on a local Dask cluster of N processes")
    ] = None,
    dask_timeout: Annotated[
        float, typer.Option(help="Seconds to wait for the --dask-scheduler to answer")
    ] = 10.0,
    quiet: Annotated[bool, typer.Option(help="No progress bar")] = False,
) -> None:
    """Settle BILLS with their ITEMS and PERSONS; write per-bill, per-layer and alert results."""
    if dask_scheduler and dask_local:
        err.print("give --dask-scheduler or --dask-local, not both")
        raise typer.Exit(2)
    if chunk_bills < 1 or threads < 1:
        err.print("--chunk-bills and --threads are at least 1")
        raise typer.Exit(2)
    for p in (bills, items, persons, *policy, *([opening] if opening else [])):
        if not p.exists():
            err.print(f"[red]error:[/red] {p} does not exist")
            raise typer.Exit(2)
    try:
        load_policies(*policy)
    except PolicyError as e:
        err.print(f"[red]policy refused:[/red] {len(e.problems)} problem(s)")
        for p in e.problems:
            err.print(f"  {p}", highlight=False, markup=False)
        raise typer.Exit(1) from None
    client = None
    if dask_scheduler:  # before any input is read: an unreachable scheduler fails in seconds
        try:
            client = connect_dask(dask_scheduler, dask_timeout)
        except SchedulerUnreachable as e:
            print(f"onestop batch: {e}", file=sys.stderr)
            raise typer.Exit(2 if e.usage else EXIT_UNAVAILABLE) from None
    spec = Spec(
        str(bills), str(items), str(persons), tuple(str(p) for p in policy), str(out_dir),
        str(opening) if opening else None, threads, keep_going=reject_file is not None,
    )  # fmt: skip
    t0 = time.perf_counter()
    try:
        parts, nb, _ni = plan(spec, chunk_bills)
    except io.InputFileError as e:
        err.print(f"[red]refused:[/red] {e}", highlight=False, markup=False)
        raise typer.Exit(1) from None
    if opening is not None:
        from adapters.batch.run import _opening, _policies
        from engine.columnar import check_opening

        try:
            bad = check_opening(_opening(str(opening)), _policies(spec.policy)[1])
        except io.InputFileError as e:
            err.print(f"[red]refused:[/red] {opening}: {e}", highlight=False, markup=False)
            raise typer.Exit(1) from None
        if bad:
            err.print(f"[red]refused:[/red] {len(bad)} bad opening row(s):")
            for x in bad[:50]:
                err.print(f"  {x}", highlight=False, markup=False)
            raise typer.Exit(1)
    results: list[PartResult] = []
    where = (
        f"Dask {dask_scheduler}" if dask_scheduler
        else f"local Dask x{dask_local}" if dask_local else f"{threads} thread(s)"
    )  # fmt: skip
    with Progress(
        TextColumn("[bold]settling[/bold]"), BarColumn(), MofNCompleteColumn(),
        TextColumn("bills"), TimeElapsedColumn(), console=err, disable=quiet,
    ) as bar:  # fmt: skip
        task = bar.add_task("settle", total=nb)
        if dask_scheduler or dask_local:
            it = run_dask(spec, parts, local_workers=dask_local, client=client)
        else:
            it = run_local(spec, parts)
        try:
            for r in it:
                results.append(r)
                bar.advance(task, r.n_bills)
        except io.InputFileError as e:
            finish(spec, ok=False)
            err.print(f"[red]refused:[/red] {e}", highlight=False, markup=False)
            raise typer.Exit(1) from None
        finally:
            if client is not None:
                client.close()
    rejects = sorted(
        (x for r in results for x in r.rejects), key=lambda x: (x.file, x.row, x.field)
    )
    if rejects and reject_file is None:
        finish(spec, ok=False)
        err.print(
            f"[red]refused:[/red] {len(rejects)} bad row(s) (first part with problems shown); "
            "nothing was written. Fix them, or settle the rest with --reject-file FILE:"
        )
        for x in rejects[:50]:
            err.print(f"  {x}", highlight=False, markup=False)
        if len(rejects) > 50:
            err.print(f"  ... and {len(rejects) - 50} more")
        raise typer.Exit(1)
    if reject_file is not None:
        write_rejects(rejects, reject_file)
        if rejects:
            err.print(f"{len(rejects)} rejected row(s) written to {reject_file}")
    finish(spec, ok=True)
    print_summary(combine(sorted(results, key=lambda r: r.k)), time.perf_counter() - t0)
    out.print(f"results in {out_dir}/ (bills, layers, alerts, closing); {where}, "
              f"{len(parts)} part(s)", highlight=False)  # fmt: skip


if __name__ == "__main__":
    app()
