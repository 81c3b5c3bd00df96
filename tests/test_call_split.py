"""benchmarks/call_split.py's instrumentation: the PreSettle handler and the access line it
times answer exactly as before (results and errors pass through), and every call is counted
with its CPU time. The split in benchmarks/README.md rests on it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from adapters.auth.principals import LOCAL
from adapters.grpc import auth
from adapters.grpc import server as srv
from benchmarks import call_split


def test_the_timed_handler_and_access_line_pass_calls_through(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    logged: list[tuple[Any, ...]] = []

    async def handler(self: Any, request: bytes, context: Any) -> bytes:
        if request == b"bad":
            raise ValueError("refused")
        return b"answer to " + request

    monkeypatch.setattr(srv.SettlementServicer, "PreSettle", handler)
    monkeypatch.setattr(auth, "log_call", lambda *a: logged.append(a))
    sums = call_split._instrument()
    timed = srv.SettlementServicer.PreSettle
    assert timed is not handler
    assert asyncio.run(timed(None, b"bill", None)) == b"answer to bill"
    with pytest.raises(ValueError, match="refused"):
        asyncio.run(timed(None, b"bad", None))
    auth.log_call(LOCAL, "/m", None, 0.0)
    assert logged == [(LOCAL, "/m", None, 0.0)]
    assert sums["handler_n"] == 2 and sums["log_n"] == 1
    assert sums["handler_s"] >= 0.0 and sums["log_s"] >= 0.0
