"""PreSettle's (or Settle's) handler in process, two source trees A/B (issue 13, targets 6 and
7; not a test): the request bytes -> parse -> ``SettlementServicer.PreSettle`` (``--rpc
Settle``: ``Settle``) body -> response bytes (a tree that serves the request as
bytes, ``server.RAW_BYTES``, gets them unparsed, as its server would), on a durable SQLite
store (or ``--store postgres``: a database each on one throwaway durable cluster), no gRPC. The server CPU a call
that is not the rpc machinery, measured steadier than over gRPC on a shared machine.

    .venv/bin/python -m benchmarks.trial_ab /tmp/old [--rounds 7 --calls 400] [--store postgres]
    .venv/bin/python -m benchmarks.trial_ab /tmp/old --rpc Settle --store postgres [--profile F]

Settle: every call a new request id and bill id (the 8 persons' bills in turn, as
``grpc_bench``'s clients), durable commits; the responses compared are those of the first 8
calls without their settlement id and time. ``--profile F``: this tree's timed rounds under
cProfile timing this thread's CPU (the waits on the server left out), the stats written to F
(``python -m pstats F``; the CPU figures then include the profiler's own cost).

Each tree runs in its own process (``PYTHONPATH`` = the tree), started once and warmed; then
rounds alternate A B A B ..., ``--calls`` calls each; CPU (``time.thread_time``) and wall per
call, min / median over the rounds, the load before and after each; the worker process's
whole CPU (its other threads: the ledger sealer, ...) and, on PostgreSQL, the cluster's CPU a
call (every process of the postmaster, from /proc: the backends, the WAL writer, ...; one
round runs at a time, so a round's cluster CPU is its tree's). The response bytes of
both trees are compared (they must be equal).
"""

from __future__ import annotations

import argparse
import json
import statistics as st
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks import harness as H
from benchmarks.grpc_bench import proc_cpu
from benchmarks.treeserver import durable_cluster

ROOT = Path(__file__).resolve().parents[1]

_WORKER = r"""
import hashlib, sys, tempfile, time
from pathlib import Path
from typing import Any
from adapters.bootstrap import build
from adapters.grpc import auth, server
from adapters.grpc.convert import bill_to_pb
from adapters.grpc.gen.onestop.settlement.v1 import settlement_pb2 as pb
from adapters.grpc.testing import CHAIN, chain_bill
from adapters.auth.principals import LOCAL
from concurrent.futures import ThreadPoolExecutor
from engine.bill import Person

tmp = Path(tempfile.mkdtemp(prefix="onestop-trial-ab-"))
(tmp / "policies").mkdir()
(tmp / "policies" / "chain.yaml").write_text(CHAIN)
url = sys.argv[2] or f"sqlite:///{tmp / 'onestop.db'}?synchronous=full"
app = build(url, tmp / "policies", None)
app.service.import_registry([Person.model_validate(
    {"id": f"p{i}", "birth_date": "1960-01-1%d" % (i % 9), "household": f"h{i // 2}",
     "tags": [{"tag": "poor"}] if i % 2 else []}) for i in range(8)])
servicer = server.SettlementServicer(app.service, ThreadPoolExecutor(1))
auth._current.set(LOCAL)
rpc, profile = sys.argv[3], sys.argv[4]
bills = []
for k in range(8):
    b = chain_bill(0, f"p{k}", n_items=int(sys.argv[1]), seed=1)
    b["id"] = f"b0-p{k}"
    bills.append(bill_to_pb(b))
if rpc == "PreSettle":
    body = server.SettlementServicer.PreSettle.__wrapped__
    raws = [pb.PreSettleRequest(bill=b).SerializeToString() for b in bills]

    # a tree whose servicer reads PreSettle's bytes itself is handed them (server.RAW_BYTES)
    raw_in = any(m.endswith(".PreSettle") for m in getattr(server, "RAW_BYTES", ()))

    def call(i):  # the answer as bytes (a tree whose servicer writes them) or a message
        data = raws[i % 8]
        r = body(servicer, data if raw_in else pb.PreSettleRequest.FromString(data))
        return r if type(r) is bytes else r.SerializeToString()

    def answer(i):
        return call(i)
else:  # Settle: a new request id and bill id each call
    body = server.SettlementServicer.Settle.__wrapped__
    seq = iter(range(10**9))

    # a tree whose servicer reads Settle's bytes itself is handed them (server.RAW_BYTES)
    settle_raw = any(m.endswith(".Settle") for m in getattr(server, "RAW_BYTES", ()))

    def call(i):
        n = next(seq)
        req = pb.SettleRequest(request_id=f"r{n}", bill=bills[i % 8])
        req.bill.id = f"b{n}"
        data = req.SerializeToString()
        return body(servicer, data if settle_raw else pb.SettleRequest.FromString(data))

    def answer(i):
        r = call(i)  # a message, or its bytes (a tree that writes them from the kernel's rows)
        r = pb.SettleResponse.FromString(r) if type(r) is bytes else r
        r.settlement.settlement_id = r.settlement.created_at = ""
        return r.SerializeToString()

digest = hashlib.sha256(b"".join(answer(i) for i in range(8))).hexdigest()
for i in range(200):
    call(i)
print("ready", digest, flush=True)
prof = None
if profile:
    import cProfile
    prof = cProfile.Profile(time.thread_time)  # CPU time: the waits on the server left out
for line in sys.stdin:
    n = int(line)
    if prof is not None:
        prof.enable()
    c0, w0, p0 = time.thread_time(), time.perf_counter(), time.process_time()
    for i in range(n):
        call(i)
    c1, w1, p1 = time.thread_time(), time.perf_counter(), time.process_time()
    if prof is not None:
        prof.disable()
    print((c1 - c0) / n * 1e6, (w1 - w0) / n * 1e6, (p1 - p0) / n * 1e6, flush=True)
if prof is not None:
    prof.dump_stats(profile)
app.close()
import shutil
shutil.rmtree(tmp, ignore_errors=True)
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("old", type=Path, help="the other tree (e.g. git archive of main)")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--calls", type=int, default=400)
    ap.add_argument("--items", type=int, default=100)
    ap.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    ap.add_argument("--rpc", choices=("PreSettle", "Settle"), default="PreSettle")
    ap.add_argument("--profile", type=Path, help="cProfile this tree's timed rounds into FILE")
    ap.add_argument("--json", type=Path, default=ROOT / "benchmarks/out/trial_ab.json")
    ns = ap.parse_args(argv)
    m = H.machine()
    print(H.machine_line(m), flush=True)
    cluster, create_database = durable_cluster(ns.store)
    if cluster is not None:
        cluster.start()
    try:
        return _run(ns, m, cluster, create_database)
    finally:
        if cluster is not None:
            cluster.stop()


def _run(ns: argparse.Namespace, m: Any, cluster: Any, create_database: Any) -> int:
    procs = {}
    for name, tree in (("old", ns.old.resolve()), ("new", ROOT)):
        url = "" if cluster is None else create_database(cluster.url(), f"trial_{name}")
        prof = str(ns.profile.resolve()) if ns.profile and name == "new" else ""
        procs[name] = subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(ns.items), url, ns.rpc, prof], cwd=tree, text=True,
            env=H.user_env(tree), stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )  # fmt: skip
    digests = {}
    for name, p in procs.items():
        assert p.stdout is not None
        line = p.stdout.readline().split()
        if not line or line[0] != "ready":
            raise SystemExit(f"{name}: the worker did not start")
        digests[name] = line[1]
    same = len(set(digests.values())) == 1
    print(f"{ns.rpc} response bytes of the 8 bills: {'equal' if same else 'DIFFERENT'} {digests}")
    rows: dict[str, list[tuple[float, ...]]] = {n: [] for n in procs}
    pg = _postmaster(cluster)
    for r in range(ns.rounds):
        for name, p in H.in_turn(procs.items(), r):
            assert p.stdin is not None and p.stdout is not None
            before, pg0 = H.load1(), proc_cpu(pg)
            p.stdin.write(f"{ns.calls}\n")
            p.stdin.flush()
            cpu, wall, whole = map(float, p.stdout.readline().split())
            db = (proc_cpu(pg) - pg0) / ns.calls * 1e6
            rows[name].append((cpu, wall, whole, db, before, H.load1()))
            print(f"  round {r + 1}/{ns.rounds} {name}: CPU {cpu:.0f} us, wall {wall:.0f} us a "
                  f"call, process {whole:.0f} us, PostgreSQL {db:.0f} us (load {before:.2f})",
                  flush=True)  # fmt: skip
    for p in procs.values():
        assert p.stdin is not None
        p.stdin.close()
        p.wait(30)
    out = {}
    print(
        f"\n{ns.items}-item {ns.rpc} handler in process, {ns.store}, {ns.rounds} rounds x "
        f"{ns.calls} calls"
    )
    print("| tree | CPU us a call min / median | wall us min / median | process CPU us min / "
          "median | PostgreSQL CPU us min / median | load first -> last (max) |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for name, xs in rows.items():
        cpus, walls, wholes, dbs = ([x[i] for x in xs] for i in range(4))
        loads = [v for x in xs for v in x[4:]]
        out[name] = {"cpu_min": min(cpus), "cpu_median": st.median(cpus), "wall_min": min(walls),
                     "wall_median": st.median(walls), "process_cpu_median": st.median(wholes),
                     "postgres_cpu_median": st.median(dbs),
                     "load": [loads[0], loads[-1], max(loads)]}  # fmt: skip
        print(f"| {name} | {min(cpus):.0f} / {st.median(cpus):.0f} | {min(walls):.0f} / "
              f"{st.median(walls):.0f} | {min(wholes):.0f} / {st.median(wholes):.0f} | "
              f"{min(dbs):.0f} / {st.median(dbs):.0f} | "
              f"{loads[0]:.2f} -> {loads[-1]:.2f} ({max(loads):.2f}) |")  # fmt: skip
    H.save(ns.json, {"machine": m, "rpc": ns.rpc, "same_response": same, "rows": out,
                     "digests": digests})  # fmt: skip
    print(json.dumps({"same_response": same}))
    return 0 if same else 1


def _postmaster(cluster: Any) -> int | None:
    """The pid of the cluster's postmaster (its data directory's ``postmaster.pid``), or None
    (SQLite)."""
    if cluster is None:
        return None
    return int((cluster.data / "postmaster.pid").read_text().split()[0])


if __name__ == "__main__":
    sys.exit(main())
