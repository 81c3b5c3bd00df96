"""Every table in policies/ says where each of its numbers comes from.

For each variant of each layer, every parameter it sets (deductible, segments, admission_cap,
annual_cap, max_share, annual_ceiling, threshold) is cited in the variant's ``source`` or the
layer's ``source``, and every cited key is declared in the table's ``sources`` (an address and
a short description) or ``assumptions`` (starting with "ASSUMPTION:").
"""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.policy.load import load_table, policy_files
from engine.policy.model import PolicyTable

POLICIES = Path(__file__).resolve().parent.parent / "policies"
PARAMS = (
    "deductible",
    "segments",
    "admission_cap",
    "annual_cap",
    "max_share",
    "annual_ceiling",
    "threshold",
)
FILES = policy_files(POLICIES)


def _keys(value: str | tuple[str, ...]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


def uncited(table: PolicyTable) -> list[str]:
    """'layer[variant].param' for every parameter set without a source."""
    missing = []
    for layer in table.layers:
        for j, v in enumerate(layer.variants):
            for param in PARAMS:
                if getattr(v, param) is None:
                    continue
                cited = v.source.get(param) or layer.source.get(param)
                if not cited:
                    missing.append(f"{layer.id}.variants[{j}].{param}")
    return missing


def unknown_keys(table: PolicyTable) -> list[str]:
    declared = set(table.sources) | set(table.assumptions)
    refs = [table.source]
    for layer in table.layers:
        refs.append(layer.source)
        refs += [v.source for v in layer.variants]
    return sorted({k for src in refs for keys in src.values() for k in _keys(keys)} - declared)


def test_there_are_sample_tables():
    regions = {load_table(f).region.code for f in FILES}
    assert {"451423", "421122", "520330"} <= regions


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(POLICIES)))
def test_every_parameter_is_cited(path):
    table = load_table(path)
    assert uncited(table) == [], f"{path}: parameters without a source"


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(POLICIES)))
def test_every_cited_key_is_declared_and_described(path):
    table = load_table(path)
    assert unknown_keys(table) == []
    for key, text in table.sources.items():
        assert "http" in text or "policy-sources.md" in text, f"{key}: no address"
        assert len(text.split()) >= 4, f"{key}: no description"
    for key, text in table.assumptions.items():
        assert text.startswith("ASSUMPTION:"), f"{key}: assumptions start with 'ASSUMPTION:'"


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(POLICIES)))
def test_every_declared_key_is_used(path):
    """No stale source: each declared key is cited somewhere in the table."""
    table = load_table(path)
    used = {k for src in _all_sources(table) for keys in src.values() for k in _keys(keys)}
    assert sorted((set(table.sources) | set(table.assumptions)) - used) == []


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(POLICIES)))
def test_layers_have_bilingual_names(path):
    table = load_table(path)
    for layer in table.layers:
        assert layer.name and layer.name_zh, layer.id


def test_uncited_parameter_is_found(tmp_path):
    """The walk itself: a variant with an uncited cap is reported."""
    text = """
region: {code: "000001", name: t}
effective_from: 2020-01-01
hospital_levels: [county]
b_selfpay_ratio: 1000
sources: {s: "http://example.org - a source"}
layers:
  - id: basic
    name: Basic
    fund_code: "390100"
    kind: reimburse
    source: {segments: s}
    variants:
      - segments: [{ratio: 7000}]
        annual_cap: 100
"""
    f = tmp_path / "t.yaml"
    f.write_text(text, encoding="utf-8")
    assert uncited(load_table(f)) == ["basic.variants[0].annual_cap"]


def _all_sources(table: PolicyTable) -> list[dict]:
    out = [table.source]
    for layer in table.layers:
        out.append(layer.source)
        out += [v.source for v in layer.variants]
    return out
