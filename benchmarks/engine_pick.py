"""Where ``onestop settle --engine auto`` should switch from the plain reference to the kernel
(engine/engines.py, ``KERNEL_FROM_ITEMS``):

    python -m benchmarks.engine_pick [--rounds 5] [--copies 40]

- **kernel fixed cost**: in a fresh process that has already loaded the policies and parsed a
  bill (what both engines need), ``from engine.batch import settle_batch`` and the first
  ``settle_batch`` of that one bill: numpy, numba, numba's type system, the cached kernel
  (the numba cache is warmed first). Timed inside the child, wall and CPU.
- **per item, warm**: ``reference_batch`` and ``settle_batch`` on ``copies`` x the sample bills
  (each copy its own person and household; ``--items N``: each bill's items repeated up to N),
  in this process.
- The threshold: fixed cost / (reference per item - kernel per item).

Rules of benchmarks/harness.py: warm-up, interleaved rounds, min / median / max, the load.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from typing import Any

import typer

from benchmarks import harness as H
from benchmarks.test_micro import _raw_bills

CHILD = r"""
import json, pathlib, time
from engine.bill import parse_bill
from engine.policy.load import load_policies
ps = load_policies(pathlib.Path("policies"))
bill = parse_bill(json.loads(pathlib.Path("policies/samples/longzhou-1.json").read_text("utf-8")))
import sys
assert "numba" not in sys.modules and "numpy" not in sys.modules, "numpy/numba loaded already"
t, c = time.perf_counter(), time.process_time()
from engine.batch import settle_batch
settle_batch([bill], ps)
print(json.dumps([time.perf_counter() - t, time.process_time() - c]))
"""


def main(
    rounds: int = typer.Option(5, help="timed rounds (after one warm-up)"),
    copies: int = typer.Option(40, help="copies of the sample bills for the per-item cost"),
    items: int = typer.Option(
        0,
        help="items per bill: each bill's items repeated up to this "
        "many (0: as in the samples, ~3 a bill)",
    ),
) -> None:
    from engine.batch import reference_batch, settle_batch
    from engine.bill import parse_bill
    from engine.policy.load import load_policies

    print(H.machine_line(H.machine()), flush=True)
    ps = load_policies(H.ROOT / "policies")
    import benchmarks.test_micro as M

    M.COPIES = copies
    raw = _raw_bills()
    if items:
        for d in raw:
            d["items"] = [d["items"][i % len(d["items"])] for i in range(items)]
    bills = [parse_bill(d) for d in raw]
    n_items = sum(len(b.items) for b in bills)
    assert settle_batch(bills, ps).settlements == reference_batch(bills, ps).settlements
    env = H.user_env(H.ROOT)
    fixed: list[tuple[float, float]] = []
    per: dict[str, list[tuple[float, float]]] = {"reference": [], "kernel": []}
    loads: list[float] = []

    def inproc(fn: Any) -> tuple[float, float]:
        t, c = time.perf_counter(), time.process_time()
        fn(bills, ps)
        return (time.perf_counter() - t) / n_items, (time.process_time() - c) / n_items

    for r in range(-1, rounds):
        loads.append(H.load1())
        out = subprocess.run([sys.executable, "-c", CHILD], cwd=H.ROOT, env=env,
                             capture_output=True, text=True, check=True).stdout  # fmt: skip
        k = json.loads(out.strip().splitlines()[-1])
        ref, ker = inproc(reference_batch), inproc(settle_batch)
        if r >= 0:
            fixed.append((k[0], k[1]))
            per["reference"].append(ref)
            per["kernel"].append(ker)
        print(f"  {'warm-up' if r < 0 else f'round {r + 1}/{rounds}'}: kernel fixed "
              f"{k[0]:.3f} s (CPU {k[1]:.3f}); per item: reference {ref[0] * 1e6:.1f} us, "
              f"kernel {ker[0] * 1e6:.2f} us (load {loads[-1]:.2f})", flush=True)  # fmt: skip
    loads.append(H.load1())

    def mm(xs: list[float]) -> tuple[float, float]:
        return min(xs), statistics.median(xs)

    print(f"\n{len(bills)} bills, {n_items} items; load {loads[0]:.2f} -> {loads[-1]:.2f} "
          f"(max {max(loads):.2f})")  # fmt: skip
    for i, what in enumerate(("wall", "CPU")):
        f = mm([x[i] for x in fixed])
        rp = mm([x[i] for x in per["reference"]])
        kp = mm([x[i] for x in per["kernel"]])
        print(f"{what}: kernel fixed min {f[0]:.3f} s / median {f[1]:.3f} s; per item reference "
              f"{rp[0] * 1e6:.1f} / {rp[1] * 1e6:.1f} us, kernel {kp[0] * 1e6:.2f} / "
              f"{kp[1] * 1e6:.2f} us; break-even at {f[0] / (rp[0] - kp[0]):,.0f} items "
              f"(minima), {f[1] / (rp[1] - kp[1]):,.0f} (medians)")  # fmt: skip


if __name__ == "__main__":
    typer.run(main)
