"""Kernel A/B (issue 13, target 2): copies of engine/kernel.py side by side in one process, on
one prepared batch, interleaved with F (benchmarks/harness.py: wall, CPU, load).

    git show main:engine/kernel.py > /tmp/k_old.py
    cp engine/kernel.py /tmp/k_new.py
    python -m benchmarks.kernel_ab /tmp/k_old.py /tmp/k_new.py --bills 1000000 --rounds 3

The batch (benchmarks.synth, the five-layer sample table, as ``batch_bench``) is prepared once
and pickled under benchmarks/out/ (preparing 1 M bills takes minutes here); every run gets
fresh copies of the accounts and fresh zeroed output arrays (untimed), and the first kernel's
outputs must equal every other's (all of ``out_bill``, ``out_layer`` and the accounts). A
copy may define ``bench_prep(kb)``, ``bench_call(args, kb)`` and ``bench_out(args, kb)`` for
another argument layout (e.g. narrower outputs).

``--touched`` also times each kernel on outputs written once before the run (untimed): the
difference from the fresh outputs is what first touch of freshly allocated output memory
costs (page faults, the OS zeroing pages: system time), as every prepared batch pays it.

``--reused`` also times each kernel the way ``onestop batch`` runs it since the output buffers
are reused (``engine.columnar.OutputBuffers``): one pair of output arrays per kernel, kept from
round to round, written by the kernel as they are (no zeroing: the kernel writes every slot),
and the same zeroed with ``fill(0)`` inside the timed span (what a kernel that leaves unused
slots alone would need); both are checked equal to the first kernel's outputs after the run."""

from __future__ import annotations

import importlib.util
import pickle
import sys
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import typer

from benchmarks import harness as H
from benchmarks.batch_bench import POLICY, columns

N_POLICY_ARGS = 4  # CompiledPolicies.kernel_args(): b_ratio, n_layers and the two row tables
ACC = 13 + N_POLICY_ARGS  # index of p_acc in KernelBatch.args() (after item_start, item_at)


def _batch(bills: int, items: float) -> Any:
    path = H.ROOT / f"benchmarks/out/kernel_ab-{bills}-{items:g}.pkl"
    if path.exists():
        with path.open("rb") as f:
            return pickle.load(f)
    from benchmarks import synth
    from engine import columnar as C
    from engine.policy.load import load_policies

    ps = load_policies(POLICY)
    bc, ic, pc = columns(synth.generate(bills, items, 0, **synth.for_table(ps.tables[0])))
    kb = C.prepare_columns(bc, ic, pc, ps).kb
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        pickle.dump(kb, f, protocol=5)
    return kb


def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec and spec.loader
    m = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = m
    spec.loader.exec_module(m)
    return m


def main(
    kernels: list[Path] = typer.Argument(..., help="copies of engine/kernel.py (first: baseline)"),
    bills: int = typer.Option(1_000_000),
    items: float = typer.Option(40),
    rounds: int = typer.Option(3),
    touched: bool = typer.Option(False, help="also time each kernel on pre-touched outputs"),
    reused: bool = typer.Option(False, help="also time each kernel on reused output buffers"),
) -> None:
    for p in kernels:
        if p.resolve().is_relative_to(H.ROOT):
            # numba writes the copy's cache beside the file, keyed by its file name: a copy
            # loaded from inside the tree leaves entries that later break ``engine.kernel``
            raise typer.BadParameter(
                f"{p} is inside the repository: copy it out first "
                f"(cp {p} /tmp/{p.stem}_new.py); numba would cache it under "
                "another module name beside engine/kernel.py",
                param_hint="KERNELS",
            )
    print(H.machine_line(H.machine()), flush=True)
    kb = _batch(bills, items)
    mods = [(p.stem, _load(p)) for p in kernels]

    def prep(m: ModuleType) -> Any:
        if hasattr(m, "bench_prep"):
            return m.bench_prep(kb)
        a = list(kb.args())
        a[ACC], a[ACC + 1], a[ACC + 2] = kb.p_acc.copy(), kb.p_adm.copy(), kb.h_acc.copy()
        a[ACC + 3] = np.zeros(kb.out_bill.shape, np.int64)
        a[ACC + 4] = np.zeros(kb.out_layer.shape, np.int64)
        return a

    def prep_touched(m: ModuleType) -> Any:
        a = prep(m)
        for x in a[ACC + 3], a[ACC + 4]:  # fault every page in now, untimed
            x.fill(0)
        return a

    def call(m: ModuleType, a: Any) -> None:
        if hasattr(m, "bench_call"):
            m.bench_call(a, kb)
        else:
            m._settle_range(0, kb.n_bills, *a)

    def out(m: ModuleType, a: Any) -> Any:
        if hasattr(m, "bench_out"):
            return m.bench_out(a, kb)
        return a[ACC + 3], a[ACC + 4], a[ACC], a[ACC + 2]

    def outputs(m: ModuleType) -> Any:
        a = prep(m)
        call(m, a)
        return out(m, a)

    first = outputs(mods[0][1])
    for name, m in mods[1:]:
        same = all(np.array_equal(x, y) for x, y in zip(first, outputs(m), strict=True))
        print(f"check: {name} == {mods[0][0]} (every output array): {same}", flush=True)
    cols = (kb.cat, kb.qty, kb.amount, kb.price_cap, kb.sp_ratio)
    n = len(kb.amount)
    reused_bufs: list[tuple[str, Any]] = []
    cs = [H.Contender("F (numpy pass)", lambda _: sum(int(c.sum()) for c in cols), work=n,
                      unit="items")]  # fmt: skip
    for name, m in mods:
        cs.append(H.Contender(f"kernel {name}", partial(call, m), partial(prep, m), work=n,
                              unit="items"))  # fmt: skip
        if touched and not hasattr(m, "bench_prep"):
            cs.append(H.Contender(f"kernel {name}, outputs pre-touched", partial(call, m),
                                  partial(prep_touched, m), work=n, unit="items"))  # fmt: skip
        if reused and not hasattr(m, "bench_prep"):
            keep = prep(m)  # the kernel's own pair of buffers, reused round after round

            def prep_reused(m: ModuleType = m, keep: Any = keep) -> Any:
                a = prep(m)
                a[ACC + 3], a[ACC + 4] = keep[ACC + 3], keep[ACC + 4]
                return a

            def zeroed(a: Any, m: ModuleType = m) -> None:
                a[ACC + 3].fill(0)
                a[ACC + 4].fill(0)
                call(m, a)

            cs.append(H.Contender(f"kernel {name}, reused outputs", partial(call, m), prep_reused,
                                  work=n, unit="items"))  # fmt: skip
            cs.append(H.Contender(f"kernel {name}, reused outputs, fill(0) timed", zeroed,
                                  prep_reused, work=n, unit="items"))  # fmt: skip
            reused_bufs.append((name, keep))
    figs = H.interleave(cs, rounds, say=lambda s: print(s, flush=True))
    for name, keep in reused_bufs:
        same = all(np.array_equal(x, y) for x, y in
                   zip(first, (keep[ACC + 3], keep[ACC + 4]), strict=False))  # fmt: skip
        print(f"check: {name} on reused outputs == {mods[0][0]} (out_bill, out_layer): {same}")
    for f in figs.values():
        print(f.line())
    for c in cs[1:]:
        print(H.ratio_line(f"{c.name} in F", H.ratio(figs[c.name], figs[cs[0].name])))
    for c in cs[2:]:
        print(H.ratio_line(f"{cs[1].name} / {c.name}", H.ratio(figs[cs[1].name], figs[c.name])))


if __name__ == "__main__":
    typer.run(main)
