"""The server's warm-up says when it had to compile a kernel variant instead of loading it from
numba's cache (``adapters.grpc.warmup.warm_up``): such a start takes seconds a variant and the
process runs the packed stream slower afterwards (benchmarks/README.md, branch numbacache)."""

from __future__ import annotations

import logging

import numba
import pytest

from adapters.bootstrap import build
from adapters.defaults import DEFAULT_POLICIES
from adapters.grpc import warmup
from engine.service.usecases import SettlementService


def _service() -> SettlementService:
    return build("sqlite://", DEFAULT_POLICIES, None).service


def test_a_cached_warm_up_warns_of_nothing(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="onestop.grpc"):
        assert warmup.warm_up(_service()) >= 1
    assert "compiled" not in caplog.text


def test_a_warm_up_that_compiles_says_so(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A helper whose variant is not in the cache (a function numba has never cached) is
    compiled in the warm-up: one variant, named in the warning with the command that fixes it."""
    fresh = numba.njit(lambda x: x + 1)  # no cache: compiled on its first call
    warm_dates = warmup.warm_iso_days
    monkeypatch.setattr(warmup, "warm_iso_days", lambda: (warm_dates(), fresh(1)))
    with caplog.at_level(logging.WARNING, logger="onestop.grpc"):
        warmup.warm_up(_service())
    assert "warm-up compiled 1 kernel variant(s)" in caplog.text
    assert "onestop warm --for server" in caplog.text
