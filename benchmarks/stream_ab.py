"""The packed stream (issue 13, target 8), another tree against this one: one worker process per
tree settles the same TRIAL messages in process (protobuf parse -> ``stream.handle`` -> response
bytes; no gRPC), interleaved round by round; wall and CPU seconds a message (min / median / max),
items/s, the load, and whether the response bytes of both trees are identical.

    git -C /work/main archive main | tar -x -C /tmp/old-stream
    python -m benchmarks.stream_ab /tmp/old-stream                  # 1 warm-up + 5 rounds
    python -m benchmarks.stream_ab /tmp/old-stream --rounds 8 --messages 10 --bills 2000
    python -m benchmarks.stream_ab /tmp/old-stream --form raw       # this tree gets the raw form

The message is grpc_bench's: ``--bills`` bills of ``--items`` items, 64 persons, one region,
no unit prices or item texts. ``--form raw`` sends this tree the same bills with the item
columns as little-endian bytes fields (``pack_bills(raw=True)``) and the baseline the packed
repeated fields it understands: the responses must still be byte for byte the same.
``--shuffle`` sends the bills in a random order (the prepare must sort them).

Each worker builds its own service over a fresh SQLite file (``sqlite:///``, the server's
store) and imports the same persons; its clock is its own (``time.process_time`` for CPU), so
the figures are per message of that tree alone. Nothing here asserts a target.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks import harness as H

ROOT = Path(__file__).resolve().parents[1]

#: Run inside each tree (PYTHONPATH=that tree): only names every tree has.
WORKER = r"""
import hashlib, json, sys, time
from pathlib import Path
from adapters.bootstrap import build
from adapters.grpc import stream
from adapters.grpc.gen.onestop.settlement.v1 import settlement_pb2 as pb
from engine.bill import Person

work = Path(sys.argv[1])
raw = Path(sys.argv[2]).read_bytes()
app = build(f"sqlite:///{work}/store.db", work / "policies", None)
svc = app.service
svc.import_registry([Person.model_validate(p) for p in json.loads((work / "persons.json").read_text())])

def one():
    req = pb.SettleStreamRequest.FromString(raw)
    return stream.handle(svc, req).SerializeToString()

print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    n = int(line)
    c, t = time.process_time(), time.perf_counter()
    for _ in range(n):
        out = one()
    w, c = time.perf_counter() - t, time.process_time() - c
    print(json.dumps({"wall": w / n, "cpu": c / n, "sha": hashlib.sha256(out).hexdigest(),
                      "bytes": len(out)}), flush=True)
"""


def messages(n_bills: int, n_items: int, shuffle: bool, raw: bool) -> dict[str, bytes]:
    from adapters.grpc.client import pack_bills
    from adapters.grpc.gen.onestop.settlement.v1 import settlement_pb2 as pb
    from benchmarks.grpc_bench import N_PERSONS, bill

    bills = [bill(i, f"p{i % N_PERSONS}", n_items) for i in range(n_bills)]
    if shuffle:
        random.Random(7).shuffle(bills)
    out = {}
    for form in ("packed", "raw") if raw else ("packed",):
        kw: dict[str, Any] = {"raw": True} if form == "raw" else {}
        p = pack_bills(bills, unit_price=False, item_text=False, **kw)
        out[form] = pb.SettleStreamRequest(mode=pb.STREAM_MODE_TRIAL, packed=p).SerializeToString()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("baseline", help="the other tree (git archive main | tar -x -C DIR)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--messages", type=int, default=8, help="messages a timed run")
    ap.add_argument("--bills", type=int, default=2000)
    ap.add_argument("--items", type=int, default=100)
    ap.add_argument("--form", choices=("packed", "raw"), default="packed",
                    help="the form this tree gets (the baseline always gets packed)")  # fmt: skip
    ap.add_argument("--shuffle", action="store_true", help="bills in a random order")
    ns = ap.parse_args()
    from benchmarks.grpc_bench import CHAIN, persons

    print(H.machine_line(H.machine()), flush=True)
    msgs = messages(ns.bills, ns.items, ns.shuffle, ns.form == "raw")
    trees = {"baseline": (Path(ns.baseline).resolve(), "packed"), "this tree": (ROOT, ns.form)}
    procs: dict[str, subprocess.Popen] = {}
    with tempfile.TemporaryDirectory(prefix="stream-ab-") as tmp:
        for name, (tree, form) in trees.items():
            work = Path(tmp) / name.replace(" ", "-")
            (work / "policies").mkdir(parents=True)
            (work / "policies" / "chain.yaml").write_text(CHAIN)
            (work / "persons.json").write_text(json.dumps(persons()))
            (work / "message.bin").write_bytes(msgs[form])
            procs[name] = subprocess.Popen(
                [sys.executable, "-c", WORKER, str(work), str(work / "message.bin")],
                cwd=tree, env={**os.environ, "PYTHONPATH": str(tree)}, text=True,
                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            )  # fmt: skip
        for p in procs.values():
            assert p.stdout is not None
            json.loads(p.stdout.readline())
        print(f"message: {ns.bills} bills x {ns.items} items; baseline gets the packed form "
              f"({len(msgs['packed']):,} bytes), this tree the {ns.form} form "
              f"({len(msgs[ns.form]):,} bytes){'; bills shuffled' if ns.shuffle else ''}")  # fmt: skip
        figs = {k: H.Figure(k, work=ns.bills * ns.items, unit="items") for k in procs}
        shas: dict[str, set[str]] = {k: set() for k in procs}
        for r in range(-1, ns.rounds):
            for name, p in procs.items():
                assert p.stdin is not None and p.stdout is not None
                before = H.load1()
                p.stdin.write(f"{1 if r < 0 else ns.messages}\n")
                p.stdin.flush()
                got = json.loads(p.stdout.readline())
                after = H.load1()
                shas[name].add(got["sha"])
                what = "warm-up" if r < 0 else f"round {r + 1}/{ns.rounds}"
                print(f"  {what} {name}: {H.fmt_s(got['wall'])} a message, CPU "
                      f"{H.fmt_s(got['cpu'])} (load {before:.2f}->{after:.2f})", flush=True)  # fmt: skip
                if r >= 0:
                    figs[name].add(got["wall"], before, after, got["cpu"])
        for p in procs.values():
            assert p.stdin is not None
            p.stdin.close()
            p.wait(60)
    for f in figs.values():
        print(f.line() + " (a message)")
    old, new = figs["baseline"], figs["this tree"]
    print(H.ratio_line("this tree against the baseline", H.ratio(old, new)))
    same = len(shas["baseline"] | shas["this tree"]) == 1
    print(f"response bytes identical: {same} "
          f"(sha256 {', '.join(sorted(s[:12] for s in shas['baseline'] | shas['this tree']))})")  # fmt: skip
    out = ROOT / "benchmarks" / "out" / "stream_ab.json"
    H.save(out, {"args": vars(ns), "figures": figs, "identical": same,
                 "median_cpu": {k: statistics.median(f.cpu) for k, f in figs.items()}})  # fmt: skip
    if not same:
        raise SystemExit("the responses differ")


if __name__ == "__main__":
    main()
