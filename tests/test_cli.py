"""The onestop CLI as a user runs it: from a shell, on files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from adapters.cli.main import app

ROOT = Path(__file__).resolve().parent.parent
GOLD = ROOT / "tests" / "golden" / "yubei_2023_chain.yaml"


@pytest.fixture()
def case(tmp_path: Path) -> tuple[Path, Path]:
    doc = yaml.safe_load(GOLD.read_text(encoding="utf-8"))
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump(doc["policy"], allow_unicode=True), encoding="utf-8")
    bill = tmp_path / "bill.json"
    bill.write_text(json.dumps(doc["bills"][0], default=str), encoding="utf-8")
    return policy, bill


def test_settle_prints_the_slip_from_a_shell(case: tuple[Path, Path]) -> None:
    policy, bill = case
    r = subprocess.run(
        [sys.executable, "-m", "adapters.cli.main", "settle", str(bill), "--policy", str(policy)],
        capture_output=True, text=True, cwd=ROOT, env={"COLUMNS": "160", "PATH": ""},
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    for figure in ("34,790.00", "10,647.00", "937.80", "5,625.20"):
        assert figure in r.stdout
    assert "个人在窗口支付 5,625.20 元" in r.stdout
    assert "The patient pays 5,625.20 at the window" in r.stdout


def test_settle_json_and_accounts_chain(case: tuple[Path, Path], tmp_path: Path) -> None:
    policy, bill = case
    after = tmp_path / "after.json"
    runner = CliRunner()
    r = runner.invoke(app, ["settle", str(bill), "--policy", str(policy), "--json",
                            "--accounts-out", str(after)])  # fmt: skip
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["window_pay"] == 562520
    assert [la["pay"] for la in doc["layers"]] == [3479000, 1064700, 93780]
    assert doc["explanation"][0]["zh"].startswith("医疗费用总额")
    acc = json.loads(after.read_text())
    assert acc["persons"]["jiang"]["2023"]["admissions"] == 1
    assert acc["persons"]["jiang"]["2023"]["layers"]["basic"]["paid"] == 3479000
    # a second admission from the accounts after the first: the same figures (per-admission
    # deductibles, no caps), and admission no. 2
    data = json.loads(bill.read_text())
    data["id"] = "yubei-2"
    bill2 = tmp_path / "bill2.json"
    bill2.write_text(json.dumps(data))
    r = runner.invoke(app, ["settle", str(bill2), "--policy", str(policy), "--json",
                            "--accounts", str(after)])  # fmt: skip
    assert r.exit_code == 0, r.output
    doc2 = json.loads(r.stdout)
    assert doc2["admission_no"] == 2
    assert doc2["window_pay"] == 562520


def test_reference_engine_agrees(case: tuple[Path, Path]) -> None:
    policy, bill = case
    runner = CliRunner()
    outs = [
        json.loads(runner.invoke(app, ["settle", str(bill), "--policy", str(policy), "--json",
                                       "--engine", e]).stdout)
        for e in ("kernel", "reference")
    ]  # fmt: skip
    assert outs[0] == outs[1]


def test_bad_bill_is_refused_with_field_and_value(case: tuple[Path, Path], tmp_path: Path) -> None:
    policy, bill = case
    data = json.loads(bill.read_text())
    data["items"][0]["amount"] = -120
    data["hospital_level"] = "clinic"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    r = CliRunner().invoke(app, ["settle", str(bad), "--policy", str(policy)])
    assert r.exit_code == 1
    assert "items[0].amount: -120 is negative; amounts are non-negative fen" in r.output
    # the level is checked against the policy once the bill itself is well-formed
    data["items"][0]["amount"] = 120
    bad.write_text(json.dumps(data))
    r = CliRunner().invoke(app, ["settle", str(bad), "--policy", str(policy)])
    assert r.exit_code == 1
    assert "hospital_level: 'clinic' is not a level of policy 500112" in r.output


@pytest.mark.parametrize(("change", "said"), [
    ({"admission_date": "1552608000"}, "admission_date: '1552608000' is not a date; use YYYY-MM-DD"),
    ({"discharge_date": "2023-05-20T00:00:00"}, "discharge_date: '2023-05-20T00:00:00' is not a"),
    ({"admission_date": "1969-12-31"},
     "admission_date: 1969-12-31 is before the patient's birth_date 1970-01-01"),
    ({"person": {"id": "jiang", "birth_date": "1552608000", "household": "h"}},
     "person.birth_date: '1552608000' is not a date"),
    ({"items": [{"category": "a", "amount": 1}]},
     "items[0].category: 'a' is not a category; use A, B or C (NHSA 01, 02, 03)"),
    ({"items": [{"category": "甲", "amount": 1}]}, "items[0].category: '甲' is not a category"),
    ({"id": "yubei\u0000"}, "id: 'yubei\\x00' contains a control character"),
])  # fmt: skip
def test_loose_dates_and_categories_in_a_bill_file_are_refused(
    case: tuple[Path, Path], tmp_path: Path, change: dict, said: str
) -> None:
    policy, bill = case
    data = {**json.loads(bill.read_text()), **change}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    r = CliRunner().invoke(app, ["settle", str(bad), "--policy", str(policy)])
    assert r.exit_code == 1
    assert said in " ".join(r.output.split()), r.output


def test_bad_accounts_file_is_refused(case: tuple[Path, Path], tmp_path: Path) -> None:
    policy, bill = case
    acc = tmp_path / "acc.json"
    acc.write_text(
        json.dumps({"persons": {"jiang": {"2023": {"layers": {"basic": {"paid": -1}}}}}})
    )
    r = CliRunner().invoke(app, ["settle", str(bill), "--policy", str(policy), "--accounts",
                                 str(acc)])  # fmt: skip
    assert r.exit_code == 1
    assert "persons.jiang.2023.layers.basic.paid: -1 is not non-negative whole fen" in r.output


def test_accounts_of_an_unknown_layer_are_refused(case: tuple[Path, Path], tmp_path: Path) -> None:
    """A typo in a layer id must not start that layer from zero (the deductible already used
    would be charged again): refused, naming the file, the layer id and the known ones."""
    policy, bill = case
    acc = tmp_path / "acc.json"
    acc.write_text(
        json.dumps(
            {
                "persons": {
                    "jiang": {
                        "2023": {
                            "admissions": 1,
                            "layers": {
                                "basci": {
                                    "deductible_used": 60000,
                                    "eligible_cum": 0,
                                    "paid": 0,
                                    "selfpay_cum": 0,
                                }
                            },
                        }
                    }
                }
            }
        )
    )
    r = CliRunner().invoke(app, ["settle", str(bill), "--policy", str(policy), "--accounts",
                                 str(acc)])  # fmt: skip
    assert r.exit_code == 1, r.output
    said = " ".join(r.output.split())
    assert f"{acc}: persons.jiang.2023.layers.basci: 'basci' is not a layer" in said, said
    assert "(basic, major_assistance, tilted_assistance)" in said
    r = CliRunner().invoke(app, ["policy", "whatif", str(bill), "--base", str(policy),
                                 "--candidate", str(policy), "--accounts", str(acc)])  # fmt: skip
    assert r.exit_code == 1 and "'basci' is not a layer" in r.output


def test_the_readme_accounts_example_is_read_by_the_tables_in_force(tmp_path: Path) -> None:
    from adapters.cli.files import layer_ids, read_opening
    from engine.policy.load import load_policies

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    example = tmp_path / "accounts.json"
    example.write_text(
        text.split("### Accounts file (JSON)")[1].split("```json")[1].split("```")[0]
    )
    o = read_opening(example, layer_ids(load_policies(ROOT / "policies")))
    assert o.household[("H1", 2019)].layers["fangpinbao"].selfpay_cum == 120000


def test_policy_check_ok_and_refused(case: tuple[Path, Path], tmp_path: Path) -> None:
    policy, _ = case
    runner = CliRunner()
    r = runner.invoke(app, ["policy", "check", str(policy)])
    assert r.exit_code == 0, r.output
    assert "500112" in r.output
    text = policy.read_text().replace("ratio: 7000", "ratio: 17000", 1)
    broken = tmp_path / "broken.yaml"
    broken.write_text(text)
    r = runner.invoke(app, ["policy", "check", str(broken)])
    assert r.exit_code == 1
    assert "broken.yaml" in r.output and "17000" in r.output and "ratio" in r.output


def test_policy_whatif_shows_the_change_per_fund(case: tuple[Path, Path], tmp_path: Path) -> None:
    policy, bill = case
    cand = tmp_path / "candidate.yaml"
    # basic insurance 70% -> 75%: basic pays (50,000 - 300) x 75% = 37,275.00
    cand.write_text(policy.read_text().replace("ratio: 7000", "ratio: 7500", 1))
    r = CliRunner().invoke(
        app,
        ["policy", "whatif", str(bill), "--base", str(policy), "--candidate", str(cand)],
        env={"COLUMNS": "200"},
    )
    assert r.exit_code == 0, r.output
    assert "34,790.00" in r.output and "37,275.00" in r.output
    assert "1 bill(s) change" in r.output
    assert "yubei-1: window 5,625.20 -> 5,327.00" in r.output
