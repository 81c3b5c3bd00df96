"""A grouped Settle's Python, piece by piece, in process (no gRPC; issue 13, target 7; not a
test): the event loop's part (the request read, its call made, the hand-back, the answer's
bytes) and the writer's (``settle_group`` on groups of ``--group`` calls), each timed by the
calling thread's CPU (``time.thread_time``), then the writer under cProfile with that clock.

    .venv/bin/python -m benchmarks.settle_pieces                  # a throwaway PostgreSQL
    .venv/bin/python -m benchmarks.settle_pieces --store sqlite --calls 400

The policy, persons and bills (100 items) are grpc_bench's; the PostgreSQL cluster is the
tests' (``tests/pg.py``: not durable, so the writer's commit waits on no fsync: the figures
are its Python). Each piece is timed over every call ``--reps`` times after one untimed
pass (numba's first calls load the compiled code). Figures move with the machine's load:
compare pieces of one run, never across runs.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[1]
X = TypeVar("X")


def per_call(label: str, fn: Callable[[X], object], xs: Sequence[X], reps: int) -> float:
    """``fn`` over ``xs`` once untimed, then ``reps`` times timed: thread CPU a call, us."""
    for x in xs:
        fn(x)
    t0 = time.thread_time()
    for _ in range(reps):
        for x in xs:
            fn(x)
    us = (time.thread_time() - t0) / (len(xs) * reps) * 1e6
    print(f"| {label} | {us:.1f} |", flush=True)
    return us


async def hand_back(n: int) -> float:
    """A future answered through ``call_soon_threadsafe`` + ``_answer`` and awaited (the
    writer's post of a grouped Settle's answer, here from the loop's own thread)."""
    from adapters.grpc.servicers import _answer

    loop = asyncio.get_running_loop()
    t0 = time.thread_time()
    for i in range(n):
        fut: asyncio.Future[int] = loop.create_future()
        loop.call_soon_threadsafe(_answer, fut, i, None)
        await fut
    return (time.thread_time() - t0) / n * 1e6


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--store", choices=("postgres", "sqlite"), default="postgres")
    ap.add_argument("--calls", type=int, default=800)
    ap.add_argument("--group", type=int, default=4)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--top", type=int, default=40, help="cProfile rows printed")
    ns = ap.parse_args(argv)
    if ns.group < 1 or ns.calls < 3 * ns.group or ns.reps < 1:
        ap.error(f"--calls {ns.calls} --group {ns.group} --reps {ns.reps}: need --group >= 1, "
                 "--calls >= 3 x --group (a warm group, then at least one timed and one "
                 "profiled) and --reps >= 1")  # fmt: skip
    sys.path.insert(0, str(ROOT))
    from tests import pg

    cluster = None
    if ns.store == "postgres":
        bindir = pg.find_bindir()
        if bindir is None:
            print("no PostgreSQL server binaries", file=sys.stderr)
            return 1
        cluster = pg.Cluster(bindir)
        cluster.start()
        url = pg.create_database(cluster.url(), "pieces")
    else:
        url = f"sqlite:///{tempfile.mkdtemp(prefix='onestop-pieces-')}/onestop.db"
    try:
        run(url, ns)
    finally:
        if cluster is not None:
            cluster.stop()
    return 0


def run(url: str, ns: argparse.Namespace) -> None:
    from adapters.auth.principals import LOCAL
    from adapters.bootstrap import build
    from adapters.grpc import auth, requestwire
    from adapters.grpc import convert as cv
    from adapters.grpc import servicers as S
    from adapters.grpc.gen.onestop.settlement.v1 import settlement_pb2 as pb
    from adapters.grpc.testing import CHAIN
    from benchmarks import grpc_bench as G
    from engine.service import ledger, settlecols
    from engine.service.groupcommit import GroupCommit
    from engine.service.settledrows import SettledRows
    from engine.service.settlewrite import _with_rows

    app = build(url, policies=None, registry=None, group_commit=GroupCommit(64))
    svc = app.service
    pool = ThreadPoolExecutor(2)
    auth._current.set(LOCAL)  # the caller, as the interceptor sets it
    admin = S.PolicyAdminServicer(svc, pool)
    # the rpcs' bodies (``_unary`` wraps them), called in this thread
    put = getattr(S.PolicyAdminServicer.PutPolicy, "__wrapped__")  # noqa: B009
    imp = getattr(S.PolicyAdminServicer.ImportRegistry, "__wrapped__")  # noqa: B009
    put(admin, pb.PutPolicyRequest(yaml=CHAIN, source_name="chain.yaml"))
    persons = [cv.person_to_pb(p) for p in G.persons()]
    imp(admin, pb.ImportRegistryRequest(persons=persons))
    ss = S.SettlementServicer(svc, pool)
    raws = [
        pb.SettleRequest(
            request_id=f"r-{i}", bill=cv.bill_to_pb(G.bill(i, f"p{i % G.N_PERSONS}", 100))
        ).SerializeToString()
        for i in range(ns.calls)
    ]
    r = ns.reps
    print(f"store {ns.store}, {ns.calls} calls of 100 items, groups of {ns.group}\n")
    print("| the event loop's part, a call | thread CPU us |\n|---|---|")
    per_call("`self.scoped()`", lambda _: ss.scoped(), raws, r)
    per_call("`requestwire.settle_columns`", requestwire.settle_columns, raws, r)
    cols: list[Any] = [requestwire.settle_columns(x) for x in raws]
    per_call("`settlecols.request_of`", lambda g: settlecols.request_of(g[1]), cols, r)
    per_call("`_settle_args` (the three above)", ss._settle_args, raws, r)
    args = [ss._settle_args(x) for x in raws]
    reqs = [a[2] for a in args]
    per_call("`settlecols.digest_of`", settlecols.digest_of, reqs, r)
    per_call("`SettleWrite._call` (request id checks, digest)",
             lambda a: svc._call(a[1], a[2], "local"), args, r)  # fmt: skip
    per_call("`ScopedService.check_hospitals`",
             lambda a: a[0].check_hospitals([a[2].hospital], "bill.hospital"), args, r)  # fmt: skip
    writer = svc.settle_writer
    assert writer is not None

    def flight(_: object) -> None:
        with writer.in_flight():  # held: the next joins
            writer.join_flight()
            writer.leave_flight()

    per_call("`join_flight` + `leave_flight` (one held)", flight, args, r)
    us = asyncio.run(hand_back(len(raws) * r))
    print(f"| hand-back: future, `call_soon_threadsafe`, `_answer`, await | {us:.1f} |")
    per_call("(writer's) `settlecols.stored_json_of`", settlecols.stored_json_of, reqs, r)

    calls = [svc._call(a[1], a[2], "local") for a in args]
    svc.use_group_commit(None)  # the writer's body, called here
    k = ns.group
    svc.settle_group(calls[:k])  # warm
    groups = [calls[i : i + k] for i in range(k, len(calls) - k + 1, k)]
    half = len(groups) // 2
    t0, w0 = time.thread_time(), time.perf_counter()
    outs: list[Any] = [a for g in groups[:half] for a in svc.settle_group(g)]
    n = k * half
    cpu, wall = (time.thread_time() - t0) / n * 1e6, (time.perf_counter() - w0) / n * 1e6
    bad = [o for o in outs if isinstance(o, Exception)]
    assert not bad, bad[:2]
    trip: list[tuple[Any, bool, SettledRows]] = []
    for o in outs:
        rec, replay, rows = _with_rows(o)
        assert rows is not None  # a settlement made now, by the columns path
        trip.append((rec, replay, rows))
    per_call("`_settle_response` (the answer's bytes)",
             lambda t: S._settle_response(t[2], t[0]), trip, r)  # fmt: skip
    print(f"\nthe writer: `settle_group` of {k}: {cpu:.1f} us thread CPU a Settle "
          f"({wall:.1f} us wall)\n")  # fmt: skip
    print("| the writer's pieces, a Settle | thread CPU us |\n|---|---|")
    per_call("`SettledRows.plain`", lambda t: t[2].plain(), trip, r)
    per_call("`ledger.settle_event` (its canonical check)",
             lambda t: ledger.settle_event(t[0], "local", t[2].plain()), trip, r)  # fmt: skip
    prof = cProfile.Profile(time.thread_time)
    prof.enable()
    for g in groups[half:]:
        svc.settle_group(g)
    prof.disable()
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    stats.sort_stats("cumulative").print_stats(ns.top)
    print(f"\ncProfile (thread CPU), {k * (len(groups) - half)} Settles:\n{out.getvalue()}")


if __name__ == "__main__":
    sys.exit(main())
