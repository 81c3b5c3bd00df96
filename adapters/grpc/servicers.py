"""The gRPC servicers: thin, each rpc converts the request to core types, runs the synchronous
use case in the thread pool (never on the event loop; PreSettle on the loop when the servicer is
``inline``; a grouped Settle read on the loop and handed to the settle writer, which answers
the loop) and converts the result back. Errors go through the one table in
``adapters.grpc.errors``. Registered on a server by ``adapters.grpc.registration``; the server's
life (health, shutdown, processes) is ``adapters.grpc.server``.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, TypeVar

import grpc

from adapters.auth.access import ScopedService
from adapters.grpc import auth, columns, requestwire, resultwire
from adapters.grpc import convert as cv
from adapters.grpc import stream as st
from adapters.grpc.errors import Undecodable, abort
from adapters.grpc.gen.onestop.settlement.v1 import settlement_pb2 as pb
from adapters.grpc.gen.onestop.settlement.v1 import settlement_pb2_grpc as pbg
from adapters.grpc.limits import Limits
from adapters.grpc.packedtext import hospitals_for_scope
from adapters.grpc.registration import Received, _parsed
from adapters.grpc.streamworker import StreamWorker
from engine.errors import Conflict, InputError, NotFound
from engine.reconcile import local_date
from engine.service.kepttrials import KeptTrials, NotKept
from engine.service.ports import SettlementRecord
from engine.service.settlecols import Request
from engine.service.settlecols import request_of as settle_request
from engine.service.settledrows import SettledRows
from engine.service.settlewrite import SettledAnswer
from engine.service.usecases import SettlementService
from engine.service.versions import effective

T = TypeVar("T")
PIPELINE = 2  # TRIAL stream messages settled at once


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
    servicer is ``inline`` (asked for), else in the thread pool like ``_unary``. With the
    store's ``kept_trials`` (PostgreSQL) the loop awaits the store's figure and answers from
    the reads kept under it, sending nothing itself (``only_kept``); a read that is not kept
    (``NotKept``), or a figure that failed or took too long, sends the call to the pool, where
    it waits on its reads."""
    pooled = _unary(fn)

    @functools.wraps(fn)
    async def call(self: SettlementServicer, request: Any, context: Any) -> Any:
        if not self.inline:
            return await pooled(self, request, context)
        try:
            if isinstance(request, Undecodable):
                raise request
            kept = self.kept_trials
            if kept is None:
                return fn(self, request)
            try:
                figure = await kept.figure()
            except Exception:  # the pool's own reads report what is wrong
                raise NotKept("the store's figure") from None
            with kept.only_kept(figure):
                return fn(self, request)
        except NotKept:
            return await pooled(self, request, context)
        except (asyncio.CancelledError, grpc.aio.AbortError):
            raise
        except Exception as exc:
            await abort(context, exc)

    return call


def _grouping(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Settle's rpc: ``fn`` in the pool as ``_unary`` runs it when group commit is off or no
    other Settle is in flight (the lone path). Otherwise the request is read and checked on
    the loop and the call handed to the service's writer (``_settle_grouped``:
    ``settle_rows_then``), which answers the loop itself after the commit: no pool thread
    waits on the group, and the answer's bytes are written on the loop."""
    pooled = _unary(fn)

    @functools.wraps(fn)
    async def call(self: SettlementServicer, request: Any, context: Any) -> Any:
        writer = self.service.settle_writer
        if writer is None or writer.idle or isinstance(request, Undecodable):
            return await pooled(self, request, context)
        try:
            return await self._settle_grouped(*self._settle_args(request))
        except (asyncio.CancelledError, grpc.aio.AbortError):
            raise
        except Exception as exc:
            await abort(context, exc)

    return call


def _answer(fut: asyncio.Future[Any], value: Any, exc: BaseException | None) -> None:
    """A pooled call's answer, on the loop (``_Base.run``); a cancelled call's is dropped."""
    if fut.done():
        return
    if exc is None:
        fut.set_result(value)
    elif isinstance(exc, StopIteration):  # a Future refuses it: the call would hang
        fut.set_exception(RuntimeError(repr(exc)))
    else:
        fut.set_exception(exc)


def _settle_response(rows: SettledRows, rec: SettlementRecord) -> bytes:
    """A Settle's answer's bytes, written from the kernel's rows of a settlement made now."""
    return resultwire.settle_response(
        rows, rec.settlement_id, rec.request_id, rec.created_at.isoformat(), rec.bill_digest,
        rec.registry_version,
    )  # fmt: skip


def _settle_in_thread(
    svc: ScopedService, request_id: str, req: Request, allocate: bool
) -> pb.SettleResponse | bytes:
    """A Settle settled and answered in this thread (alone, or waiting for the writer)."""
    rec, replay, rows = svc.settle_rows(request_id, req)
    return _settle_answer(svc, rec, replay, rows, allocate)


def _settle_answer(
    svc: ScopedService,
    rec: SettlementRecord,
    replay: bool,
    rows: SettledRows | None,
    allocate: bool,
) -> pb.SettleResponse | bytes:
    """A Settle's answer (its allocation may read the store: in a pool thread)."""
    if rows is not None and not allocate:  # settled now: the answer's bytes from the rows
        return _settle_response(rows, rec)
    alloc = svc.allocation_of(rec) if allocate else None
    return pb.SettleResponse(settlement=cv.record_pb(rec, alloc), replay=replay)


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
        """``fn(*args)`` in the thread pool, in this call's context (its principal).

        ``loop.run_in_executor`` without its future chain: the worker hands the answer to the
        loop itself (one ``call_soon_threadsafe``), so the loop runs neither
        ``_chain_future``'s state copy nor its cancel check a call (~15-20 us of the event
        loop's CPU a call in a hot loop). As there, a call cancelled before its work started
        never runs it."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        ctx = contextvars.copy_context()

        def work() -> None:
            try:
                value = ctx.run(fn, *args)
            except BaseException as exc:
                loop.call_soon_threadsafe(_answer, fut, None, exc)
            else:
                loop.call_soon_threadsafe(_answer, fut, value, None)

        job = self.executor.submit(work)
        try:
            return await fut
        except asyncio.CancelledError:
            job.cancel()  # not started yet: it never runs
            raise

    def scoped(self) -> ScopedService:
        """The use cases as the caller may call them (``adapters.auth.access``)."""
        return ScopedService(self.service, auth.current())


class SettlementServicer(_Base, pbg.SettlementServiceServicer):
    #: a second process for TRIAL packed stream messages (``Server(stream_worker=True)``)
    stream_worker: StreamWorker | None = None
    #: the store's figure awaited on the loop for inline trials (``_trial``; PostgreSQL)
    kept_trials: KeptTrials | None = None

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
            if isinstance(request, bytes):
                request = _parsed(pb.PreSettleRequest, request)
            if not request.allocate:
                cols = columns.bill_columns(request.bill)
        if cols is not None:
            s = self.scoped().pre_settle_rows(cols)
            if isinstance(s, SettledRows):  # the answer's bytes from the kernel's rows
                return resultwire.pre_settle_response(s)
            resp = pb.PreSettleResponse()
            cv.fill_result(resp.result, s)
            return resp
        assert not isinstance(request, bytes)  # parsed above: no columns were read of it
        s, alloc = self.scoped().pre_settle_allocated(cv.bill_request(request.bill))
        resp = pb.PreSettleResponse()
        cv.fill_result(resp.result, s, alloc)
        return resp

    @_grouping
    def Settle(self, request: pb.SettleRequest | bytes) -> pb.SettleResponse | bytes:
        """Settle in one thread (alone, or waiting for the writer's answer): as ``_unary``
        runs it in the pool; a grouped call goes loop -> writer -> loop (``_grouping``)."""
        return _settle_in_thread(*self._settle_args(request))

    def _settle_args(
        self, request: pb.SettleRequest | bytes
    ) -> tuple[ScopedService, str, Request, bool]:
        """The caller's use cases, the request id, the checked request and ``allocate``."""
        # the request as received (RAW_BYTES) is parsed only when it must be
        got = requestwire.settle_columns(request) if type(request) is bytes else None
        if got is None:
            if isinstance(request, bytes):
                request = _parsed(pb.SettleRequest, request)
            # columns, no per-item model (a bad bill: the model path's errors, as before)
            got = (request.request_id, columns.bill_columns(request.bill), request.allocate)
        request_id, cols, allocate = got
        return self.scoped(), request_id, settle_request(cols), allocate

    async def _settle_grouped(
        self, svc: ScopedService, request_id: str, req: Request, allocate: bool
    ) -> pb.SettleResponse | bytes:
        """A Settle handed to the writer from the loop; the writer posts its answer back."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()

        def done(a: SettledAnswer) -> None:  # in the writer's thread, after the commit
            if isinstance(a, Exception):
                loop.call_soon_threadsafe(_answer, fut, None, a)
            else:
                loop.call_soon_threadsafe(_answer, fut, a, None)

        if not svc.settle_rows_then(request_id, req, done):  # none in flight now: alone
            return await self.run(_settle_in_thread, svc, request_id, req, allocate)
        try:
            rec, replay, rows = await fut  # a cancelled call's settlement still commits
        except Conflict:
            await self.run(svc.after_conflict, request_id)  # may read the store
            raise
        if rows is not None and not allocate:
            return _settle_response(rows, rec)
        return await self.run(_settle_answer, svc, rec, replay, rows, allocate)

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
                    request, raw, cut = (
                        (got.message, got.data, got.cut)
                        if isinstance(got, Received)
                        else (got, None, None)
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
                        else self.run(st.handle, self.service, request, self.limits, scoped, cut)
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
