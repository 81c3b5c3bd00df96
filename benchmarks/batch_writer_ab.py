"""``onestop batch``'s writer thread, this tree against a baseline tree, interleaved (A/B).

    python -m benchmarks.batch_writer_ab --baseline /tmp/batch-base --rounds 6

Whole runs as ``batch_ab`` runs them (the same data, ``--threads 1 --quiet --json``, the
console's memory settings of adapters/batch/memory.py in the environment), each in a process
that runs ``adapters.cli.main`` with ``run.complete_part`` wrapped: the thread CPU and the
system time (``RUSAGE_THREAD``) of each part's figures and files, i.e. the writer thread's
work (batch12w's and batch13w's measure, benchmarks/README.md). One warm-up run of each tree,
then A B A B ...; each run's writer CPU summed over its parts, the process's CPU (``wait4``)
and wall; the minimum and median of each, the load printed. The outputs are not compared
(``batch_ab`` does that). Not a test: it asserts nothing.
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
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

FIGURES = ("writer CPU", "writer system", "process CPU", "process system", "wall")


def one_run(tree: Path, data: Path, work: Path, label: str) -> tuple[float, ...]:
    """(writer CPU, its system time, process CPU, its system time, wall) of one whole run."""
    out, rec = work / f"out-{label}", work / f"rec-{label}"
    shutil.rmtree(out, ignore_errors=True)
    rec.unlink(missing_ok=True)
    env = H.user_env(tree, B_W_OUT=str(rec))
    env = batch_env(env) or env
    cmd = [sys.executable, "-c", CHILD, "batch",
           *(str(data / f"{n}.parquet") for n in ("bills", "items", "persons")),
           "--policy", str(POLICY), "--out", str(out), "--threads", "1", "--quiet",
           "--json"]  # fmt: skip
    c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run(cmd, env=env, cwd=tree, check=True, capture_output=True)
    wall = time.perf_counter() - t
    c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    parts = [tuple(map(float, x.split())) for x in rec.read_text().splitlines() if x]
    return (sum(p[0] for p in parts), sum(p[1] for p in parts),
            c1.ru_utime + c1.ru_stime - c0.ru_utime - c0.ru_stime,
            c1.ru_stime - c0.ru_stime, wall)  # fmt: skip


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
    trees = {"this tree": ROOT, "baseline": baseline.resolve()}
    work = Path(tempfile.mkdtemp(prefix="batch-writer-ab-"))
    got: dict[str, list[tuple[float, ...]]] = {k: [] for k in trees}
    loads = [os.getloadavg()[0]]
    for k, tree in trees.items():  # warm-up (each tree's numba cache)
        one_run(tree, data, work, k.replace(" ", "-"))
    for r in range(rounds):
        for k, tree in trees.items():
            x = one_run(tree, data, work, k.replace(" ", "-"))
            got[k].append(x)
            loads.append(os.getloadavg()[0])
            print(f"  round {r + 1}/{rounds} {k}: writer CPU {x[0]:.3f} s (system {x[1]:.3f}), "
                  f"process CPU {x[2]:.3f} s (system {x[3]:.3f}), wall {x[4]:.3f} s; "
                  f"load {loads[-1]:.2f}", flush=True)  # fmt: skip
    print("\n## figures (seconds: minimum / median)")
    for k, xs in got.items():
        cols = [[x[i] for x in xs] for i in range(len(FIGURES))]
        print(f"{k}: " + "; ".join(f"{n} {min(c):.3f} / {statistics.median(c):.3f}"
                                   for n, c in zip(FIGURES, cols, strict=True)))  # fmt: skip
    lower = sum(a[0] < b[0] for a, b in zip(got["this tree"], got["baseline"], strict=True))
    print(f"writer CPU lower in this tree in {lower} of {rounds} pairs")
    print(f"load average: first {loads[0]:.2f}, last {loads[-1]:.2f}, highest {max(loads):.2f}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    typer.run(main)
