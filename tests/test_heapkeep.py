"""The serving process's heap thresholds (``adapters.grpc.heapkeep``): set on glibc, left to
glibc's defaults with ONESTOP_HEAP_KEEP=0. Each case runs in its own process (mallopt is for
the whole process)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

CODE = "from adapters.grpc.heapkeep import keep_freed_memory; print(keep_freed_memory())"


def _run(**env: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", CODE], env={**os.environ, **env}, capture_output=True, text=True,
        check=True,
    )  # fmt: skip
    return out.stdout.strip()


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or os.confstr("CS_GNU_LIBC_VERSION") is None,
    reason="glibc only",
)
def test_thresholds_set_on_glibc() -> None:
    assert _run() == "True"


def test_turned_off_by_the_environment() -> None:
    assert _run(ONESTOP_HEAP_KEEP="0") == "False"


#: three 6 MB blocks taken and freed ten times after three warm-ups: prints the page faults of
#: the ten (tests/test_stream_ab_heap.py runs it after stream_ab's worker preamble)
FAULTS = (
    "import resource, sys, numpy as np\n"
    "def once():\n"
    "    a = [np.ones(6 << 17) for _ in range(3)]  # three 6 MB blocks, freed together\n"
    "    del a\n"
    "for _ in range(3):\n"
    "    once()\n"
    "f = resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
    "for _ in range(10):\n"
    "    once()\n"
    "print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f)\n"
)
CHURN = "from adapters.grpc.heapkeep import keep_freed_memory\nkeep_freed_memory()\n" + FAULTS


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or os.confstr("CS_GNU_LIBC_VERSION") is None,
    reason="glibc only",
)
def test_large_blocks_freed_are_reused_without_new_faults() -> None:
    """Three 6 MB blocks taken and freed ten times: with the thresholds no page is faulted in
    again; with glibc's defaults (the heap's free top trimmed past twice the dynamic mmap
    threshold) ~1,000 a time (~10,000 in all)."""

    def faults(**env: str) -> int:
        out = subprocess.run([sys.executable, "-c", CHURN], env={**os.environ, **env},
                             capture_output=True, text=True, check=True)  # fmt: skip
        return int(out.stdout)

    assert faults() < 500
    assert faults(ONESTOP_HEAP_KEEP="0") > 2_000
