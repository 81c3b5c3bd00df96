"""The window client commands (``onestop window ...``) against a running server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from adapters.grpc.commands import app
from adapters.grpc.testing import YUBEI, YUBEI_BILL, YUBEI_PAYS, YUBEI_WINDOW, served

runner = CliRunner()


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
    assert code == 2 and "INVALID_ARGUMENT" in out and "items[0].amount" in out
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
    assert code == 2 and "INVALID_ARGUMENT" in out and "overlaps" in out
    code, out = bureau("policies")
    assert code == 0 and "2024-01-01" in out and "2024-06-01" not in out
    persons = tmp_path / "persons.json"
    persons.write_text(json.dumps([{"id": "li", "birth_date": "1980-02-02", "household": "h-li"}]))
    code, out = bureau("import-registry", str(persons))
    assert code == 0 and "1 person(s) imported" in out


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
