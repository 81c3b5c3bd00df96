"""stream_ab's in-process workers run with the server's heap thresholds (``WORKER_HEAP``), so
that an A/B compares the trees as a server runs them, not the heap state their start-up left
(a worker that compiled its kernels faulted 2.6x the pages a message of one that loaded them:
benchmarks/README.md, branch numbacache). Each case runs in its own process (mallopt is for the
whole process)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.stream_ab import WORKER_HEAP
from tests.test_heapkeep import FAULTS

ROOT = Path(__file__).resolve().parents[1]


def _run(**env: str) -> tuple[str, int]:
    """The worker's preamble, then the heap test's churn: (HEAP_KEPT, page faults)."""
    out = subprocess.run(
        [sys.executable, "-c", WORKER_HEAP + FAULTS + "print(HEAP_KEPT)\n"],
        env={**os.environ, "PYTHONPATH": str(ROOT), **env}, capture_output=True, text=True,
        check=True,
    )  # fmt: skip
    faults, kept = out.stdout.split()
    return kept, int(faults)


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or os.confstr("CS_GNU_LIBC_VERSION") is None,
    reason="glibc only",
)
def test_worker_keeps_the_heap_it_frees() -> None:
    """The worker's preamble sets the thresholds: freed blocks are reused, no page faulted in
    again; with glibc's defaults (ONESTOP_HEAP_KEEP=0) ~10,000."""
    kept, faults = _run()
    assert kept == "True"
    assert faults < 500
    kept, faults = _run(ONESTOP_HEAP_KEEP="0")
    assert kept == "False"
    assert faults > 2_000
