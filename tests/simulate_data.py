"""Helpers of the simulate tests (no tests here): two counties' synthetic bills on the real
sample tables, and a Hong'an draft made from policies/hongan/2018.yaml (benchmarks/simulate_bench.py
makes the same for the benchmark)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from benchmarks import synth
from benchmarks.simulate_bench import HONGAN, county, hongan_draft

ROOT = Path(__file__).resolve().parent.parent
POLICIES = ROOT / "policies"
WEIXIAN = POLICIES / "weixian" / "2018.yaml"


def two_counties(out: Path, n_bills: int = 400, items: float = 8, seed: int = 3) -> list[str]:
    """Hong'an and Wei county bills of 2018 in one set of files (bills, items, persons)."""
    a = county(HONGAN, n_bills, items, seed, "ha-")
    b = county(WEIXIAN, n_bills // 2, items, seed + 1, "wx-")
    tables = tuple(
        pa.concat_tables([x, y], promote_options="permissive") for x, y in zip(a, b, strict=True)
    )
    return [str(p) for p in synth.write(out, tables)]


__all__ = ["POLICIES", "ROOT", "hongan_draft", "two_counties"]
