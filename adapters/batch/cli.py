"""``onestop batch``: settle bills from Parquet/CSV files in household and date order.

    python -m adapters.batch.cli batch BILLS ITEMS PERSONS --policy P --out DIR
        [--opening FILE] [--fund-used FILE] [--chunk-bills N] [--reject-file F] [--threads N]
        [--dask-scheduler ADDR | --dask-local N]

Writes DIR/bills, DIR/layers, DIR/alerts and DIR/closing (Parquet parts, one per chunk; the
closing accounts can be the --opening of the next run; every part's schema metadata names the
engine version and the policy tables with their SHA-256), DIR/funds (the fund budgets of
domain.md section 12: adapters/batch/funds.py), DIR/summary.json (the summary per
fund, integer fen) and DIR/manifest.json (inputs and policy files with their SHA-256, engine
version, counts, start and end). Exit codes (the one table, adapters/cli/exitcodes.py): 0 done,
1 input refused (a missing file, rejected rows without --reject-file, unsorted input, a bad
policy table, funds.yaml or --fund-used file), 2 usage error.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import pyarrow as pa
import pyarrow.csv as pcsv
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from adapters.batch import heapahead, io, parquetout
from adapters.batch.funds import (
    FundUsedError,
    fund_rows,
    fund_table,
    opening_budgets,
    read_fund_used,
)
from adapters.batch.plan import plan
from adapters.batch.prefetch import Prefetch
from adapters.batch.run import (
    CHUNK_BILLS,
    OUTPUTS,
    PartResult,
    SchedulerUnreachable,
    Spec,
    combine,
    connect_dask,
    finish,
    parquet_metadata,
    policy_manifest,
    run_dask,
    run_local,
    sha256_of,
)
from adapters.cli.exitcodes import Exit
from adapters.cli.output import console, print_problems, problem_line, show, text
from engine import __version__ as ENGINE_VERSION
from engine.columnar import Reject
from engine.errors import PolicyError
from engine.funds import FundBook, load_funds
from engine.money import yuan
from engine.policy.load import load_policies

#: the scheduler cannot be reached (adapters/cli/exitcodes.py: UNAVAILABLE)
EXIT_UNAVAILABLE = 5

app = typer.Typer(add_completion=False, help="Batch settlement of bills from Parquet/CSV.")
#: the summary: whole when it is not a terminal (a pipe, a file: no width limit, nothing cut or
#: wrapped), folding cells on one (adapters/cli/output.py, as every other command prints)
out = console()
err = Console(stderr=True, soft_wrap=True)


@app.callback()
def _group() -> None:
    """Batch settlement (a group, so that the command is named ``batch`` everywhere)."""


#: the rejects file's columns that can be null (a value left empty, a row of no bill); the
#: others are declared non-null
REJECT_NULLABLE = ("value", "bill_id", "hospital")


def write_rejects(rejects: list[Reject], path: Path) -> None:
    t = parquetout.required(pa.table({
        "file": pa.array([r.file for r in rejects], pa.string()),
        "row": pa.array([r.row for r in rejects], pa.int64()),
        "field": pa.array([r.field for r in rejects], pa.string()),
        "value": pa.array([None if r.value is None else str(r.value) for r in rejects], pa.string()),
        "rule": pa.array([r.rule for r in rejects], pa.string()),
        "bill_id": pa.array([r.bill_id for r in rejects], pa.string()),
        "hospital": pa.array([r.hospital for r in rejects], pa.string()),
    }), REJECT_NULLABLE)  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    if io.is_csv(path):
        pcsv.write_csv(t, str(path))
    else:
        parquetout.write_parquet(t, path)


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
        t.add_row(text(lid), text(f["fund_code"]), text(name), f"{f['bills']:,}",
                  f"{f['persons']:,}", yuan(amount))  # fmt: skip
    show(out, t)
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
    show(out, s)
    rows = fig.get("fund_budgets") or []
    if rows:
        b = Table(title="Fund budgets (yuan)", title_justify="left")
        cols = ("region", "fund", "year", "mode", "budget", "carried in", "used before", "paid",
                "balance after", "bound bills")  # fmt: skip
        for c in cols:
            b.add_column(c, justify="left" if c in ("region", "fund", "mode") else "right")

        def y(v: int | None) -> str:
            return "-" if v is None else yuan(v)

        for r in rows:
            b.add_row(text(r["region"]), text(r["fund_code"]), str(r["year"]), r["budget_mode"],
                      y(r["budget"]), y(r["carried_in"]), y(r["used_before"]), y(r["paid"]),
                      y(r["closing_balance"]), f"{r['bound_bills']:,}")  # fmt: skip
        show(out, b)
    rate = tot.get("read", 0) / seconds if seconds else 0
    out.print(text(
        f"{tot.get('bills', 0):,} bills settled of {tot.get('read', 0):,} read "
        f"({tot.get('items', 0):,} items), {tot.get('rejected_rows', 0):,} rejected row(s); "
        f"{seconds:.1f} s, {rate:,.0f} bills/s"
    ))  # fmt: skip


def summary_doc(fig: dict[str, Any]) -> dict[str, Any]:
    """The summary per fund as written to summary.json (amounts in integer fen)."""
    tot = fig["totals"]
    total, net = tot.get("total", 0), tot.get("net_selfpay", 0)
    return {
        "unit": "fen",
        "funds": [
            {"layer_id": lid, "fund_code": f["fund_code"], "name": f["name"], "kind": f["kind"],
             "bills": f["bills"], "persons": f["persons"],
             # an alert layer pays nothing: its relief is suggested, not paid
             "amount": f["amount"], "relief": f["relief"]}
            for lid, f in fig["layers"].items()
        ],
        "patients": {
            "billed": total, "funds": total - net, "window_pay": tot.get("window_pay", 0),
            "net_selfpay": net, "alerts": tot.get("alerts", 0), "relief": tot.get("relief", 0),
        },
        "counts": {
            "bills_read": tot.get("read", 0), "bills_settled": tot.get("bills", 0),
            "items": tot.get("items", 0), "rejected_rows": tot.get("rejected_rows", 0),
        },
        # domain.md section 12: one row per fund-year, as in DIR/funds
        "fund_budgets": fig.get("fund_budgets", []),
    }  # fmt: skip


def _file_entry(
    path: str | Path, digest: Callable[[str | Path], str] = sha256_of
) -> dict[str, Any]:
    p = Path(path)
    if p.is_dir():  # an opening directory (the closing/ of an earlier run): every part
        return {"path": str(p), "files": [_file_entry(f) for f in sorted(p.glob("*.parquet"))]}
    return {"path": str(p), "bytes": p.stat().st_size, "sha256": digest(p)}


def manifest(
    spec: Spec, fig: dict[str, Any], started: datetime, ended: datetime, n_parts: int,
    chunk_bills: int, where: str, reject_file: Path | None,
    sorted_from: dict[str, str] | None = None, fund_used: str | None = None,
    funds_files: tuple[str, ...] = (), digest: Callable[[str | Path], str] = sha256_of,
) -> dict[str, Any]:  # fmt: skip
    """What a run read and with what: inputs and policy files with their SHA-256, the engine
    version, counts, start and end (UTC). Reading the inputs again for the digests costs one
    sequential pass over them (memory: one 1 MiB block); ``digest``: the inputs' digests, taken
    beside the plan (``Prefetch.digest``)."""
    inputs = {"bills": spec.bills, "items": spec.items, "persons": spec.persons}
    if sorted_from:  # the files given; the run read the sorted copies (listed as "sorted")
        inputs.update(sorted_from)
    if spec.opening:
        inputs["opening"] = spec.opening
    if fund_used:
        inputs["fund_used"] = fund_used
    tot = fig["totals"]
    return {
        **({"sorted": {"bills": spec.bills, "items": spec.items}} if sorted_from else {}),
        "engine_version": ENGINE_VERSION,
        "started_at": started.isoformat(timespec="seconds"),
        "ended_at": ended.isoformat(timespec="seconds"),
        "inputs": {k: _file_entry(v, digest) for k, v in inputs.items()},
        "policies": list(policy_manifest(spec.policy)),
        "funds": [{"file": f, "sha256": sha256_of(f)} for f in funds_files],
        "counts": {
            "bills_read": tot.get("read", 0), "bills_settled": tot.get("bills", 0),
            "items": tot.get("items", 0), "rejected_rows": tot.get("rejected_rows", 0),
            "parts": n_parts,
        },
        "options": {"chunk_bills": chunk_bills, "threads": spec.threads, "where": where,
                    "reject_file": str(reject_file) if reject_file else None,
                    "compression": spec.compression, "statistics": spec.statistics,
                    "parquet_encoding": "compat" if spec.parquet_compat else "delta"},
        "outputs": [*OUTPUTS, "summary.json"],
    }  # fmt: skip


@dataclass
class BatchRun:
    """What ``settle_files`` did: the figures (``combine`` plus ``fund_budgets``), the summary
    as in summary.json, the seconds it took, where it ran and the number of parts."""

    fig: dict[str, Any]
    summary: dict[str, Any]
    seconds: float
    where: str
    parts: list[Any]


def settle_files(
    bills: Path, items: Path, persons: Path, policy: list[Path], out_dir: Path, *,
    opening: Path | None = None, fund_used: Path | None = None, chunk_bills: int = CHUNK_BILLS,
    reject_file: Path | None = None, threads: int = 1, dask_scheduler: str | None = None,
    dask_local: int | None = None, sort: bool = False, encoding: str = "utf-8",
    dask_timeout: float = 10.0, quiet: bool = False, items_by_fund: bool = False,
    label: str = "settling", compression: str = parquetout.COMPRESSION, statistics: bool = False,
    parquet_compat: bool = False,
) -> BatchRun:  # fmt: skip
    """One ``onestop batch`` run (every check, the settlement, OUT's files, summary.json and
    manifest.json), without printing the summary: the code of the command, also used by
    ``onestop simulate`` (adapters/simulate). A refusal prints its lines on stderr and raises
    ``typer.Exit`` with the code of adapters/cli/exitcodes.py."""
    if dask_scheduler and dask_local:
        err.print("give --dask-scheduler or --dask-local, not both")
        raise typer.Exit(2)
    if chunk_bills < 1 or threads < 1:
        err.print("--chunk-bills and --threads are at least 1")
        raise typer.Exit(2)
    if compression not in parquetout.COMPRESSIONS:
        err.print(f"--compression {compression!r} is not one of "
                  f"{', '.join(parquetout.COMPRESSIONS)}",
                  highlight=False, markup=False)  # fmt: skip
        raise typer.Exit(2)
    for p in (bills, items, persons, *policy, *([opening] if opening else []),
              *([fund_used] if fund_used else [])):  # fmt: skip
        if not p.exists():
            problem_line(err, "refused:", f"{p} does not exist")
            raise typer.Exit(Exit.REFUSED)
    try:
        policies = load_policies(*policy)
        book: FundBook = load_funds(*policy)
    except PolicyError as e:
        print_problems(err, "policy refused:", e.problems)
        raise typer.Exit(1) from None
    try:
        used = read_fund_used(fund_used, book) if fund_used else {}
    except FundUsedError as e:
        problem_line(err, "refused:", str(e))
        raise typer.Exit(Exit.REFUSED) from None
    budgets = opening_budgets(book, used, policies.regions)
    client = None
    if dask_scheduler:  # before any input is read: an unreachable scheduler fails in seconds
        try:
            client = connect_dask(dask_scheduler, dask_timeout)
        except SchedulerUnreachable as e:
            print(f"onestop batch: {e}", file=sys.stderr)
            raise typer.Exit(2 if e.usage else EXIT_UNAVAILABLE) from None
    try:
        io.use_encoding([], encoding)
    except LookupError:
        err.print(f"--encoding {encoding!r} is not an encoding Python knows (e.g. utf-8, gbk, "
                  "gb18030)", highlight=False, markup=False)  # fmt: skip
        raise typer.Exit(2) from None
    given = {"bills": str(bills), "items": str(items)}
    if sort:
        from adapters.batch.sort import sort_inputs

        io.use_encoding([str(bills), str(items)], encoding)
        try:
            b, i = sort_inputs(str(bills), str(items), out_dir / "sorted")
        except io.InputFileError as e:
            err.print(f"[red]refused:[/red] {e}", highlight=False, markup=False)
            raise typer.Exit(1) from None
        bills, items = Path(b), Path(i)
    spec = Spec(
        str(bills), str(items), str(persons), tuple(str(p) for p in policy), str(out_dir),
        str(opening) if opening else None, threads, keep_going=reject_file is not None,
        encoding=encoding, budgets=tuple(sorted(budgets.items())), items_by_fund=items_by_fund,
        compression=compression, statistics=statistics, parquet_compat=parquet_compat,
    )  # fmt: skip
    # the persons file and the inputs' digests beside the plan (adapters/batch/prefetch.py)
    read = [*given.values()] if sort else [spec.bills, spec.items]  # as the manifest names them
    read += [spec.persons, *([spec.opening] if spec.opening else [])]
    local = not (dask_scheduler or dask_local)
    heap = heapahead.size_for(spec.bills, spec.items, chunk_bills) if local and not budgets else 0
    pre = Prefetch(spec, persons=local, digest_paths=read, heap=heap)
    try:
        t0 = time.perf_counter()
        started = datetime.now(UTC)
        try:
            parts, nb, _ni = plan(spec, chunk_bills)
        except io.InputFileError as e:
            problem_line(err, "refused:", str(e))
            raise typer.Exit(1) from None
        if opening is not None:
            from adapters.batch.run import _opening, _policies
            from engine.columnar import check_opening

            try:
                bad = check_opening(_opening(str(opening)), _policies(spec.policy)[1])
            except io.InputFileError as e:  # names the file
                problem_line(err, "refused:", str(e))
                raise typer.Exit(1) from None
            if bad:
                err.print(f"[red]refused:[/red] {len(bad)} bad opening row(s):")
                for x in bad[:50]:
                    err.print(f"  {x}", highlight=False, markup=False)
                raise typer.Exit(1)
        if budgets:
            err.print(f"hard budgets for {len(budgets)} fund-year(s): one part, settled in the "
                      "region-wide order (domain.md section 12)", highlight=False, markup=False)  # fmt: skip
        results: list[PartResult] = []
        where = (
            f"Dask {dask_scheduler}" if dask_scheduler
            else f"local Dask x{dask_local}" if dask_local else f"{threads} thread(s)"
        )  # fmt: skip
        with Progress(
            TextColumn(f"[bold]{label}[/bold]"), BarColumn(), MofNCompleteColumn(),
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
                problem_line(err, "refused:", str(e))
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
            try:
                write_rejects(rejects, reject_file)
            except (OSError, pa.ArrowException) as e:  # before any output is moved into place
                finish(spec, ok=False)
                problem_line(err, "refused:", f"--reject-file {reject_file}: cannot be written "
                             f"({' '.join(str(e).split())}); nothing was written")  # fmt: skip
                raise typer.Exit(1) from None
            if rejects:
                err.print(f"{len(rejects)} rejected row(s) written to {reject_file}")
        finish(spec, ok=True)
        fig = combine(sorted(results, key=lambda r: r.k))
        fig["fund_budgets"] = fund_rows(book, used, fig["funds"], policies.regions)
        parquetout.write_parquet(fund_table(fig["fund_budgets"]),
                                 out_dir / "funds" / "part-00000.parquet",
                                 parquet_metadata(spec.policy), compression=compression,
                                 statistics=statistics)  # fmt: skip
        seconds = time.perf_counter() - t0
        summary = summary_doc(fig)
        (out_dir / "summary.json").write_text(
            json.dumps(summary, indent=2, ensure_ascii=False) + "\n"
        )
        doc = manifest(spec, fig, started, datetime.now(UTC), len(parts), chunk_bills, where,
                       reject_file, given if sort else None, str(fund_used) if fund_used else None,
                       book.files, pre.digest)  # fmt: skip
        (out_dir / "manifest.json").write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
        return BatchRun(fig, summary, seconds, where, parts)
    except typer.Exit as e:  # refused: the process may end without waiting (exit_refused)
        pre.cancel(refused=e.exit_code != 0)
        raise
    except BaseException:  # failed: the digests and persons it will not use stop
        pre.cancel()
        raise
    finally:
        pre.close()


# how a run's parts are settled: `onestop batch`'s options, and `onestop simulate`'s for its runs
ChunkBillsOpt = Annotated[int, typer.Option(help="Bills per part (memory bound)")]
ThreadsOpt = Annotated[int, typer.Option(help="Kernel threads per part")]
DaskSchedulerOpt = Annotated[
    str | None, typer.Option(help="Run the parts on this Dask scheduler (tcp://host:8786)")
]
DaskLocalOpt = Annotated[
    int | None, typer.Option(help="Run the parts on a local Dask cluster of N processes")
]
DaskTimeoutOpt = Annotated[
    float, typer.Option(help="Seconds to wait for the --dask-scheduler to answer")
]


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
    fund_used: Annotated[
        Path | None,
        typer.Option(
            help="What each fund used before this batch (CSV or JSON: region, "
            "fund_code, year, used); default 0"
        ),
    ] = None,
    chunk_bills: ChunkBillsOpt = CHUNK_BILLS,
    reject_file: Annotated[
        Path | None,
        typer.Option(help="Settle the good bills and write rejected rows here (default: fail)"),
    ] = None,
    threads: ThreadsOpt = 1,
    dask_scheduler: DaskSchedulerOpt = None,
    dask_local: DaskLocalOpt = None,
    sort: Annotated[
        bool,
        typer.Option(
            help="Sort BILLS and ITEMS first (out of core) into OUT/sorted/, then settle those"
        ),
    ] = False,
    encoding: Annotated[
        str,
        typer.Option(
            help="Text encoding of CSV inputs, e.g. gbk or gb18030 (default utf-8; "
            "a UTF-8 byte-order mark is skipped)"
        ),
    ] = "utf-8",
    dask_timeout: DaskTimeoutOpt = 10.0,
    quiet: Annotated[bool, typer.Option(help="No progress bar")] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the summary as JSON (as in summary.json)")
    ] = False,
    items_by_fund: Annotated[
        bool,
        typer.Option(
            "--items-by-fund",
            help="Also write OUT/items_by_fund/: per bill item, which fund paid what "
            "(domain.md section 11; row, bill_id, hospital, item_index, layer_id, fund_code, "
            "amount; the patient's part as layer_id 'selfpay')",
        ),
    ] = False,
    compression: Annotated[
        str,
        typer.Option(
            help="Codec of the Parquet outputs: snappy (default: fast, read everywhere), zstd "
            "(~40 % smaller files, ~1.3x the writing CPU; the default before), lz4, none"
        ),
    ] = parquetout.COMPRESSION,
    statistics: Annotated[
        bool,
        typer.Option(help="Write min/max statistics per column in the Parquet outputs"),
    ] = False,
    parquet_compat: Annotated[
        bool,
        typer.Option(
            "--parquet-compat",
            help="Write every output column plain (text as a dictionary), none "
            "DELTA_BINARY_PACKED: for Parquet readers of older stacks (the dense integer and "
            "date columns of bills/, layers/ and alerts/ are delta-encoded by default)",
        ),
    ] = False,
) -> None:
    """Settle BILLS with their ITEMS and PERSONS; write per-bill, per-layer and alert results."""
    run = settle_files(
        bills, items, persons, policy, out_dir, opening=opening, fund_used=fund_used,
        chunk_bills=chunk_bills, reject_file=reject_file, threads=threads,
        dask_scheduler=dask_scheduler, dask_local=dask_local, sort=sort, encoding=encoding,
        dask_timeout=dask_timeout, quiet=quiet, items_by_fund=items_by_fund,
        compression=compression, statistics=statistics, parquet_compat=parquet_compat,
    )  # fmt: skip
    fig, summary, seconds, where, parts = run.fig, run.summary, run.seconds, run.where, run.parts
    if as_json:
        print(json.dumps(summary, indent=2, ensure_ascii=False))
        return
    print_summary(fig, seconds)
    out.print(text(f"results in {out_dir}/ (bills, layers, alerts, closing, funds, summary.json, "
                   f"manifest.json); {where}, {len(parts)} part(s)"))  # fmt: skip


if __name__ == "__main__":
    from adapters.batch import prefetch

    prefetch.EXIT_REFUSED_AT_ONCE = True  # as the console script (adapters/cli/main.py)
    try:
        app()
    except SystemExit as e:
        if isinstance(e.code, int) and e.code:
            prefetch.exit_refused(e.code)
        raise
