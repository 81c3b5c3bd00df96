"""A second process for one stream's TRIAL packed messages: both cores for one stream.

``StreamWorker`` keeps one process (spawned, its own service over the same store: SQL stores
only) that settles the TRIAL packed messages the servicer hands it (``stream.handle``, as the
servicer's own threads do) while the servicer's process receives, answers and settles the
others. Its guarantees are the stream's:
- the answers keep the order of the messages (the servicer yields them in order, whoever
  settled them);
- every message carries the version of the policy tables the server's process has in force;
  the worker re-reads the tables when its own are older, so it never settles a message on a
  table older than the server would have used;
- a refusal names the field as in the server's own process (``InputError``, ``NotFound`` and
  the other domain errors come back as themselves; anything else as ``StreamWorkerError``);
- a worker that dies fails the message it had (``StreamWorkerError`` naming its exit code:
  INTERNAL with an incident id), and the next message starts a new worker.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import pickle
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from adapters.grpc.gen.onestop.settlement.v1 import settlement_pb2 as pb
from adapters.grpc.limits import Limits

#: the worker process's service (``_start``)
_service: Any = None


class StreamWorkerError(RuntimeError):
    """The worker process failed a message: it died, or raised something that is not a
    domain error (the message names what)."""


def _start(url: str) -> None:
    global _service
    from adapters.bootstrap import build

    _service = build(url, policies=None, registry=None).service


def _trial(raw: bytes, version: int, limits: Limits) -> tuple[str, Any]:
    """One message in the worker: ("ok", response bytes) or ("error", the exception, or its
    text when it would not come back whole)."""
    from adapters.grpc import stream

    try:
        _service.policies(at_least=version)
        req = pb.SettleStreamRequest.FromString(raw)
        return "ok", stream.handle(_service, req, limits).SerializeToString()
    except Exception as exc:  # sent back: the servicer raises it in the stream
        try:
            if type(pickle.loads(pickle.dumps(exc))) is type(exc):
                return "error", exc
        except Exception:  # not picklable whole: sent as text below
            pass
        return "error", f"{type(exc).__name__}: {exc}"


class StreamWorker:
    """One worker process over the store at ``url`` (started on first use)."""

    def __init__(self, url: str):
        if not url.startswith(("sqlite", "postgresql")):
            raise ValueError(f"a stream worker needs a shared SQL store; {url} is per process")
        self.url = url
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start,
                initargs=(self.url,),
            )
        return self._pool

    def pids(self) -> list[int]:
        """The worker's process id, if it runs (for tests and monitoring)."""
        procs = getattr(self._pool, "_processes", None) or {}
        return list(procs)

    async def trial(self, raw: bytes, version: int, limits: Limits) -> pb.SettleStreamResponse:
        """The answer to the serialized TRIAL message ``raw``, settled in the worker on tables
        of at least ``version``."""
        loop = asyncio.get_running_loop()
        pool = self._executor()
        try:
            kind, got = await loop.run_in_executor(pool, _trial, raw, version, limits)
        except BrokenProcessPool as exc:
            codes = [p.exitcode for p in (getattr(pool, "_processes", None) or {}).values()]
            if self._pool is pool:
                self._pool = None  # the next message starts a new worker
            pool.shutdown(wait=False, cancel_futures=True)
            raise StreamWorkerError(
                f"the stream worker process died (exit codes {codes or 'unknown'}): "
                "this message was not settled"
            ) from exc
        if kind == "ok":
            return pb.SettleStreamResponse.FromString(got)
        if isinstance(got, BaseException):
            raise got
        raise StreamWorkerError(f"the stream worker failed the message: {got}")

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
