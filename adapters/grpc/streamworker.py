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

The message goes over as the bytes the server received (no second serialization) through a
shared-memory segment, not the executor's pipe: a 3.1 MB message through the pipe cost ~1.3 ms
of the server's CPU and ~3.8 ms of the worker's (64 KB writes and reads, joined again), one copy
into a segment ~0.3 ms. The worker writes its answer's bytes back into the same segment (the
request was parsed out of it first: upb copies what it parses) when they fit, else returns
them through the pipe; the servicer yields those bytes as they are (``server._serializer``).
Each message in flight has its own segment, reused for later messages; the server creates and
unlinks them (``close``).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import pickle
import threading
from collections import OrderedDict
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.shared_memory import SharedMemory
from typing import Any

from adapters.grpc.gen.onestop.settlement.v1 import settlement_pb2 as pb
from adapters.grpc.limits import Limits

#: the worker process's service (``_start``)
_service: Any = None
#: the segments the worker has attached, by name (the last few: the server reuses them)
_segments: OrderedDict[str, SharedMemory] = OrderedDict()
_KEEP_ATTACHED = 4
#: the smallest segment the server creates (a larger message gets one of its own size)
MIN_SEGMENT = 1 << 20


class StreamWorkerError(RuntimeError):
    """The worker process failed a message: it died, or raised something that is not a
    domain error (the message names what)."""


def _start(url: str) -> None:
    global _service
    from adapters.bootstrap import build
    from adapters.grpc.heapkeep import keep_freed_memory

    keep_freed_memory()  # as the server's process: no fresh pages a message
    _service = build(url, policies=None, registry=None).service


def _buf(seg: SharedMemory) -> memoryview:
    """The segment's bytes (``buf`` is None once the segment is closed: never while in use)."""
    buf = seg.buf
    if buf is None:
        raise StreamWorkerError(f"shared memory segment {seg.name} is closed")
    return buf


def _segment(name: str) -> SharedMemory:
    """The server's segment ``name``, attached once (the oldest attachment closed when more
    than a few are open: the server has replaced it)."""
    seg = _segments.get(name)
    if seg is None:
        seg = _segments[name] = SharedMemory(name=name)
        while len(_segments) > _KEEP_ATTACHED:
            _segments.popitem(last=False)[1].close()
    _segments.move_to_end(name)
    return seg


def _trial(name: str, size: int, version: int, limits: Limits) -> tuple[str, Any]:
    """One message in the worker, its ``size`` bytes at the start of the segment ``name``:
    ("shm", the answer's length, written at the start of the segment), ("ok", the answer's
    bytes when they do not fit) or ("error", the exception, or its text when it would not come
    back whole)."""
    from adapters.grpc import stream

    try:
        _service.policies(at_least=version)
        seg = _segment(name)
        with _buf(seg)[:size] as view:
            req = pb.SettleStreamRequest.FromString(view)  # a copy: the segment is free again
        out = stream.handle(_service, req, limits).SerializeToString()
        if len(out) > seg.size:
            return "ok", out
        _buf(seg)[: len(out)] = out
        return "shm", len(out)
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
        self._free: list[SharedMemory] = []  # segments no message is using
        self._all: list[SharedMemory] = []  # every segment this server has created
        self._lock = threading.Lock()

    def _take(self, size: int) -> SharedMemory:
        """A free segment of at least ``size`` bytes (a new one if none is large enough; a
        free one too small is replaced)."""
        with self._lock:
            for k, seg in enumerate(self._free):
                if seg.size >= size:
                    return self._free.pop(k)
            if self._free:
                self._drop(self._free.pop())
            seg = SharedMemory(create=True, size=max(size, MIN_SEGMENT))
            self._all.append(seg)
            return seg

    def _give(self, seg: SharedMemory) -> None:
        """``seg`` free again (from the event loop, or the pool's thread for a cancelled
        message)."""
        with self._lock:
            if seg in self._all:
                self._free.append(seg)

    def _drop(self, seg: SharedMemory) -> None:
        self._all.remove(seg)
        seg.close()
        seg.unlink()

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

    async def trial(self, raw: bytes, version: int, limits: Limits) -> bytes:
        """The answer's bytes (a serialized ``SettleStreamResponse``) to the TRIAL message
        ``raw`` (the bytes received), settled in the worker on tables of at least
        ``version``."""
        pool = self._executor()
        seg = self._take(len(raw))
        done: Future[tuple[str, Any]] | None = None
        try:
            _buf(seg)[: len(raw)] = raw
            done = pool.submit(_trial, seg.name, len(raw), version, limits)
            kind, got = await asyncio.wrap_future(done)
            if kind == "shm":
                return bytes(_buf(seg)[:got])
        except BrokenProcessPool as exc:
            codes = [p.exitcode for p in (getattr(pool, "_processes", None) or {}).values()]
            if self._pool is pool:
                self._pool = None  # the next message starts a new worker
            pool.shutdown(wait=False, cancel_futures=True)
            raise StreamWorkerError(
                f"the stream worker process died (exit codes {codes or 'unknown'}): "
                "this message was not settled"
            ) from exc
        finally:
            # free once the worker is done with it (a cancelled message's may still be read)
            if done is None or done.done():
                self._give(seg)
            else:
                done.add_done_callback(lambda _: self._give(seg))
        if kind == "ok":
            return got
        if isinstance(got, BaseException):
            raise got
        raise StreamWorkerError(f"the stream worker failed the message: {got}")

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        with self._lock:
            for seg in list(self._all):
                self._drop(seg)
            self._free.clear()
