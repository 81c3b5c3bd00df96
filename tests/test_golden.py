"""The worked examples of domain.md section 8, settled by the reference and by the kernel."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.batch import reference_batch, settle_batch
from tests.golden_cases import golden_files, load_case

FILES = golden_files()


def test_all_five_worked_examples_are_present() -> None:
    assert len(FILES) >= 5


@pytest.mark.parametrize("engine", ["reference", "kernel"])
@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_golden(path: Path, engine: str) -> None:
    policies, bills, expect = load_case(path)
    run = reference_batch if engine == "reference" else settle_batch
    by_id = {s.bill_id: s for s in run(bills, policies).settlements}
    for e in expect:
        s = by_id[e["bill"]]
        s.check_conservation()
        for field in ("total", "in_scope", "pre_selfpay", "over_limit", "out_of_catalogue"):
            if field in e:
                assert getattr(s.buckets, field) == e[field], field
        layers = {r.layer_id: r for r in s.layers}
        for lid, pay in e.get("layers", {}).items():
            assert layers[lid].pay == pay, f"{lid} pay"
        for lid, ded in e.get("deductible", {}).items():
            assert layers[lid].deductible == ded, f"{lid} deductible"
        for lid, cap in e.get("caps", {}).items():
            assert layers[lid].cap == cap, f"{lid} cap"
        for lid, relief in e.get("relief", {}).items():
            assert layers[lid].relief == relief, f"{lid} relief"
        if "alerts" in e:
            assert len(s.alerts) == e["alerts"]
        assert s.window_pay == e["window_pay"]
        assert s.net_selfpay == e["net_selfpay"]
