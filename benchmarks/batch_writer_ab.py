"""``onestop batch``'s writer thread, this tree against a baseline tree, interleaved (A/B).

    python -m benchmarks.batch_writer_ab --baseline /tmp/batch-base --rounds 6

Whole runs as ``batch_ab`` runs them (the same data, ``--threads 1 --quiet --json``, the
console's memory settings of adapters/batch/memory.py in the environment), each in a process
that runs ``adapters.cli.main`` with ``run.complete_part`` wrapped: the thread CPU and the
system time (``RUSAGE_THREAD``) of each part's figures and files, i.e. the writer thread's
work (batch12w's and batch13w's measure, benchmarks/README.md). The rounds are the harness's
(``harness.interleave``: a warm-up run of each tree, then A B A B ..., wall, CPU and load of
each run); besides them each run's writer CPU and system time summed over its parts and the
process's system time, their minimum and median. The outputs are not compared
(``batch_ab`` does that). Not a test: it asserts nothing.
"""

from __future__ import annotations

import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import pyarrow.parquet as pq
import typer

from adapters.batch.memory import batch_env
from benchmarks import harness as H
from benchmarks.batch_ab import POLICY, ROOT

#: the child: ``onestop`` in process with ``complete_part`` timed into the file B_W_OUT
CHILD = """
import os, resource, sys, time
import adapters.batch.run as R
out, inner = os.environ["B_W_OUT"], R.complete_part
def timed(*a, **k):
    t, r = time.thread_time(), resource.getrusage(resource.RUSAGE_THREAD).ru_stime
    try:
        return inner(*a, **k)
    finally:
        s = resource.getrusage(resource.RUSAGE_THREAD).ru_stime - r
        with open(out, "a") as f:
            f.write(f"{time.thread_time() - t:.6f} {s:.6f}\\n")
R.complete_part = timed
sys.argv = ["onestop", *sys.argv[1:]]
from adapters.cli.main import main
main()
"""

#: the figures a run adds besides the harness's wall and CPU: seconds
EXTRA = ("writer CPU", "writer system", "process system")


def one_run(tree: Path, data: Path, work: Path, label: str) -> tuple[float, float, float]:
    """(writer CPU, its system time, the process's system time) of one whole run."""
    out, rec = work / f"out-{label}", work / f"rec-{label}"
    shutil.rmtree(out, ignore_errors=True)
    rec.unlink(missing_ok=True)
    env = H.user_env(tree, B_W_OUT=str(rec))
    env = batch_env(env) or env
    cmd = [sys.executable, "-c", CHILD, "batch",
           *(str(data / f"{n}.parquet") for n in ("bills", "items", "persons")),
           "--policy", str(POLICY), "--out", str(out), "--threads", "1", "--quiet",
           "--json"]  # fmt: skip
    s0 = resource.getrusage(resource.RUSAGE_CHILDREN).ru_stime
    subprocess.run(cmd, env=env, cwd=tree, check=True, capture_output=True)
    s1 = resource.getrusage(resource.RUSAGE_CHILDREN).ru_stime
    parts = [tuple(map(float, x.split())) for x in rec.read_text().splitlines() if x]
    return sum(p[0] for p in parts), sum(p[1] for p in parts), s1 - s0


def contender(
    name: str, tree: Path, data: Path, work: Path, runs: list[tuple[float, float, float]]
) -> H.Contender:
    """A whole run of ``tree``, timed by the harness; its ``one_run`` figures appended to
    ``runs`` (the warm-up's first)."""
    label = name.replace(" ", "-")
    return H.Contender(name, lambda _: runs.append(one_run(tree, data, work, label)))


def main(
    baseline: Path = typer.Option(..., help="a tree of the code to compare against"),
    rounds: int = typer.Option(6),
    data: Path = typer.Option(
        ROOT / f"benchmarks/out/data-1000000-40-{POLICY.stem}",
        help="input directory (batch_ab writes it)",
    ),
) -> None:
    print(H.machine_line(H.machine()), flush=True)
    n_items = pq.ParquetFile(data / "items.parquet").metadata.num_rows
    print(f"data: {n_items:,} items in {data}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="batch-writer-ab-"))
    trees = {"this tree": ROOT, "baseline": baseline.resolve()}
    runs: dict[str, list[tuple[float, float, float]]] = {k: [] for k in trees}
    try:
        figs = H.interleave([contender(k, t, data, work, runs[k]) for k, t in trees.items()],
                            rounds)  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("\n## figures (seconds: minimum / median)")
    for k, fig in figs.items():
        timed = runs[k][1:]  # the warm-up left out, as the harness does
        cols = [[x[i] for x in timed] for i in range(len(EXTRA))]
        print(fig.line())
        print(f"  {k}: " + "; ".join(f"{n} {min(c):.3f} / {statistics.median(c):.3f}"
                                     for n, c in zip(EXTRA, cols, strict=True)))  # fmt: skip
    this, base = runs["this tree"][1:], runs["baseline"][1:]
    lower = sum(a[0] < b[0] for a, b in zip(this, base, strict=True))
    print(f"writer CPU lower in this tree in {lower} of {rounds} pairs")
    print(
        H.ratio_line(
            "baseline / this tree (whole runs)", H.ratio(figs["baseline"], figs["this tree"])
        )
    )


if __name__ == "__main__":
    typer.run(main)
