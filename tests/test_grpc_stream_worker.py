"""SettleStream with a stream worker (``Server(stream_worker=True)``: every other TRIAL packed
message settled in a second process): the answers those of the server's own process, in the
order of the messages; a refusal in the worker names the field; the worker settles on the
tables the server has in force; a killed worker fails the stream loudly, and the next stream
gets a new worker."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from multiprocessing.shared_memory import SharedMemory

import grpc
import pytest

from adapters.bootstrap import build
from adapters.grpc import convert as cv
from adapters.grpc import stream as st
from adapters.grpc import streamworker
from adapters.grpc.client import Client, pack_bills
from adapters.grpc.errors import bad_request
from adapters.grpc.gen.onestop.settlement.v1 import settlement_pb2 as pb
from adapters.grpc.limits import DEFAULT
from adapters.grpc.streamworker import StreamWorker
from adapters.grpc.testing import CHAIN, YUBEI, chain_bill, served

BILLS = [chain_bill(i, p, seed=33) for i in range(6) for p in ("wang", "wang-wife")]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory):
    url = f"sqlite:///{tmp_path_factory.mktemp('grpc-stream-worker') / 'onestop.db'}"
    with served(url, (YUBEI, CHAIN), stream_worker=True) as (app, server, client):
        yield app, server, client


def trial(bills: list[dict], le: bool = True) -> pb.SettleStreamRequest:
    packed = pack_bills(bills, raw=True, narrow=True)
    return pb.SettleStreamRequest(mode=pb.STREAM_MODE_TRIAL, packed=packed, packed_results_le=le)


def stream(c: Client, *reqs: pb.SettleStreamRequest) -> list[pb.SettleStreamResponse]:
    return list(c.settlement.SettleStream(iter(reqs), timeout=120))


def test_answers_are_the_servers_own_in_the_order_of_the_messages(env) -> None:
    app, server, c = env
    msgs = [trial(BILLS[i : i + 3 + i % 4], le=i % 3 > 0) for i in range(0, 10, 2)]
    got = stream(c, *msgs)
    assert server.stream_worker.pids()  # the second and fourth went to the worker
    want = [st.handle(app.service, m) for m in msgs]
    assert [g.SerializeToString() for g in got] == [w.SerializeToString() for w in want]
    assert len({g.n_bills for g in got}) > 1  # distinct answers: their order is checked


def test_messages_and_answers_cross_in_shared_memory_and_the_segments_are_removed(
    env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The message's bytes go to the worker in a segment, the answer's bytes come back in it
    when they fit (else through the pipe); a segment too small for the next message is
    replaced, a large enough one reused; ``close`` removes every segment."""
    app, _, _ = env
    monkeypatch.setattr(streamworker, "MIN_SEGMENT", 1)  # segments of the message's own size
    listed = pb.SettleStreamRequest(
        mode=pb.STREAM_MODE_TRIAL,
        bills=pb.BillList(bills=[pb.SettleRequest(bill=cv.bill_to_pb(BILLS[0]))]),
    )
    msgs = [listed, trial(BILLS[:2]), trial(BILLS[:8], le=False), trial(BILLS[:2])]
    raws = [m.SerializeToString() for m in msgs]
    want = [st.handle(app.service, m).SerializeToString() for m in msgs]
    assert len(want[0]) > len(raws[0])  # the first answer does not fit: the pipe
    assert all(len(w) < len(r) for w, r in zip(want[1:], raws[1:], strict=True))
    w = StreamWorker(app.url)
    version = app.service.policies_version()
    segments: list[list[str]] = []

    async def send() -> list[bytes]:
        out = []
        for raw in raws:
            out.append(await w.trial(raw, version, DEFAULT))
            segments.append([s.name for s in w._all])
        return out

    try:
        got = asyncio.run(send())
    finally:
        w.close()
    assert got == want
    assert [len(names) for names in segments] == [1, 1, 1, 1]  # one message at a time
    assert len({names[0] for names in segments}) == 3  # grown twice, then reused
    for name in {n for names in segments for n in names}:
        with pytest.raises(FileNotFoundError):
            SharedMemory(name=name)


def test_a_refusal_in_the_worker_names_the_field(env) -> None:
    _, server, c = env
    bad = [dict(BILLS[0], items=[dict(BILLS[0]["items"][0], amount=-5)])]
    with pytest.raises(grpc.RpcError) as e:
        stream(c, trial(BILLS[:2]), trial(bad))  # the second message: the worker's
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in bad_request(e.value)] == ["items[0].amount"]
    assert server.stream_worker.pids()


def test_a_killed_worker_fails_the_stream_and_the_next_gets_a_new_one(
    env, caplog: pytest.LogCaptureFixture
) -> None:
    _, server, c = env
    stream(c, trial(BILLS[:2]), trial(BILLS[2:4]))
    (pid,) = server.stream_worker.pids()
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the pool notices the death on its own
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    with pytest.raises(grpc.RpcError) as e:
        stream(c, trial(BILLS[:2]), trial(BILLS[2:4]), trial(BILLS[4:6]))
    assert e.value.code() == grpc.StatusCode.INTERNAL  # a server error, with its incident id
    assert "incident" in (e.value.details() or "") and "StreamWorkerError" in caplog.text
    got = stream(c, trial(BILLS[:2]), trial(BILLS[2:4]))
    assert [g.n_bills for g in got] == [2, 2]
    assert server.stream_worker.pids() and server.stream_worker.pids() != [pid]


def test_the_worker_reads_tables_at_least_as_new_as_the_servers(tmp_path) -> None:
    """The version a message carries makes the worker's service re-read the tables at once
    (not after its POLICY_RECHECK seconds)."""
    url = f"sqlite:///{tmp_path / 'onestop.db'}"
    server, worker = build(url, None, None).service, build(url, None, None).service
    worker.POLICY_RECHECK = 3600.0
    server.put_policy(YUBEI, "yubei.yaml")
    assert len(worker.policies().tables) == 1
    server.put_policy(CHAIN, "chain.yaml")
    assert len(worker.policies().tables) == 1  # cached: another process's version not seen
    assert len(worker.policies(at_least=server.policies_version()).tables) == 2


def test_a_stream_worker_needs_a_shared_store() -> None:
    with pytest.raises(ValueError, match="memory://"):
        StreamWorker("memory://")


def test_a_closed_segment_is_refused_naming_it() -> None:
    """SharedMemory.buf is None once closed: _buf names the segment instead of a TypeError."""
    seg = SharedMemory(create=True, size=16)
    try:
        streamworker._buf(seg)[:3] = b"abc"
        assert bytes(streamworker._buf(seg)[:3]) == b"abc"
        seg.close()
        with pytest.raises(streamworker.StreamWorkerError, match=f"segment {seg.name} is closed"):
            streamworker._buf(seg)
    finally:
        seg.unlink()
