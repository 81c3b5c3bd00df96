"""Batch runs: plan parts cut at household boundaries, settle each part, locally or on Dask.

The same function, ``settle_part``, settles one part wherever it runs: it reads only its rows
of the bills and items files (Parquet row groups), the persons of its bills, checks and settles
them with the kernel and writes its results as ``part-NNNNN.parquet`` files. A part holds whole
households, so no account crosses two parts and the parts can be settled in any order, in any
process: the files are the same however they were computed.

The plan (parts cut at household boundaries, the order checks): adapters/batch/plan.py.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache, partial
from pathlib import Path
from typing import Any, cast

import numpy as np

from adapters.batch import arrowcols, io, itemstream, parquetout
from adapters.batch.encodings import delta_columns
from adapters.batch.idkeys import IdKeys
from engine import __version__ as ENGINE_VERSION
from engine import columnar as C
from engine.columnar import Reject
from engine.policy.compiled import CompiledPolicies, compile_tables
from engine.policy.load import load_policies
from engine.policy.policyset import PolicySet

OUTPUTS = ("bills", "layers", "alerts", "closing", "funds")
#: bills per part by default (``--chunk-bills``): 100 k, not 200 k, since 2026-12-03
#: (benchmarks/README.md, branch batch5: 1 M x 40 at the same CPU or less, ~1.2x less wall
#: under load, peak memory ~1.0 GB against ~1.5 GB)
CHUNK_BILLS = 100_000
#: written only when asked (``Spec.items_by_fund``): per item, which fund paid what (section 11)
ITEMS_BY_FUND = "items_by_fund"


@dataclass(frozen=True)
class Spec:
    """What to settle and where to write it (picklable: sent to Dask workers)."""

    bills: str
    items: str
    persons: str
    policy: tuple[str, ...]
    out: str | None = None  # directory; parts go to out/_tmp until the run succeeds
    opening: str | None = None
    threads: int = 1
    keep_going: bool = False  # settle the good bills when some rows are rejected
    encoding: str = "utf-8"  # of CSV inputs (a UTF-8 byte-order mark is skipped)
    #: opening balances of hard budgets, ((region, fund_code, year), fen) (domain.md 12); with
    #: any, the run is one part settled in the region-wide order (a balance couples households)
    budgets: tuple[tuple[tuple[str, str, int], int], ...] = ()
    #: also write items_by_fund/: the per-item allocation (domain.md section 11)
    items_by_fund: bool = False
    #: ``run_local``: read part N+1 and write part N-1 in two threads while part N settles
    #: (False: one part after the other, in this thread)
    overlap: bool = True
    #: codec of the output parts (``parquetout.COMPRESSIONS``) and whether they carry column
    #: statistics
    compression: str = parquetout.COMPRESSION
    statistics: bool = False
    #: write every column plain (text as a dictionary), no ``DELTA_BINARY_PACKED`` columns
    #: (adapters/batch/encodings.py), for readers of older stacks
    parquet_compat: bool = False

    def inputs(self) -> list[str]:
        return [self.bills, self.items, self.persons, *([self.opening] if self.opening else [])]


@dataclass(frozen=True)
class Part:
    k: int
    bill_lo: int
    bill_hi: int
    item_lo: int
    item_hi: int
    extra: tuple[tuple[int, str, Any, str], ...] = ()  # (local bill, field, value, rule)
    #: where each bill's items start in the part (and the part's item count last), when the
    #: plan found the items grouped by bill exactly in the bills' order (the usual case): the
    #: part's items are then read without their bill ids. None: linked when read
    bill_start: np.ndarray | None = field(default=None, compare=False, repr=False)


@dataclass
class PartResult:
    k: int
    n_bills: int  # bills read
    n_settled: int
    n_items: int
    rejects: list[Reject]
    written: bool
    totals: dict[str, int] = field(default_factory=dict)
    layers: dict[str, dict[str, Any]] = field(default_factory=dict)  # layer id -> figures
    #: (region, fund_code, year) -> {"paid", "bound_bills"} (engine.columnar.fund_figures)
    funds: dict[tuple[str, str, int], dict[str, int]] = field(default_factory=dict)


# --------------------------------------------------------------------------- one part


@lru_cache(maxsize=4)
def _policies(paths: tuple[str, ...]) -> tuple[PolicySet, CompiledPolicies]:
    ps = load_policies(*paths)
    return ps, compile_tables(ps.tables)


def sha256_of(path: str | Path) -> str:
    """SHA-256 of a file, read in 1 MiB blocks (memory: one block)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


@lru_cache(maxsize=4)
def policy_manifest(paths: tuple[str, ...]) -> tuple[dict[str, Any], ...]:
    """The policy tables of a run: file, its SHA-256, region and effective range (label)."""
    ps = _policies(paths)[0]
    return tuple(
        {"file": f, "sha256": sha256_of(f), "label": t.label, "region": t.region.code,
         "effective_from": t.effective_from.isoformat(),
         "effective_to": t.effective_to.isoformat() if t.effective_to else None}
        for f, t in zip(ps.files, ps.tables, strict=True)
    )  # fmt: skip


def parquet_metadata(paths: tuple[str, ...]) -> dict[str, str]:
    """Schema metadata of every output part: the engine version and the policy tables
    (label and digest) the figures were computed with."""
    return {
        "onestop.engine_version": ENGINE_VERSION,
        "onestop.policy": json.dumps(
            [{k: p[k] for k in ("label", "file", "sha256")} for p in policy_manifest(paths)],
            ensure_ascii=False,
        ),
    }


#: one reader of the persons file at a time: a part that needs it while ``adapters.batch.
#: prefetch`` reads it waits for that read (then finds it in the cache), not read it twice
_PERSONS_LOCK = threading.Lock()


def _persons(path: str) -> tuple[C.PersonCols, np.ndarray | None, IdKeys | None]:
    """The whole persons file as columns (read and coded once per process), and its person
    ids as integer keys (``idkeys``), or, if they are not ids of one width, as fixed-width
    strings (None when there are keys: 333 k ids as unicode were 13 MB of fresh memory):
    looked up by every part."""
    with _PERSONS_LOCK:
        return _persons_read(path)


@lru_cache(maxsize=2)
def _persons_read(path: str) -> tuple[C.PersonCols, np.ndarray | None, IdKeys | None]:
    t = io.read_all(path, "persons").select(io.columns_of(path, "persons"))
    cols = arrowcols.person_cols(t, Path(path).name, np.arange(t.num_rows, dtype=np.int64))
    labels = np.asarray(cast(C.Coded, cols.person_id).labels)
    keys = IdKeys.of(labels)
    return cols, labels.astype(str) if keys is None else None, keys


@lru_cache(maxsize=2)
def _opening(path: str) -> C.OpeningCols:
    t = io.read_opening(path)
    return arrowcols.opening_cols(t, Path(path).name)


def persons_for(spec: Spec, person_ids: C.Coded) -> C.PersonCols:
    """The rows of the persons file for these person ids (any order in the file)."""
    pcols, labels, keys = _persons(spec.persons)
    pid = cast(C.Coded, pcols.person_id)  # person_cols codes it
    want = keys.lookup(np.asarray(person_ids.labels)) if keys is not None else None
    if want is None:  # not ids of one width: as fixed-width strings
        strs = labels if labels is not None else np.asarray(pid.labels).astype(str)
        want = C.lookup(strs, np.asarray(person_ids.labels).astype(str))
    used = np.zeros(len(pid.labels), dtype=bool)
    used[want[want >= 0]] = True
    rows = np.flatnonzero(used[pid.codes])

    def part(a: Any) -> Any:
        return None if a is None else C.take(a, rows)

    return C.PersonCols(
        person_id=part(pid), birth_date=part(pcols.birth_date),
        household_id=part(pcols.household_id), tag=part(pcols.tag),
        tag_valid_from=part(pcols.tag_valid_from), tag_valid_to=part(pcols.tag_valid_to),
        row=rows, file=pcols.file,
    )  # fmt: skip


@dataclass
class PartInput:
    """One part's rows as read from the files, as engine.columnar columns (not checked yet):
    what the reading stage of ``run_local``'s pipeline hands to the settling stage."""

    bills: C.BillCols
    items: C.ItemCols


def read_part(spec: Spec, part: Part) -> PartInput:
    """Read one part's rows of the bills and items files (Parquet: only the row groups that
    hold them) into columns; items stored in the bills' order are linked as runs. pyarrow
    reads and decodes with the GIL released: a thread reads part N+1 while part N settles. A
    file that cannot be read (a date that is not one, a float column) raises InputFileError."""
    io.use_encoding(spec.inputs(), spec.encoding)
    bt = io.read_rows(spec.bills, "bills", part.bill_lo, part.bill_hi,
                      io.columns_of(spec.bills, "bills"))  # fmt: skip
    bc = arrowcols.bill_cols(bt, Path(spec.bills).name, part.bill_lo)
    if part.bill_start is not None:  # linked by the plan: the items' ids are not read
        return PartInput(bc, itemstream.read_item_cols(
            spec.items, part.item_lo, part.item_hi, None, bill_start=part.bill_start
        ))  # fmt: skip
    by_hospital = "hospital" in io.columns_of(spec.items, "items")
    runs_key = arrowcols.coded(arrowcols.bill_key(bt)) if by_hospital else cast(C.Coded, bc.bill_id)
    del bt
    return PartInput(
        bc, itemstream.read_item_cols(spec.items, part.item_lo, part.item_hi, runs_key)
    )


def settle_part(spec: Spec, part: Part, buffers: C.OutputBuffers | None = None) -> PartResult:
    """Read, check, settle and write one part; returns its figures and rejects. ``buffers``:
    the kernel's outputs in reused buffers (given back once the part is written)."""
    res, complete = settle_part_staged(spec, part, buffers=buffers)
    if complete is not None:
        complete()
    return res


def settle_part_staged(
    spec: Spec, part: Part, read: PartInput | None = None, buffers: C.OutputBuffers | None = None
) -> tuple[PartResult, Callable[[], None] | None]:
    """Check and settle one part (``read``: its columns, already read by ``read_part``; else
    read here); returns its result (counts and rejects) and what completes it: its figures and its
    output files (``complete_part``; None after rejects). A pipelined run completes a part in
    its writer thread while the next part settles; ``buffers``: the pool the kernel's outputs
    are taken from, and given back to once the part is complete."""
    io.use_encoding(spec.inputs(), spec.encoding)
    if spec.threads > 1:
        import numba

        # numba.config sets its NUMBA_* names when imported (_readenv): mypy sees none of them
        numba.set_num_threads(min(spec.threads, numba.config.NUMBA_NUM_THREADS))  # type: ignore[attr-defined]
    policies, compiled = _policies(spec.policy)
    read = read or read_part(spec, part)
    bc, ic = read.bills, read.items
    del read
    pcols = persons_for(spec, cast(C.Coded, bc.person_id))  # bill_cols codes it
    opening = _opening(spec.opening) if spec.opening else None
    prep = C.prepare_columns(
        bc, ic, pcols, policies, opening, n_chunks=max(1, spec.threads * 4),
        compiled=compiled, extra_rejects=list(part.extra), budgets=dict(spec.budgets) or None,
        out=buffers,
    )  # fmt: skip
    res = PartResult(part.k, len(bc), prep.kb.n_bills, len(ic), prep.rejects, False)
    if prep.rejects and not spec.keep_going:
        return res, None
    # bills refused at the account limit: rejects too; the items are let go (their memory
    # serves the next part's read while this part is written)
    refused = C.run(prep, spec.threads, allocate=spec.items_by_fund, keep_items=False)
    if refused:
        res.rejects, res.n_settled = prep.rejects, prep.kb.n_bills
        if not spec.keep_going:
            return res, None
    return res, partial(complete_part, spec, part, prep, res, buffers)


def complete_part(spec: Spec, part: Part, prep: C.Prepared, res: PartResult,
                  buffers: C.OutputBuffers | None = None) -> None:  # fmt: skip
    """A settled part's figures (into ``res``) and, with ``spec.out``, its output files; then
    its output buffers go back to ``buffers`` (the next part settles into them)."""
    figures(prep, res)
    if spec.out is not None:
        write_part(spec, part.k, prep, buffers)
        res.written = True
    if buffers is not None:
        buffers.give_back(prep)


def write_part(
    spec: Spec, k: int, prep: C.Prepared, buffers: C.OutputBuffers | None = None
) -> None:
    """Write a settled part's files into OUT/_tmp (the funds output is written once for the
    run, from every part's figures: cli). ``buffers``: the pool the layer fields' buffer is
    taken from (given back with the part's outputs), if any."""
    tmp, name = Path(spec.out or "") / "_tmp", f"part-{k:05d}.parquet"
    md = parquet_metadata(spec.policy)
    # the writers of the part's tables (the bills', layers' and alerts' take the fields too)
    Writer = Callable[..., dict[str, Any]]
    outs: list[tuple[Writer, str]] = [(C.bill_columns, "bills"), (C.layer_columns, "layers"),
            (C.alert_columns, "alerts"), (C.closing_columns, "closing"),
            *([(C.item_fund_columns, ITEMS_BY_FUND)] if spec.items_by_fund else [])]  # fmt: skip
    # out_layer field by field once, for the layers and then the alerts (the bills read their
    # pays in place); made and let go when the layers' table was before (no longer alive)
    fields: np.ndarray | None = None
    labels: dict[int, Any] = {}  # Arrow labels made once a part (parquetout.arrow_table)
    for cols, d in outs:
        if d == "layers":
            fields = C.layer_fields(prep, buffers)
        use = fields is not None and d in ("layers", "alerts")
        got = cols(prep, fields) if use else cols(prep)
        table = parquetout.arrow_table(got, labels)
        del got
        if d == "alerts":
            fields = None
        parquetout.write_parquet(
            table, tmp / d / name, md, compression=spec.compression, statistics=spec.statistics,
            delta=() if spec.parquet_compat else delta_columns(d, table),
        )  # fmt: skip


def figures(prep: C.Prepared, res: PartResult) -> None:
    """Sums for the summary: per layer bills, persons and amount paid; patients' shares; per
    fund and year what was drawn (``engine.columnar.figures``: one compiled pass, GIL
    released)."""
    from engine.columnar.figures import figures as batch_figures

    kb, c = prep.kb, prep.kb.compiled
    ob = kb.out_bill
    K = C.K
    f = batch_figures(prep)
    res.totals = {
        "bills": kb.n_bills,
        "total": int(ob[:, K.B_TOTAL].sum()),
        "window_pay": int(ob[:, K.B_WINDOW].sum()),
        "net_selfpay": int(ob[:, K.B_NET].sum()),
        "alerts": f.alerts,
        "relief": f.relief,
    }
    for lid, sums in f.layers.items():
        layer = next(la for t in c.tables for la in t.layers if la.id == lid)
        res.layers[lid] = {"fund_code": layer.fund_code, "name": layer.name,
                           "kind": layer.kind, **sums}  # fmt: skip
    res.funds = f.funds


# --------------------------------------------------------------------------- runs


def combine(results: list[PartResult]) -> dict[str, Any]:
    tot: dict[str, int] = {}
    layers: dict[str, dict[str, Any]] = {}
    funds: dict[tuple[str, str, int], dict[str, int]] = {}
    for r in results:
        for key, f in r.funds.items():
            acc = funds.setdefault(key, {"paid": 0, "bound_bills": 0})
            acc["paid"] += f["paid"]
            acc["bound_bills"] += f["bound_bills"]
        for k, v in r.totals.items():
            tot[k] = tot.get(k, 0) + v
        for lid, f in r.layers.items():
            if lid not in layers:
                layers[lid] = dict(f)
            else:
                for k in ("bills", "persons", "amount", "relief"):
                    layers[lid][k] += f[k]
    tot["read"] = sum(r.n_bills for r in results)
    tot["items"] = sum(r.n_items for r in results)
    tot["rejected_rows"] = sum(len(r.rejects) for r in results)
    return {"totals": tot, "layers": layers, "funds": funds}


def _begin(spec: Spec) -> None:
    if spec.out is not None:
        shutil.rmtree(Path(spec.out) / "_tmp", ignore_errors=True)


def finish(spec: Spec, ok: bool) -> None:
    """Move the parts into place after a good run; drop them after a failed one."""
    if spec.out is None:
        return
    out = Path(spec.out)
    tmp = out / "_tmp"
    if ok:
        for name in (*OUTPUTS, ITEMS_BY_FUND):
            shutil.rmtree(out / name, ignore_errors=True)
            if (tmp / name).exists():
                (tmp / name).rename(out / name)
            elif name in OUTPUTS or spec.items_by_fund:
                (out / name).mkdir(parents=True, exist_ok=True)
    shutil.rmtree(tmp, ignore_errors=True)


def run_local(
    spec: Spec, parts: list[Part], on_part: Callable[[PartResult], None] | None = None
) -> Iterator[PartResult]:
    """Settle the parts in this process, in order (the kernel uses ``spec.threads`` threads
    inside each part), yielding each part's result once its files are written. Stops at the
    first part with rejects unless ``spec.keep_going``. With ``spec.overlap`` (and more than
    one part) a pipeline uses the second core: a reader thread reads part N+1 and a writer
    thread writes part N-1 while this thread checks and settles part N (pyarrow reads, encodes
    and compresses with the GIL released); the kernel's output buffers of a written part are
    reused by a later one (``engine.columnar.OutputBuffers``); a failure in either is raised here in part order,
    after every write already started has finished (``finish`` can then drop them)."""
    _begin(spec)
    if not spec.overlap or len(parts) < 2:
        buffers = C.OutputBuffers() if len(parts) > 1 else None
        for p in parts:
            r = settle_part(spec, p, buffers)
            if on_part:
                on_part(r)
            yield r
            if r.rejects and not spec.keep_going:
                return
        return
    yield from _pipelined(spec, parts, on_part)


def _pipelined(
    spec: Spec, parts: list[Part], on_part: Callable[[PartResult], None] | None
) -> Iterator[PartResult]:
    from collections import deque
    from concurrent.futures import Future, ThreadPoolExecutor

    reader = ThreadPoolExecutor(1, thread_name_prefix="onestop-read")
    writer = ThreadPoolExecutor(1, thread_name_prefix="onestop-write")
    queued: deque[tuple[PartResult, Future[None] | None]] = deque()  # settled, being written
    # the kernel's outputs: a part settles into the buffers of a part already written (two in
    # use at a time: the part settling and the part being written)
    buffers = C.OutputBuffers()

    def written(r: PartResult, fut: Future[None] | None) -> PartResult:
        if fut is not None:
            fut.result()  # a failed write raises here
        if on_part:
            on_part(r)
        return r

    nxt: Future[PartInput] | None = reader.submit(read_part, spec, parts[0])
    try:
        for i, p in enumerate(parts):
            assert nxt is not None
            try:
                read = nxt.result()  # a part that cannot be read raises here
                nxt = reader.submit(read_part, spec, parts[i + 1]) if i + 1 < len(parts) else None
                r, complete = settle_part_staged(spec, p, read, buffers)
                del read
            except Exception:  # after the parts before it, as one part after the other would
                while queued:
                    yield written(*queued.popleft())
                raise
            stop = bool(r.rejects) and not spec.keep_going
            queued.append((r, writer.submit(complete) if complete else None))
            while len(queued) > (0 if stop else 1):  # one part written while the next settles
                yield written(*queued.popleft())
            if stop:
                return
        while queued:
            yield written(*queued.popleft())
    finally:  # on any exit, nothing is left running: no file appears after a failed run
        if nxt is not None:
            nxt.cancel()
        reader.shutdown(wait=True, cancel_futures=True)
        writer.shutdown(wait=True, cancel_futures=True)


class SchedulerUnreachable(Exception):
    """The Dask scheduler of ``--dask-scheduler`` cannot be reached (``usage``: the address is
    not one)."""

    def __init__(self, message: str, usage: bool = False):
        super().__init__(message)
        self.usage = usage


def connect_dask(address: str, timeout: float) -> Any:
    """A client of the scheduler at ``address``, or SchedulerUnreachable after ``timeout``
    seconds (one line; the half-made client's complaints while it is collected are dropped)."""
    import sys

    from dask.distributed import Client

    hook = sys.unraisablehook
    sys.unraisablehook = lambda _u: None
    try:
        return Client(address, timeout=timeout)
    except ValueError as e:
        raise SchedulerUnreachable(
            f"--dask-scheduler {address!r}: {e} (give tcp://host:8786)", usage=True
        ) from None
    except (OSError, TimeoutError) as e:
        raise SchedulerUnreachable(
            f"cannot reach the Dask scheduler at {address} within {timeout:g} s "
            f"({type(e).__name__}); is it running, and is the address right?"
        ) from None
    finally:
        import gc

        gc.collect()
        sys.unraisablehook = hook


def run_dask(
    spec: Spec,
    parts: list[Part],
    address: str | None = None,
    local_workers: int | None = None,
    client: Any = None,
) -> Iterator[PartResult]:
    """The same parts on a dask.distributed cluster (an existing scheduler ``address``, a new
    LocalCluster of ``local_workers`` processes, or a ``client``). Workers read the inputs and
    write the parts themselves: the paths must be visible to them (shared storage)."""
    from dask.distributed import Client, LocalCluster, as_completed

    _begin(spec)
    cluster = None
    own = client is None
    if client is None:
        if address:
            client = Client(address)
        else:
            cluster = LocalCluster(
                n_workers=local_workers or 2, threads_per_worker=1, processes=True,
                dashboard_address=None,
            )  # fmt: skip
            client = Client(cluster)
    try:
        futures = client.map(settle_part, [spec] * len(parts), parts, pure=False)
        for fut in as_completed(futures):
            r = fut.result()
            yield r
            if r.rejects and not spec.keep_going:
                client.cancel(futures)
                return
    finally:
        if own:
            client.close()
            if cluster is not None:
                cluster.close()
