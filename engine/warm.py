"""Compile every variant of the numba kernel into its on-disk cache, ahead of first use.

numba compiles ``engine.kernel`` once per signature (the dtypes and number of dimensions of the
arrays, and whether the budget and allocation arrays are None) and keeps each compiled variant
in its cache (``engine/__pycache__``, or ``NUMBA_CACHE_DIR``). A process that finds its variant
there loads it in well under a second; one that does not compiles it (10-20 s of CPU each).
``warm`` runs each variant the commands use on two tiny bills built from the policy tables
given, so that it is compiled and cached once, at set-up (``onestop warm``, ``make setup``,
``make serve``, ``make warm``), never under a user's first command.

The variants (``VARIANTS``): which item dtypes reach the kernel, and in which mode:
- ``columns``: int8 categories, the rest int64: Bill objects (``engine.batch.prepare``,
  whose int64 categories ``KernelBatch.args`` gives the kernel as int8): ``onestop settle``
  and ``policy whatif``, the server's unary calls (with hard budgets and with the per-item
  allocation), ``settle_batch(threads=...)``; ``columns_from_bills``; the packed stream with
  quantities and caps or ratios as int64 (``engine.columnar.billitems`` fills an absent cap or
  ratio column as int64 beside them); ``onestop batch`` on CSV files, read as int64 (with
  ``--fund-used``: budgets);
- ``stream``: the packed gRPC stream without price caps or self-pay ratios (the absent
  nullable columns are int32 and int16);
- ``parquet``: ``onestop batch`` on the files the project writes (int32 quantities and caps,
  int16 ratios): serial, parallel (``--threads``), with budgets (``--fund-used``) and with
  the allocation (``--items-by-fund``); serial also the packed stream's narrow bytes columns
  (``adapters.grpc.packeditems.KEEP_NARROW``), and ``in-place`` for them read where they
  are in the message (``engine.kernel.IN_PLACE_DTYPES``: no reordering copy);
- ``parquet-i8ratio``: Parquet files whose self-pay ratio column is int64 (the tests write some);
- and ``columns`` on two threads with the allocation (``settle_batch(threads=2,
  allocate_items=True)``, the property tests).
Until 2026-12-03 Bill objects gave int64 categories, a variant family of their own: three
variants more to compile (10-20 s of CPU each), and CSV files with ``--fund-used`` and
a packed stream with caps but no ratios compiled theirs on first use.
Files with other integer widths compile their own variant on first use (and cache it).
Besides the kernel, ``warm`` compiles ``engine.columnar.runs`` (the copy of item runs when
``prepare_columns`` reorders bills given by run offsets: one tiny loop per integer width) and
``engine.columnar.itemcheck`` (one pass over the items before the numpy item rules),
``engine.columnar.keptbills`` (the kept bills' years, ages and account slots) and
``engine.service.itemrules`` (the one-bill path's item rules) and ``engine.service.storedjson``
(a Settle's stored request).

``warm(..., jobs=N)`` (``onestop warm --jobs N``, default one process per core up to 4)
compiles the variants in N processes at once, each taking the next when done: numba's cache
index is made safe for concurrent writers by ``engine.numbacache`` (a file lock). The compiled
helpers (and the server's, which ``onestop warm`` passes as ``also``) are tasks of those
processes too, beside the variants: compiled one after the other after them, in the parent,
they kept both cores waiting on one (about 36 s of CPU, most of it the server's answer writer,
``adapters.grpc.resultwire``; 2026-12-03).
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

import numpy as np

from engine import numbacache
from engine.batch import prepare
from engine.bill import parse_bill
from engine.columnar.answers import warm_answers
from engine.columnar.byfield import warm_by_field
from engine.columnar.figures import warm_figures
from engine.columnar.idcodes import warm_factor_ids
from engine.columnar.itemcheck import warm_item_check
from engine.columnar.keptbills import warm_kept_columns
from engine.columnar.runs import read_only, warm_runs
from engine.policy.policyset import PolicySet
from engine.service.itemrules import warm_item_rules
from engine.service.storedjson import warm_stored_json

I1, I2, I4, I8 = np.int8, np.int16, np.int32, np.int64
#: name -> dtypes of (cat, qty, amount, price_cap, sp_ratio)
ITEM_DTYPES: dict[str, tuple[Any, Any, Any, Any, Any]] = {
    "columns": (I1, I8, I8, I8, I8),
    "stream": (I1, I8, I8, I4, I2),
    "parquet": (I1, I4, I8, I4, I2),
    "parquet-i8ratio": (I1, I4, I8, I4, I8),
}
#: (item dtypes, mode, who uses it); a mode is "serial", "parallel", "allocate", "budgets",
#: "budgets+allocate", "parallel+allocate" or "in-place" (serial, the item columns read-only
#: and read where they are: ``engine.kernel.IN_PLACE_DTYPES``, ``KernelBatch.item_at``)
VARIANTS: tuple[tuple[str, str, str], ...] = (
    ("columns", "serial", "settle"),  # Bill objects; the server; onestop batch on CSV files
    ("columns", "allocate", "settle"),
    ("columns", "budgets", "server"),  # and onestop batch --fund-used on CSV files
    ("columns", "budgets+allocate", "server"),
    ("columns", "parallel", "batch"),
    ("stream", "serial", "server"),
    ("columns", "serial", "server"),
    ("columns", "allocate", "batch"),
    ("columns", "budgets", "batch"),
    ("parquet", "serial", "batch"),
    ("parquet", "serial", "server"),  # the packed stream's narrow quantities, caps and ratios
    ("parquet", "in-place", "server"),  # the same, its items read in place (the usual message)
    ("parquet", "parallel", "batch"),
    ("parquet", "allocate", "batch"),
    ("parquet", "budgets", "batch"),
    # two more the test suite reaches (each xdist worker compiled them, 30-130 s under load):
    # settle_batch(threads=2, allocate_items=True), and Parquet files with an int64 ratio column
    ("columns", "parallel+allocate", "batch"),
    ("parquet-i8ratio", "serial", "batch"),
)
#: what each use needs: settle (the offline CLI), server (make serve), batch; "all"
USES = ("settle", "server", "batch")


def _bills(policies: PolicySet) -> list[Any]:
    """Two bills of two households under the first table (two households: two chunks, so
    that a parallel run takes the parallel kernel)."""
    t = policies.tables[0]
    day = t.effective_from.isoformat()
    items = [
        {"code": f"W{c}", "category": c, "qty_e4": 10000, "unit_price": 10000, "amount": 10000}
        for c in ("A", "B", "C")
    ]
    return [
        parse_bill({
            "id": f"warm-{k}", "region": t.region.code, "hospital": "H000000000",
            "hospital_level": t.hospital_levels[0], "admission_date": day,
            "discharge_date": day, "items": items,
            "person": {"id": f"warm-p{k}", "birth_date": "1960-01-01",
                       "household": f"warm-h{k}"},
        })
        for k in (1, 2)
    ]  # fmt: skip


def run_variant(policies: PolicySet, items: str, mode: str) -> None:
    """Run the kernel once on the warm bills with the item dtypes ``items`` in ``mode``
    (compiling the variant, or loading it from the cache)."""
    bills = _bills(policies)
    kb, _, _ = prepare(bills, policies, None, n_chunks=8)
    for name, dt in zip(("cat", "qty", "amount", "price_cap", "sp_ratio"), ITEM_DTYPES[items],
                        strict=True):  # fmt: skip
        setattr(kb, name, getattr(kb, name).astype(dt))
    if mode == "in-place":
        kb.item_at = kb.item_start[:-1].copy()
        for name in ("cat", "qty", "amount", "price_cap", "sp_ratio"):
            setattr(kb, name, read_only(getattr(kb, name)))
    if "budgets" in mode:
        region, fund = kb.compiled.fund_keys[0]
        year = bills[0].year
        kb.set_budgets({(region, fund, year): 10**12}, np.array([b.year for b in bills]))
    if "allocate" in mode:
        kb.want_allocation()
    parallel = "parallel" in mode
    if parallel:
        assert len(kb.chunk_start) > 2, "the warm bills must make two chunks"
    kb.run(threads=2 if parallel else 1)


def variants(uses: Iterable[str] = USES) -> list[tuple[str, str]]:
    want = set(uses)
    return list(dict.fromkeys((items, mode) for items, mode, use in VARIANTS if use in want))


def _timed(policies: PolicySet, group: list[tuple[str, str]]) -> list[tuple[str, str, float]]:
    took = []
    for items, mode in group:
        t0 = time.perf_counter()
        run_variant(policies, items, mode)
        took.append((items, mode, time.perf_counter() - t0))
    return took


#: the item dtypes ``progress`` is given for a compiled helper (its mode: the helper's name)
HELPER = "helper"
#: a compiled helper's warm-up and what it costs to compile, in ``_groups``' units (a serial
#: kernel variant is 1; 0: a second or two, run last to fill the processes' ends)
Helper = tuple[Callable[[], None], int]


def _helpers() -> list[Helper]:
    """The compiled helpers besides the kernel (looked up when called, so that a test can
    replace one): ``prepare_columns``' copy of item runs (four integer widths) and item check,
    ``onestop batch``'s summary figures, the packed stream's answer in the request's order
    (``engine.columnar.answers``), the one-bill path's item rules (``engine.service.billcols``),
    ``prepare_columns``' kept bills' years, ages and slots (``engine.columnar.keptbills``),
    bill ids' codes (``engine.columnar.idcodes``), ``onestop batch``'s layer fields
    (``engine.columnar.byfield``) and the stored request's JSON of a PostgreSQL Settle
    (``engine.service.storedjson``)."""
    return [(warm_runs, 1), (warm_item_check, 0), (warm_figures, 0), (warm_answers, 0),
            (warm_item_rules, 0), (warm_kept_columns, 0), (warm_factor_ids, 0),
            (warm_by_field, 0), (warm_stored_json, 0)]  # fmt: skip


def _run_helper(fn: Callable[[], None]) -> list[tuple[str, str, float]]:
    t0 = time.perf_counter()
    fn()
    return [(HELPER, fn.__name__, time.perf_counter() - t0)]


def _groups(todo: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    """The variants as groups for one process each: a parallel variant after the serial one of
    the same item dtypes and mode (it calls that serial kernel: compiled once, in the same
    process), the groups of the parallel and allocating variants (2-4x longer to compile than
    a serial one) first, so that the processes end together."""
    groups: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for items, mode in todo:
        base = mode.replace("parallel+", "").replace("parallel", "serial")
        groups.setdefault((items, base), []).append((items, mode))
    for g in groups.values():
        g.sort(key=lambda v: "parallel" in v[1])
    return sorted(groups.values(), key=lambda g: -_weight(g))


def _weight(group: list[tuple[str, str]]) -> int:
    """A group's compile cost in units of a serial variant (parallel, allocating: +1 each)."""
    return sum(("parallel" in m) + ("allocate" in m) + 1 for _, m in group)


def default_jobs() -> int:
    """Processes ``warm`` uses by default: one per core, at most 4."""
    return max(1, min(os.cpu_count() or 1, 4))


def warm(
    policies: PolicySet,
    uses: Iterable[str] = USES,
    progress: Callable[[str, str, float], None] | None = None,
    jobs: int = 1,
    also: Sequence[Helper] = (),
) -> list[tuple[str, str, float]]:
    """Compile (or load) every kernel variant ``uses`` need and the compiled helpers
    (``_helpers``, then ``also``: the adapters' own, with their costs), in ``jobs`` processes
    at once or, with ``jobs=1`` or without the lock, one after the other in this process.
    In processes, each takes the next task when done with one, the costliest first (the
    groups of variants of ``_groups``, and each helper: they compile beside the kernel's
    variants, not after them); the lock of ``engine.numbacache`` keeps numba's cache index
    whole. ``progress`` gets (item dtypes, mode, seconds) of each variant, and (``HELPER``,
    name, seconds) of each helper, as each is done. Returns (item dtypes, mode, seconds) of each
    kernel variant, in the order done."""
    done: list[tuple[str, str, float]] = []
    if not policies.tables:
        return done
    todo = variants(uses)
    helpers = [*_helpers(), *also]
    if jobs > 1 and len(todo) > 1 and numbacache.install():
        # fork where there is one: the children need not import numba again (nothing has
        # compiled or started numba's threads in this process yet)
        methods = multiprocessing.get_all_start_methods()
        ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
        tasks: list[tuple[int, Callable[..., list[tuple[str, str, float]]], tuple[Any, ...]]] = [
            *((_weight(g), _timed, (policies, g)) for g in _groups(todo)),
            *((w, _run_helper, (fn,)) for fn, w in helpers),
        ]
        tasks.sort(key=lambda t: -t[0])  # stable: the groups before helpers of equal cost
        with ProcessPoolExecutor(max_workers=min(jobs, len(tasks)), mp_context=ctx) as pool:
            futures = [pool.submit(fn, *args) for _, fn, args in tasks]
            for f in as_completed(futures):
                for took in f.result():
                    if took[0] != HELPER:
                        done.append(took)
                    if progress is not None:
                        progress(*took)
        return done
    for variant in todo:
        (timed,) = _timed(policies, [variant])
        done.append(timed)
        if progress is not None:
            progress(*timed)
    for fn, _ in helpers:
        (took,) = _run_helper(fn)
        if progress is not None:
            progress(*took)
    return done
