"""The serving process's heap thresholds (``adapters.grpc.heapkeep``): set on glibc, left to
glibc's defaults with ONESTOP_HEAP_KEEP=0. Each case runs in its own process (mallopt is for
the whole process)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

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


#: three 6 MB blocks taken and freed (and ``more()`` done) 3 times, then 10 times counting the
#: page faults
BLOCKS = (
    "import resource, sys, numpy as np\n"
    "def once():\n"
    "    a = [np.ones(6 << 17) for _ in range(3)]  # three 6 MB blocks, freed together\n"
    "    del a\n"
    "    more()\n"
    "for _ in range(3):\n"
    "    once()\n"
    "f = resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
    "for _ in range(10):\n"
    "    once()\n"
    "print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f)\n"
)
CHURN = (
    "from adapters.grpc.heapkeep import keep_freed_memory\nkeep_freed_memory()\ndef more(): pass\n"
) + BLOCKS


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


UPB_CHURN = (
    "import sys\n"
    "from google.protobuf.timestamp_pb2 import Timestamp\n"
    "from adapters.grpc import heapkeep, upbtrim\n"
    "if sys.argv[1] == 'trim':\n"
    "    upbtrim.skip = lambda: False  # the thresholds only: upb's malloc_trim stays\n"
    "print(heapkeep.keep_freed_memory(), upbtrim._SKIPPED == [True])\n"
    "def more():\n"
    "    for _ in range(10_000):  # as many upb arenas freed: one malloc_trim(0) with it\n"
    "        Timestamp.FromString(b'')\n"
) + BLOCKS


@pytest.mark.skipif(
    not sys.platform.startswith("linux")
    or os.confstr("CS_GNU_LIBC_VERSION") is None
    or platform.machine() not in ("x86_64", "aarch64"),
    reason="glibc on x86-64 or aarch64 only",
)
def test_upb_frees_hand_no_kept_memory_back() -> None:
    """protobuf's upb calls malloc_trim(0) every 10,000 frees of its arenas, which hands every
    free page back whatever the thresholds say: with the thresholds and upb's call pointed
    away (``upbtrim``), three 6 MB blocks taken and freed ten times among 100,000 upb frees
    fault no page in again; with upb's call left, ~15,000 (each trim: ~1,500)."""

    def run(how: str) -> tuple[str, int]:
        out = subprocess.run([sys.executable, "-c", UPB_CHURN, how], capture_output=True,
                             text=True, check=True).stdout.split("\n")  # fmt: skip
        return out[0], int(out[1])

    flags, faults = run("skip")
    assert flags == "True True" and faults < 500
    flags, faults = run("trim")
    assert flags == "True False" and faults > 2_000


def test_upb_slot_found_only_in_a_module_of_this_machine() -> None:
    """The ELF reader names no slot in what is not an ELF64 object of this machine, nor for a
    symbol the object does not import (then nothing is written)."""
    from adapters.grpc import upbtrim

    assert upbtrim._slot_and_size(b"\x7fELF" + bytes(60), b"malloc_trim") is None
    assert upbtrim._slot_and_size(b"not an object at all" * 4, b"malloc_trim") is None
    assert upbtrim._slot_and_size(Path(sys.executable).resolve().read_bytes(), b"no_such") is None
