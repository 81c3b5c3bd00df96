"""``onestop batch`` end to end, this tree against a baseline tree, interleaved (A/B).

    git archive main | tar -x -C /tmp/batch-base       # the code to compare against
    python -m benchmarks.batch_ab --baseline /tmp/batch-base --bills 1000000 --rounds 3

Each run is a whole process (``onestop batch`` of the venv, ``PYTHONPATH`` on one tree), Parquet
in and out, on the same generated input (``benchmarks.synth``, seed 0, the sample five-layer
table; written once to benchmarks/out/data-...); one warm-up run of each (the numba cache of
each tree), then the rounds A B A B ... (benchmarks/harness.py: min, median, max, CPU, load).
After the rounds the outputs of the last run of each tree are compared table by table (every
part's rows, types and schema metadata) and summary.json: the figures are reported only with
that check's answer. Which columns are declared non-null is compared apart (printed, not a
difference of content). ``--baseline-chunk-bills N``: the baseline's runs cut into parts of N bills
(``--baseline .`` with it: one tree, two part sizes); the outputs are then compared as whole
tables. ``--refused BILLS``: the runs read this bills file instead, which they must refuse
(exit 1, a ``refused:`` line): what a refused run costs. Not a test: it asserts nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import typer

from adapters.batch.run import CHUNK_BILLS
from benchmarks import harness as H

ROOT = Path(__file__).resolve().parent.parent
POLICY = ROOT / "benchmarks/policy/sample_five_layer.yaml"
ONESTOP = Path(sys.executable).with_name("onestop")
OUTPUTS = ("bills", "layers", "alerts", "closing", "funds")


def same_outputs(
    a: Path, b: Path, same_parts: bool = True, notes: list[str] | None = None
) -> list[str]:
    """What differs between two runs' output directories (empty: the same content): every
    part's rows, column names and types, schema metadata, and summary.json. Whether a column
    is declared non-null (Parquet REQUIRED: batch7 declared every column that is never null)
    is not part of the content: the tables are compared with every field nullable, and a
    table whose non-null columns differ is said in ``notes`` (its columns named).
    ``same_parts=False`` (runs cut into parts of different sizes): each table's parts read as
    one table (closing/ sorted by its key: a part's person and household rows come in part
    order)."""
    diff: list[str] = []
    said: set[str] = set()

    def note(name: str, ta: pa.Table, tb: pa.Table) -> None:
        ra, rb = _required(ta), _required(tb)
        if ra != rb and name not in said and notes is not None:
            said.add(name)
            notes.append(f"{name}: non-null columns {sorted(ra) or 'none'} against "
                         f"{sorted(rb) or 'none'}")  # fmt: skip

    for name in OUTPUTS:
        fa, fb = sorted((a / name).glob("*.parquet")), sorted((b / name).glob("*.parquet"))
        if not same_parts:
            ta, tb = (pa.concat_tables([_nullable(pq.read_table(f)) for f in fs])
                      for fs in (fa, fb))  # fmt: skip
            if fa and fb:
                note(name, pq.read_table(fa[0]), pq.read_table(fb[0]))
            if name == "closing":
                ta, tb = (t.sort_by([(k, "ascending") for k in CLOSING_KEY]) for t in (ta, tb))
            if not ta.equals(tb, check_metadata=True):
                diff.append(f"{name}: rows, types or metadata differ")
            continue
        if [f.name for f in fa] != [f.name for f in fb]:
            diff.append(f"{name}: parts {[f.name for f in fa]} != {[f.name for f in fb]}")
            continue
        for x, y in zip(fa, fb, strict=True):
            tx, ty = pq.read_table(x), pq.read_table(y)
            note(name, tx, ty)
            if not _nullable(tx).equals(_nullable(ty), check_metadata=True):
                diff.append(f"{name}/{x.name}: rows, types or metadata differ")
    if json.loads((a / "summary.json").read_text()) != json.loads((b / "summary.json").read_text()):
        diff.append("summary.json differs")
    return diff


def _nullable(t: pa.Table) -> pa.Table:
    """``t`` with every field nullable (its values, types and metadata as they are)."""
    schema = pa.schema([f.with_nullable(True) for f in t.schema], metadata=t.schema.metadata)
    return pa.Table.from_arrays(t.columns, schema=schema)


def _required(t: pa.Table) -> set[str]:
    return {f.name for f in t.schema if not f.nullable}


#: a closing row's key (one row per slot and layer)
CLOSING_KEY = ("scope", "id", "year", "layer_id")


def main(
    baseline: Path = typer.Option(..., help="a tree of the code to compare against"),
    bills: int = typer.Option(1_000_000),
    items: float = typer.Option(40),
    rounds: int = typer.Option(3),
    threads: int = typer.Option(1, help="--threads of both runs"),
    chunk_bills: int = typer.Option(CHUNK_BILLS, help="--chunk-bills of this tree's runs"),
    baseline_chunk_bills: int | None = typer.Option(
        None,
        help="--chunk-bills of the baseline's runs (default: --chunk-bills); the outputs "
        "are then compared as whole tables, not part by part",
    ),
    data: Path | None = typer.Option(
        None, help="input directory (default benchmarks/out/data-...)"
    ),
    refused: Path | None = typer.Option(
        None,
        help="a bills file the runs refuse (e.g. the data's bills with two rows swapped): "
        "every run must exit 1 with its 'refused:' line; nothing to compare",
    ),
    out: Path = typer.Option(ROOT / "benchmarks/out/batch_ab.json"),
) -> None:
    from benchmarks import synth
    from engine.policy.load import load_policies

    m = H.machine()
    print(H.machine_line(m), flush=True)
    data = data or ROOT / f"benchmarks/out/data-{bills}-{items:g}-{POLICY.stem}"
    if not (data / "items.parquet").exists():
        ps = load_policies(POLICY)
        synth.write(data, synth.generate(bills, items, 0, **synth.for_table(ps.tables[0])))
    n_items = pq.ParquetFile(data / "items.parquet").metadata.num_rows
    print(f"data: {bills:,} bills, {n_items:,} items in {data}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="batch-ab-"))
    trees = {"this tree": ROOT, "baseline": baseline.resolve()}
    chunks = {"this tree": chunk_bills, "baseline": baseline_chunk_bills or chunk_bills}

    def contender(label: str, tree: Path) -> H.Contender:
        env = H.user_env(tree)

        def run(_: Any) -> None:
            o = work / label.replace(" ", "-")
            shutil.rmtree(o, ignore_errors=True)
            inputs = [str(refused or data / "bills.parquet"),
                      *(str(data / f"{n}.parquet") for n in ("items", "persons"))]  # fmt: skip
            cmd = [str(ONESTOP), "batch", *inputs, "--policy", str(POLICY), "--out", str(o),
                   "--threads", str(threads), "--chunk-bills", str(chunks[label]), "--quiet",
                   "--json"]  # fmt: skip
            if refused is None:
                H.timed_process(cmd, env=env, cwd=tree)
                return
            r = subprocess.run(cmd, env=env, cwd=tree, capture_output=True, text=True)
            if r.returncode != 1 or "refused" not in r.stderr:
                raise RuntimeError(f"not refused: exit {r.returncode}\n{r.stderr[-2000:]}")

        cut = f", --chunk-bills {chunks[label]}" if len(set(chunks.values())) > 1 else ""
        if refused is not None:
            return H.Contender(f"refused onestop batch ({label}{cut})", run, work=1, unit="runs")
        return H.Contender(f"onestop batch ({label}{cut})", run, work=n_items, unit="items")

    cs = [contender(k, v) for k, v in trees.items()]
    figs = H.interleave(cs, rounds, say=lambda s: print(s, flush=True))
    if refused is not None:
        print("\n## figures", *(f.line() for f in figs.values()), sep="\n")
        print(H.ratio_line("baseline / this tree", H.ratio(figs[cs[1].name], figs[cs[0].name])))
        print(f"load average at the end: {os.getloadavg()}")
        shutil.rmtree(work, ignore_errors=True)
        return
    notes: list[str] = []
    diff = same_outputs(work / "this-tree", work / "baseline",
                        same_parts=chunks["this tree"] == chunks["baseline"], notes=notes)  # fmt: skip
    print("\n## figures", *(f.line() for f in figs.values()), sep="\n")
    r = H.ratio(figs[cs[1].name], figs[cs[0].name])
    print(H.ratio_line("baseline / this tree", r))
    print(f"outputs: {'the same content' if not diff else 'DIFFERENT: ' + '; '.join(diff)}")
    for n in notes:  # the same content, declared differently (this tree against the baseline)
        print(f"schema, nullability only: {n}")
    H.save(out, {"machine": m, "bills": bills, "items": n_items, "threads": threads,
                 "chunk_bills": chunks, "baseline": str(baseline), "figures": figs,
                 "ratio": r, "outputs_differ": diff, "load_at_end": os.getloadavg()})  # fmt: skip
    shutil.rmtree(work, ignore_errors=True)
    print(f"load average at the end: {os.getloadavg()}; figures in {out}")


if __name__ == "__main__":
    typer.run(main)
