"""The onestop CLI as a user runs it: from a shell, on files."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from adapters.cli.app import app
from engine.money import yuan
from tests.inprocess import onestop_in_process as here

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
    [doc] = json.loads(r.stdout)  # always a list, one settlement per bill
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
    [doc2] = json.loads(r.stdout)
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


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b'{"persons": 5}', "persons: 5 is not a mapping by id"),
        (b'{"persons": {"P1": 5}}', "persons.P1: 5 is not a mapping by year"),
        (b'{"households": {"H1": ["2019"]}}', "households.H1: ['2019'] is not a mapping by year"),
        (b"\xff\xfe{}", "is not UTF-8 text (byte 0): JSON files are UTF-8"),
    ],
    ids=["persons-not-mapping", "years-not-mapping", "household-list", "not-utf8"],
)
def test_a_malformed_accounts_or_bill_file_is_refused_not_a_traceback(
    tmp_path: Path, content: bytes, words: str
) -> None:
    """An accounts file whose persons or years are not mappings, and a file that is not UTF-8
    (as --accounts or as a bill), had raised AttributeError / UnicodeDecodeError out of
    ``onestop settle``: now refused (exit 1), naming the file and the place."""
    bad = tmp_path / "opening.json"
    bad.write_bytes(content)
    sample = str(ROOT / "policies" / "samples" / "longzhou-1.json")
    runs = [here("settle", sample, "--accounts", str(bad), columns=160)]
    if content.startswith(b"\xff"):
        runs.append(here("settle", str(bad), columns=160))
    for r in runs:
        assert r.returncode == 1, (r.stdout, r.stderr)
        assert "Traceback" not in r.stderr and r.stdout == ""
        (line,) = r.stderr.splitlines()
        assert line.startswith(f"refused: {bad}: ") and words in line, line


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


def test_policy_check_reads_the_fund_declarations(tmp_path: Path) -> None:
    """A folder's funds.yaml is checked as the server and onestop batch load it (a bad one
    refuses their start), and a funds.yaml named directly is read as fund declarations, not
    as a table: ``policy check`` had said "OK" of a folder whose funds.yaml the server
    refused, and read a funds.yaml given by name as a broken table (region, layers missing)."""
    folder = tmp_path / "longzhou"
    shutil.copytree(ROOT / "policies" / "longzhou", folder)
    r = CliRunner().invoke(app, ["policy", "check", str(folder)])
    assert r.exit_code == 0, r.output
    assert f"funds OK: {folder / 'funds.yaml'} (451423 999997)" in r.output
    r = CliRunner().invoke(app, ["policy", "check", str(folder / "funds.yaml")])
    assert r.exit_code == 0, r.output
    assert "policy table(s)" not in r.output and "funds OK:" in r.output
    funds = folder / "funds.yaml"
    funds.write_text(funds.read_text().replace("budget_mode: report", "budget_mode: hardish"))
    for path in (folder, funds):
        r = CliRunner().invoke(app, ["policy", "check", str(path)])
        assert r.exit_code == 1, r.output
        assert f"{funds}:29: funds[0].years[2019].budget_mode: 'hardish'" in r.output
        assert "layers" not in r.output and "OK" not in r.output


def test_a_table_or_funds_file_not_in_utf8_is_a_problem_not_a_traceback(tmp_path: Path) -> None:
    """A table or funds.yaml saved in GBK (the Chinese names) had raised UnicodeDecodeError out
    of every loader (policy check, settle, serve, batch): one problem naming the file now."""
    folder = tmp_path / "longzhou"
    shutil.copytree(ROOT / "policies" / "longzhou", folder)
    for name in ("2019.yaml", "funds.yaml"):
        f = folder / name
        f.write_bytes(f.read_text(encoding="utf-8").encode("gbk"))
        r = CliRunner().invoke(app, ["policy", "check", str(folder)])
        assert r.exit_code == 1, r.output
        assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
        assert f"policy refused: {f}: is not UTF-8 text (byte " in r.output
        assert "save it as UTF-8" in r.output
        f.write_text((ROOT / "policies" / "longzhou" / name).read_text(encoding="utf-8"))


def test_policy_that_is_not_yaml_is_one_line_a_problem(tmp_path: Path) -> None:
    """PyYAML's reason ran over four lines (each naming the file again); a problem is one
    line: the file and line, the reason with its column, where the construct began."""
    broken = tmp_path / "broken.yaml"
    broken.write_text("region: {code: '1', name: x}\nhospital_levels: [[county\ntags: []\n")
    r = CliRunner().invoke(app, ["policy", "check", str(broken)])
    assert r.exit_code == 1
    assert r.output.splitlines() == [
        f"policy refused: {broken}:3: is not valid YAML: did not find expected ',' or ']' "
        "(column 5), while parsing a flow sequence from line 2, column 19",
    ]


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
    # the change in percent is signed as the change in yuan beside it (and as report.html)
    basic = [x for x in r.output.splitlines() if "│ basic " in x]
    assert basic and all("+2,485.00" in x and "+7.14%" in x for x in basic), r.output


# --- issue 9: what people read is right, whole and conventional ---------------------------

SAMPLES = ROOT / "policies" / "samples"


def shell(*args: str, columns: int = 40) -> subprocess.CompletedProcess[str]:
    """The CLI from a shell, its output captured (not a terminal), on a narrow COLUMNS: one run
    a command (settle, policy check, policy whatif, a help) where the process is the point
    (not a terminal); the tests of words and figures run it in process (``here``)."""
    return subprocess.run(
        [sys.executable, "-m", "adapters.cli.main", *args],
        capture_output=True, text=True, cwd=ROOT,
        env={"COLUMNS": str(columns), "PATH": "", "PYTHONPATH": str(ROOT)},
    )  # fmt: skip


def test_each_slip_shows_the_accounts_after_its_own_bill(tmp_path: Path) -> None:
    after = tmp_path / "after.json"
    r = here("settle", str(SAMPLES / "longzhou-1.json"), str(SAMPLES / "longzhou-2.json"),
              "--policy", str(ROOT / "policies"), "--accounts-out", str(after))  # fmt: skip
    assert r.returncode == 0, r.stderr
    first, second = r.stdout.split("Settlement slip")[1:]
    # bill 1 paid 6,261.60 from basic insurance: its slip's accounts say so, admission 1
    acc1 = first.split("Year-to-date accounts")[1]
    assert "6,261.60" in acc1 and "25,504.85" not in acc1
    assert "admissions this year: 1" in acc1
    acc2 = second.split("Year-to-date accounts")[1]
    assert "25,504.85" in acc2 and "admissions this year: 2" in acc2
    # the last slip's accounts are the closing accounts the engine wrote
    closing = json.loads(after.read_text())["persons"]["lz-p1"]["2019"]
    assert closing["layers"]["basic"]["paid"] == 2550485 and closing["admissions"] == 2


def test_output_not_a_terminal_is_whole_at_40_columns(case: tuple[Path, Path], tmp_path: Path):
    policy, bill = case
    r = shell("settle", str(bill), "--policy", str(policy))
    assert r.returncode == 0, r.stderr
    assert "…" not in r.stdout
    for figure in ("34,790.00", "10,647.00", "937.80", "5,625.20", "admission no. 1"):
        assert figure in r.stdout
    # the title and every explanation are whole lines, never wrapped mid-sentence
    assert "· bill yubei-1 · person jiang · 2023-" in r.stdout
    lines = r.stdout.splitlines()
    assert "  Funds pay 46,374.80. The patient pays 5,625.20 at the window." in lines
    assert "  各项基金合计支付 46,374.80 元。个人在窗口支付 5,625.20 元。" in lines
    # policy check: names, ranges and paths whole
    r = shell("policy", "check", str(policy))
    assert r.returncode == 0 and "…" not in r.stdout
    assert f"files: {policy}" in r.stdout
    # what-if: every figure whole
    cand = tmp_path / "candidate.yaml"
    cand.write_text(policy.read_text().replace("ratio: 7000", "ratio: 7500", 1))
    r = shell("policy", "whatif", str(bill), "--base", str(policy), "--candidate", str(cand))
    assert r.returncode == 0, r.stderr
    assert "…" not in r.stdout
    for figure in ("34,790.00", "37,275.00", "2,485.00", "yubei-1: window 5,625.20 -> 5,327.00"):
        assert figure in r.stdout


def test_whatif_json(case: tuple[Path, Path], tmp_path: Path) -> None:
    policy, bill = case
    cand = tmp_path / "candidate.yaml"
    cand.write_text(policy.read_text().replace("ratio: 7000", "ratio: 7500", 1))
    r = here("policy", "whatif", str(bill), "--base", str(policy), "--candidate", str(cand),
              "--json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    # the figures of onestop simulate (adapters/simulate/FIGURES.md)
    assert d["schema"] == "onestop.simulate/1" and d["inputs"]["bills"] == 1
    assert d["totals"]["base"]["window_pay"] == 562520
    assert d["totals"]["candidate"]["window_pay"] == 532700
    [basic] = [f for f in d["funds"] if f["layer_id"] == "basic"]
    assert basic["base"] == {"bills": 1, "persons": 1, "pay": 3479000}
    assert basic["candidate"]["pay"] == 3727500 and basic["change"] == 248500
    assert d["patients"]["less"] == {"bills": 1, "persons": 1, "sum": -29820}
    [ch] = d["changed"]["sample"]
    assert ch["bill_id"] == "yubei-1" and ch["change"] == -29820
    assert any("pays more" in x for x in ch["reasons"])


def test_whatif_refusal_says_base_or_candidate(case: tuple[Path, Path], tmp_path: Path) -> None:
    policy, bill = case
    broken = tmp_path / "broken.yaml"
    broken.write_text(policy.read_text().replace("ratio: 7000", "ratio: 17000", 1))
    r = here("policy", "whatif", str(bill), "--base", str(policy), "--candidate", str(broken))
    assert r.returncode == 1 and "candidate tables" in r.stderr and "base tables" not in r.stderr
    r = here("policy", "whatif", str(bill), "--base", str(broken), "--candidate", str(policy))
    assert r.returncode == 1 and "base tables" in r.stderr and "candidate tables" not in r.stderr


def test_slip_shows_window_and_after_discharge_funds_apart(
    case: tuple[Path, Path], tmp_path: Path
) -> None:
    policy, bill = case
    doc = yaml.safe_load(policy.read_text())
    # tilted assistance pays the patient after discharge (a claim), not at the window
    for la in doc["layers"]:
        if la["id"] == "tilted_assistance":
            la["settle_at"] = "after_discharge"
    later = tmp_path / "later.yaml"
    later.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    r = here("settle", str(bill), "--policy", str(later), "--json")
    assert r.returncode == 0, r.stderr
    [s] = json.loads(r.stdout)
    after = sum(la["pay"] for la in s["layers"] if la["settle_at"] == "after_discharge")
    window = sum(la["pay"] for la in s["layers"] if la["settle_at"] == "window")
    assert after > 0 and s["buckets"]["total"] - window == s["window_pay"]
    r = here("settle", str(bill), "--policy", str(later))
    line = {x.split("│")[1].strip(): x for x in r.stdout.splitlines() if x.count("│") > 2}
    assert yuan(window) in line["funds at the window 窗口基金支付"]
    assert yuan(after) in line["funds after discharge 出院后基金支付"]
    assert yuan(window + after) in line["funds in all 基金合计"]


def test_settle_json_is_always_a_list(case: tuple[Path, Path]) -> None:
    policy, bill = case
    one = here("settle", str(bill), "--policy", str(policy), "--json")
    assert one.returncode == 0, one.stderr
    assert isinstance(json.loads(one.stdout), list) and len(json.loads(one.stdout)) == 1
    two = here("settle", str(SAMPLES / "longzhou-1.json"), str(SAMPLES / "longzhou-2.json"),
                "--policy", str(ROOT / "policies"), "--json")  # fmt: skip
    docs = json.loads(two.stdout)
    assert [d["bill_id"] for d in docs] == ["longzhou-1", "longzhou-2"]
    assert all(d["explanation"] for d in docs)


def test_no_empty_tables_and_no_household_admissions(case: tuple[Path, Path]) -> None:
    import io

    from adapters.cli.output import console
    from adapters.cli.slip import print_accounts
    from engine.accounts import LayerAccount, YearAccounts

    con = console()
    con.file = io.StringIO()
    print_accounts(con, 2019, "p1", YearAccounts(), "h1", YearAccounts())
    said = con.file.getvalue()
    assert said.strip() == "person p1: no accounts yet for 2019"
    con.file = io.StringIO()
    acc = YearAccounts({"critical": LayerAccount(deductible_used=100)}, 0)
    print_accounts(con, 2019, "p1", YearAccounts(), "h1", acc)
    said = con.file.getvalue()
    assert "Household h1 2019" in said and "admissions" not in said


def test_the_default_year_is_the_year_in_shanghai() -> None:
    from datetime import UTC, datetime

    from engine.reconcile import local_date

    # 1 January 2024, 03:00 in Beijing is still 31 December 2023 in UTC
    assert local_date(datetime(2023, 12, 31, 19, 0, tzinfo=UTC)).year == 2024


def test_help_is_conventional() -> None:
    r = shell("settle", "--help", columns=120)
    assert r.returncode == 0
    assert "{bills}" not in r.stdout and "list[Path]" not in r.stdout and "<bool>" not in r.stdout
    assert "BILL.json..." in r.stdout and "(default: policies/)" in r.stdout
    assert "auto|kernel|reference" in r.stdout and "ONESTOP_ENGINE" in r.stdout
    assert "Exit codes" in r.stdout and "3  not found" in r.stdout
    r = here("policy", "whatif", "--help", columns=120)
    assert "(default: policies/)" in r.stdout and "list[Path]" not in r.stdout
    r = shell("batch", "--help", columns=120)  # never in process: main re-executes for batch
    assert r.returncode == 0 and "list[" not in r.stdout and "{" not in r.stdout, r.stdout
    for cmd in (["bureau", "put-policy"], ["window", "settle"]):
        r = here(*cmd, "--help", columns=120)
        assert r.returncode == 0 and "list[" not in r.stdout and "{" not in r.stdout, r.stdout
    r = here("settle", "x.json", "--engine", "fast")
    said = " ".join(r.stderr.replace("│", " ").split())
    assert r.returncode == 2 and "'fast' is not one of 'auto', 'kernel', 'reference'" in said


def test_refusals_are_not_markup(case: tuple[Path, Path], tmp_path: Path) -> None:
    policy, bill = case
    data = json.loads(bill.read_text())
    data["items"][0]["amount"] = -120
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    r = here("settle", str(bad), "--policy", str(policy))
    # one problem: one line, the label and the problem (several: a line counting them first)
    assert r.returncode == 1
    assert (
        r.stderr
        == f"refused: {bad}: items[0].amount: -120 is negative; amounts are non-negative fen\n"
    )
    assert "[red]" not in r.stderr and "[/" not in r.stderr
    data["items"][1]["amount"] = -7
    bad.write_text(json.dumps(data))
    r = here("settle", str(bad), "--policy", str(policy))
    assert r.returncode == 1 and r.stderr.splitlines() == [
        "refused: 2 problem(s)",
        f"  {bad}: items[0].amount: -120 is negative; amounts are non-negative fen",
        f"  {bad}: items[1].amount: -7 is negative; amounts are non-negative fen",
    ]


def test_text_is_printed_as_written_not_as_emoji_codes(capsys: pytest.CaptureFixture[str]) -> None:
    """A header or a line with ``:name:`` (an emoji code to rich) prints as it is written."""
    from adapters.cli.output import console, new_table, show

    con = console()
    con.print("ward :hospital: at 10:30:00")
    t = new_table("t", ["bed :bed:"])
    t.add_row(":cn:")
    show(con, t)
    got = capsys.readouterr().out
    assert "ward :hospital: at 10:30:00" in got and ":bed:" in got and ":cn:" in got, got


def test_exit_codes_are_one_table_in_the_readme() -> None:
    from adapters.cli.exitcodes import MEANING

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for code, meaning in MEANING.items():
        assert f"| {int(code)} | {meaning} |" in readme


def test_on_a_narrow_terminal_cells_fold_never_ellipsize() -> None:
    import io

    from rich.console import Console

    from adapters.cli.output import new_table, show

    screen = io.StringIO()
    term = Console(file=screen, force_terminal=True, width=30, color_system=None)
    t = new_table("a long title of a table", [("fund", "left"), ("amount", "right")])
    t.add_row("390100 basic medical insurance", "136,201,234.56")
    show(term, t)
    said = screen.getvalue()
    assert "…" not in said
    # every character kept: a cell too long folds onto the next line (a terminal too narrow
    # for a figure folds it rather than cut it)
    cells = "".join(x.split("│")[2].strip() for x in said.splitlines() if x.count("│") == 3)
    assert cells == "136,201,234.56", said
