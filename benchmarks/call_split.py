"""Where a PreSettle's server CPU goes, beside the bare call (Echo) on the same server (issue
13 target 6; not a test): is the cost beyond an Echo the handler body, or the machinery
around it (interceptor, access line, grpc aio's per-call work)?

    .venv/bin/python -m benchmarks.call_split [--rounds 3 --seconds 4 --items 100]

One ``benchmarks/echo_server.py`` server of this tree (durable SQLite), run as this module's
``serve``: the same server with the thread CPU time (``time.thread_time``) of two parts summed
in process and written at exit: the PreSettle handler as the interceptor calls it (the
``_trial`` wrapper and the body: request bytes -> response bytes), and the access line
(``adapters.grpc.auth.log_call``, which every call, Echo's too, writes). Rounds alternate
PreSettle and Echo at 8 clients (``grpc_bench.load``); printed: calls/s, server CPU a call and
its event-loop part (the main thread) for each rpc, then the handler's and the access line's
CPU a call. PreSettle's loop CPU less Echo's, less the handler's, is what the call costs
around the body beyond a bare call.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

_OUT = "ONESTOP_CALL_SPLIT_OUT"


def _instrument() -> dict[str, Any]:
    """Sum the thread CPU of the PreSettle handler and of ``log_call`` (this process only)
    into the dict returned; the calls pass through unchanged."""
    from adapters.grpc import auth
    from adapters.grpc import server as srv

    sums = {"handler_n": 0, "handler_s": 0.0, "log_n": 0, "log_s": 0.0}
    handler = srv.SettlementServicer.PreSettle

    async def pre_settle(self: Any, request: Any, context: Any) -> Any:
        t = time.thread_time()
        try:
            return await handler(self, request, context)
        finally:
            sums["handler_n"] += 1
            sums["handler_s"] += time.thread_time() - t

    log_call = auth.log_call

    def timed_log_call(*args: Any) -> None:
        t = time.thread_time()
        try:
            log_call(*args)
        finally:
            sums["log_n"] += 1
            sums["log_s"] += time.thread_time() - t

    # the timers patched in where the server calls them (the tool's point); mypy refuses
    # assigning a method, and a function of another signature to a module's name
    srv.SettlementServicer.PreSettle = pre_settle  # type: ignore[method-assign]
    auth.log_call = timed_log_call  # type: ignore[assignment]  # as above
    return sums


def _serve() -> int:
    from benchmarks import echo_server

    echo_server.install()
    sums = _instrument()
    atexit.register(lambda: Path(os.environ[_OUT]).write_text(json.dumps(sums)))
    from adapters.grpc.commands import app

    app()
    return 0


def main(argv: list[str] | None = None) -> int:
    from benchmarks import grpc_bench as G
    from benchmarks import harness as H

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--items", type=int, default=100)
    ns = ap.parse_args(argv)
    print(H.machine_line(H.machine()), flush=True)
    work = Path(tempfile.mkdtemp(prefix="onestop-split-"))
    os.environ[_OUT] = str(work / "split.json")
    proc, target = G.start_server(
        f"sqlite:///{work}/onestop.db", work, 8, module="benchmarks.call_split", children=8
    )
    rows: dict[str, list[dict[str, Any]]] = {"PreSettle": [], "Echo": []}
    try:
        for r in range(-1, ns.rounds):
            for rpc in rows:
                row = asyncio.run(G.load(target, rpc, 8, ns.seconds, ns.items, f"s{r}", proc.pid))
                print(f"  {'warm-up' if r < 0 else f'round {r + 1}'} {rpc}: {row['per_s']:.0f}/s, "
                      f"server CPU/call {row['server_cpu_us']:.0f} us (event loop "
                      f"{row['loop_cpu_us']:.0f}), load {row['load_before']:.2f}->"
                      f"{row['load_after']:.2f}", flush=True)  # fmt: skip
                if r >= 0:
                    rows[rpc].append(row)
    finally:
        G.stop_server(proc)
    sums = json.loads((work / "split.json").read_text())
    med = {
        (rpc, k): statistics.median(x[k] for x in rs)
        for rpc, rs in rows.items()
        for k in ("per_s", "server_cpu_us", "loop_cpu_us")
    }
    for rpc in rows:
        print(f"{rpc}: {med[rpc, 'per_s']:,.0f}/s, server CPU/call {med[rpc, 'server_cpu_us']:.0f}"
              f" us, event loop {med[rpc, 'loop_cpu_us']:.0f} us (medians)")  # fmt: skip
    body = sums["handler_s"] / max(sums["handler_n"], 1) * 1e6
    line = sums["log_s"] / max(sums["log_n"], 1) * 1e6
    gap = med["PreSettle", "loop_cpu_us"] - med["Echo", "loop_cpu_us"]
    print(f"PreSettle handler (the _trial wrapper and body) {body:.0f} us a call over "
          f"{sums['handler_n']} calls (warm-up included); access line {line:.1f} us a call "
          f"(every rpc); event-loop gap PreSettle - Echo {gap:.0f} us, of it the handler "
          f"{body:.0f}, around it {gap - body:.0f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(_serve() if sys.argv[1:2] == ["serve"] else main())
