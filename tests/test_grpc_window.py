"""The window client commands (``onestop window ...``) against a running server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from adapters.grpc.commands import app
from adapters.grpc.testing import YUBEI, YUBEI_BILL, YUBEI_PAYS, YUBEI_WINDOW, served

runner = CliRunner()


# the module's tests on one xdist worker (--dist loadgroup): its module-scoped fixtures
# are made once, not once on each worker that runs one of its tests
pytestmark = pytest.mark.xdist_group("grpc_window")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    url = f"sqlite:///{tmp_path_factory.mktemp('window') / 'onestop.db'}"
    with served(url, (YUBEI,)) as (_, srv, _client):
        yield f"127.0.0.1:{srv.port}"


def win(*args: str) -> tuple[int, str]:
    r = runner.invoke(app, ["window", *args])
    return r.exit_code, r.output


def test_settle_slip_retry_reverse_and_accounts(server: str, tmp_path: Path) -> None:
    bill = tmp_path / "bill.json"
    bill.write_text(json.dumps(YUBEI_BILL))
    code, out = win("pre-settle", str(bill), "--server", server)
    assert code == 0 and "trial settlement" in out and "5,625.20" in out
    code, out = win("settle", str(bill), "--request-id", "w-1", "--server", server, "--json")
    assert code == 0, out
    d = json.loads(out)
    assert {la["layer_id"]: la["pay"] for la in d["result"]["layers"]} == YUBEI_PAYS
    assert d["result"]["window_pay"] == YUBEI_WINDOW and d["replay"] is False
    assert d["accounts"]["person"]["admissions"] == 1
    code, out = win("settle", str(bill), "--request-id", "w-1", "--server", server)
    assert code == 0 and "replay" in out and "390100" in out and "5,625.20" in out
    code, out = win("accounts", "jiang", "--year", "2023", "--server", server, "--json")
    assert json.loads(out)["person"]["layers"]["basic"]["paid"] == YUBEI_PAYS["basic"]
    code, out = win("reverse", "w-1", "--by-request", "--server", server, "--json")
    assert code == 0 and json.loads(out)["status"] == "reversed"
    code, out = win("accounts", "jiang", "--year", "2023", "--server", server, "--json")
    assert json.loads(out)["person"] == {"admissions": 0, "layers": {}}
    code, out = win("reverse", "w-1", "--by-request", "--server", server)
    assert code == 0 and "already" in out


def test_refusals_have_exit_codes_and_name_the_field(server: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(dict(YUBEI_BILL, items=[{"category": "A", "amount": -3}])))
    code, out = win("settle", str(bad), "--server", server)
    # exit codes of the one table (adapters/cli/exitcodes.py): 1 refused input, not 2 (usage)
    assert code == 1 and "INVALID_ARGUMENT" in out and "items[0].amount" in out
    # one problem: one line, the status and the field with its value (it was two: a line
    # "1 problem(s)" and the problem under it)
    (line,) = out.splitlines()
    assert line.startswith("refused: INVALID_ARGUMENT items[0].amount: -3 "), line
    code, out = win("reverse", "no-such-settlement", "--server", server)
    assert code == 3 and "NOT_FOUND" in out


def test_bureau_puts_a_table_lists_versions_and_imports_persons(server: str, tmp_path: Path):
    def bureau(*args: str) -> tuple[int, str]:
        r = runner.invoke(app, ["bureau", *args, "--server", server], env={"COLUMNS": "200"})
        return r.exit_code, r.output

    table = tmp_path / "yubei-2024.yaml"
    table.write_text(YUBEI.replace("2023-01-01", "2024-01-01").replace("2023-12-31", "2024-12-31"))
    code, out = bureau("put-policy", str(table))
    assert code == 0 and "region 500112" in out and "2024-01-01..2024-12-31" in out, out
    # the same range again under another start overlaps: refused, naming the field
    clash = tmp_path / "clash.yaml"
    clash.write_text(YUBEI.replace("2023-01-01", "2024-06-01").replace("2023-12-31", "2025-06-30"))
    code, out = bureau("put-policy", str(clash))
    assert code == 1 and "INVALID_ARGUMENT" in out and "overlaps" in out
    assert out.count("overlaps") == 1, out  # every problem once
    code, out = bureau("policies")
    assert code == 0 and "2024-01-01" in out and "2024-06-01" not in out
    persons = tmp_path / "persons.json"
    persons.write_text(json.dumps([{"id": "li", "birth_date": "1980-02-02", "household": "h-li"}]))
    code, out = bureau("import-registry", str(persons))
    assert code == 0 and "1 person(s) imported" in out


# --- issue 9: output, JSON and exit codes of the window and bureau commands ----------------


def test_window_json_has_the_explanation_and_text_is_whole(server: str, tmp_path: Path) -> None:
    bill = tmp_path / "bill.json"
    bill.write_text(json.dumps(dict(YUBEI_BILL, id="w9-1")))
    r = runner.invoke(app, ["window", "pre-settle", str(bill), "--server", server, "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["explanation"][0]["zh"].startswith("医疗费用总额")
    r = runner.invoke(app, ["window", "settle", str(bill), "--request-id", "w9-1", "--server",
                            server, "--json"])  # fmt: skip
    d = json.loads(r.output)
    assert d["explanation"][-1]["en"].startswith("Funds pay")
    # not a terminal, 40 columns: every figure, id and time whole
    r = runner.invoke(app, ["window", "settlements", "jiang", "--server", server],
                      env={"COLUMNS": "40"})  # fmt: skip
    assert r.exit_code == 0 and "…" not in r.output, r.output
    assert d["settlement_id"] in r.output and d["created_at"] in r.output
    assert "5,625.20" in r.output
    r = runner.invoke(app, ["bureau", "policies", "--server", server], env={"COLUMNS": "40"})
    assert r.exit_code == 0 and "…" not in r.output and "2023-12-31" in r.output, r.output
    r = runner.invoke(app, ["bureau", "policies", "--server", server, "--json"])
    assert any(v["effective_from"] == "2023-01-01" for v in json.loads(r.output))
    runner.invoke(app, ["window", "reverse", "w9-1", "--by-request", "--server", server])


def test_reversal_prints_a_reversal_slip(server: str, tmp_path: Path) -> None:
    bill = tmp_path / "bill.json"
    bill.write_text(json.dumps(dict(YUBEI_BILL, id="w9-rev")))
    code, out = win("settle", str(bill), "--request-id", "w9-rev", "--server", server, "--json")
    assert code == 0, out
    rec = json.loads(out)
    r = runner.invoke(app, ["window", "reverse", "w9-rev", "--by-request", "--server", server],
                      env={"COLUMNS": "40"})  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "冲正" in r.output and "REVERSAL slip" in r.output
    # the stored UTC time on the window's clock (UTC+8), as the printed slip shows it
    from adapters.clock import window_clock

    at = window_clock(rec["created_at"])
    assert at.endswith("(UTC+8)")
    assert f"takes back settlement {rec['settlement_id']} of {at}" in r.output
    assert "-5,625.20" in r.output and "-34,790.00" in r.output
    rows = [x for x in r.output.splitlines() if x.count("│") > 2]
    window = next(x for x in rows if "window 个人现金支付" in x)
    assert "-5,625.20" in window and "net self-pay 个人负担 -5,625.20" in window
    assert all("-" in x.split("│")[5] or not x.split("│")[5].strip() for x in rows), rows
    assert "gets 5,625.20 back" in r.output


def test_trial_on_a_new_person_prints_no_empty_table(server: str, tmp_path: Path) -> None:
    persons = tmp_path / "persons.json"
    persons.write_text(
        json.dumps(
            [
                {
                    "id": "new-9",
                    "birth_date": "1970-01-01",
                    "household": "h-new-9",
                    "tags": ["low_income_edge"],
                }
            ]
        )
    )
    r = runner.invoke(app, ["bureau", "import-registry", str(persons), "--server", server])
    assert r.exit_code == 0, r.output
    bill = tmp_path / "bill.json"
    bill.write_text(json.dumps(dict(YUBEI_BILL, id="w9-trial", person_id="new-9")))
    r = runner.invoke(app, ["window", "pre-settle", str(bill), "--server", server])
    assert r.exit_code == 0, r.output
    assert "no accounts yet for 2023" in r.output and "admissions this year: 0" not in r.output
    assert "Household" not in r.output


def test_unreachable_server_exits_5_and_markup_is_not_printed(tmp_path: Path) -> None:
    bill = tmp_path / "bill.json"
    bill.write_text(json.dumps(YUBEI_BILL))
    r = runner.invoke(app, ["window", "pre-settle", str(bill), "--server", "127.0.0.1:9"])
    assert r.exit_code == 5 and "UNAVAILABLE" in r.output and "127.0.0.1:9" in r.output
    assert "[red]" not in r.output and "[/" not in r.output
    # nothing listens there: the hint says so, not that a certificate may be missing
    assert "is the server running?" in r.output and "--server HOST:PORT" in r.output
    assert "client certificates" not in r.output


def test_default_year_is_the_year_in_shanghai(monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import UTC, datetime

    import adapters.grpc.clicommon as cmd

    class Clock(datetime):
        @classmethod
        def now(cls, tz=None):
            # 1 January 2024, 01:00 in Beijing: still 31 December 2023 in UTC
            return datetime(2023, 12, 31, 17, 0, tzinfo=UTC).astimezone(tz)

    monkeypatch.setattr(cmd, "datetime", Clock)
    assert cmd.this_year() == 2024


def test_bureau_import_registry_refuses_a_tag_no_table_declares(server: str, tmp_path: Path):
    persons = tmp_path / "persons.json"
    persons.write_text(json.dumps([
        {"id": "zhao", "birth_date": "1980-02-02", "household": "h-zhao",
         "tags": [{"tag": "low_income_edge"}]},
        {"id": "qian", "birth_date": "1981-03-03", "household": "h-qian",
         "tags": [{"tag": "low_incom_edge"}]},
    ]))  # fmt: skip
    r = runner.invoke(app, ["bureau", "import-registry", str(persons), "--server", server],
                      env={"COLUMNS": "300"})  # fmt: skip
    out = " ".join(r.output.split())
    assert r.exit_code != 0 and "INVALID_ARGUMENT" in out, out
    assert "persons[1].tags[0]" in out and "'low_incom_edge'" in out, out
    assert "low_income_edge" in out.split("low_incom_edge", 1)[1]
    code, out = win("accounts", "zhao", "--year", "2023", "--server", server)
    assert code == 3 and "NOT_FOUND" in out  # nothing imported


def test_bureau_put_policy_same_text_is_unchanged_and_dry_run_shows_the_difference(
    server: str, tmp_path: Path
) -> None:
    def bureau(*args: str) -> tuple[int, str]:
        r = runner.invoke(app, ["bureau", *args, "--server", server], env={"COLUMNS": "300"})
        return r.exit_code, r.output

    code, before = bureau("policies")
    table = tmp_path / "yubei.yaml"
    table.write_text(YUBEI)  # the text the server was started with
    code, out = bureau("put-policy", str(table))
    assert code == 0 and "unchanged: the same text as version 1 in force" in out, out
    code, after = bureau("policies")
    assert after.count("500112") == before.count("500112")  # no new version
    changed = tmp_path / "yubei-7500.yaml"
    changed.write_text(YUBEI.replace("ratio: 7000}]", "ratio: 7500}]", 1))
    code, out = bureau("put-policy", str(changed), "--dry-run")
    assert code == 0, out
    assert "dry run, nothing stored: would supersede version 1" in out
    assert ": 7000 -> 7500" in out and "-" in out and "+" in out and "@@" in out
    code, after = bureau("policies")
    assert after.count("500112") == before.count("500112")
    bad = tmp_path / "overlap.yaml"
    bad.write_text(YUBEI.replace("2023-01-01", "2023-06-01"))
    code, out = bureau("put-policy", str(bad), "--dry-run")
    assert code != 0 and "overlaps" in out
