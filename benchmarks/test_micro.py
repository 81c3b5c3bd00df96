"""Micro-benchmarks (pytest-benchmark): the numba kernel and the plain reference on a small batch,
and bill parsing. `make bench-micro`; not part of `make test` (pytest's testpaths is tests/).

    .venv/bin/pytest benchmarks/test_micro.py                          # a table of timings
    .venv/bin/pytest benchmarks/test_micro.py --benchmark-save=base    # keep them, then
    .venv/bin/pytest benchmarks/test_micro.py --benchmark-compare      # compare with the last

Each benchmark first checks its result, so a fast wrong answer does not pass for a speed-up.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from engine.batch import reference_batch, settle_batch
from engine.bill import Bill, parse_bill
from engine.policy.load import load_policies
from engine.policy.policyset import PolicySet

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = sorted((ROOT / "policies" / "samples").glob("*-[0-9].json"))
COPIES = 40  # 40 x the 17 sample bills, each copy its own person and household


def _raw_bills() -> list[dict[str, Any]]:
    docs = [json.loads(p.read_text(encoding="utf-8")) for p in SAMPLES]
    out = []
    for k in range(COPIES):
        for d in docs:
            d = json.loads(json.dumps(d))
            d["id"] = f"{d['id']}-{k}"
            d["person"]["id"] = f"{d['person']['id']}-{k}"
            d["person"]["household"] = f"{d['person']['household']}-{k}"
            out.append(d)
    return out


@pytest.fixture(scope="module")
def raw() -> list[dict[str, Any]]:
    return _raw_bills()


@pytest.fixture(scope="module")
def bills(raw: list[dict[str, Any]]) -> list[Bill]:
    return [parse_bill(d) for d in raw]


@pytest.fixture(scope="module")
def policies() -> PolicySet:
    return load_policies(ROOT / "policies")


def test_parse_bills(benchmark: Any, raw: list[dict[str, Any]]) -> None:
    parsed = benchmark(lambda: [parse_bill(d) for d in raw])
    assert len(parsed) == len(raw)


def test_kernel_small_batch(benchmark: Any, bills: list[Bill], policies: PolicySet) -> None:
    expected = reference_batch(bills, policies).settlements
    assert settle_batch(bills, policies).settlements == expected  # compiled, and right
    result = benchmark(settle_batch, bills, policies)
    assert len(result.settlements) == len(bills)


def test_reference_small_batch(benchmark: Any, bills: list[Bill], policies: PolicySet) -> None:
    result = benchmark(reference_batch, bills, policies)
    assert len(result.settlements) == len(bills)
