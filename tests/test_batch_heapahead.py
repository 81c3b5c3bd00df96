"""The heap a batch run will need, mapped ahead beside the plan (adapters/batch/heapahead.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from adapters.batch import heapahead as HA
from adapters.batch.memory import MARK, TUNABLES, glibc

ROOT = Path(__file__).resolve().parent.parent


def _files(tmp_path: Path, bills: int, items: int) -> tuple[str, str]:
    b, i = tmp_path / "bills.parquet", tmp_path / "items.parquet"
    pq.write_table(pa.table({"bill_id": [str(n) for n in range(bills)]}), b)
    pq.write_table(pa.table({"amount": pa.array([1] * items, pa.int64())}), i)
    return str(b), str(i)


def test_the_size_is_a_parts_items_under_the_batch_settings_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    b, i = _files(tmp_path, 100, 4_000_000)
    monkeypatch.delenv(MARK, raising=False)
    assert HA.size_for(b, i, 20) == 0  # not the batch process's settings
    monkeypatch.setenv(MARK, "1")
    monkeypatch.setenv("GLIBC_TUNABLES", ":".join(TUNABLES))
    assert HA.size_for(b, i, 20) == HA.BYTES_PER_ITEM * 800_000  # a fifth of the items
    assert HA.size_for(b, i, 1000) == HA.BYTES_PER_ITEM * 4_000_000  # one part
    assert HA.size_for(b, i, 10) == 0  # 400 k items a part: too small to be worth it
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.arena_max=1")
    assert HA.size_for(b, i, 20) == 0  # large blocks mmapped: nothing would stay mapped
    monkeypatch.setenv("GLIBC_TUNABLES", ":".join(TUNABLES))
    csv = tmp_path / "items.csv"
    csv.write_text("bill_id,amount\n1,1\n")
    assert HA.size_for(b, str(csv), 20) == 0


#: run with the batch tunables: map 64 MB ahead, then allocate and fill 48 MB (from the heap
#: mapped ahead) and print the resident growth and the faults the fill took
CHILD = """
import resource, sys
import numpy as np
from adapters.batch.heapahead import HeapAhead

def rss():
    return int(open("/proc/self/statm").read().split()[1]) * 4096

r0 = rss()
h = HeapAhead(64 << 20)
h.join()
grown = rss() - r0
f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
a = np.empty(48 << 20, dtype=np.uint8)
a.fill(7)
print(h.mapped >> 20, grown >> 20, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
"""


@pytest.mark.skipif(not glibc() or not sys.platform.startswith("linux"), reason="glibc, Linux")
def test_the_heap_is_mapped_ahead_and_then_used_without_faults() -> None:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), MARK: "1",
           "GLIBC_TUNABLES": ":".join(TUNABLES)}  # fmt: skip
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True,
                         text=True, check=True, timeout=60).stdout.split()  # fmt: skip
    mapped, grown, faults = map(int, out)
    assert mapped >= 63 and grown >= 60
    assert faults < 1000  # 48 MB of 4 kB pages would be ~12 k faults
