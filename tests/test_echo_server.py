"""The benchmark's bare handlers (benchmarks/echo_server.py): Echo answers the bytes it got;
SleepN answers them after N ms in a thread pool (the wait alone, for issue 13's target 7). The
figures of benchmarks/README.md rest on them doing exactly that."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest

from benchmarks import echo_server


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(grpc.aio, "server", grpc.aio.server)  # install() wraps it: undone after
    echo_server.install()

    async def call(rpc: str, payload: bytes) -> tuple[bytes, float]:
        server = grpc.aio.server()
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
                stub = ch.unary_unary(echo_server.method(rpc))
                await stub(b"warm")
                t0 = time.perf_counter()
                got = await stub(payload)
                return got, time.perf_counter() - t0
        finally:
            await server.stop(None)

    return lambda rpc, payload: asyncio.run(call(rpc, payload))


def test_echo_answers_the_bytes(served) -> None:
    got, _ = served("Echo", b"\x00abc" * 1000)
    assert got == b"\x00abc" * 1000


@pytest.mark.parametrize("ms", echo_server.SLEEPS_MS)
def test_sleep_waits_then_answers_the_bytes(served, ms: int) -> None:
    got, took = served(f"Sleep{ms}", b"bill" * 500)
    assert got == b"bill" * 500
    assert took >= ms / 1000


def test_an_unlisted_sleep_is_not_served(served) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        served("Sleep7", b"x")
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
