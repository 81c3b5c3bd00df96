"""What the Parquet encode of one part's output tables costs, column by column (issue 13, target 3).

    python -m benchmarks.batch_encode [--part 1] [--rounds 9] [--tables layers,bills]

One part of batch_ab's data (the same 1 M x 40 files; ``--data``) is settled in this process
and its tables captured where ``write_part`` hands them to ``parquetout.write_parquet`` (the
real Arrow tables: dictionary columns, the part's delta columns). Each table is then written
by pyarrow alone, into memory, with ``parquetout.writer_options`` (what ``write_parquet``
uses) and variants of them, interleaved rounds (a warm-up write of each first), this thread's
CPU: the whole table (as written, to a file too; statistics on; other codecs) and each column
alone (as written; dictionary on or off; delta or plain; RLE for booleans; no codec), with the
bytes each writes. Branch batch15's measure (benchmarks/README.md). Not a test: it asserts
nothing; the figures say what a per-column choice could save before a whole-run A/B
(``batch_ab``, ``batch_writer_ab``) is worth running.
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import typer

from benchmarks.batch_ab import POLICY, ROOT
from benchmarks.harness import in_turn

DELTA = "DELTA_BINARY_PACKED"


def capture(data: Path, k: int, out: Path) -> dict[str, tuple[pa.Table, dict[str, Any]]]:
    """Part ``k``'s output tables as ``write_part`` gives them to ``write_parquet``, by
    output directory, each with the keyword arguments it was given."""
    from adapters.batch import parquetout
    from adapters.batch import run as R
    from adapters.batch.plan import plan

    bills, items, persons = (str(data / f"{n}.parquet") for n in ("bills", "items", "persons"))
    spec = R.Spec(bills, items, persons, (str(POLICY),), str(out), overlap=False)
    parts, _, _ = plan(spec, R.CHUNK_BILLS)
    _, complete = R.settle_part_staged(spec, parts[k])
    assert complete is not None, "the part was refused"
    got: dict[str, tuple[pa.Table, dict[str, Any]]] = {}
    real = parquetout.write_parquet

    def keep(table: pa.Table, path: str | Path, metadata: Any = None, **kw: Any) -> None:
        got[Path(path).parent.name] = (table, kw)

    parquetout.write_parquet = keep
    try:
        complete()
    finally:
        parquetout.write_parquet = real
    return got


def options(table: pa.Table, kw: dict[str, Any], **change: Any) -> dict[str, Any]:
    """``write_parquet``'s writer options for ``table`` (``kw``: what it was given), with
    ``change`` applied: ``dictionary`` ({column: on}) and ``encoding`` ({column: encoding})
    merged per column, any other key set as it is."""
    from adapters.batch.parquetout import writer_options

    opts = writer_options(table, kw.get("compression", "snappy"), kw.get("statistics", False),
                          kw.get("delta", ()))  # fmt: skip
    enc = dict(opts.pop("column_encoding", {}))
    text = list(opts["use_dictionary"])
    for c, on in change.pop("dictionary", {}).items():
        text = [*text, c] if on else [x for x in text if x != c]
    enc.update(change.pop("encoding", {}))
    opts.update(change, use_dictionary=text)
    enc = {c: e for c, e in enc.items() if c not in text and c in table.column_names}
    if enc:
        opts["column_encoding"] = enc
    return opts


def encode(table: pa.Table, opts: dict[str, Any]) -> pa.Buffer:
    """``table`` as a Parquet file in memory, written as ``write_parquet`` writes a table with
    dictionary columns (no Arrow schema stored)."""
    sink = pa.BufferOutputStream()
    with pq.ParquetWriter(sink, table.schema, store_schema=False, **opts) as w:
        w.write_table(table)
    return sink.getvalue()


def writer(table: pa.Table, kw: dict[str, Any], **change: Any) -> Callable[[], int]:
    """A write of ``table`` into memory with ``options(table, kw, **change)``; returns its
    bytes."""
    opts = options(table, kw, **change)
    return lambda: int(encode(table, opts).size)


def column_variants(table: pa.Table, kw: dict[str, Any], c: str) -> dict[str, Callable[[], int]]:
    one = table.select([c])
    t = one.schema.field(c).type
    v = {"as written": writer(one, kw), "no codec": writer(one, kw, compression="none")}
    if pa.types.is_integer(t) or pa.types.is_date(t):
        delta = c in kw.get("delta", ())
        v["plain" if delta else "delta"] = writer(
            one, kw, encoding={c: "PLAIN" if delta else DELTA}
        )
        v["dictionary"] = writer(one, kw, dictionary={c: True})
    elif pa.types.is_boolean(t):
        v["RLE"] = writer(one, kw, encoding={c: "RLE"})
    return v


def table_variants(table: pa.Table, kw: dict[str, Any], path: Path) -> dict[str, Callable[[], int]]:
    from adapters.batch.parquetout import write_parquet

    def to_file() -> int:
        write_parquet(table, path, **kw)
        return path.stat().st_size

    return {"as written": writer(table, kw), "as written, to a file": to_file,
            "statistics on": writer(table, kw, write_statistics=True),
            "no codec": writer(table, kw, compression="none"),
            "lz4": writer(table, kw, compression="lz4"),
            "zstd": writer(table, kw, compression="zstd")}  # fmt: skip


def measure(label: str, variants: dict[str, Callable[[], int]], rounds: int) -> None:
    size = {k: f() for k, f in variants.items()}  # the warm-up write of each
    cpu: dict[str, list[float]] = {k: [] for k in variants}
    for r in range(rounds):
        for k, f in in_turn(variants.items(), r):
            c = time.thread_time()
            f()
            cpu[k].append(1e3 * (time.thread_time() - c))
    print(label)
    for k, xs in cpu.items():
        print(f"  {k:24s} CPU {min(xs):7.2f} / {statistics.median(xs):7.2f} ms"
              f"  {size[k]:>12,} bytes")  # fmt: skip


def main(
    data: Path = typer.Option(
        ROOT / f"benchmarks/out/data-1000000-40-{POLICY.stem}",
        help="input directory (batch_ab writes it)",
    ),
    part: int = typer.Option(1, help="the part whose tables are written"),
    rounds: int = typer.Option(9),
    tables: str = typer.Option("layers,bills,alerts,closing"),
    columns: bool = typer.Option(True, help="each column alone too"),
) -> None:
    work = Path(tempfile.mkdtemp(prefix="batch-encode-"))
    try:
        run(data, part, rounds, tables.split(","), columns, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(data: Path, part: int, rounds: int, tables: list[str], columns: bool, work: Path) -> None:
    got = capture(data, part, work)
    print(f"part {part}; load {os.getloadavg()}; CPU min / median of {rounds} rounds")
    for name in tables:
        table, kw = got[name]
        head = f"{name}: {table.num_rows:,} rows, delta {sorted(kw.get('delta', ()))}"
        measure(f"{head}; the whole table", table_variants(table, kw, work / f"{name}.parquet"),
                rounds)  # fmt: skip
        for c in table.column_names if columns else ():
            measure(f"{name}.{c} ({table.schema.field(c).type})",
                    column_variants(table, kw, c), rounds)  # fmt: skip
    print(f"load {os.getloadavg()}")


if __name__ == "__main__":
    typer.run(main)
