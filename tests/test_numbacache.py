"""engine.numbacache: two processes compiling variants of one cached function at the same moment
keep every variant in numba's cache index, each naming its own machine code.

Without the lock numba's read-modify-write of the index loses entries: measured on this
machine, 20 signatures compiled by two processes at once kept 19 in one round of three (this
test, 12 signatures in one round, is cheap rather than sure to catch a lost lock).
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

from engine import warm as W

ROOT = Path(__file__).resolve().parents[1]

TINY = """
from numba import njit

@njit(cache=True)
def f(a, b):
    s = 0
    for i in range(a.shape[0]):
        s += a[i] * b
    return s
"""

COMMON = """
import sys, time
import numpy as np
DT = [np.int8, np.int16, np.int32, np.int64, np.uint16, np.float64]
SIGS = [(d, b) for d in DT for b in (3, 0.5)]
"""

COMPILE = (
    COMMON
    + """
from engine import numbacache
assert numbacache.install()
import tiny
part, start = int(sys.argv[1]), float(sys.argv[2])
while time.time() < start:
    time.sleep(0.002)
for d, b in SIGS[part::2]:
    tiny.f(np.arange(1, 4).astype(d), b)
"""
)

LOAD = (
    COMMON
    + """
import tiny
for d, b in SIGS:
    a = np.arange(1, 4).astype(d)
    got = tiny.f(a, b)
    assert got == 6 * b, (d, b, got)
assert not tiny.f.stats.cache_misses, tiny.f.stats.cache_misses
print(len(tiny.f.stats.cache_hits))
"""
)


def test_two_processes_compiling_at_once_keep_every_variant(tmp_path: Path) -> None:
    (tmp_path / "tiny.py").write_text(TINY)
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"), PYTHONDONTWRITEBYTECODE="1")
    env.pop("NUMBA_DISABLE_JIT", None)
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), str(ROOT)])
    start = time.time() + 3  # both processes imported numba by then: they race
    procs = [
        subprocess.Popen([sys.executable, "-c", COMPILE, str(k), str(start)], env=env)
        for k in (0, 1)
    ]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    (index,) = (tmp_path / "cache").glob("**/tiny.f-*.nbi")
    with index.open("rb") as f:
        pickle.load(f)  # numba's version
        _, overloads = pickle.loads(f.read())
    assert len(overloads) == 12 and len(set(overloads.values())) == 12
    # a third process loads all 12 from the cache (no compile) and each computes right
    r = subprocess.run([sys.executable, "-c", LOAD], env=env, capture_output=True,
                       text=True, timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == "12"


def test_install_is_in_place_once_the_kernel_is_imported() -> None:
    r = subprocess.run(
        [sys.executable, "-c", "import engine.kernel, engine.numbacache as n; print(n.installed())"],
        cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert r.stdout.strip() == "True", r.stderr[-2000:]


def test_warm_on_two_processes_lists_each_variant_once() -> None:
    """``onestop warm --jobs 2`` (the command make test runs, on every core): each variant of
    the use once, from whichever process did it (loaded here if the cache is warm already)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COV_", "COVERAGE_"))}
    env.pop("NUMBA_DISABLE_JIT", None)
    env["PYTHONPATH"] = str(ROOT)
    r = subprocess.run(
        [sys.executable, "-m", "adapters.cli.main", "warm", "--for", "settle", "--jobs", "2"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    lines = [line.split(":")[0] for line in r.stdout.splitlines()]
    done = sorted(w for w in lines if w.startswith("kernel variant"))
    assert done == ["kernel variant columns allocate", "kernel variant columns serial"], r.stdout
    # the compiled helpers, each once, in the processes beside the variants; no server's (--for
    # settle)
    helpers = sorted(w.removeprefix("compiled helper ") for w in lines if w not in done)
    assert helpers == sorted(fn.__name__ for fn, _ in W._helpers()), r.stdout
