"""``onestop batch`` runs with allocators that keep freed memory (adapters/batch/memory.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from adapters.batch.memory import MARK, TUNABLES, batch_env, glibc, in_force

ROOT = Path(__file__).resolve().parent.parent

needs_glibc = pytest.mark.skipif(not glibc(), reason="glibc's tunables only")


@needs_glibc
def test_the_environment_adds_the_tunables_and_keeps_the_users() -> None:
    env = batch_env({"PATH": "/bin"})
    assert env is not None
    assert env["GLIBC_TUNABLES"] == ":".join(TUNABLES)
    assert env["ARROW_DEFAULT_MEMORY_POOL"] == "system" and env[MARK] == "1"
    assert env["PATH"] == "/bin"
    mine = {"GLIBC_TUNABLES": "glibc.malloc.arena_max=4", "ARROW_DEFAULT_MEMORY_POOL": "jemalloc"}
    env = batch_env(mine)
    assert env is not None
    assert env["GLIBC_TUNABLES"].endswith(":glibc.malloc.arena_max=4")  # the later one wins
    assert env["ARROW_DEFAULT_MEMORY_POOL"] == "jemalloc"


def test_nothing_to_do_once_set_or_turned_off() -> None:
    assert batch_env({MARK: "1"}) is None
    assert batch_env({MARK: "0"}) is None


@needs_glibc
def test_the_settings_are_in_force_only_as_batch_env_sets_them_and_the_user_leaves_them() -> None:
    env = batch_env({"PATH": "/bin"})
    assert env is not None and in_force(env)
    assert not in_force({**env, MARK: "0"}) and not in_force({"PATH": "/bin"})
    mine = batch_env({"GLIBC_TUNABLES": "glibc.malloc.arena_max=4"})
    assert mine is not None and not in_force(mine)  # the user's later arena_max wins
    same = batch_env({"GLIBC_TUNABLES": "glibc.malloc.tcache_count=0"})
    assert same is not None and in_force(same)  # another tunable of the user's: ours stand
    for left_out in TUNABLES:
        kept = ":".join(t for t in TUNABLES if t != left_out)
        assert not in_force({MARK: "1", "GLIBC_TUNABLES": kept}), left_out


#: run as ``python -c CHILD batch``: run itself again as ``onestop batch`` does, then allocate
#: and free 80 MB arrays in a thread (as the batch's reader and writer threads do); print the
#: page faults that took, and Arrow's pool
CHILD = """
import resource, sys, threading
from adapters.batch.memory import reexec_keeping_memory
reexec_keeping_memory()
import numpy as np
import pyarrow as pa

def churn():
    for _ in range(12):
        a = np.ones(10_000_000)
        del a

churn()  # the heap grows once
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
t = threading.Thread(target=churn)
t.start()
t.join()
churn()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before, pa.default_memory_pool().backend_name)
"""


def _child(**env: str) -> tuple[int, str]:
    e = {k: v for k, v in os.environ.items() if k not in (MARK, "GLIBC_TUNABLES",
                                                          "ARROW_DEFAULT_MEMORY_POOL")}  # fmt: skip
    r = subprocess.run([sys.executable, "-c", CHILD, "batch"], capture_output=True, text=True,
                       cwd=ROOT, env={**e, "PYTHONPATH": str(ROOT), **env}, timeout=120)  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    faults, pool = r.stdout.split()
    return int(faults), pool


@needs_glibc
def test_freed_blocks_are_reused_without_faulting_again() -> None:
    """24 blocks of 80 MB, half of them in a thread: by default each is mapped afresh and
    faulted in (~20,000 faults of 4 KiB, fewer with huge pages); kept, they are not."""
    kept, pool = _child()
    assert pool == "system"
    default, default_pool = _child(**{MARK: "0"})
    assert default_pool != "system"
    assert kept * 4 < default, (kept, default)
