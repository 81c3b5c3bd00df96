"""``onestop test``: the case files bureaus write, run by the real CLI."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

import engine.cases
from adapters.cli.app import app
from adapters.cli.exitcodes import Exit
from engine.casefile import case_files, load_cases
from engine.policy.load import load_policies

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden"
DAXIN = GOLDEN / "daxin_2018_backstop.yaml"
CASES = ROOT / "policies" / "cases"
POLICIES = ROOT / "policies"


def shell(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "adapters.cli.main", "test", *args],
        capture_output=True, text=True, cwd=ROOT, env={"COLUMNS": "80", "PATH": ""},
    )  # fmt: skip


def cli(*args: str) -> Any:
    return CliRunner().invoke(app, ["test", *args])


def changed(tmp_path: Path, old: str, new: str, src: Path = DAXIN, name: str = "") -> Path:
    text = src.read_text(encoding="utf-8")
    assert old in text, old
    path = tmp_path / (name or src.name)
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def test_every_golden_and_sample_table_case_passes_from_a_shell() -> None:
    r = shell(str(GOLDEN), str(CASES), "--policy", str(POLICIES))
    assert r.returncode == 0, r.stdout + r.stderr
    n = len(load_cases(case_files([GOLDEN, CASES]), load_policies(POLICIES)))
    assert n >= 10
    assert r.stdout.count("\nPASS ") + r.stdout.startswith("PASS ") == n
    assert f"{n} case(s): {n} passed, 0 failed, 0 refused (engines: reference, kernel)" in r.stdout


def test_one_fen_changed_fails_with_exit_8_and_a_diff_naming_bill_field_expected_got(
    tmp_path: Path,
) -> None:
    bad = changed(tmp_path, "backstop: 53487}", "backstop: 53488}")
    r = shell(str(bad))
    assert r.returncode == Exit.CASES_FAILED == 8, r.stdout + r.stderr
    assert f"FAIL  {bad}:" in r.stdout
    line = next(x for x in r.stdout.splitlines() if "layers.backstop.pay" in x)
    assert line.strip() == (
        "bill daxin-1, layers.backstop.pay (line 43): expected 534.88 (53488 fen), "
        "got 534.87 (53487 fen), difference -0.01 (-1 fen) [reference, kernel]"
    )
    # the explanation line of that layer (engine/explain.py), under the difference
    after = r.stdout.split(line, 1)[1].splitlines()[1]
    assert after.strip().startswith("Government backstop (640100): of 1,069.73 left")
    assert "1 case(s): 0 passed, 1 failed, 0 refused" in r.stdout
    assert r.stderr == ""


MALFORMED = {
    "missing_bills": ("bills:", "bils:", ":30: bils: 'bils' is not a known field of a case"),
    "unknown_field": ("name: Daxin", "nam: Daxin", ":7: nam: 'nam' is not a known field"),
    "bad_amount": (
        "window_pay: 53486",
        "window_pay: 12 yuan",
        ":44: expect[0].window_pay: '12 yuan' is not yuan",
    ),
    "float_amount": (
        "window_pay: 53486",
        "window_pay: 534.86",
        ":44: expect[0].window_pay: 534.86 is a decimal number",
    ),
    "three_decimals": (
        "window_pay: 53486",
        'window_pay: "534.861"',
        ":44: expect[0].window_pay: '534.861' has more than two decimals",
    ),
    "unknown_layer": (
        "layers: {basic:",
        "layers: {basik:",
        ":43: expect[0].layers.basik: 'basik' is not a layer of the policy (backstop, basic)",
    ),
    "inline_policy": (
        "kind: backstop",
        "kind: backstep",
        ":26: policy.layers[1].kind: 'backstep': ",
    ),
    "refused_bill": (
        "hospital_level: county\n    admission",
        "hospital_level: city\n    admission",
        ":33: bills[0].hospital_level: 'city' is not",
    ),
}


@pytest.mark.parametrize("what", MALFORMED)
def test_a_malformed_case_file_is_one_line_naming_file_line_and_field(
    what: str, tmp_path: Path
) -> None:
    old, new, said = MALFORMED[what]
    bad = changed(tmp_path, old, new)
    r = cli(str(bad))
    assert r.exit_code == Exit.REFUSED, r.output
    lines = r.stderr.splitlines()
    assert lines[0].startswith(f"refused: {bad}{said}"), lines
    assert r.stdout == ""


def test_an_unknown_policy_path_names_the_file_looked_for(tmp_path: Path) -> None:
    text = DAXIN.read_text(encoding="utf-8")
    head, rest = text.split("policy:\n", 1)
    bad = tmp_path / "path.yaml"
    bad.write_text(head + "policy: ../nowhere/2018.yaml\n" + rest[rest.index("bills:") :])
    r = cli(str(bad))
    assert r.exit_code == Exit.REFUSED
    want = f"refused: {bad}:8: policy: '../nowhere/2018.yaml' names no file or folder (looked "
    assert r.stderr.splitlines() == [f"{want}for {tmp_path.parent / 'nowhere' / '2018.yaml'})"]


def test_malformed_files_from_a_shell_one_line_each_and_nothing_run(tmp_path: Path) -> None:
    bad = [changed(tmp_path, old, new, name=f"{w}.yaml") for w, (old, new, _) in MALFORMED.items()]
    r = shell(str(DAXIN), *map(str, bad))
    assert r.returncode == 1, r.stdout + r.stderr
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    for path, (_, _, said) in zip(bad, MALFORMED.values(), strict=True):
        mine = [x for x in lines if x.startswith(f"refused: {path}:")]
        assert mine and mine[0].startswith(f"refused: {path}{said}"), lines
    assert all(x.startswith("refused: ") for x in lines)


def test_a_case_without_policy_needs_policy(tmp_path: Path) -> None:
    r = cli(str(CASES / "weixian_2018.yaml"))
    assert r.exit_code == Exit.REFUSED
    assert "weixian_2018.yaml:6: policy: is missing" in r.stderr
    assert cli(str(CASES / "weixian_2018.yaml"), "--policy", str(POLICIES)).exit_code == 0


def _kernel_one_fen_off(monkeypatch: pytest.MonkeyPatch) -> None:
    real = engine.cases.settle_batch

    def off(*a: Any, **kw: Any) -> Any:
        res = real(*a, **kw)
        ss = [dataclasses.replace(s, window_pay=s.window_pay + 1) for s in res.settlements]
        return dataclasses.replace(res, settlements=ss)

    monkeypatch.setattr(engine.cases, "settle_batch", off)


def test_both_engines_must_agree_with_the_expectation(monkeypatch: pytest.MonkeyPatch) -> None:
    for mode in ("reference", "kernel", "both"):
        assert cli(str(DAXIN), "--engine", mode).exit_code == 0, mode
    _kernel_one_fen_off(monkeypatch)
    assert cli(str(DAXIN), "--engine", "reference").exit_code == 0
    for mode in ("kernel", "both"):
        r = cli(str(DAXIN), "--engine", mode)
        assert r.exit_code == Exit.CASES_FAILED, mode
        assert "bill daxin-1, window_pay (line 44): expected 534.86 (53486 fen), got 534.87 " in (
            r.stdout
        )
        assert "difference +0.01 (+1 fen) [kernel]" in r.stdout
    r = cli(str(DAXIN), "--json")
    case = json.loads(r.stdout)["cases"][0]
    # only the kernel's figure differs (net self-pay, and so conservation, are untouched)
    assert {(f["field"], tuple(f["engines"])) for f in case["failures"]} == {
        ("window_pay", ("kernel",)),
    }


def test_k_selects_cases_by_name() -> None:
    r = cli(str(GOLDEN), str(CASES), "--policy", str(POLICIES), "-k", "HONG'AN 2018")
    assert r.exit_code == 0, r.output
    assert r.stdout.count("PASS ") == 4 and "Daxin" not in r.stdout
    assert "4 case(s): 4 passed" in r.stdout
    r = cli(str(GOLDEN), "-k", "no such case")
    assert r.exit_code == Exit.NOT_FOUND
    assert r.stderr.strip() == "not found: no case name contains 'no such case'"


def test_json_shape_pass_and_fail(tmp_path: Path) -> None:
    r = cli(str(GOLDEN), "--json", "--engine", "kernel")
    doc = json.loads(r.stdout)
    assert r.exit_code == 0 and doc["exit_code"] == 0 and doc["problems"] == []
    assert doc["summary"] == {"cases": 5, "passed": 5, "failed": 0, "errors": 0}
    assert {c["status"] for c in doc["cases"]} == {"pass"}
    assert set(doc["cases"][0]) == {
        "file", "line", "name", "status", "engines", "failures", "problems",
    }  # fmt: skip
    bad = changed(tmp_path, "window_pay: 53486", 'window_pay: "534.80"')
    r = cli(str(bad), "--json")
    doc = json.loads(r.stdout)
    assert r.exit_code == doc["exit_code"] == 8
    assert doc["summary"] == {"cases": 1, "passed": 0, "failed": 1, "errors": 0}
    (f,) = doc["cases"][0]["failures"]
    assert f == {
        "bill": "daxin-1", "field": "window_pay", "line": 44, "kind": "money",
        "expected": 53480, "got": 53486, "difference": 6, "engines": ["reference", "kernel"],
        "explanation": [{
            "en": "Funds pay 4,813.78. The patient pays 534.86 at the window.",
            "zh": "各项基金合计支付 4,813.78 元。个人在窗口支付 534.86 元。",
        }],
    }  # fmt: skip
    bad = changed(tmp_path, "window_pay: 53486", 'window_pay: "534.861"', name="b.yaml")
    r = cli(str(bad), "--json")
    assert r.exit_code == 1
    (p,) = json.loads(r.stdout)["problems"]
    assert p["file"] == str(bad) and p["line"] == 44 and p["field"] == "expect[0].window_pay"


def test_several_cases_in_one_file_as_a_list_with_yuan_and_carried_accounts(
    tmp_path: Path,
) -> None:
    """A YAML list of cases; the second opens the critical illness deductible as used."""
    one = DAXIN.read_text(encoding="utf-8").split("name:", 1)[1]
    body = "\n".join("  " + x if x else x for x in ("name:" + one).splitlines())
    two = body.replace("name: Daxin 2018 backstop at 10 percent", "name: again")
    path = tmp_path / "list.yaml"
    path.write_text(f"-{body[1:]}\n-{two[1:]}\n", encoding="utf-8")
    r = cli(str(path))
    assert r.exit_code == 0, r.output
    assert "2 case(s): 2 passed" in r.stdout
    assert f"PASS  {path}:1  Daxin" in r.stdout


def test_expectations_per_fund_in_yuan_and_opening_accounts_carried(tmp_path: Path) -> None:
    """Opening accounts in yuan: the basic layer has 4,000 of its 5,000 annual cap paid."""
    text = DAXIN.read_text(encoding="utf-8")
    text = text.replace(
        "        - segments: [{ratio: 8000}]\n", "        - segments: [{ratio: 8000}]\n"
        "          annual_cap: 500000\n",
    ).replace(
        "bills:\n",
        "accounts:\n  persons:\n    huang:\n      2018:\n        admissions: 1\n"
        "        layers: {basic: {paid: '4000.00'}}\n"
        "bills:\n",
    )  # fmt: skip
    text = text[: text.index("expect:")] + (
        "expect:\n  admission_no: 2\n"
        "  funds: {'390100': '1000.00', '640100': '3813.78'}\n"
        "  layers: {basic: {pay: '1000.00', cap: annual_cap}}\n"
        "  net_selfpay: '534.86'\n"
    )
    path = tmp_path / "acc.yaml"
    path.write_text(text, encoding="utf-8")
    r = cli(str(path))
    assert r.exit_code == 0, r.output + r.stdout


def test_the_readme_example_case_passes(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    part = readme[readme.index("## Cases bureaus write") :]
    start = part.index("```yaml\n") + len("```yaml\n")
    path = tmp_path / "readme.yaml"
    path.write_text(part[start : part.index("```", start)], encoding="utf-8")
    r = cli(str(path), "--policy", str(POLICIES))
    assert r.exit_code == 0, r.output
    assert "1 case(s): 1 passed" in r.stdout


def test_a_cases_file_shares_one_policy_path_and_a_case_may_carry_its_own(
    tmp_path: Path,
) -> None:
    wx = yaml.safe_load((CASES / "weixian_2018.yaml").read_text(encoding="utf-8"))
    daxin = yaml.safe_load(DAXIN.read_text(encoding="utf-8"))
    (tmp_path / "sub").mkdir()
    path = tmp_path / "sub" / "shared.yaml"
    rel = Path(*[".."] * (len(path.parent.parts) - 1)) / POLICIES.relative_to("/") / "weixian"
    path.write_text(yaml.safe_dump({"policy": str(rel), "cases": [wx, daxin]}), encoding="utf-8")
    r = cli(str(path))
    assert r.exit_code == 0, r.output + r.stderr
    assert "2 case(s): 2 passed" in r.stdout


def test_invalid_yaml_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("name: x\nbills: [\n", encoding="utf-8")
    r = cli(str(path))
    assert r.exit_code == Exit.REFUSED
    (line,) = r.stderr.splitlines()
    assert line.startswith(f"refused: {path}:3: is not valid YAML: ")


ODD = {
    "huge_budget": (
        "bills:",
        "budgets: {'640100': 99999999999999999999}\nbills:",
        "budgets.640100",
    ),
    "accounts_year_not_a_mapping": (
        "bills:",
        "accounts: {persons: {huang: {2018: 5}}}\nbills:",
        "accounts.persons.huang.2018",
    ),
    "expect_not_a_mapping": (
        "expect:\n  - bill: daxin-1",
        "expect:\n  - 5\n  - bill: daxin-1",
        "expect[0]",
    ),
    "empty_policy": ("policy:\n", "policy: {}\nx:\n", "policy.region"),
}


@pytest.mark.parametrize("what", ODD)
def test_odd_case_files_are_refused_in_lines_never_a_traceback(what: str, tmp_path: Path) -> None:
    old, new, field = ODD[what]
    bad = changed(tmp_path, old, new)
    r = cli(str(bad))
    assert r.exit_code == Exit.REFUSED, r.output
    lines = r.stderr.splitlines()
    assert lines and all(x.startswith(f"refused: {bad}:") for x in lines), lines
    assert any(f": {field}: " in x for x in lines), lines
