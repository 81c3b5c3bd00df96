"""``onestop batch``'s start-up, this tree against a baseline tree: when the first part is written.

    python -m benchmarks.batch_timeline --baseline /tmp/batch-base --rounds 4 [--show]

Whole processes as ``batch_ab`` runs them (the same data, ``--quiet --json``), interleaved: one
warm-up run of each, then A B A B ... While a run goes, its threads' CPU is read from
``/proc/PID/task/*/stat`` every 20 ms; each run gives the time from its start to the first
output part appearing in ``OUT/_tmp/bills`` (the writer's first file: what the start-up
delays), to its end, and the cores busy before the first write (CPU / wall of that stretch).
``--show``: each tree's last run as a timeline, cores busy per 0.2 s and each thread's share.
Not a test: it asserts nothing; the minimum and median of each figure, the load printed.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Literal

import typer

from benchmarks import harness as H
from benchmarks.batch_ab import ONESTOP, POLICY, ROOT

TICK = os.sysconf("SC_CLK_TCK")


def _threads(pid: int) -> dict[str, tuple[str, float, float, int]]:
    """tid -> (thread name, CPU seconds, of them system, minor page faults) of a live process
    (empty once it has ended)."""
    got: dict[str, tuple[str, float, float, int]] = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return got
    for tid in tids:
        try:
            raw = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
        except OSError:
            continue
        name = raw[raw.index("(") + 1 : raw.rindex(")")]
        f = raw[raw.rindex(")") + 2 :].split()
        # minflt, utime, stime
        got[tid] = (name, (int(f[11]) + int(f[12])) / TICK, int(f[12]) / TICK, int(f[7]))
    return got


def one_run(cmd: list[str], env: dict[str, str], cwd: Path, out: Path) -> dict[str, Any]:
    """One whole run, sampled: first write and end (s from start), samples (t, {tid: ...})."""
    shutil.rmtree(out, ignore_errors=True)
    first = out / "_tmp" / "bills"
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)  # fmt: skip
    samples: list[tuple[float, dict[str, tuple[str, float, float, int]]]] = []
    t_first = None
    while p.poll() is None:
        t = time.perf_counter() - t0
        samples.append((t, _threads(p.pid)))
        if t_first is None and first.is_dir() and any(first.iterdir()):
            t_first = t
        time.sleep(0.02)
    end = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(
            f"exit {p.returncode}: {p.stderr.read().decode()[-2000:] if p.stderr else ''}"
        )
    return {"first": t_first if t_first is not None else end, "end": end, "samples": samples}


def _until(samples: list[tuple[float, dict[str, tuple[str, float, float, int]]]], t: float,
           field: Literal[1, 2, 3] = 1) -> float:  # fmt: skip
    """The sum over every thread seen (an ended thread: its last sample) of a field of
    ``_threads`` (1 CPU seconds, 2 system seconds, 3 minor faults) at the last sample before
    ``t``."""
    last: dict[str, float] = {}
    for ts, th in samples:
        if ts > t:
            break
        for tid, v in th.items():
            last[tid] = v[field]
    return sum(last.values())


def _cpu_until(samples: list[tuple[float, dict[str, tuple[str, float, float, int]]]],
               t: float) -> float:  # fmt: skip
    """Process CPU seconds (every thread) at the last sample before ``t``."""
    return _until(samples, t)


def show(label: str, run: dict[str, Any], step: float = 0.2) -> None:
    """Cores busy per ``step`` seconds, of them system time, the minor page faults (thousands)
    and the busiest threads in each (by thread id, in the order they appeared: ``main`` the
    process's first; Python does not name its threads in ``/proc``) with their faults."""
    print(f"\n### {label}: first write {run['first']:.2f} s, end {run['end']:.2f} s")
    names: dict[str, str] = {}
    prev: dict[str, tuple[float, float, int]] = {}
    acc: dict[str, list[float]] = {}
    edge = step
    for ts, th in run["samples"]:
        for tid, (_, c, sy, fl) in sorted(th.items(), key=lambda x: int(x[0])):
            n = names.setdefault(tid, "main" if not names else f"t{len(names)}")
            pc, ps, pf = prev.get(tid, (0.0, 0.0, 0))
            a = acc.setdefault(n, [0.0, 0.0, 0.0])
            a[0] += c - pc
            a[1] += sy - ps
            a[2] += fl - pf
            prev[tid] = (c, sy, fl)
        if ts >= edge:
            busy = sum(v[0] for v in acc.values()) / step
            sys_ = sum(v[1] for v in acc.values()) / step
            faults = sum(v[2] for v in acc.values()) / 1000
            top = ", ".join(f"{n} {v[0] / step:.2f} ({v[2] / 1000:.1f} k)" for n, v in
                            sorted(acc.items(), key=lambda x: -x[1][0])[:4] if v[0] > 0)  # fmt: skip
            print(f"{edge - step:5.1f}-{edge:4.1f} s  {busy:4.2f} cores, sys {sys_:4.2f}  "
                  f"{faults:5.1f} k faults  {top}")  # fmt: skip
            edge, acc = edge + step, {}  # the next stretch


def main(
    baseline: Path = typer.Option(..., help="a tree of the code to compare against"),
    bills: int = typer.Option(1_000_000),
    items: float = typer.Option(40),
    rounds: int = typer.Option(4),
    data: Path | None = typer.Option(None, help="input directory (default as batch_ab's)"),
    show_last: bool = typer.Option(False, "--show", help="each tree's last run as a timeline"),
) -> None:
    print(H.machine_line(H.machine()), flush=True)
    data = data or ROOT / f"benchmarks/out/data-{bills}-{items:g}-{POLICY.stem}"
    if not (data / "items.parquet").exists():
        sys.exit(f"no data in {data}: run benchmarks.batch_ab once (it writes it)")
    work = Path(tempfile.mkdtemp(prefix="batch-timeline-"))
    trees = {"this tree": ROOT, "baseline": baseline.resolve()}
    got: dict[str, list[dict[str, Any]]] = {k: [] for k in trees}
    loads = [os.getloadavg()[0]]
    for r in range(rounds + 1):  # round 0: the warm-up (numba's cache of each tree)
        for label, tree in H.in_turn(trees.items(), r):
            o = work / label.replace(" ", "-")
            cmd = [str(ONESTOP), "batch", *(str(data / f"{n}.parquet") for n in
                   ("bills", "items", "persons")), "--policy", str(POLICY), "--out", str(o),
                   "--quiet", "--json"]  # fmt: skip
            run = one_run(cmd, H.user_env(tree), tree, o)
            loads.append(os.getloadavg()[0])
            if r:
                got[label].append(run)
                print(f"round {r} {label}: first write {run['first']:.2f} s, end "
                      f"{run['end']:.2f} s, load {loads[-1]:.2f}", flush=True)  # fmt: skip
    print("\n## figures (seconds: minimum / median)")
    for label, runs in got.items():
        fw = [x["first"] for x in runs]
        end = [x["end"] for x in runs]
        cores = [_cpu_until(x["samples"], x["first"]) / x["first"] for x in runs]
        f_first = [_until(x["samples"], x["first"], 3) / 1000 for x in runs]
        f_all = [_until(x["samples"], x["end"], 3) / 1000 for x in runs]
        s_all = [_until(x["samples"], x["end"], 2) for x in runs]
        print(f"{label}: first write {min(fw):.3f} / {statistics.median(fw):.3f}; end "
              f"{min(end):.3f} / {statistics.median(end):.3f}; cores busy before the first "
              f"write {statistics.median(cores):.2f} (median); minor faults before the first "
              f"write {min(f_first):.1f} / {statistics.median(f_first):.1f} k, to the last "
              f"sample {min(f_all):.1f} / {statistics.median(f_all):.1f} k; system CPU to the "
              f"last sample {min(s_all):.2f} / {statistics.median(s_all):.2f} s")  # fmt: skip
    print(f"load average: first {loads[0]:.2f}, last {loads[-1]:.2f}, highest {max(loads):.2f}")
    if show_last:
        for label, runs in got.items():
            show(label, runs[-1])
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    typer.run(main)
