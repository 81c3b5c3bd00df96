"""The packed stream (issue 13, target 8), another tree against this one: one worker process per
tree settles the same TRIAL messages in process (the request read as the tree's server reads it,
``packedwire.read_stream_request`` where the tree has it, else protobuf's parse ->
``stream.handle`` -> response bytes; no gRPC), interleaved round by round; wall and CPU
seconds a message (min / median / max), items/s, the load, and whether the response bytes of
both trees are identical.

    git -C /work/main archive main | tar -x -C /tmp/old-stream
    python -m benchmarks.stream_ab /tmp/old-stream                  # 1 warm-up + 5 rounds
    python -m benchmarks.stream_ab /tmp/old-stream --rounds 8 --messages 10 --bills 2000
    python -m benchmarks.stream_ab /tmp/old-stream --form raw       # this tree gets the raw form
    python -m benchmarks.stream_ab /tmp/old-stream --form narrow    # int32 bytes where they fit
    python -m benchmarks.stream_ab /tmp/old-stream --form joined    # narrow, strings joined
    python -m benchmarks.stream_ab /tmp/old-stream --grpc --store postgres   # a database each

The message is grpc_bench's: ``--bills`` bills of ``--items`` items, 64 persons, one region,
no unit prices or item texts. ``--form raw`` sends this tree the same bills with the item
columns as little-endian bytes fields (``pack_bills(raw=True)``) and the baseline the packed
repeated fields it understands: the responses must still be byte for byte the same.
``--form narrow``: this tree gets the narrow bytes fields (``amount_i32``, ...;
``pack_bills(raw=True, narrow=True)``), about half the bytes of the raw form.
``--form joined``: the narrow form with the per-bill strings joined (``bill_ids_joined``,
``person_index_i32`` into ``person_table``, ..., ``admission_dates_joined``;
``pack_bills(joined=True)``, ``adapters.grpc.packedtext``).
``--results le``: this tree's messages ask for the answers' number columns as bytes fields
(``packed_results_le``; the baseline's answers keep the repeated fields unless
``--baseline-results le``); the answers are then compared column by column
(``adapters.grpc.packedresults.columns``), not byte for byte.
``--shuffle`` sends the bills in a random order; ``--in-time`` in discharge order (admission,
bill id after it: households interleaved, each in its settlement order, as a HIS sending a
day's discharges would); by default grpc_bench's order (bill i of person i % 64: not in
settlement order within a household, so the prepare sorts the bills and copies the items).

``--stream-worker`` (with ``--grpc``): this tree's server is started with ``--stream-worker``
(every other TRIAL packed message settled in a second process, a child of the server: its
CPU is in the server CPU figure, which counts the server's live children);
``--baseline-stream-worker``: the baseline's server too (to measure a change to the worker).
``--grpc``: instead of workers, one ``onestop serve`` of each tree (SQLite file, one process,
as grpc_bench's stream) and ``--seconds`` of messages on one ``SettleStream`` call to each in
turn (grpc_bench's ``stream_bench``: pre-serialized messages, responses counted): items/s a
round, the server's CPU a message (``/proc/PID/stat``), the responses compared.

Each worker sets the server's heap thresholds first (``WORKER_HEAP``; ``ONESTOP_HEAP_KEEP=0``
in the environment: glibc's defaults), then builds its own service over a fresh SQLite file (``sqlite:///``, the server's
store), or with ``--store postgres`` a database of its own on one throwaway durable PostgreSQL
cluster (the cluster's CPU a message is then printed: one tree runs at a time, so a round's
cluster CPU is its tree's; ``--baseline-store`` gives the baseline another: the same tree on
SQLite and PostgreSQL), and imports the same persons; its clock is its own (``time.process_time`` for CPU), so
the figures are per message of that tree alone. Nothing here asserts a target.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from benchmarks import harness as H
from benchmarks.grpc_bench import proc_cpu
from benchmarks.treeserver import durable_cluster

ROOT = Path(__file__).resolve().parents[1]

#: The in-process worker's first lines: the server's heap thresholds (``adapters.grpc.heapkeep``,
#: which ``serve_forever`` and the stream worker set) where the tree has them, before anything
#: is allocated. Without them glibc's dynamic thresholds leave each process its own heap top
#: grown and trimmed back every message, by how much depending on what start-up allocated and
#: freed: the same tree ran 1.4x slower (4,524 against 1,727 page faults a message) in a worker
#: that compiled its kernels than in one that loaded them from the cache (benchmarks/README.md,
#: branch numbacache). ``ONESTOP_HEAP_KEEP=0`` in the environment keeps glibc's defaults.
WORKER_HEAP = r"""
try:
    from adapters.grpc.heapkeep import keep_freed_memory
except ImportError:  # a tree before heapkeep
    HEAP_KEPT = False
else:
    HEAP_KEPT = keep_freed_memory()
"""

#: Run inside each tree (PYTHONPATH=that tree): only names every tree has.
_WORKER_BODY = r"""
import hashlib, json, sys, time
from pathlib import Path
from adapters.bootstrap import build
from adapters.grpc import stream
from adapters.grpc.gen.onestop.settlement.v1 import settlement_pb2 as pb
from engine.bill import Person

work = Path(sys.argv[1])
raw = Path(sys.argv[2]).read_bytes()
app = build(sys.argv[3], work / "policies", None)
svc = app.service
svc.import_registry([Person.model_validate(p) for p in json.loads((work / "persons.json").read_text())])

try:  # the request read as the server's deserializer reads it (a tree before it: parsed)
    from adapters.grpc.packedwire import read_stream_request
except ImportError:
    read_stream_request = None

def one():
    if read_stream_request is None:
        return stream.handle(svc, pb.SettleStreamRequest.FromString(raw)).SerializeToString()
    req, cut = read_stream_request(raw)
    return stream.handle(svc, req, cut=cut).SerializeToString()

print(json.dumps({"ready": True, "heap_kept": HEAP_KEPT}), flush=True)
for line in sys.stdin:
    n = int(line)
    c, t = time.process_time(), time.perf_counter()
    for _ in range(n):
        out = one()
    w, c = time.perf_counter() - t, time.process_time() - c
    (work / "response.bin").write_bytes(out)
    print(json.dumps({"wall": w / n, "cpu": c / n, "sha": hashlib.sha256(out).hexdigest(),
                      "bytes": len(out)}), flush=True)
"""
WORKER = WORKER_HEAP + _WORKER_BODY


def messages(
    n_bills: int, n_items: int, shuffle: str, *forms: str, results_le: bool = False
) -> dict[str, bytes]:
    from adapters.grpc.client import pack_bills
    from adapters.grpc.gen.onestop.settlement.v1 import settlement_pb2 as pb
    from benchmarks.grpc_bench import N_PERSONS, bill

    bills = [bill(i, f"p{i % N_PERSONS}", n_items) for i in range(n_bills)]
    if shuffle == "shuffle":
        random.Random(7).shuffle(bills)
    elif shuffle == "in-time":
        bills.sort(key=lambda b: (b["discharge_date"], b["admission_date"], b["id"]))
    out = {}
    for f in dict.fromkeys(forms):
        kw: dict[str, Any] = {"raw": f != "packed", "narrow": f in ("narrow", "joined")}
        if f == "joined":
            kw["joined"] = True
        p = pack_bills(bills, unit_price=False, item_text=False, **kw)
        out[f] = pb.SettleStreamRequest(
            mode=pb.STREAM_MODE_TRIAL, packed=p, packed_results_le=results_le
        ).SerializeToString()
    return out


def same_answer(a: bytes, b: bytes) -> bool:
    """Two SettleStream answers hold the same figures: byte for byte, or (when one or both
    carry the bytes form of the packed results) column by column."""
    if a == b:
        return True
    from adapters.grpc.gen.onestop.settlement.v1 import settlement_pb2 as pb
    from adapters.grpc.packedresults import columns

    x, y = pb.SettleStreamResponse.FromString(a), pb.SettleStreamResponse.FromString(b)
    if (x.n_bills, x.n_items) != (y.n_bills, y.n_items) or len(x.results) or len(y.results):
        return False
    cx, cy = columns(x.packed), columns(y.packed)
    return cx.keys() == cy.keys() and all(
        list(cx[k]) == list(cy[k])
        if isinstance(cx[k], list)
        else bool((cx[k] == cy[k]).all()) and len(cx[k]) == len(cy[k])
        for k in cx
    )


def serve(tree: Path, work: Path, url: str, *extra: str) -> tuple[subprocess.Popen[bytes], str]:
    """``onestop serve`` of ``tree`` over the store ``url`` (one process; ``extra``: more
    options)."""
    from adapters.grpc.client import Client
    from benchmarks.grpc_bench import free_port

    port = free_port()
    cmd = [sys.executable, "-m", "adapters.grpc.commands", "serve", "--db", url, "--port", str(port), "--policies", str(work / "policies"),
           "--registry", str(work / "persons.json"), "--processes", "1", *extra]  # fmt: skip
    log = (work / "server.log").open("ab")
    proc = subprocess.Popen(cmd, cwd=tree, env=H.user_env(tree),
                            stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    target = f"127.0.0.1:{port}"
    with Client(target) as c:
        c.wait_serving(300)
    return proc, target


async def over_grpc(target: str, raw: bytes, seconds: float, pid: int) -> dict[str, Any]:
    """grpc_bench's stream_bench with the message's bytes as given, and the server's CPU."""
    import grpc

    from adapters.grpc.gen.onestop.settlement.v1 import settlement_pb2 as pb
    from benchmarks.grpc_bench import MAX_MESSAGE, proc_cpu

    opts = [("grpc.max_receive_message_length", MAX_MESSAGE),
            ("grpc.max_send_message_length", MAX_MESSAGE)]  # fmt: skip
    async with grpc.aio.insecure_channel(target, options=opts) as ch:
        call = ch.stream_stream("/onestop.settlement.v1.SettlementService/SettleStream",
                                request_serializer=None, response_deserializer=None)  # fmt: skip
        end = time.perf_counter() + seconds
        sent = [0]

        async def requests() -> AsyncIterator[bytes]:
            while time.perf_counter() < end:
                sent[0] += 1
                yield raw

        s0, c0, t0 = proc_cpu(pid), time.process_time(), time.perf_counter()
        last, n = b"", 0
        async for r in call(requests()):
            last, n = r, n + 1
        wall = time.perf_counter() - t0
        s1, c1 = proc_cpu(pid), time.process_time()
    items = pb.SettleStreamResponse.FromString(last).n_items * n
    return {"wall": wall, "messages": n, "items": items, "server_cpu": (s1 - s0) / max(n, 1),
            "client_cpu": (c1 - c0) / max(n, 1), "sha": hashlib.sha256(last).hexdigest(),
            "last": last}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("baseline", help="the other tree (git archive main | tar -x -C DIR)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--messages", type=int, default=8, help="messages a timed run")
    ap.add_argument("--bills", type=int, default=2000)
    ap.add_argument("--items", type=int, default=100)
    ap.add_argument("--form", choices=("packed", "raw", "narrow", "joined"), default="packed",
                    help="the form this tree gets")  # fmt: skip
    ap.add_argument("--baseline-form", choices=("packed", "raw", "narrow", "joined"),
                    default="packed",
                    help="the form the baseline gets (a form that tree knows)")  # fmt: skip
    ap.add_argument("--results", choices=("repeated", "le"), default="repeated",
                    help="the packed results' form this tree is asked for")  # fmt: skip
    ap.add_argument("--baseline-results", choices=("repeated", "le"), default="repeated",
                    help="the form the baseline is asked for (le: a tree that knows it)")  # fmt: skip
    ap.add_argument(
        "--shuffle",
        dest="order",
        action="store_const",
        const="shuffle",
        default="bench",
        help="bills in a random order",
    )
    ap.add_argument("--in-time", dest="order", action="store_const", const="in-time",
                    help="bills in discharge order")  # fmt: skip
    ap.add_argument("--grpc", action="store_true", help="real servers, one stream each")
    ap.add_argument("--seconds", type=float, default=5.0, help="--grpc: seconds a round")
    ap.add_argument("--stream-worker", action="store_true",
                    help="--grpc: this tree's server settles every other message in a second "
                    "process (onestop serve --stream-worker)")  # fmt: skip
    ap.add_argument("--baseline-stream-worker", action="store_true",
                    help="--grpc: the baseline's server too (a tree that knows the option)")  # fmt: skip
    ap.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite",
                    help="each tree's store: a SQLite file, or a database each on one throwaway "
                    "durable PostgreSQL cluster")  # fmt: skip
    ap.add_argument("--baseline-store", choices=("sqlite", "postgres"),
                    help="the baseline's store, if not --store's (the same tree on both stores: "
                    "the baseline DIR is this tree)")  # fmt: skip
    ns = ap.parse_args()
    ns.baseline_store = ns.baseline_store or ns.store
    pg = "postgres" in (ns.store, ns.baseline_store)
    cluster, create_database = durable_cluster("postgres" if pg else "sqlite")
    if cluster is not None:
        cluster.start()
    try:
        _run(ns, cluster, create_database)
    finally:
        if cluster is not None:
            cluster.stop()


def _run(ns: argparse.Namespace, cluster: Any, create_database: Any) -> None:
    from benchmarks.grpc_bench import CHAIN, persons

    print(H.machine_line(H.machine()), flush=True)
    msgs = {
        "baseline": messages(ns.bills, ns.items, ns.order, ns.baseline_form,
                             results_le=ns.baseline_results == "le")[ns.baseline_form],
        "this tree": messages(ns.bills, ns.items, ns.order, ns.form,
                              results_le=ns.results == "le")[ns.form],
    }  # fmt: skip
    trees = {
        "baseline": (Path(ns.baseline).resolve(), ns.baseline_form),
        "this tree": (ROOT, ns.form),
    }
    procs: dict[str, subprocess.Popen[str]] = {}  # the in-process workers
    servers: dict[str, tuple[subprocess.Popen[bytes], str]] = {}  # --grpc: server, target
    ns.pg = None if cluster is None else _postmaster(cluster)
    with tempfile.TemporaryDirectory(prefix="stream-ab-") as tmp:
        for name, (tree, _form) in trees.items():
            work = Path(tmp) / name.replace(" ", "-")
            store = ns.baseline_store if name == "baseline" else ns.store
            url = (f"sqlite:///{work}/store.db" if store == "sqlite"
                   else create_database(cluster.url(), f"stream_{name.replace(' ', '_')}"))  # fmt: skip
            (work / "policies").mkdir(parents=True)
            (work / "policies" / "chain.yaml").write_text(CHAIN)
            (work / "persons.json").write_text(json.dumps(persons()))
            (work / "message.bin").write_bytes(msgs[name])
            if ns.grpc:
                worker = ns.stream_worker if name == "this tree" else ns.baseline_stream_worker
                extra = ("--stream-worker",) if worker else ()
                servers[name] = serve(tree, work, url, *extra)
                continue
            procs[name] = subprocess.Popen(
                [sys.executable, "-c", WORKER, str(work), str(work / "message.bin"), url],
                cwd=tree, env=H.user_env(tree), text=True,
                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            )  # fmt: skip
        if ns.grpc:
            try:
                grpc_rounds(ns, servers, msgs)
            finally:
                for proc, _ in servers.values():
                    proc.send_signal(signal.SIGTERM)
                    proc.wait(30)
            return
        kept = {}
        for name, p in procs.items():
            assert p.stdout is not None
            kept[name] = json.loads(p.stdout.readline())["heap_kept"]
        print("the server's heap thresholds (heapkeep) set: "
              + ", ".join(f"{k} {v}" for k, v in kept.items()))  # fmt: skip
        print(f"message: {ns.bills} bills x {ns.items} items; baseline gets the "
              f"{ns.baseline_form} form ({len(msgs['baseline']):,} bytes, {ns.baseline_results} results), "
              f"this tree the {ns.form} form ({len(msgs['this tree']):,} bytes, {ns.results} results); "
              f"bills in {ns.order} order")  # fmt: skip
        figs = {k: H.Figure(k, work=ns.bills * ns.items, unit="items") for k in procs}
        shas: dict[str, set[str]] = {k: set() for k in procs}
        for r in range(-1, ns.rounds):
            for name, p in H.in_turn(procs.items(), r):
                assert p.stdin is not None and p.stdout is not None
                before, pg0 = H.load1(), proc_cpu(ns.pg)
                n = 1 if r < 0 else ns.messages
                p.stdin.write(f"{n}\n")
                p.stdin.flush()
                got = json.loads(p.stdout.readline())
                after = H.load1()
                shas[name].add(got["sha"])
                what = "warm-up" if r < 0 else f"round {r + 1}/{ns.rounds}"
                print(f"  {what} {name}: {H.fmt_s(got['wall'])} a message, CPU "
                      f"{H.fmt_s(got['cpu'])}{_pg_part(ns.pg, pg0, n)} "
                      f"(load {before:.2f}->{after:.2f})", flush=True)  # fmt: skip
                if r >= 0:
                    figs[name].add(got["wall"], before, after, got["cpu"])
        for p in procs.values():
            assert p.stdin is not None
            p.stdin.close()
            p.wait(60)
        answers = {
            k: (Path(tmp) / k.replace(" ", "-") / "response.bin").read_bytes() for k in procs
        }
    for f in figs.values():
        print(f.line() + " (a message)")
    old, new = figs["baseline"], figs["this tree"]
    print(H.ratio_line("this tree against the baseline", H.ratio(old, new)))
    alike = len(shas["baseline"]) == len(shas["this tree"]) == 1
    same = alike and same_answer(answers["baseline"], answers["this tree"])
    print(f"response bytes identical: {len(shas['baseline'] | shas['this tree']) == 1}; "
          f"the same figures: {same} "
          f"(sha256 {', '.join(sorted(s[:12] for s in shas['baseline'] | shas['this tree']))})")  # fmt: skip
    out = ROOT / "benchmarks" / "out" / "stream_ab.json"
    H.save(out, {"args": vars(ns), "figures": figs, "identical": same,
                 "median_cpu": {k: statistics.median(f.cpu) for k, f in figs.items()}})  # fmt: skip
    if not same:
        raise SystemExit("the responses differ")


def grpc_rounds(
    ns: argparse.Namespace,
    servers: dict[str, tuple[subprocess.Popen[bytes], str]],
    raw: dict[str, bytes],
) -> None:
    import asyncio

    n_items = ns.bills * ns.items
    figs = {k: H.Figure(k, work=n_items, unit="items") for k in servers}
    shas: dict[str, set[str]] = {k: set() for k in servers}
    last: dict[str, bytes] = {}
    for r in range(-1, ns.rounds):
        for name, (proc, target) in H.in_turn(servers.items(), r):
            before, pg0 = H.load1(), proc_cpu(ns.pg)
            got = asyncio.run(over_grpc(target, raw[name], 2.0 if r < 0 else ns.seconds, proc.pid))
            after = H.load1()
            shas[name].add(got["sha"])
            last[name] = got["last"]
            per = got["wall"] / max(got["messages"], 1)
            what = "warm-up" if r < 0 else f"round {r + 1}/{ns.rounds}"
            print(f"  {what} {name}: {got['items'] / got['wall'] / 1e6:.2f} M items/s, "
                  f"{got['messages']} messages, server CPU {H.fmt_s(got['server_cpu'])} a message, "
                  f"client {H.fmt_s(got['client_cpu'])}{_pg_part(ns.pg, pg0, got['messages'])} "
                  f"(load {before:.2f}->{after:.2f})", flush=True)  # fmt: skip
            if r >= 0:
                figs[name].add(per, before, after, got["server_cpu"])
    for f in figs.values():
        print(f.line() + " (a message; CPU = the server's)")
    print(
        H.ratio_line("this tree against the baseline", H.ratio(figs["baseline"], figs["this tree"]))
    )
    alike = all(len(v) == 1 for v in shas.values())
    same = alike and same_answer(last["baseline"], last["this tree"])
    print(f"last responses identical: {len(shas['baseline'] | shas['this tree']) == 1}; "
          f"the same figures: {same}")  # fmt: skip
    H.save(ROOT / "benchmarks" / "out" / "stream_ab_grpc.json",
           {"args": vars(ns), "figures": figs, "identical": same})  # fmt: skip
    if not same:
        raise SystemExit("the responses differ")


def _postmaster(cluster: Any) -> int:
    return int((cluster.data / "postmaster.pid").read_text().split()[0])


def _pg_part(pg: int | None, before: float, messages: int) -> str:
    """``, PostgreSQL X a message``: the cluster's CPU since ``before`` (``proc_cpu`` of its
    postmaster and live children), or nothing on SQLite."""
    if pg is None:
        return ""
    return f", PostgreSQL {H.fmt_s((proc_cpu(pg) - before) / max(messages, 1))} a message"


if __name__ == "__main__":
    main()
