"""The Hong'an 2018 example (adapters/examples/hongan2018.py): deterministic input files from a
seed, and a small run (2,000 people) through ``onestop batch`` and the service use cases on
SQLite that completes in seconds."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

from adapters.examples import hongan2018 as ex
from engine.policy.load import load_policies

ROOT = Path(__file__).resolve().parent.parent


def _digests(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir())}


def test_same_seed_same_files(tmp_path):
    a = ex.generate(tmp_path / "a", seed=7, people=500)
    ex.generate(tmp_path / "b", seed=7, people=500)
    ex.generate(tmp_path / "c", seed=8, people=500)
    assert _digests(tmp_path / "a") == _digests(tmp_path / "b")
    assert _digests(tmp_path / "a")["bills.csv"] != _digests(tmp_path / "c")["bills.csv"]
    persons = json.loads(a.registry.read_text(encoding="utf-8"))
    assert len(persons) == 500 and len({p["id"] for p in persons}) == 500
    assert all(p["township"] in ex.TOWNSHIPS and p["village"] for p in persons)
    assert all(any(t["tag"] == "registered_poor" for t in p["tags"]) for p in persons)
    # the batch order: household, discharge, admission, bill id
    with a.bills.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    keys = [
        (r["household_id"], r["discharge_date"], r["admission_date"], r["bill_id"]) for r in rows
    ]
    assert keys == sorted(keys) and rows
    assert all(r["region"] == ex.REGION for r in rows)


def test_registry_ages_are_the_backbone_range(tmp_path):
    from datetime import date

    from engine.bill import Person

    f = ex.generate(tmp_path, seed=1, people=300)
    for p in json.loads(f.registry.read_text(encoding="utf-8")):
        assert 18 <= Person.model_validate(p).age_on(date(2018, 1, 1)) <= 60


def test_small_run_completes_with_backbone_claims(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "adapters.cli.main", "example", "hongan-2018",
         "--out", str(tmp_path), "--people", "2000", "--seed", "2018", "--json"],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
        env={"PYTHONPATH": str(ROOT), "PATH": "", "COLUMNS": "120"},
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    b = doc["batch"]
    assert doc["people"] == 2000 and doc["bills"] > 0
    assert b["claims"] > 0 and b["paid"] > 0 and b["persons"] <= b["claims"]
    money = ex.money_in_for(2000)
    assert doc["money_in"] == money == 5398847  # 178,000,000 x 2,000 / 65,940, half-up
    assert b["loss_ratio_bp"] == ex.loss_ratio_bp(b["paid"], money)
    assert json.loads((tmp_path / "figures.json").read_text()) == doc
    summary = json.loads((tmp_path / "batch" / "summary.json").read_text())
    assert summary["counts"]["bills_settled"] == doc["bills"]
    # the service year: every bill settled, the claims the batch found filed, approved and
    # paid 3-7 days after discharge, the same fen as the batch
    v = doc["service"]
    assert v["settled"] == doc["bills"] and v["enrolled"] == 2000
    assert v["claims"] == v["paid_claims"] == b["claims"]
    assert v["paid"] == b["paid"] and v["money_in"] == money
    assert v["loss_ratio_bp"] == b["loss_ratio_bp"]
    d = v["days_to_payment"]
    assert d["count"] == b["claims"] and 3 <= d["min"] <= d["max"] <= 7
    fig = json.loads((tmp_path / "service" / "fund-figures.json").read_text())
    assert fig["fund_code"] == ex.BACKBONE_FUND and fig["budget_mode"] == "report"


def test_money_in_scales_with_the_registry():
    assert ex.money_in_for(ex.PEOPLE) == 178_000_000
    assert ex.money_in_for(65_940 * 2) == 356_000_000


def test_loss_ratio_rounds_half_up():
    assert ex.loss_ratio_bp(116_000_000, 178_000_000) == 6517  # 65.168...% -> 65.17%
    assert ex.loss_ratio_bp(1, 20000) == 1  # 0.5 bp -> 1
    assert ex.loss_ratio_bp(5, 0) is None


def test_example_policies_are_the_hongan_table():
    ps = load_policies(ex.POLICIES)
    assert {t.region.code for t in ps.tables} == {ex.REGION}
