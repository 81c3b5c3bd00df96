"""The gRPC server's life: the servicers (``adapters.grpc.servicers``) put on a grpc.aio server
(``adapters.grpc.registration``) with health, reflection, the stream worker and the ledger's
sealer; shutdown; several processes on one port.

Health (grpc.health.v1) says NOT_SERVING until the kernels are compiled and warmed by a trial
settlement of a sample bill (``adapters.grpc.warmup``), then SERVING; on SIGTERM/SIGINT it says
NOT_SERVING again, new calls are refused and calls in flight get a grace period.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from adapters.auth.principals import PrincipalsFile
from adapters.bootstrap import App, kept_trials
from adapters.grpc import auth
from adapters.grpc.errors import log_incident
from adapters.grpc.gen.onestop.settlement.v1 import settlement_pb2 as pb
from adapters.grpc.heapkeep import keep_freed_memory
from adapters.grpc.limits import Limits
from adapters.grpc.registration import KEEP_BYTES, RAW_BYTES, Received, add_servicer
from adapters.grpc.servicers import (
    PolicyAdminServicer,
    ReconciliationServicer,
    SettlementServicer,
    _Base,
    _trial,
    _unary,
)
from adapters.grpc.streamworker import StreamWorker
from adapters.grpc.warmup import warm_up
from engine.service.funds import FundService
from engine.service.groupcommit import GroupCommit
from engine.service.kepttrials import KeptTrials
from engine.service.ledger import Sealer

log = logging.getLogger("onestop.grpc")

SERVICE_NAMES = (
    pb.DESCRIPTOR.services_by_name["SettlementService"].full_name,
    pb.DESCRIPTOR.services_by_name["PolicyAdminService"].full_name,
    pb.DESCRIPTOR.services_by_name["ReconciliationService"].full_name,
)
#: the fund service (funds.proto), served when the app has fund use cases
FUNDS_SERVICE = "onestop.settlement.v1.FundsService"
#: the names other modules (funds.py, benchmarks comparing trees) take from here
__all__ = [
    "FUNDS_SERVICE",
    "KEEP_BYTES",
    "RAW_BYTES",
    "SERVICE_NAMES",
    "PolicyAdminServicer",
    "Received",
    "ReconciliationServicer",
    "Server",
    "SettlementServicer",
    "_Base",
    "_trial",
    "_unary",
    "add_servicer",
    "lean_log_records",
    "running",
    "serve_forever",
    "serve_processes",
    "warm_up",
]


class Server:
    """One gRPC server over one App. ``start`` binds and serves with health NOT_SERVING and
    starts the ledger's sealer (every ``seal_interval`` s); ``warm`` runs the warm-up and
    switches health to SERVING; ``stop`` drains, then seals what was committed and stops the
    sealer.

    With ``tls`` (and ``principals``): TLS with client certificates required, each caller
    mapped to its principal (``adapters.grpc.auth``). Without: plaintext, every caller is the
    one ``local`` principal with every role, and only a loopback address is served unless
    ``insecure``."""

    def __init__(
        self,
        app: App,
        host: str = "127.0.0.1",
        port: int = 50051,
        *,
        workers: int = 8,
        samples: Path | None = None,
        reuse_port: bool = False,
        limits: Limits = Limits(),
        seal_interval: float = 1.0,
        tls: auth.Tls | None = None,
        principals: PrincipalsFile | None = None,
        insecure: bool = False,
        funds: FundService | None = None,
        stream_worker: bool = False,
    ):
        if tls is not None and principals is None:
            raise ValueError("a TLS server needs a principals file (--principals)")
        if tls is None and not insecure and not auth.is_loopback(host):
            raise ValueError(
                f"{host} is not a loopback address: serve it with TLS (--tls-cert, --tls-key, "
                "--client-ca, --principals), or give --insecure"
            )
        self.app = app
        self.limits = limits
        #: the fund use cases (the FundsService); None: app.funds, if the app has them
        self.funds = funds if funds is not None else getattr(app, "funds", None)
        self.service_names = SERVICE_NAMES + (FUNDS_SERVICE,) * (self.funds is not None)
        assert app.ledger is not None
        self.sealer = Sealer(app.ledger, seal_interval)
        self.tls = tls
        self.principals = principals
        self.address = f"{host}:{port}"
        self.samples = samples
        self.reuse_port = reuse_port
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="onestop")
        #: PreSettle on the event loop instead of the thread pool. On by default: on a quiet
        #: machine it doubled PreSettle/s and halved its server CPU (README "hot path");
        #: ONESTOP_INLINE_TRIALS=0 turns it off. PostgreSQL: the loop awaits the store's
        #: figure (``kepttrials``, at most ``limits.kept_figure_seconds``) and answers only a
        #: trial whose reads are kept under it, sending nothing itself; the others go to the
        #: pool (``servicers._trial``).
        self.inline_trials = os.environ.get("ONESTOP_INLINE_TRIALS", "1") != "0"
        #: ``stream_worker``: every other TRIAL packed stream message settled in a second
        #: process (``adapters.grpc.streamworker``; SQL stores only)
        self.stream_worker = StreamWorker(app.url) if stream_worker else None
        self.kept_trials: KeptTrials | None = None  # PostgreSQL's inline trials
        self.health = health.aio.HealthServicer()
        self.server: grpc.aio.Server | None = None
        self.port = 0

    async def start(self) -> int:
        options = [*self.limits.options(), ("grpc.so_reuseport", 1 if self.reuse_port else 0)]
        interceptor = auth.AuthInterceptor(self.principals if self.tls else None)
        server = grpc.aio.server(options=options, interceptors=[interceptor])
        svc, ex, lim = self.app.service, self.executor, self.limits
        settlement = SettlementServicer(svc, ex, lim, self.inline_trials)
        settlement.stream_worker = self.stream_worker
        if self.inline_trials:
            kept = kept_trials(self.app, lim.kept_figure_seconds)
            settlement.kept_trials = self.kept_trials = kept
        add_servicer(server, settlement, "SettlementService")
        add_servicer(server, PolicyAdminServicer(svc, ex, lim), "PolicyAdminService")
        add_servicer(server, ReconciliationServicer(svc, ex, lim), "ReconciliationService")
        if self.funds is not None:
            from adapters.grpc.funds import FundsServicer
            from adapters.grpc.gen.onestop.settlement.v1 import funds_pb2

            add_servicer(server, FundsServicer(svc, ex, lim, self.funds), "FundsService", funds_pb2)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        for name in ("", *self.service_names):
            await self.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        reflection.enable_server_reflection(
            (*self.service_names, health.SERVICE_NAME, reflection.SERVICE_NAME), server
        )
        if self.tls is not None:
            self.port = server.add_secure_port(self.address, self.tls.server_credentials())
        else:
            self.port = server.add_insecure_port(self.address)
            log.warning(
                "PLAINTEXT on %s: no TLS, no client certificates; every caller is the local "
                "principal with every role",
                self.address,
            )
        if self.port == 0:
            raise OSError(f"cannot listen on {self.address}")
        await server.start()
        self.server = server
        self.sealer.start()
        log.info(
            "listening on %s%s (health NOT_SERVING until warm)",
            self.address,
            " with TLS, client certificates required" if self.tls else "",
        )
        return self.port

    async def warm(self) -> None:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        try:
            n = await loop.run_in_executor(self.executor, warm_up, self.app.service, self.samples)
        except Exception as exc:
            log_incident(exc, "warm-up failed: health stays NOT_SERVING")
            raise
        # what start-up made (modules, the app, compiled tables and kernels) lives until exit:
        # out of the cycle collector's later runs, which otherwise walk it all again every
        # full collection (a PreSettle's allocations bring one about every few hundred calls)
        gc.freeze()
        for name in ("", *self.service_names):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        log.info("warm after %d trial settlements in %.2f s: SERVING", n, loop.time() - t0)

    async def stop(self, grace: float = 10.0) -> None:
        if self.server is None:
            return
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
        self.server = None
        self.executor.shutdown(wait=True, cancel_futures=False)
        if self.kept_trials is not None:
            await self.kept_trials.close()
        if self.stream_worker is not None:
            await asyncio.to_thread(self.stream_worker.close)
        await asyncio.to_thread(self.sealer.stop)  # seals the calls just drained
        log.info("stopped")


async def serve_forever(server: Server, grace: float = 10.0) -> None:
    """Start, warm, serve until SIGTERM or SIGINT, then drain for ``grace`` seconds. The
    process keeps the heap memory it frees (``heapkeep``: no fresh pages a large message)."""
    keep_freed_memory()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await server.start()
    warm = asyncio.create_task(server.warm())
    await stop.wait()
    log.info("signal received: draining (grace %.0f s)", grace)
    warm.cancel()
    await server.stop(grace)
    server.app.close()


def lean_log_records() -> None:
    """Log records without what the server's formats never print: the caller's file and line
    (a stack walk per record), the thread and process names (the Python docs' logging
    "Optimization" switches). Every call writes an access line, so this is per call."""
    logging._srcfile = None
    logging.logThreads = False
    logging.logMultiprocessing = False


def _die_with_parent() -> None:
    """Linux: SIGTERM this process when the parent dies (a parent killed with SIGKILL leaves no
    server holding the port); elsewhere nothing."""
    import contextlib
    import ctypes
    import sys

    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):  # PR_SET_PDEATHSIG = 1
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)
        if os.getppid() == 1:  # the parent died before prctl
            os.kill(os.getpid(), signal.SIGTERM)


def _child(
    url: str, host: str, port: int, workers: int, grace: float, samples: Path | None,
    limits: Limits, tls: auth.Tls | None, principals: Path | None, insecure: bool,
    group_commit: GroupCommit | None = None,
) -> None:  # fmt: skip
    from adapters.bootstrap import build

    _die_with_parent()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(process)d %(name)s %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    lean_log_records()
    app = build(url, policies=None, registry=None, group_commit=group_commit)
    server = Server(
        app, host, port, workers=workers, samples=samples, reuse_port=True, limits=limits,
        tls=tls, principals=PrincipalsFile(principals) if principals else None,
        insecure=insecure,
    )  # fmt: skip
    asyncio.run(serve_forever(server, grace))


def serve_processes(
    url: str,
    host: str,
    port: int,
    *,
    processes: int,
    workers: int = 8,
    grace: float = 10.0,
    samples: Path | None = None,
    limits: Limits = Limits(),
    tls: auth.Tls | None = None,
    principals: Path | None = None,
    insecure: bool = False,
    group_commit: GroupCommit | None = None,
) -> int:
    """Serve from ``processes`` processes sharing one port (SO_REUSEPORT): the use cases are
    CPU-bound Python, so one process uses one core at most. The store must be shared (SQL, not
    memory://), and the caller has already loaded policies and registry. SIGTERM/SIGINT to this
    process is passed on; each child drains its calls. Caveat: each process caches the tables
    in force; a PutPolicy reaches only the process that took it until the others restart."""
    import multiprocessing

    if url.startswith("memory:"):
        raise ValueError("several processes need a shared store; memory:// is per process")
    ctx = multiprocessing.get_context("spawn")
    children = [
        ctx.Process(
            target=_child,
            args=(
                url,
                host,
                port,
                workers,
                grace,
                samples,
                limits,
                tls,
                principals,
                insecure,
                group_commit,
            ),
            daemon=False,
        )
        for _ in range(processes)
    ]
    for c in children:
        c.start()

    def forward(signum: int, _frame: Any) -> None:
        for c in children:
            if c.is_alive() and c.pid is not None:
                os.kill(c.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for c in children:
        c.join()
    return max((c.exitcode or 0) for c in children)


@contextmanager
def running(app: App, *, host: str = "127.0.0.1", port: int = 0, workers: int = 8,
            warm: bool = True, samples: Path | None = None,
            limits: Limits = Limits(), tls: auth.Tls | None = None,
            principals: PrincipalsFile | None = None, funds: FundService | None = None,
            stream_worker: bool = False) -> Iterator[Server]:  # fmt: skip
    """A server on its own event loop in a background thread (tests, benchmarks).
    ``port=0`` picks a free port: read ``server.port``."""
    server = Server(
        app, host, port, workers=workers, samples=samples, limits=limits, tls=tls,
        principals=principals, funds=funds, stream_worker=stream_worker,
    )  # fmt: skip
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="grpc-loop", daemon=True)
    thread.start()

    def call(coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, loop).result()

    try:
        call(server.start())
        if warm:
            call(server.warm())
        yield server
    finally:
        call(server.stop(grace=1.0))
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
