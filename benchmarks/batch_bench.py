"""Batch settlement benchmark (issue 13): the kernel against warm pandas, warm polars and the
plain reference, interleaved in one process; then ``onestop batch`` end to end.

    python -m benchmarks.batch_bench                    # 1 M bills x 40 items, 5 rounds
    python -m benchmarks.batch_bench --bills 100000 --rounds 3 --cli-rounds 1

Rules (benchmarks/harness.py): every contender gets a warm-up run, then ``--rounds`` rounds
in turn (F, F fused, kernel 1 thread, kernel 2 threads, pandas, polars, reference, kernel on
the reference's sample, ...); min / median / max and the load average for each.

- **Data**: ``benchmarks.synth`` (seeded) in memory, turned into ``engine.columnar`` input
  columns here (no adapter code); the same data written once to Parquet for the CLI.
- **F**: one vectorized numpy pass over the item columns the kernel reads (category, qty_e4,
  amount, unit_price_cap, selfpay_ratio: ``col.sum()`` of each, 19 bytes per item), measured
  in the same run. ``F fused`` (the earlier definition: one numba loop summing the five) is
  shown too.
- **Kernel**: ``engine.columnar.prepare_columns`` (untimed, a fresh batch each run: a
  prepared batch settles once) then ``engine.columnar.run`` timed, on 1 and on 2 threads,
  two ways: **as ``onestop batch`` runs it** (the output arrays taken from an
  ``engine.columnar.OutputBuffers`` pool and given back after the run, so every round writes
  into the buffers of the round before, as every part after the first does in
  ``onestop batch``; the kernel writes every slot, so no zeroing is needed) and **on fresh
  output arrays** (what one prepared batch alone, e.g. the first part, pays: the first touch
  of ~520 MB of new memory inside the timed call).
- **pandas / polars** (``benchmarks/frames.py``): the same rules vectorized per layer over the
  same prepared inputs; warm (a warm-up run first, like every contender); checked against the
  kernel once.
- **Reference** (``engine.batch.reference_batch``, the plain rules of engine/reference.py) on
  a sample: the first whole households up to ``--ref-bills`` bills (>= 1 s a round here). The
  ratio is taken **per item**: (reference seconds / sample items) over (kernel seconds / all
  items); the kernel is also timed on the very same sample, and that ratio is printed too.
- **onestop batch** (subprocess, Parquet in and out, ``--threads 1`` and ``2`` interleaved):
  whole process wall time, as items/s.

Prints every figure with its load and writes benchmarks/out/batch_bench.json.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import typer
from numba import njit

from benchmarks import harness as H

ROOT = H.ROOT
POLICY = ROOT / "benchmarks/policy/sample_five_layer.yaml"
ONESTOP = Path(sys.executable).with_name("onestop")
K1 = "kernel, 1 thread (reused output buffers, as onestop batch)"
K2 = "kernel, 2 threads (reused output buffers, as onestop batch)"
K1_FRESH = "kernel, 1 thread (fresh output arrays)"
K2_FRESH = "kernel, 2 threads (fresh output arrays)"


@njit(cache=True)
def _fused(cat, qty, amount, cap, ratio):  # pragma: no cover - numba
    s = 0
    for i in range(len(amount)):
        s += cat[i] + qty[i] + amount[i] + cap[i] + ratio[i]
    return s


def _numpy_pass(cols: tuple[np.ndarray, ...]) -> int:
    return sum(int(c.sum()) for c in cols)


# --------------------------------------------------------------------------- data


def _coded(a: Any) -> Any:
    """An Arrow dictionary column as ``engine.columnar.Coded``; other columns as numpy."""
    from engine.columnar import Coded

    a = a.combine_chunks() if isinstance(a, pa.ChunkedArray) else a
    if pa.types.is_dictionary(a.type):
        return Coded(a.indices.to_numpy(zero_copy_only=False),
                     np.array(a.dictionary.to_pylist(), dtype=object))  # fmt: skip
    if pa.types.is_date32(a.type):
        return a.to_numpy(zero_copy_only=False).astype("M8[D]")
    return a.to_numpy(zero_copy_only=False)


def _nullable(a: Any) -> tuple[np.ndarray, np.ndarray]:
    a = a.combine_chunks() if isinstance(a, pa.ChunkedArray) else a
    null = a.is_null().to_numpy(zero_copy_only=False)
    return a.fill_null(-1).to_numpy(), null


def columns(tables: tuple[pa.Table, pa.Table, pa.Table]) -> tuple[Any, Any, Any]:
    """engine.columnar input columns from synth's tables (items grouped by bill in order)."""
    from engine import columnar as C

    b, it, p = tables
    bills = C.BillCols(**{k: _coded(b[k]) for k in (
        "bill_id", "hospital", "person_id", "household_id", "region", "hospital_level",
        "admission_date", "discharge_date")})  # fmt: skip
    ib = it["bill_id"].combine_chunks().indices.to_numpy()
    start = np.searchsorted(ib, np.arange(len(bills) + 1)).astype(np.int64)
    cap, cap_null = _nullable(it["unit_price_cap"])
    ratio, ratio_null = _nullable(it["selfpay_ratio"])
    cat = it["category"].combine_chunks()
    items = C.ItemCols(
        category=(cat.indices.to_numpy() + 1).astype(np.int8),  # synth: A, B, C in that order
        amount=it["amount"].to_numpy(), bill_start=start, qty_e4=it["qty_e4"].to_numpy(),
        unit_price=it["unit_price"].to_numpy(), unit_price_cap=cap, unit_price_cap_null=cap_null,
        selfpay_ratio=ratio, selfpay_ratio_null=ratio_null,
    )  # fmt: skip
    assert list(cat.dictionary.to_pylist()) == ["A", "B", "C"]
    tag = p["tag"].cast(pa.string()).to_numpy(zero_copy_only=False)
    persons = C.PersonCols(
        person_id=_coded(p["person_id"]), birth_date=_coded(p["birth_date"]),
        household_id=_coded(p["household_id"]), tag=tag,
        tag_valid_from=_coded(p["tag_valid_from"]), tag_valid_to=_coded(p["tag_valid_to"]),
    )  # fmt: skip
    return bills, items, persons


def sample_bills(
    tables: tuple[pa.Table, pa.Table, pa.Table], n_want: int
) -> tuple[list[Any], int, int]:
    """The first whole households up to ``n_want`` bills as ``engine.bill.Bill`` objects;
    (bills, number of bills, number of items)."""
    from engine.bill import Bill, Item, Person, TagSpan

    b, it, p = tables
    hh = b["household_id"].combine_chunks().indices.to_numpy()
    n = min(n_want, len(hh))
    while 0 < n < len(hh) and hh[n] == hh[n - 1]:
        n += 1
    ib = it["bill_id"].combine_chunks().indices.to_numpy()
    n_items = int(np.searchsorted(ib, n))
    bl = b.slice(0, n).to_pylist()
    il = it.slice(0, n_items).to_pylist()
    want = {x["person_id"] for x in bl}
    pl = p.filter(pa.compute.is_in(p["person_id"].cast(pa.string()),
                                   pa.array(sorted(want)))).to_pylist()  # fmt: skip
    people: dict[str, Any] = {}
    for r in pl:
        q = people.setdefault(r["person_id"], [r, []])
        if r["tag"]:
            q[1].append(TagSpan(tag=r["tag"], valid_from=r["tag_valid_from"],
                                valid_to=r["tag_valid_to"]))  # fmt: skip
    persons = {k: Person(id=k, birth_date=r["birth_date"], household=r["household_id"],
                         tags=tuple(t)) for k, (r, t) in people.items()}  # fmt: skip
    by_bill: dict[str, list[Any]] = {}
    for r in il:
        by_bill.setdefault(r["bill_id"], []).append(Item(
            category=r["category"], qty_e4=r["qty_e4"], unit_price=r["unit_price"],
            amount=r["amount"], unit_price_cap=r["unit_price_cap"],
            selfpay_ratio=r["selfpay_ratio"]))  # fmt: skip
    bills = [Bill(id=r["bill_id"], hospital=r["hospital"], region=r["region"],
                  person=persons[r["person_id"]], hospital_level=r["hospital_level"],
                  admission_date=r["admission_date"], discharge_date=r["discharge_date"],
                  items=tuple(by_bill[r["bill_id"]])) for r in bl]  # fmt: skip
    return bills, n, n_items


def head(bills: Any, items: Any, n: int, n_items: int) -> tuple[Any, Any]:
    """The first ``n`` bills (and their items) of the columns."""
    from engine import columnar as C

    def cut(v: Any, k: int) -> Any:
        if isinstance(v, C.Coded):
            return C.Coded(v.codes[:k], v.labels)
        return v[:k] if isinstance(v, np.ndarray) else v

    b = C.BillCols(**{k: cut(v, n) for k, v in vars(bills).items()})
    i = C.ItemCols(**{k: cut(v, n_items) for k, v in vars(items).items()})
    i.bill_start = items.bill_start[: n + 1]
    return b, i


# --------------------------------------------------------------------------- the run


def main(
    bills: int = typer.Option(1_000_000, help="number of bills"),
    items: float = typer.Option(40, help="mean items per bill"),
    seed: int = typer.Option(0),
    policy: Path = typer.Option(POLICY, help="a one-table policy (five layers by default)"),
    rounds: int = typer.Option(5, help="timed rounds of every contender (after one warm-up)"),
    ref_bills: int = typer.Option(12_000, help="bills of the reference's sample (>= 1 s)"),
    cli_rounds: int = typer.Option(3, help="runs of `onestop batch` per thread count (0: skip)"),
    skip_frames: bool = typer.Option(False, help="leave out pandas and polars"),
    out: Path = typer.Option(ROOT / "benchmarks/out/batch_bench.json"),
) -> None:
    import numba

    from benchmarks import frames, synth
    from engine import columnar as C
    from engine.batch import reference_batch
    from engine.policy.load import load_policies

    m = H.machine()
    print(H.machine_line(m), flush=True)
    say = print
    ps = load_policies(policy)
    if len(ps.tables) != 1:
        raise typer.BadParameter("the benchmark takes a policy of one table", param_hint="policy")
    # numba.config sets its NUMBA_* names when imported (_readenv): mypy sees none of them
    numba_threads = numba.config.NUMBA_NUM_THREADS  # type: ignore[attr-defined]
    print(f"policy: {policy.name} ({ps.tables[0].label}, {len(ps.tables[0].layers)} layers); "
          f"numba threads available: {numba_threads}", flush=True)  # fmt: skip
    t = time.perf_counter()
    tables = synth.generate(bills, items, seed, **synth.for_table(ps.tables[0]))
    bc, ic, pc = columns(tables)
    n_items = len(ic)
    print(f"data: {bills:,} bills, {n_items:,} items (synth seed {seed}), "
          f"{time.perf_counter() - t:.1f} s", flush=True)  # fmt: skip
    data = ROOT / f"benchmarks/out/data-{bills}-{items:g}-{policy.stem}"
    if cli_rounds and not (data / "items.parquet").exists():
        synth.write(data, tables)

    # the reference's sample and the kernel on the same sample
    ref, n_ref, n_ref_items = sample_bills(tables, ref_bills)
    sb, si = head(bc, ic, n_ref, n_ref_items)
    del tables

    def prep(threads: int, b: Any = bc, i: Any = ic, out: Any = None) -> Any:
        p = C.prepare_columns(b, i, pc, ps, n_chunks=max(1, threads * 4), out=out)
        assert not p.rejects, p.rejects[:3]
        return p

    pools: dict[int, Any] = {}
    lent: dict[int, Any] = {}

    def prep_reused(threads: int) -> Any:
        """A fresh prepared batch whose outputs are the buffers of the previous round's (given
        back now, as ``onestop batch`` gives a part's back once it is written)."""
        pool = pools.setdefault(threads, C.OutputBuffers())
        if threads in lent:
            pool.give_back(lent.pop(threads))
        lent[threads] = p = prep(threads, out=pool)
        return p

    # the kernel's results, once, for the checks
    checked = prep(1)
    C.run(checked, 1)
    kcols = C.bill_columns(checked)
    ref_res = reference_batch(ref, ps).settlements
    net = dict(zip(kcols["bill_id"][:n_ref].tolist(), kcols["net_selfpay"][:n_ref].tolist(),
                   strict=True))  # fmt: skip
    ref_equal = all(s.net_selfpay == net[s.bill_id] for s in ref_res)
    print(f"check: reference == kernel (net self-pay of {n_ref:,} bills): {ref_equal}", flush=True)

    icols = (ic.category, ic.qty_e4, ic.amount, ic.unit_price_cap, ic.selfpay_ratio)
    item_bytes = sum(c.nbytes for c in icols)
    frames_kb = None
    if not skip_frames:
        frames_kb = checked.kb  # prepared inputs (already settled: the check reads its results)
        item_bill = np.repeat(np.arange(frames_kb.n_bills), np.diff(frames_kb.item_start))
        checks = {}
        for name, f in (("pandas", frames.settle_pandas), ("polars", frames.settle_polars)):
            try:
                checks[name] = frames.check(frames_kb, f(frames_kb, item_bill))
            except (AttributeError, IndexError, KeyError) as e:  # the kernel's layout moved on
                checks[name] = {"error": f"{type(e).__name__}: {e}"}
            print(f"check: {name} vs kernel: {checks[name]}", flush=True)

    cs = [
        H.Contender("F (numpy pass over the item columns)", lambda _: _numpy_pass(icols),
                    work=n_items, unit="items"),
        H.Contender("F fused (numba loop over the same columns)", lambda _: _fused(*icols),
                    work=n_items, unit="items"),
        H.Contender(K1, lambda p: C.run(p, 1), lambda: prep_reused(1),
                    work=n_items, unit="items"),
        H.Contender(K2, lambda p: C.run(p, 2), lambda: prep_reused(2),
                    work=n_items, unit="items"),
        H.Contender(K1_FRESH, lambda p: C.run(p, 1), lambda: prep(1),
                    work=n_items, unit="items"),
        H.Contender(K2_FRESH, lambda p: C.run(p, 2), lambda: prep(2),
                    work=n_items, unit="items"),
    ]  # fmt: skip
    if frames_kb is not None:
        cs += [
            H.Contender("pandas (warm)", lambda _: frames.settle_pandas(frames_kb, item_bill),
                        work=n_items, unit="items"),
            H.Contender("polars (warm)", lambda _: frames.settle_polars(frames_kb, item_bill),
                        work=n_items, unit="items"),
        ]  # fmt: skip
    cs += [
        H.Contender(f"reference on {n_ref:,} bills", lambda _: reference_batch(ref, ps),
                    work=n_ref_items, unit="items"),
        H.Contender(f"kernel on the same {n_ref:,} bills, 1 thread", lambda p: C.run(p, 1),
                    lambda: prep(1, sb, si), work=n_ref_items, unit="items"),
    ]  # fmt: skip
    say(f"interleaved: 1 warm-up + {rounds} rounds of {len(cs)} contenders", flush=True)
    figs = H.interleave(cs, rounds, say=lambda s: print(s, flush=True))
    del checked
    lent.clear()
    F = figs[cs[0].name]
    k1, k2 = figs[K1], figs[K2]
    lines = ["", "## figures", *(f.line() for f in figs.values()), "", "## ratios"]
    ratios: dict[str, Any] = {}

    def r(label: str, slow: H.Figure, fast: H.Figure, per: str = "run") -> None:
        ratios[label] = H.ratio(slow, fast, per)
        lines.append(H.ratio_line(label, ratios[label]))

    r("kernel 1 thread in F (numpy)", k1, F)
    r("kernel 1 thread in F fused", k1, figs[cs[1].name])
    r("kernel 2 threads in F (numpy)", k2, F)
    r("speed-up of 2 threads", k1, k2)
    r("kernel 1 thread, fresh outputs, in F (numpy)", figs[K1_FRESH], F)
    r("kernel 2 threads, fresh outputs, in F (numpy)", figs[K2_FRESH], F)
    r("fresh outputs / reused outputs, 1 thread", figs[K1_FRESH], k1)
    if frames_kb is not None:
        for name in ("pandas (warm)", "polars (warm)"):
            r(f"{name} / kernel 1 thread", figs[name], k1)
            r(f"{name} / kernel 2 threads", figs[name], k2)
    rf = figs[f"reference on {n_ref:,} bills"]
    ks = figs[f"kernel on the same {n_ref:,} bills, 1 thread"]
    r("reference / kernel 1 thread, per item (kernel on all bills)", rf, k1, "work")
    r("reference / kernel 1 thread, same sample", rf, ks)
    print("\n".join(lines), flush=True)

    cli: dict[str, H.Figure] = {}
    if cli_rounds:
        cli = cli_batch(data, policy, n_items, cli_rounds)
        print("\n## onestop batch end to end (whole process, Parquet in and out)")
        for fig in cli.values():
            print(fig.line(), flush=True)
    H.save(out, {"machine": m, "bills": bills, "items": n_items, "item_bytes": item_bytes,
                 "reference_bills": n_ref, "reference_items": n_ref_items,
                 "reference_equal": ref_equal, "frames_checks": checks if frames_kb else None,
                 "figures": figs, "ratios": ratios, "cli": cli,
                 "load_at_end": os.getloadavg()})  # fmt: skip
    print(f"\nload average at the end: {os.getloadavg()}; figures in {out}")


def cli_batch(data: Path, policy: Path, n_items: int, rounds: int) -> dict[str, H.Figure]:
    """`onestop batch` on the Parquet files, --threads 1 and 2 in turn, each run into a new
    output directory (removed after)."""
    env = H.user_env(ROOT)
    cs = []
    for threads in (1, 2):

        def run(_: Any, threads: int = threads) -> None:
            outdir = Path(tempfile.mkdtemp(prefix="batch-bench-"))
            try:
                H.timed_process([str(ONESTOP), "batch", *(str(data / f"{n}.parquet") for n in
                                 ("bills", "items", "persons")), "--policy", str(policy),
                                 "--out", str(outdir / "run"), "--threads", str(threads),
                                 "--quiet", "--json"], env=env)  # fmt: skip
            finally:
                shutil.rmtree(outdir, ignore_errors=True)

        cs.append(H.Contender(f"onestop batch --threads {threads}", run, work=n_items,
                              unit="items"))  # fmt: skip
    return H.interleave(cs, rounds, say=lambda s: print(s, flush=True))


if __name__ == "__main__":
    typer.run(main)
