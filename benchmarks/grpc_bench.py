"""gRPC service benchmark (not a test): PreSettle and Settle throughput and p50/p99 latency for
a 100-item bill with 1 and 8 concurrent clients, on SQLite and PostgreSQL, and the packed
streaming rpc in items/s. Results go in benchmarks/README.md ("gRPC service").

    .venv/bin/python -m benchmarks.grpc_bench                      # everything, 5 s per run
    .venv/bin/python -m benchmarks.grpc_bench --stores sqlite --seconds 3

The server runs as its own process (``python -m adapters.grpc.commands serve``), as in
production; the clients are asyncio gRPC clients in this process, sharing the machine with it.
PostgreSQL is a throwaway cluster started with tests/pg.py (fsync off, as in the tests: the
figure is the service's cost, not the disk's). The stream sends one pre-serialized packed
message (B bills x 100 items) repeatedly on one call, TRIAL mode, so the client does no
per-message work.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import grpc

from adapters.grpc.client import Client, pack_bills
from adapters.grpc.convert import bill_to_pb
from adapters.grpc.gen.onestop.settlement.v1 import settlement_pb2 as pb
from adapters.grpc.limits import DEFAULT as LIMITS
from adapters.grpc.testing import CHAIN, chain_bill

MAX_MESSAGE = LIMITS.max_response_bytes

ROOT = Path(__file__).resolve().parents[1]
N_PERSONS = 64


def persons() -> list[dict[str, Any]]:
    return [
        {
            "id": f"p{i}",
            "birth_date": f"19{50 + i % 40}-0{1 + i % 9}-1{i % 9}",
            "household": f"h{i // 2}",
            "tags": [{"tag": "poor"}] if i % 2 else [],
        }
        for i in range(N_PERSONS)
    ]


def bill(i: int, person: str, n_items: int) -> dict[str, Any]:
    b = chain_bill(i, person, n_items=n_items, seed=1)
    b["id"] = f"b{i}-{person}"
    return b


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(
    url: str, work: Path, workers: int, processes: int = 1
) -> tuple[subprocess.Popen, str]:
    (work / "policies").mkdir(exist_ok=True)
    (work / "policies" / "chain.yaml").write_text(CHAIN)
    (work / "registry.json").write_text(json.dumps(persons()))
    port = free_port()
    cmd = [
        sys.executable, "-m", "adapters.grpc.commands", "serve", "--db", url,
        "--port", str(port), "--policies", str(work / "policies"),
        "--registry", str(work / "registry.json"), "--workers", str(workers),
        "--processes", str(processes),
    ]  # fmt: skip
    log = (work / "server.log").open("ab")
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    target = f"127.0.0.1:{port}"
    try:
        with Client(target) as c:
            c.wait_serving(180)
            if processes > 1:  # every child answers (new connections spread over them)
                for _ in range(4 * processes):
                    with Client(target) as c2:
                        c2.wait_serving(180)
    except TimeoutError:
        proc.kill()
        raise SystemExit(f"server did not start:\n{(work / 'server.log').read_text()}") from None
    return proc, target


def stop_server(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


async def load(
    target: str, rpc: str, clients: int, seconds: float, n_items: int, tag: str
) -> dict[str, Any]:
    opts = [("grpc.max_receive_message_length", MAX_MESSAGE)]
    # one channel per client: separate HTTP/2 connections, like separate cashier windows
    chans = [grpc.aio.insecure_channel(target, options=opts) for _ in range(clients)]
    stubs = [pb_grpc.SettlementServiceStub(ch) for ch in chans]
    lat: list[float] = []
    count = [0]
    end = time.perf_counter() + seconds

    async def worker(k: int) -> None:
        stub = stubs[k]
        person = f"p{k}"
        template = bill_to_pb(bill(0, person, n_items))
        i = 0
        while True:
            if rpc == "PreSettle":
                req: Any = pb.PreSettleRequest(bill=template)
                t0 = time.perf_counter()
                await stub.PreSettle(req)
            else:
                req = pb.SettleRequest(request_id=f"{tag}-{k}-{i}", bill=template)
                req.bill.id = f"{tag}-{k}-{i}"
                t0 = time.perf_counter()
                await stub.Settle(req)
            t1 = time.perf_counter()
            if t1 > end:
                break
            lat.append(t1 - t0)
            count[0] += 1
            i += 1

    # warm the connections
    for k in range(clients):
        await stubs[k].PreSettle(pb.PreSettleRequest(bill=bill_to_pb(bill(0, f"p{k}", n_items))))
    t0 = time.perf_counter()
    await asyncio.gather(*(worker(k) for k in range(clients)))
    wall = min(time.perf_counter(), end) - t0
    for ch in chans:
        await ch.close()
    return {
        "rpc": rpc,
        "clients": clients,
        "calls": count[0],
        "per_s": count[0] / wall,
        "p50_ms": pct(lat, 0.50) * 1e3,
        "p99_ms": pct(lat, 0.99) * 1e3,
    }


async def stream_bench(target: str, seconds: float, n_bills: int, n_items: int) -> dict[str, Any]:
    bills = [bill(i, f"p{i % N_PERSONS}", n_items) for i in range(n_bills)]
    msg = pb.SettleStreamRequest(
        mode=pb.STREAM_MODE_TRIAL, packed=pack_bills(bills, unit_price=False, item_text=False)
    )
    raw = msg.SerializeToString()
    opts = [
        ("grpc.max_receive_message_length", MAX_MESSAGE),
        ("grpc.max_send_message_length", MAX_MESSAGE),
    ]
    async with grpc.aio.insecure_channel(target, options=opts) as ch:
        call = ch.stream_stream(
            "/onestop.settlement.v1.SettlementService/SettleStream",
            request_serializer=None,  # the bytes are sent as they are
            response_deserializer=pb.SettleStreamResponse.FromString,
        )
        # one warm-up message
        async for _ in call(iter([raw])):
            pass
        sent = [0]
        end = time.perf_counter() + seconds

        async def requests():  # type: ignore[no-untyped-def]
            while time.perf_counter() < end:
                sent[0] += 1
                yield raw

        t0 = time.perf_counter()
        got = 0
        async for r in call(requests()):
            got += r.n_items
        wall = time.perf_counter() - t0
    return {
        "rpc": "SettleStream packed TRIAL",
        "bills_per_message": n_bills,
        "message_mb": len(raw) / 1e6,
        "messages": sent[0],
        "items": got,
        "items_per_s": got / wall,
        "bills_per_s": got / n_items / wall,
    }


def machine() -> str:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{os.cpu_count()} CPUs ({cpu or platform.processor()}), "
        f"Python {platform.python_version()}, grpcio {grpc.__version__}, {platform.system()}"
    )


def stages(n_items: int, url: str, work: Path) -> None:
    """Per-call cost of each stage of PreSettle and Settle, in-process (no gRPC)."""
    from adapters.bootstrap import build
    from adapters.grpc import convert as cv
    from engine.accounts import YearAccounts
    from engine.bill import Person, parse_bill_request
    from engine.settle import settle_one

    (work / "policies").mkdir(exist_ok=True)
    (work / "policies" / "chain.yaml").write_text(CHAIN)
    app = build(url, work / "policies", None)
    svc = app.service
    svc.import_registry([Person.model_validate(p) for p in persons()])
    raw = pb.PreSettleRequest(bill=bill_to_pb(bill(0, "p1", n_items))).SerializeToString()
    req = pb.PreSettleRequest.FromString(raw)
    d = cv.bill_dict(req.bill)
    br = parse_bill_request(d)
    b = br.with_person(svc.person("p1"))
    pol = svc.policies()
    s = svc.pre_settle(br)
    k = [0]

    def settle() -> None:
        k[0] += 1
        svc.settle(f"st-{k[0]}", br.model_copy(update={"id": f"st-{k[0]}"}))

    def t(f: Any, n: int = 300) -> float:
        for _ in range(10):
            f()
        t0 = time.perf_counter()
        for _ in range(n):
            f()
        return (time.perf_counter() - t0) / n * 1e6

    rows = {
        "protobuf parse of the request": t(lambda: pb.PreSettleRequest.FromString(raw)),
        "adapter: proto -> dict": t(lambda: cv.bill_dict(req.bill)),
        "engine: parse_bill_request (pydantic)": t(lambda: parse_bill_request(d)),
        "store: registry + accounts (one unit of work)": t(lambda: svc.accounts("p1", 2024)),
        "engine: settle_one": t(lambda: settle_one(b, pol, YearAccounts(), YearAccounts())),
        "use case pre_settle (store + checks + settle_one)": t(lambda: svc.pre_settle(br)),
        "adapter: result -> proto, serialize": t(
            lambda: pb.PreSettleResponse(result=cv.result_pb(s)).SerializeToString()
        ),
        "use case settle (durable)": t(settle, 100),
    }
    app.close()
    for k_, v in rows.items():
        print(f"{url.split(':')[0]:10s} {k_:52s} {v:8.0f} us", flush=True)


def run_store(name: str, url: str, work: Path, ns: argparse.Namespace) -> list[dict[str, Any]]:
    proc, target = start_server(url, work, ns.workers, ns.processes)
    rows: list[dict[str, Any]] = []
    try:
        for rpc in ("PreSettle", "Settle"):
            for clients in ns.clients:
                r = asyncio.run(
                    load(target, rpc, clients, ns.seconds, ns.items, f"{name}{rpc}{clients}")
                )
                r["store"] = name
                rows.append(r)
                print(
                    f"{name:9s} {rpc:10s} {clients} clients: {r['per_s']:8.0f} calls/s  "
                    f"p50 {r['p50_ms']:.2f} ms  p99 {r['p99_ms']:.2f} ms",
                    flush=True,
                )
        if not ns.no_stream:
            r = asyncio.run(stream_bench(target, ns.seconds, ns.stream_bills, ns.items))
            r["store"] = name
            rows.append(r)
            print(
                f"{name:9s} stream: {r['items_per_s'] / 1e6:.2f} M items/s "
                f"({r['bills_per_s']:.0f} bills/s, {r['bills_per_message']} bills x "
                f"{ns.items} items per message, {r['message_mb']:.1f} MB)",
                flush=True,
            )
    finally:
        stop_server(proc)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--stores", default="sqlite,postgres", help="sqlite, postgres, memory")
    ap.add_argument("--clients", default="1,8")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--items", type=int, default=100)
    ap.add_argument("--workers", type=int, default=8, help="server thread pool")
    ap.add_argument("--processes", type=int, default=1, help="server processes (reuseport)")
    ap.add_argument("--stream-bills", type=int, default=2000, help="bills per stream message")
    ap.add_argument("--no-stream", action="store_true")
    ap.add_argument("--stages", action="store_true", help="in-process cost per stage only")
    ap.add_argument("--json", type=Path, help="also write the rows here")
    ns = ap.parse_args(argv)
    ns.clients = [int(x) for x in ns.clients.split(",")]
    print(f"machine: {machine()}; load average at the start: {os.getloadavg()}", flush=True)
    rows: list[dict[str, Any]] = []
    if ns.stages:
        with tempfile.TemporaryDirectory(prefix="onestop-stages-") as tmp:
            stages(ns.items, f"sqlite:///{Path(tmp) / 'onestop.db'}", Path(tmp))
        return 0
    for name in ns.stores.split(","):
        with tempfile.TemporaryDirectory(prefix=f"onestop-bench-{name}-") as tmp:
            work = Path(tmp)
            if name == "sqlite":
                rows += run_store(name, f"sqlite:///{work / 'onestop.db'}", work, ns)
            elif name == "memory":
                rows += run_store(name, "memory://", work, ns)
            elif name == "postgres":
                sys.path.insert(0, str(ROOT))
                from tests.pg import Cluster, create_database, find_bindir

                bindir = find_bindir()
                if bindir is None:
                    print("postgres: no server binaries; skipped", flush=True)
                    continue
                cluster = Cluster(bindir)
                try:
                    cluster.start()
                    url = create_database(cluster.url(), "bench")
                    rows += run_store(name, url, work, ns)
                finally:
                    cluster.stop()
            else:
                raise SystemExit(f"unknown store {name!r}")
    print(f"load average at the end: {os.getloadavg()}", flush=True)
    if ns.json:
        ns.json.write_text(json.dumps({"machine": machine(), "rows": rows}, indent=1))
    return 0


from adapters.grpc.gen.onestop.settlement.v1 import settlement_pb2_grpc as pb_grpc  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
