"""Where ``onestop batch`` spends its CPU, stage by stage, and the Parquet floor (issue 13, target 3).

    python -m benchmarks.batch_stages DATA_DIR [--out /tmp/stages] [--floor OUT_OF_A_RUN]

Stages: the functions ``onestop batch`` runs (adapters/batch/plan.py, run.py), one part after
the other in this thread (no pipeline), each timed by wall clock and by this thread's CPU time
(pyarrow's own pool threads are not counted; the process CPU is printed too). ``--floor DIR``
(the output directory of an earlier run): pyarrow alone on the same files: reading the item
columns, the plan's scan of the items' bill ids, the bills; writing that run's four output
tables with zstd and statistics, snappy without, and no codec: what no settlement code can
beat. Not a test: it asserts nothing. Prints the load average with the figures.
"""

from __future__ import annotations

import os
import resource
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import typer

if TYPE_CHECKING:  # numpy is imported by the stage "imports", not here
    import numpy as np

POLICY = "benchmarks/policy/sample_five_layer.yaml"


def stages(data: Path, out: Path, chunk_bills: int | None) -> None:
    t0, c0 = time.perf_counter(), time.process_time()
    spent: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])

    def faults() -> int:  # minor page faults of the process (pyarrow's pool threads too)
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt

    @contextmanager
    def stage(name: str) -> Iterator[None]:
        w, c, f = time.perf_counter(), time.thread_time(), faults()
        yield
        spent[name][0] += time.perf_counter() - w
        spent[name][1] += time.thread_time() - c
        spent[name][2] += faults() - f

    with stage("imports"):
        from adapters.batch import parquetout
        from adapters.batch import run as R
        from adapters.batch.encodings import delta_columns
        from adapters.batch.plan import plan
        from engine import columnar as C
    pol = (POLICY,)
    spec = R.Spec(bills=str(data / "bills.parquet"), items=str(data / "items.parquet"),
                  persons=str(data / "persons.parquet"), policy=pol, out=str(out),
                  overlap=False)  # fmt: skip
    with stage("policies"):
        policies, compiled = R._policies(pol)
        md = R.parquet_metadata(pol)
    with stage("plan"):
        parts, _, _ = plan(spec, chunk_bills or R.CHUNK_BILLS)
    with stage("persons file"):
        R._persons(spec.persons)
    buffers = C.OutputBuffers()
    # (prep) -> columns, or (prep, fields) for the layers and alerts (closing takes no fields)
    outputs: list[tuple[Callable[..., dict[str, Any]], str]] = [
        (C.bill_columns, "bills"), (C.layer_columns, "layers"),
        (C.alert_columns, "alerts"), (C.closing_columns, "closing")]  # fmt: skip
    for p in parts:
        with stage("read bills + items"):
            read = R.read_part(spec, p)
        with stage("persons lookup"):  # the bills' person ids are Coded (bill_cols codes them)
            persons = R.persons_for(spec, cast("C.Coded", read.bills.person_id))
        with stage("checks and prepare"):
            prep = C.prepare_columns(read.bills, read.items, persons, policies, None,
                                     compiled=compiled, extra_rejects=list(p.extra),
                                     out=buffers)  # fmt: skip
        with stage("kernel"):
            C.run(prep, 1)
        with stage("figures"):
            R.figures(prep, R.PartResult(p.k, len(read.bills), 0, 0, [], False))
        labels: dict[int, Any] = {}  # Arrow labels made once a part (parquetout.arrow_table)
        fields: np.ndarray | None = None
        for columns, name in outputs:
            if name == "layers":
                with stage("layer fields"):  # as write_part: once for the layers and alerts
                    fields = C.layer_fields(prep, buffers)
            with stage(f"{name}: columns"):
                cols = columns(prep, fields) if name in ("layers", "alerts") else columns(prep)
            with stage(f"{name}: Arrow table"):
                table = parquetout.arrow_table(cols, labels)
            with stage(f"{name}: Parquet write"):
                parquetout.write_parquet(table, out / name / f"part-{p.k:05d}.parquet", md,
                                 delta=delta_columns(name, table))  # fmt: skip
        del fields
        buffers.give_back(prep)
    cpu = sum(v[1] for v in spent.values())
    print(f"{len(parts)} parts; wall {time.perf_counter() - t0:.2f} s, process CPU "
          f"{time.process_time() - c0:.2f} s; load {os.getloadavg()}")  # fmt: skip
    for name, (w, c, f) in sorted(spent.items(), key=lambda kv: -kv[1][1]):
        print(
            f"{name:28s} CPU {c:6.2f} s ({100 * c / cpu:4.1f} %)  wall {w:6.2f} s  "
            f"minor faults {int(f):8d}"
        )


def floor(data: Path, run_out: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    def best(label: str, f: Callable[[], object], n: int = 2) -> None:
        figs = []
        for _ in range(n):
            c, w = time.process_time(), time.perf_counter()
            f()
            figs.append((time.process_time() - c, time.perf_counter() - w))
        c, w = min(figs)
        print(f"{label:58s} CPU {c:6.2f} s  wall {w:6.2f} s  load {os.getloadavg()[0]:.1f}")

    items = str(data / "items.parquet")
    cols = [c for c in pq.read_schema(items).names if c != "hospital"]
    best("read the item columns (pyarrow's threads)", lambda: pq.read_table(items, columns=cols))
    best("read the item columns (one thread)",
         lambda: pq.read_table(items, columns=cols, use_threads=False))  # fmt: skip
    best("the plan's scan: the items' bill ids (dictionary pages)",
         lambda: pq.read_table(items, columns=["bill_id"], read_dictionary=["bill_id"]))  # fmt: skip
    best("read the bills", lambda: pq.read_table(data / "bills.parquet"))
    tables = [pq.read_table(f) for n in ("bills", "layers", "alerts", "closing")
              for f in sorted((run_out / n).glob("*.parquet"))]  # fmt: skip
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / "batch-floor.parquet"

    def write(codec: str, stats: bool) -> None:
        for t in tables:
            text = [f.name for f in t.schema if pa.types.is_string(f.type)]
            pq.write_table(t, tmp, compression=codec, write_statistics=stats, use_dictionary=text)

    for codec, stats in (("zstd", True), ("snappy", False), ("none", False)):
        best(f"write the run's 4 outputs: {codec}, statistics {stats}",
             partial(write, codec, stats))  # fmt: skip
    tmp.unlink(missing_ok=True)


def main(
    data: Path = typer.Argument(..., help="bills/items/persons.parquet (benchmarks.synth)"),
    out: Path = typer.Option(Path("/tmp/batch-stages"), help="where the stages write"),
    chunk_bills: int | None = typer.Option(
        None, help="--chunk-bills (default: the command's, adapters.batch.run.CHUNK_BILLS)"
    ),
    floor_of: Path | None = typer.Option(None, "--floor", help="an earlier run's --out"),
) -> None:
    if floor_of is not None:
        floor(data, floor_of)
        return
    from adapters.batch.memory import reexec_keeping_memory

    reexec_keeping_memory()  # the allocators ``onestop batch`` runs with (ONESTOP_BATCH_MEMORY=0: not)
    from adapters.batch.nopandas import keep_pandas_out

    keep_pandas_out([])  # as the console process (adapters/batch/nopandas.py)
    stages(data, out, chunk_bills)


if __name__ == "__main__":
    typer.run(main)
