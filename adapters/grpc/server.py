"""The gRPC server: thin servicers over ``SettlementService``, health, reflection, shutdown.

Each rpc converts the request to core types, runs the synchronous use case in a thread pool
(never on the event loop), and converts the result back. Errors go through the one table in
``adapters.grpc.errors``. Health (grpc.health.v1) says NOT_SERVING until the kernels are
compiled and warmed by a trial settlement of a sample bill, then SERVING; on SIGTERM/SIGINT it
says NOT_SERVING again, new calls are refused and calls in flight get a grace period.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import gc
import logging
import os
import signal
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import grpc
from google.protobuf.message import DecodeError
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from adapters.auth.access import ScopedService
from adapters.auth.principals import PrincipalsFile
from adapters.bootstrap import App
from adapters.grpc import auth, columns, requestwire, resultwire
from adapters.grpc import convert as cv
from adapters.grpc import stream as st
from adapters.grpc.billwire import warm_bill_wire
from adapters.grpc.errors import Undecodable, abort, log_incident
from adapters.grpc.gen.onestop.settlement.v1 import settlement_pb2 as pb
from adapters.grpc.gen.onestop.settlement.v1 import settlement_pb2_grpc as pbg
from adapters.grpc.limits import Limits
from adapters.grpc.packedtext import hospitals_for_scope
from adapters.grpc.streamworker import StreamWorker
from engine.accounts import YearAccounts
from engine.bill import Bill, Item, Person
from engine.errors import InputError, NotFound, OnestopError
from engine.policy.load import parse_table
from engine.policy.policyset import PolicySet
from engine.reconcile import local_date
from engine.service.funds import FundService
from engine.service.groupcommit import GroupCommit
from engine.service.ledger import Sealer
from engine.service.settlecols import request_of as settle_request
from engine.service.settledrows import SettledRows
from engine.service.usecases import SettlementService
from engine.service.versions import effective
from engine.settle import settle_one

log = logging.getLogger("onestop.grpc")

T = TypeVar("T")

SERVICE_NAMES = (
    pb.DESCRIPTOR.services_by_name["SettlementService"].full_name,
    pb.DESCRIPTOR.services_by_name["PolicyAdminService"].full_name,
    pb.DESCRIPTOR.services_by_name["ReconciliationService"].full_name,
)
#: the fund service (funds.proto), served when the app has fund use cases
FUNDS_SERVICE = "onestop.settlement.v1.FundsService"
PIPELINE = 2  # TRIAL stream messages settled at once
#: methods whose messages reach the servicer with their bytes (``Received``)
KEEP_BYTES = frozenset(
    {pb.DESCRIPTOR.services_by_name["SettlementService"].full_name + ".SettleStream"}
)
#: the methods whose servicer is handed the request's bytes unparsed (it reads them itself,
#: ``adapters.grpc.requestwire``, and parses them with upb only when that does not take them)
RAW_BYTES = frozenset(
    {pb.DESCRIPTOR.services_by_name["SettlementService"].full_name + ".PreSettle"}
)


def _unary(fn: Callable[..., Any]) -> Callable[..., Any]:
    """An rpc whose body runs in the thread pool; domain errors become statuses."""

    @functools.wraps(fn)
    async def call(self: _Base, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            if isinstance(request, Undecodable):
                raise request
            return await self.run(fn, self, request)
        except (asyncio.CancelledError, grpc.aio.AbortError):
            raise
        except Exception as exc:
            await abort(context, exc)

    return call


def _trial(fn: Callable[..., Any]) -> Callable[..., Any]:
    """An rpc that reads the store but writes nothing (PreSettle): on the event loop when the
    servicer is ``inline`` (a local store, asked for), else in the thread pool like ``_unary``."""
    pooled = _unary(fn)

    @functools.wraps(fn)
    async def call(self: _Base, request: Any, context: grpc.aio.ServicerContext) -> Any:
        if not self.inline:
            return await pooled(self, request, context)
        try:
            if isinstance(request, Undecodable):
                raise request
            return fn(self, request)
        except Exception as exc:
            await abort(context, exc)

    return call


class _Base:
    def __init__(
        self,
        service: SettlementService,
        executor: ThreadPoolExecutor,
        limits: Limits = Limits(),
        inline: bool = False,
    ):
        self.service = service
        self.executor = executor
        self.limits = limits
        self.inline = inline

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in the thread pool, in this call's context (its principal)."""
        loop = asyncio.get_running_loop()
        ctx = contextvars.copy_context()
        return await loop.run_in_executor(self.executor, ctx.run, functools.partial(fn, *args))

    def scoped(self) -> ScopedService:
        """The use cases as the caller may call them (``adapters.auth.access``)."""
        return ScopedService(self.service, auth.current())


class SettlementServicer(_Base, pbg.SettlementServiceServicer):
    #: a second process for TRIAL packed stream messages (``Server(stream_worker=True)``)
    stream_worker: StreamWorker | None = None

    async def _in_worker(
        self, request: pb.SettleStreamRequest, raw: bytes | None, scoped: Any
    ) -> bytes:
        """A TRIAL packed message settled by the stream worker: the caller's hospitals checked
        here, the message sent as received (``raw``; serialized again only when the servicer
        was handed a message) with the version of the tables this process has in force. The
        answer comes back as bytes, which the stream yields as they are (``_serializer``)."""

        def send() -> tuple[bytes, int]:
            if scoped is not None:
                scoped.check_hospitals(*hospitals_for_scope(request.packed))
            data = raw if raw is not None else request.SerializeToString()
            return data, self.service.policies_version()

        data, version = await self.run(send)
        assert self.stream_worker is not None
        return await self.stream_worker.trial(data, version, self.limits)

    @_trial
    def PreSettle(self, request: pb.PreSettleRequest | bytes) -> pb.PreSettleResponse | bytes:
        # the request as received (RAW_BYTES) is parsed only when it must be
        cols = requestwire.pre_settle_columns(request) if type(request) is bytes else None
        if cols is None:
            if type(request) is bytes:
                request = _parsed(pb.PreSettleRequest, request)
            if not request.allocate:
                cols = columns.bill_columns(request.bill)
        resp = pb.PreSettleResponse()
        if cols is not None:
            s = self.scoped().pre_settle_rows(cols)
            if isinstance(s, SettledRows):  # the answer's bytes from the kernel's rows
                return resultwire.pre_settle_response(s)
            cv.fill_result(resp.result, s)
            return resp
        s, alloc = self.scoped().pre_settle_allocated(cv.bill_request(request.bill))
        cv.fill_result(resp.result, s, alloc)
        return resp

    @_unary
    def Settle(self, request: pb.SettleRequest) -> pb.SettleResponse:
        svc = self.scoped()
        # columns, no per-item model (a bad bill: the model path's errors, as before)
        req = settle_request(columns.bill_columns(request.bill))
        rec, replay = svc.settle(request.request_id, req)
        alloc = svc.allocation_of(rec) if request.allocate else None
        return pb.SettleResponse(settlement=cv.record_pb(rec, alloc), replay=replay)

    @_unary
    def Reverse(self, request: pb.ReverseRequest) -> pb.ReverseResponse:
        which = request.WhichOneof("target")
        rec, replay = self.scoped().reverse(
            settlement_id=request.settlement_id if which == "settlement_id" else "",
            request_id=request.request_id if which == "request_id" else "",
            reversal_request_id=request.reversal_request_id,
        )
        return pb.ReverseResponse(settlement=cv.record_pb(rec), replay=replay)

    @_unary
    def GetSettlement(self, request: pb.GetSettlementRequest) -> pb.GetSettlementResponse:
        which = request.WhichOneof("target")
        rec = self.scoped().get(
            settlement_id=request.settlement_id if which == "settlement_id" else "",
            request_id=request.request_id if which == "request_id" else "",
        )
        alloc = self.scoped().allocation_of(rec) if request.allocate else None
        return pb.GetSettlementResponse(settlement=cv.record_pb(rec, alloc))

    @_unary
    def ListSettlements(self, request: pb.ListSettlementsRequest) -> pb.ListSettlementsResponse:
        if not request.person_id:
            raise InputError.one("person_id", "", "is empty; name the person")
        year = request.year if request.HasField("year") else None
        recs, token = self.scoped().list_page(
            request.person_id, year, request.page_size, request.page_token
        )
        return pb.ListSettlementsResponse(
            settlements=[cv.record_pb(r) for r in recs], next_page_token=token
        )

    @_unary
    def GetAccounts(self, request: pb.GetAccountsRequest) -> pb.GetAccountsResponse:
        if not request.person_id:
            raise InputError.one("person_id", "", "is empty; name the person")
        # the default year is the region's (Asia/Shanghai, UTC+8), not the UTC year
        year = request.year or local_date(datetime.now(UTC)).year
        person, pa, ha = self.scoped().accounts(request.person_id, year)
        return pb.GetAccountsResponse(
            person_id=person.id,
            household=person.household,
            year=year,
            person=cv.year_accounts_pb(pa),
            household_accounts=cv.year_accounts_pb(ha),
        )

    async def SettleStream(
        self, request_iterator: AsyncIterator[Any], context: Any
    ) -> AsyncIterator[pb.SettleStreamResponse | bytes]:
        # Each message is answered as soon as it is done, in order, whether or not the client
        # sends more: a reader task takes the messages and starts their work; this generator
        # yields the answers. TRIAL messages are independent (each reads the stored accounts
        # and writes nothing): up to PIPELINE of them run at once. A SETTLE message starts
        # only when everything before it is done, and the messages after it only when it is
        # done, so commits keep the order of the stream and a later trial sees them.
        # Each message arrives as ``Received`` (the message and the bytes it was parsed from,
        # for the stream worker), or as a plain message when the servicer is called directly.
        answers: asyncio.Queue[Any] = asyncio.Queue(maxsize=PIPELINE)
        started: list[asyncio.Future[Any]] = []

        async def settled_before() -> bool:
            """Wait for everything started so far; False if any of it failed."""
            if started:
                await asyncio.wait(started)
            ok = all(f.cancelled() or f.exception() is None for f in started)
            started.clear()
            return ok

        async def read(scoped: Any) -> None:
            try:
                barrier = False  # a SETTLE is in flight: the next message waits for it
                k = 0  # TRIAL packed messages: every other one to the stream worker, if any
                async for got in request_iterator:
                    if isinstance(got, Undecodable):  # answered after what came before
                        await answers.put(got)
                        return
                    request, raw = (
                        (got.message, got.data) if isinstance(got, Received) else (got, None)
                    )
                    settle = request.mode != pb.STREAM_MODE_TRIAL
                    if (settle or barrier) and not await settled_before():
                        return  # an earlier message failed: its answer ends the stream
                    elsewhere = (
                        self.stream_worker is not None
                        and not settle
                        and request.WhichOneof("payload") == "packed"
                    )
                    k += elsewhere
                    fut = asyncio.ensure_future(
                        self._in_worker(request, raw, scoped)
                        if elsewhere and k % 2 == 0
                        else self.run(st.handle, self.service, request, self.limits, scoped)
                    )
                    started.append(fut)
                    barrier = settle
                    await answers.put(fut)
                await answers.put(None)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the client's stream failed: end ours with it
                await answers.put(exc)

        reader: asyncio.Future[None] | None = None
        try:
            reader = asyncio.ensure_future(read(self.scoped()))
            while True:
                item = await answers.get()
                if item is None:
                    break
                if isinstance(item, BaseException):
                    raise item
                yield await item
        except (asyncio.CancelledError, grpc.aio.AbortError):
            raise
        except Exception as exc:
            await abort(context, exc)
        finally:
            if reader is not None:
                reader.cancel()
            for f in started:
                f.cancel()


class PolicyAdminServicer(_Base, pbg.PolicyAdminServiceServicer):
    @_unary
    def PutPolicy(self, request: pb.PutPolicyRequest) -> pb.PutPolicyResponse:
        v = self.scoped().put_policy(
            request.yaml, request.source_name or "<request>", dry_run=request.dry_run
        )
        return pb.PutPolicyResponse(policy=cv.policy_pb(v, in_force=v.version != 0, text=True))

    @_unary
    def ListPolicies(self, request: pb.ListPoliciesRequest) -> pb.ListPoliciesResponse:
        versions = self.scoped().policy_versions()
        live = {v.version for v in effective(versions)}
        return pb.ListPoliciesResponse(
            versions=[
                cv.policy_pb(v, in_force=v.version in live, text=False)
                for v in sorted(versions, key=lambda v: v.version)
                if not request.region or v.region == request.region
            ]
        )

    @_unary
    def GetPolicy(self, request: pb.GetPolicyRequest) -> pb.GetPolicyResponse:
        versions = self.scoped().policy_versions()
        live = {v.version for v in effective(versions)}
        for v in versions:
            if v.version == request.version:
                policy = cv.policy_pb(v, in_force=v.version in live, text=True)
                return pb.GetPolicyResponse(policy=policy)
        raise NotFound("policy version", request.version, "see ListPolicies")

    @_unary
    def ImportRegistry(self, request: pb.ImportRegistryRequest) -> pb.ImportRegistryResponse:
        n = self.scoped().import_registry(cv.persons(request.persons))
        return pb.ImportRegistryResponse(imported=n)


class ReconciliationServicer(_Base, pbg.ReconciliationServiceServicer):
    """NHSA 3201 / 3202 and the bureau's daily totals: reads only. The caller's scope (a
    bureau of region R reconciles only R's settlements; a cashier of hospital H only H) is
    checked by ``ScopedService.reconcile`` / ``daily_totals`` (adapters/auth/access.py)."""

    @_unary
    def Reconcile(self, request: pb.ReconcileRequest) -> pb.ReconcileResponse:
        r = self.scoped().reconcile(
            request.hospital,
            request.from_date,
            request.to_date,
            cv.hospital_totals(request.theirs) if request.HasField("theirs") else None,
            cv.hospital_lines(request.their_list) if request.HasField("their_list") else None,
        )
        return cv.reconciliation_pb(r)

    @_unary
    def DailyTotals(self, request: pb.DailyTotalsRequest) -> pb.DailyTotalsResponse:
        rows = self.scoped().daily_totals(
            request.region, request.from_date, request.to_date, request.hospital or None
        )
        return cv.daily_pb(rows)


class Received(NamedTuple):
    """A stream message and the bytes it was parsed from (``_deserializer(keep=True)``): the
    SettleStream servicer hands those bytes to the stream worker as they came."""

    message: Any
    data: bytes


def _deserializer(cls: Any, keep: bool = False) -> Callable[[bytes], Any]:
    """``cls.FromString``, but bytes that are not such a message give an ``Undecodable`` (the
    servicer raises it: INVALID_ARGUMENT) instead of an exception inside gRPC (UNKNOWN for a
    unary call, INTERNAL for a stream message, with a Python class name in the message).
    ``keep``: the message comes as ``Received`` (the message and its bytes)."""
    name = cls.DESCRIPTOR.full_name

    def parse(data: bytes) -> Any:
        try:
            return Received(cls.FromString(data), data) if keep else cls.FromString(data)
        except DecodeError:
            return Undecodable(name)

    return parse


def _parsed(cls: Any, data: bytes) -> Any:
    """``cls.FromString(data)``; Undecodable (raised) for bytes that are not such a message."""
    got = _deserializer(cls)(data)
    if isinstance(got, Undecodable):
        raise got
    return got


def _serializer(cls: Any) -> Callable[[Any], bytes]:
    """``cls.SerializeToString``; an answer that already is bytes (the stream worker's, a
    serialized ``cls``) goes out as it is."""
    serialize = cls.SerializeToString

    def out(message: Any) -> bytes:
        return message if type(message) is bytes else serialize(message)

    return out


def add_servicer(server: grpc.aio.Server, servicer: Any, service: str, module: Any = pb) -> None:
    """Register a servicer's methods as the generated ``add_*_to_server`` does, with the
    deserializers above. ``module``: the generated ``*_pb2`` module declaring the service."""
    desc = module.DESCRIPTOR.services_by_name[service]
    handlers = {}
    for m in desc.methods:
        kind = (
            grpc.stream_stream_rpc_method_handler
            if m.client_streaming and m.server_streaming
            else grpc.unary_unary_rpc_method_handler
        )
        if m.client_streaming != m.server_streaming:
            raise NotImplementedError(f"{m.full_name}: only unary and bidi methods are served")
        handlers[m.name] = kind(
            getattr(servicer, m.name),
            request_deserializer=None
            if m.full_name in RAW_BYTES
            else _deserializer(getattr(module, m.input_type.name), keep=m.full_name in KEEP_BYTES),
            response_serializer=_serializer(getattr(module, m.output_type.name)),
        )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(desc.full_name, handlers),)
    )
    server.add_registered_method_handlers(desc.full_name, handlers)


# --------------------------------------------------------------------------- warm-up

_WARM_TABLE = """
region: {code: "warmup", name: "warm-up table (never stored)"}
effective_from: 2000-01-01
hospital_levels: [l1, l2]
tags: [poor]
b_selfpay_ratio: 1000
layers:
  - {id: basic, name: basic, fund_code: "390100", kind: reimburse,
     variants: [{deductible: {basis: admission, amount: 30000}, segments: [{ratio: 7000}]}]}
  - {id: ci, name: ci, fund_code: "390200", kind: reimburse,
     variants: [{deductible: {basis: year, amount: 1000000},
                 segments: [{up_to: 5000000, ratio: 6000}, {ratio: 7000}]}]}
  - {id: backstop, name: backstop, fund_code: "640100", kind: backstop,
     covers: [in_scope, pre_selfpay], eligibility: {tags_any: [poor]},
     variants: [{max_share: 1000, annual_ceiling: 500000}]}
  - {id: alert, name: alert, fund_code: "370200", kind: alert, scope: household,
     covers: [in_scope, pre_selfpay, over_limit, out_of_catalogue],
     variants: [{threshold: 1000000, segments: [{ratio: 5000}]}]}
"""


def _sample_bill(table: Any) -> Bill:
    day = table.effective_from
    return Bill(
        id="__warmup__",
        hospital="WARMUP",
        region=table.region.code,
        person=Person(
            id="__warmup__",
            birth_date=date(1970, 1, 1),
            household="__warmup__",
            tags=tuple({"tag": t} for t in table.tags),
        ),
        hospital_level=table.hospital_levels[0],
        admission_date=day,
        discharge_date=day,
        items=(
            Item(category="A", amount=5_000_000),
            Item(category="B", qty_e4=20000, unit_price=150_000, amount=300_000,
                 unit_price_cap=120_000),
            Item(category="C", amount=200_000),
        ),
    )  # fmt: skip


def warm_up(service: SettlementService, samples: Path | None = None) -> int:
    """Compile (or load from the numba cache) and run the kernels: a trial settlement of a
    sample bill for every table in force, from zero accounts; nothing is stored. Then trial
    settlements of the sample bills in ``samples`` (``*.json``) whose persons are registered.
    Returns the number of trial settlements run."""
    warm_bill_wire()  # the compiled reader of a bill's items (PreSettle, Settle)
    resultwire.warm_result_wire()  # the compiled writer of PreSettle's answer
    requestwire.warm_request_wire()  # the compiled reader of PreSettle's request
    try:
        policies = service.policies()
    except NotFound:
        policies = PolicySet.of([parse_table(_WARM_TABLE, "<warm-up>")])
    n = 0
    for table in policies.tables:
        settle_one(_sample_bill(table), policies, YearAccounts(), YearAccounts())
        n += 1
    if samples is not None and samples.is_dir():
        import json

        for f in sorted(samples.glob("*.json")):
            if f.name == "registry.json":
                continue
            try:
                data = json.loads(f.read_text(encoding="utf-8"))
                for b in data if isinstance(data, list) else [data]:
                    service.pre_settle(cv.bill_request(cv.bill_to_pb(b)))
                    n += 1
            except OnestopError as exc:  # a sample that does not fit is not fatal
                log.warning("warm-up: sample %s not settled: %s", f.name, exc)
            except Exception as exc:
                log_incident(exc, f"warm-up: sample {f.name} not settled")
    return n


# --------------------------------------------------------------------------- server


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
        #: PreSettle on the event loop instead of the thread pool, for local stores (SQLite,
        #: memory; PostgreSQL reads wait on the network). On by default: on a quiet machine it
        #: doubled PreSettle/s and halved its server CPU (README "hot path");
        #: ONESTOP_INLINE_TRIALS=0 turns it off.
        self.inline_trials = os.environ.get("ONESTOP_INLINE_TRIALS", "1") != "0"
        #: ``stream_worker``: every other TRIAL packed stream message settled in a second
        #: process (``adapters.grpc.streamworker``; SQL stores only)
        self.stream_worker = StreamWorker(app.url) if stream_worker else None
        self.health = health.aio.HealthServicer()
        self.server: grpc.aio.Server | None = None
        self.port = 0

    async def start(self) -> int:
        options = [*self.limits.options(), ("grpc.so_reuseport", 1 if self.reuse_port else 0)]
        interceptor = auth.AuthInterceptor(self.principals if self.tls else None)
        server = grpc.aio.server(options=options, interceptors=[interceptor])
        svc, ex, lim = self.app.service, self.executor, self.limits
        inline = self.inline_trials and not self.app.url.startswith("postgresql")
        settlement = SettlementServicer(svc, ex, lim, inline)
        settlement.stream_worker = self.stream_worker
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
        if self.stream_worker is not None:
            await asyncio.to_thread(self.stream_worker.close)
        await asyncio.to_thread(self.sealer.stop)  # seals the calls just drained
        log.info("stopped")


async def serve_forever(server: Server, grace: float = 10.0) -> None:
    """Start, warm, serve until SIGTERM or SIGINT, then drain for ``grace`` seconds."""
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
    logging._srcfile = None  # type: ignore[attr-defined]
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
