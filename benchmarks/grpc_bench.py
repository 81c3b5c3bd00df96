"""gRPC service benchmark (issue 13; not a test): PreSettle and Settle at 1 and 8 clients
(100-item bill), p50/p99 and bills/s, with the rpc ceiling of the same server measured in the
same run, and the packed stream in items/s.

    .venv/bin/python -m benchmarks.grpc_bench                      # sqlite and postgres
    .venv/bin/python -m benchmarks.grpc_bench --stores sqlite --rounds 2 --seconds 3

- The server is ``onestop serve`` as shipped, run by ``benchmarks/echo_server.py``, which
  adds one benchmark-only handler: ``Echo`` answers a unary call with the bytes it got. The
  **ceiling** is that bare call with the PreSettle request's bytes (same message size), and
  the standard health ``Check``, on the same server, interleaved with the real calls.
- Rounds (``benchmarks/harness.py`` rules): one warm-up run of every (rpc, clients) pair,
  then ``--rounds`` rounds of all pairs in turn (PreSettle, Settle, Echo, Check at 1 and 8
  clients), ``--seconds`` each; calls/s as min / median / max over the rounds, p50 and p99
  over every call of the timed rounds, the 1-minute load average before and after each run.
- **Durable** stores only: SQLite with ``synchronous=FULL`` (WAL; an fsync per commit), and
  a throwaway PostgreSQL cluster started as tests/pg.py does (initdb as user postgres, Unix
  socket) but with the production settings of ``adapters/store/postgresql.conf`` (``fsync``,
  ``synchronous_commit``, ``full_page_writes`` on) and its WAL warmed (``benchmarks/pgdurable.py``);
  the settings are read back (``SHOW`` / ``PRAGMA``) and printed with the figures.
- Clients are asyncio gRPC clients in this process (one HTTP/2 connection each), sharing the
  machine's cores with the server.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
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
from benchmarks import echo_server
from benchmarks import harness as H
from benchmarks.pgdurable import postgres_durable, postgres_settings

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
    url: str,
    work: Path,
    workers: int,
    processes: int = 1,
    *,
    tree: Path = ROOT,
    module: str | None = None,
    extra: list[str] | tuple[str, ...] = (),
    children: int | None = None,
) -> tuple[subprocess.Popen, str]:
    """``python -m MODULE serve`` from ``tree`` (its own ``PYTHONPATH``) on ``url``, with the
    chain table and the generated registry in ``work``; waited for until it answers, and
    ``children`` connections more (default: 4 a process when there are several, so that every
    child answers before the first round). MODULE: the shipped server plus the benchmark's Echo
    handler (``benchmarks.echo_server``; a tree without it: ``adapters.grpc.commands``)."""
    work.mkdir(parents=True, exist_ok=True)
    (work / "policies").mkdir(exist_ok=True)
    (work / "policies" / "chain.yaml").write_text(CHAIN)
    (work / "registry.json").write_text(json.dumps(persons()))
    port = free_port()
    if module is None:
        echo = (tree / "benchmarks/echo_server.py").exists()
        module = "benchmarks.echo_server" if echo else "adapters.grpc.commands"
    cmd = [
        sys.executable, "-m", module, "serve", "--db", url,
        "--port", str(port), "--policies", str(work / "policies"),
        "--registry", str(work / "registry.json"), "--workers", str(workers),
        "--processes", str(processes), *extra,
    ]  # fmt: skip
    env = H.user_env(tree)
    log = (work / "server.log").open("ab")
    proc = subprocess.Popen(cmd, cwd=tree, env=env, stdout=log, stderr=subprocess.STDOUT)
    target = f"127.0.0.1:{port}"
    more = (4 * processes if processes > 1 else 0) if children is None else children
    try:
        for _ in range(1 + more):  # new connections spread over the processes
            with Client(target) as c:
                c.wait_serving(300)
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


def _descendants(pid: int) -> list[int]:
    """``pid`` and its live descendants (Linux ``/proc/PID/task/TID/children``)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            tasks = list(Path(f"/proc/{p}/task").glob("*/children"))
        except OSError:  # the process ended meanwhile (its /proc/PID/task gone)
            continue
        for t in tasks:
            with contextlib.suppress(OSError):  # the thread or process ended meanwhile
                todo += [int(c) for c in t.read_text().split()]
    return out


def proc_cpu(pid: int | None, loop: bool = False) -> float:
    """CPU seconds (user + system, all threads) the process ``pid`` and its live child
    processes have used so far: ``onestop serve --processes N`` (N > 1) serves from children
    of the process started, whose own CPU is next to nothing. ``loop``: their main threads
    only (a server's asyncio event loop, where grpc aio runs its calls' own work)."""
    if pid is None:
        return float("nan")
    total = 0.0
    for p in _descendants(pid):
        with contextlib.suppress(OSError):  # the process ended meanwhile
            total += sum(H.stat_cpu(f"/proc/{p}/task/{p}/stat" if loop else f"/proc/{p}/stat"))
    return total


async def load(
    target: str,
    rpc: str,
    clients: int,
    seconds: float,
    n_items: int,
    tag: str,
    server_pid: int | None = None,
) -> dict[str, Any]:
    """``clients`` concurrent callers of ``rpc`` for ``seconds``: calls/s and latencies.
    ``Echo``: the PreSettle request's bytes to the benchmark's echo handler; ``Check``: the
    standard health check."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    opts = [("grpc.max_receive_message_length", MAX_MESSAGE)]
    # one channel per client: separate HTTP/2 connections, like separate cashier windows
    chans = [grpc.aio.insecure_channel(target, options=opts) for _ in range(clients)]
    stubs = [pb_grpc.SettlementServiceStub(ch) for ch in chans]
    bare = rpc if rpc.startswith("Sleep") else "Echo"  # Echo, or SleepN: N ms in a pool first
    echoes = [ch.unary_unary(echo_server.method(bare)) for ch in chans]  # bytes in, bytes out
    checks = [health_pb2_grpc.HealthStub(ch) for ch in chans]
    lat: list[float] = []
    count = [0]
    sizes: dict[str, float] = {}  # byte counts, then CPU microseconds per call

    async def worker(k: int, end: float) -> None:
        person = f"p{k}"
        template = bill_to_pb(bill(0, person, n_items))
        raw = pb.PreSettleRequest(bill=template).SerializeToString()
        sizes["request_bytes"] = len(raw)
        hreq = health_pb2.HealthCheckRequest()
        i = 0
        while True:
            t0 = time.perf_counter()
            if rpc == "PreSettle":
                await stubs[k].PreSettle(pb.PreSettleRequest(bill=template))
            elif rpc == "Settle":
                req = pb.SettleRequest(request_id=f"{tag}-{k}-{i}", bill=template)
                req.bill.id = f"{tag}-{k}-{i}"
                t0 = time.perf_counter()
                await stubs[k].Settle(req)
            elif rpc == "Echo" or rpc.startswith("Sleep"):
                await echoes[k](raw)
            else:
                await checks[k].Check(hreq)
            t1 = time.perf_counter()
            if t1 > end:
                break
            lat.append(t1 - t0)
            count[0] += 1
            i += 1

    # warm the connections (and learn the response size)
    for k in range(clients):
        r = await stubs[k].PreSettle(
            pb.PreSettleRequest(bill=bill_to_pb(bill(0, f"p{k}", n_items)))
        )
        sizes["presettle_response_bytes"] = r.ByteSize()
    before = H.load1()
    s0, c0, l0 = proc_cpu(server_pid), time.process_time(), proc_cpu(server_pid, loop=True)
    t0 = time.perf_counter()
    end = t0 + seconds
    await asyncio.gather(*(worker(k, end) for k in range(clients)))
    wall = min(time.perf_counter(), end) - t0
    s1, c1, l1 = proc_cpu(server_pid), time.process_time(), proc_cpu(server_pid, loop=True)
    after = H.load1()
    n = max(count[0], 1)
    sizes.update(server_cpu_us=(s1 - s0) / n * 1e6, client_cpu_us=(c1 - c0) / n * 1e6,
                 loop_cpu_us=(l1 - l0) / n * 1e6)  # fmt: skip
    for ch in chans:
        await ch.close()
    return {
        "rpc": rpc, "clients": clients, "calls": count[0], "per_s": count[0] / wall,
        "p50_ms": pct(lat, 0.50) * 1e3, "p99_ms": pct(lat, 0.99) * 1e3, "lat": lat,
        "load_before": before, "load_after": after, **sizes,
    }  # fmt: skip


async def stream_bench(
    target: str,
    seconds: float,
    n_bills: int,
    n_items: int,
    raw_columns: bool = True,
    narrow: bool = True,
    results_le: bool = True,
    joined: bool = True,
) -> dict[str, Any]:
    """One SettleStream of pre-serialized packed TRIAL messages. ``raw_columns``: the item
    columns as the raw bytes fields (``pack_bills(raw=True)``; with ``narrow``, int32 where the
    values fit: ``amount_i32``, ...), else the packed repeated ones. ``results_le``: the answers'
    number columns as bytes fields (``packed_results_le``), else the repeated ones.
    ``joined``: the per-bill strings joined or indexed (``pack_bills(joined=True)``)."""
    bills = [bill(i, f"p{i % N_PERSONS}", n_items) for i in range(n_bills)]
    msg = pb.SettleStreamRequest(
        mode=pb.STREAM_MODE_TRIAL,
        packed=pack_bills(
            bills, unit_price=False, item_text=False, raw=raw_columns, narrow=narrow, joined=joined
        ),
        packed_results_le=results_le,
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

        async def requests():
            while time.perf_counter() < end:
                sent[0] += 1
                yield raw

        before = H.load1()
        t0 = time.perf_counter()
        got = 0
        async for r in call(requests()):
            got += r.n_items
        wall = time.perf_counter() - t0
        after = H.load1()
    return {
        "load_before": before,
        "load_after": after,
        "rpc": "SettleStream packed TRIAL ("
        + ("narrow bytes" if raw_columns and narrow else "raw bytes" if raw_columns else "repeated")
        + " columns"
        + (", joined strings" if joined else "")
        + (", bytes results)" if results_le else ")"),
        "bills_per_message": n_bills,
        "message_mb": len(raw) / 1e6,
        "messages": sent[0],
        "items": got,
        "items_per_s": got / wall,
        "bills_per_s": got / n_items / wall,
    }


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


RPCS = ("PreSettle", "Settle", "Echo", "Check")


def run_store(name: str, url: str, work: Path, ns: argparse.Namespace) -> dict[str, Any]:
    """Warm-up, then ``ns.rounds`` rounds of every (rpc, clients) pair in turn and the stream,
    on one server over ``url``."""
    proc, target = start_server(url, work, ns.workers, ns.processes)
    runs: dict[str, list[dict[str, Any]]] = {}
    try:
        for r in range(-1, ns.rounds):
            for rpc in RPCS:
                for clients in ns.clients:
                    row = asyncio.run(load(target, rpc, clients, ns.seconds, ns.items,
                                           f"{name}{rpc}{clients}r{r}", proc.pid))  # fmt: skip
                    what = "warm-up" if r < 0 else f"round {r + 1}/{ns.rounds}"
                    print(f"  {name} {what} {rpc} x{clients}: {row['per_s']:.0f}/s p50 "
                          f"{row['p50_ms']:.2f} ms p99 {row['p99_ms']:.2f} ms, CPU/call server "
                          f"{row['server_cpu_us']:.0f} us client {row['client_cpu_us']:.0f} us (load "
                          f"{row['load_before']:.2f}->{row['load_after']:.2f})", flush=True)  # fmt: skip
                    if r >= 0:
                        runs.setdefault(f"{rpc} x{clients}", []).append(row)
            if not ns.no_stream:
                row = asyncio.run(stream_bench(target, ns.seconds, ns.stream_bills, ns.items))
                print(f"  {name} stream: {row['items_per_s'] / 1e6:.2f} M items/s (load "
                      f"{row['load_before']:.2f}->{row['load_after']:.2f})", flush=True)  # fmt: skip
                if r >= 0:
                    runs.setdefault("stream", []).append(row)
    finally:
        stop_server(proc)
    return summarize(name, runs)


def summarize(store: str, runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Per (rpc, clients): calls/s min/median/max over the rounds, p50/p99 over every call,
    the load; the ratios to the ceiling (Echo, Check) from the medians and the best rounds."""
    import statistics as st

    out: dict[str, Any] = {"store": store, "rows": {}}
    for key, rows in runs.items():
        rate = "items_per_s" if key == "stream" else "per_s"
        xs = [r[rate] for r in rows]
        d = {
            "min": min(xs), "median": st.median(xs), "max": max(xs), "rounds": len(xs),
            "load_first": rows[0]["load_before"], "load_last": rows[-1]["load_after"],
            "load_max": max(max(r["load_before"], r["load_after"]) for r in rows),
        }  # fmt: skip
        if key != "stream":
            lat = [x for r in rows for x in r["lat"]]
            d.update(server_cpu_us=st.median(r["server_cpu_us"] for r in rows),
                     client_cpu_us=st.median(r["client_cpu_us"] for r in rows))  # fmt: skip
            d.update(p50_ms=pct(lat, 0.5) * 1e3, p99_ms=pct(lat, 0.99) * 1e3, calls=len(lat),
                     p99_round_ms=[round(r["p99_ms"], 2) for r in rows])  # fmt: skip
            for k in ("request_bytes", "presettle_response_bytes"):
                if k in rows[0]:
                    d[k] = rows[0][k]
        else:
            d.update(
                message_mb=rows[0]["message_mb"], bills_per_message=rows[0]["bills_per_message"]
            )
        out["rows"][key] = d
    for c in sorted({k.split(" x")[1] for k in out["rows"] if " x" in k}):
        for rpc in ("PreSettle", "Settle"):
            for ceil in ("Echo", "Check"):
                a, b = out["rows"].get(f"{rpc} x{c}"), out["rows"].get(f"{ceil} x{c}")
                if a and b:
                    out["rows"][f"{rpc} x{c}"][f"of_{ceil}"] = {
                        "from_max": a["max"] / b["max"],
                        "from_median": a["median"] / b["median"],
                    }
    return out


def report(s: dict[str, Any], settings: str) -> str:
    lines = [f"### {s['store']} ({settings})", "",
             "| rpc | clients | calls/s min / median / max | p50 ms | p99 ms (all calls; per round) "
             "| of Echo (median; best) | of Check (median; best) | server CPU us/call "
             "| client CPU us/call | load first -> last (max) |",
             "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    pre = s["rows"].get("PreSettle x1", {})
    if "request_bytes" in pre:
        lines.insert(1, f"PreSettle request {pre['request_bytes']:,} bytes (the Echo call sends "
                        f"and gets back the same bytes), response {pre['presettle_response_bytes']:,} bytes.")  # fmt: skip
    for key, d in s["rows"].items():
        load = f"{d['load_first']:.2f} -> {d['load_last']:.2f} ({d['load_max']:.2f})"
        if key == "stream":
            lines.append(f"| SettleStream packed TRIAL ({d['bills_per_message']} bills x "
                         f"message {d['message_mb']:.1f} MB) | 1 | {H.fmt_n(d['min'])} / "
                         f"{H.fmt_n(d['median'])} / {H.fmt_n(d['max'])} items/s | | | | | | | {load} |")  # fmt: skip
            continue
        rpc, c = key.split(" x")
        ofs = " | ".join(
            f"{o['from_median']:.0%}; {o['from_max']:.0%}" if (o := d.get(f"of_{ceil}")) else ""
            for ceil in ("Echo", "Check")
        )
        lines.append(f"| {rpc} | {c} | {d['min']:,.0f} / {d['median']:,.0f} / {d['max']:,.0f} | "
                     f"{d['p50_ms']:.2f} | {d['p99_ms']:.2f}; {d['p99_round_ms']} | {ofs} | "
                     f"{d['server_cpu_us']:.0f} | {d['client_cpu_us']:.0f} | {load} |")  # fmt: skip
    return "\n".join(lines)


def sqlite_settings(url: str) -> str:
    """The pragmas a store connection gets (the server makes its connections the same way)."""
    from adapters.store.sql.connect import make_engine

    eng = make_engine(url)
    try:
        with eng.connect() as c:
            sync = c.exec_driver_sql("PRAGMA synchronous").scalar()
            jm = c.exec_driver_sql("PRAGMA journal_mode").scalar()
    finally:
        eng.dispose()
    names: dict[Any, str] = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}  # by the PRAGMA's value
    return f"SQLite, read back: synchronous={names.get(sync, sync)}, journal_mode={jm}"


def disk(path: str) -> str:
    r = subprocess.run(["findmnt", "-n", "-o", "SOURCE,FSTYPE", "-T", path],
                       capture_output=True, text=True, check=False)  # fmt: skip
    return f"{path} on {r.stdout.strip() or '?'}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--stores", default="sqlite,postgres", help="sqlite, postgres (both durable)")
    ap.add_argument("--clients", default="1,8")
    ap.add_argument("--seconds", type=float, default=4.0, help="seconds per run")
    ap.add_argument("--rounds", type=int, default=3, help="timed rounds (after one warm-up)")
    ap.add_argument("--items", type=int, default=100)
    ap.add_argument("--workers", type=int, default=8, help="server thread pool")
    ap.add_argument("--processes", type=int, default=1, help="server processes (reuseport)")
    ap.add_argument("--stream-bills", type=int, default=2000, help="bills per stream message")
    ap.add_argument("--no-stream", action="store_true")
    ap.add_argument("--fresh-wal", action="store_true",
                    help="PostgreSQL's WAL not warmed: a fresh cluster's, whose new segments are "
                    "zero-filled while commits wait (benchmarks/pgdurable.py)")  # fmt: skip
    ap.add_argument("--stages", action="store_true", help="in-process cost per stage only")
    ap.add_argument("--json", type=Path, default=ROOT / "benchmarks/out/grpc_bench.json")
    ns = ap.parse_args(argv)
    ns.clients = [int(x) for x in ns.clients.split(",")]
    m = H.machine()
    print(H.machine_line(m), flush=True)
    if ns.stages:
        with tempfile.TemporaryDirectory(prefix="onestop-stages-") as tmp:
            stages(ns.items, f"sqlite:///{Path(tmp) / 'onestop.db'}", Path(tmp))
        return 0
    results: list[dict[str, Any]] = []
    texts: list[str] = []
    for name in ns.stores.split(","):
        with tempfile.TemporaryDirectory(prefix=f"onestop-bench-{name}-") as tmp:
            work = Path(tmp)
            if name == "sqlite":
                url = f"sqlite:///{work / 'onestop.db'}?synchronous=full"
                settings = f"{sqlite_settings(url)}; {disk(tmp)}"
                print(settings, flush=True)
                s = run_store(name, url, work, ns)
            elif name == "postgres":
                cluster, create_database = postgres_durable(warm=not ns.fresh_wal)
                if cluster is None:
                    print("postgres: no server binaries; skipped", flush=True)
                    continue
                try:
                    cluster.start()
                    url = create_database(cluster.url(), "bench")
                    settings = f"{postgres_settings(url)}; {disk(str(cluster.root))}"
                    print(settings, flush=True)
                    s = run_store(name, url, work, ns)
                finally:
                    cluster.stop()
            else:
                raise SystemExit(f"unknown store {name!r} (sqlite or postgres)")
            s["settings"] = settings
            results.append(s)
            texts.append(report(s, settings))
    print("\n\n".join(texts))
    print(f"load average at the end: {os.getloadavg()}", flush=True)
    H.save(ns.json, {"machine": m, "stores": results, "load_at_end": os.getloadavg()})
    return 0


from adapters.grpc.gen.onestop.settlement.v1 import settlement_pb2_grpc as pb_grpc  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
