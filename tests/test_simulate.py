"""``onestop simulate`` (issue 12): base against candidate over the batch files.

Two counties' synthetic 2018 bills (Hong'an, Wei county) on the real sample tables; the
candidate is Hong'an's table with the registered poor's county ratio raised from 80% to 85%
(tests/simulate_data.py). The runs are made once per module (in process, typer's runner);
one run goes through a shell with --json.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from adapters.batch.cli import app as batch_app
from adapters.simulate.command import app as sim_app
from tests.simulate_data import POLICIES, ROOT, hongan_draft, two_counties
from tests.test_batch_helpers import read_out

FUND_USED = 1_000_000  # fen the Backbone used before the batch (--fund-used)


def simulate(files: list[str], out: Path, *extra: str) -> dict[str, Any]:
    r = CliRunner().invoke(
        sim_app,
        ["simulate", *files, "--policy", str(POLICIES), "--out", str(out), "--json", *extra],
    )
    assert r.exit_code == 0, r.output
    return json.loads((out / "report.json").read_text(encoding="utf-8"))


def batch(files: list[str], policy: Path, out: Path, fund_used: Path) -> dict[str, Any]:
    r = CliRunner().invoke(batch_app, ["batch", *files, "--policy", str(policy), "--out",
                                       str(out), "--fund-used", str(fund_used), "--quiet"])  # fmt: skip
    assert r.exit_code == 0, r.output
    return json.loads((out / "summary.json").read_text(encoding="utf-8"))


# the module's tests on one xdist worker (--dist loadgroup): its module-scoped fixtures
# are made once, not once on each worker that runs one of its tests
pytestmark = pytest.mark.xdist_group("simulate")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("simulate")
    files = two_counties(tmp / "data")
    draft_2019 = hongan_draft(tmp / "hongan-2019-draft.yaml", 2019)
    # the same draft with its dates moved to 2018: what --as-if-effective stands for
    draft_2018 = hongan_draft(tmp / "hongan-2018-draft.yaml", 2018)
    used = tmp / "used.csv"
    used.write_text(f"region,fund_code,year,used\n421122,370200,2018,{FUND_USED}\n")
    # the base with the candidate copied in (in place of the table it replaces)
    copied = tmp / "policies-with-draft"
    shutil.copytree(POLICIES, copied, ignore=shutil.ignore_patterns("samples"))
    shutil.copyfile(draft_2018, copied / "hongan" / "2018.yaml")
    w: dict[str, Any] = {"tmp": tmp, "files": files, "used": used}
    w["fig"] = simulate(files, tmp / "sim", "--candidate", str(draft_2018), "--fund-used",
                        str(used))  # fmt: skip
    w["as_if"] = simulate(files, tmp / "sim-as-if", "--candidate", str(draft_2019),
                          "--as-if-effective", "--fund-used", str(used))  # fmt: skip
    w["batch_base"] = batch(files, POLICIES, tmp / "batch-base", used)
    w["batch_cand"] = batch(files, copied, tmp / "batch-cand", used)
    w["draft_2019"] = draft_2019
    return w


def _by_code(summary: dict[str, Any]) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for f in summary["funds"]:
        out[f["fund_code"]] += f["amount"]
    return dict(out)


def test_fund_totals_equal_two_independent_batch_runs(world: dict[str, Any]) -> None:
    fig = world["fig"]
    assert fig["schema"] == "onestop.simulate/1"
    for side, summary in (("base", world["batch_base"]), ("candidate", world["batch_cand"])):
        got = {r["fund_code"]: r[side]["pay"] for r in fig["fund_totals"]}
        want = _by_code(summary)  # every layer of every table loaded (0 where no bill)
        assert set(got) <= set(want) and got == {k: v for k, v in want.items() if k in got}
        assert all(v == 0 for k, v in want.items() if k not in got), side
        t, p = fig["totals"][side], summary["patients"]
        assert (t["total"], t["fund_pay"], t["window_pay"], t["net_selfpay"], t["relief"]) == (
            p["billed"], p["funds"], p["window_pay"], p["net_selfpay"], p["relief"])  # fmt: skip
    assert fig["inputs"]["bills"] == world["batch_base"]["counts"]["bills_read"] == 600
    assert fig["inputs"]["rejected"] == {"base": 0, "candidate": 0}
    # the draft moves money: basic pays more in Hong'an, later layers less
    [basic] = [r for r in fig["funds"] if (r["region"], r["layer_id"]) == ("421122", "basic")]
    assert (
        basic["change"] > 0 and basic["change"] == basic["candidate"]["pay"] - basic["base"]["pay"]
    )
    from decimal import ROUND_HALF_UP, Decimal

    exact = (Decimal(basic["change"]) * 100 / Decimal(basic["base"]["pay"])).quantize(
        Decimal("0.01"), ROUND_HALF_UP
    )
    assert basic["change_pct"] == str(exact)


def test_bills_and_persons_are_distinct_counts(world: dict[str, Any]) -> None:
    fig, out = world["fig"], world["tmp"] / "sim" / "base"
    bills, layers = read_out(out, "bills"), read_out(out, "layers")
    keys = list(zip(bills["hospital"].to_pylist(), bills["bill_id"].to_pylist(), strict=True))
    region = dict(zip(keys, bills["region"].to_pylist(), strict=True))
    person = dict(zip(keys, bills["person_id"].to_pylist(), strict=True))
    seen: dict[tuple[str, str], set[tuple[str, str]]] = defaultdict(set)
    by_fund: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for r in layers.to_pylist():
        if r["pay"] > 0 or r["relief"] > 0:
            key = (r["hospital"], r["bill_id"])
            seen[(region[key], r["layer_id"])].add(key)
            by_fund[r["fund_code"]].add(key)
    for row in fig["funds"]:
        bill_keys = seen.get((row["region"], row["layer_id"]), set())
        assert row["base"]["bills"] == len(bill_keys), row
        assert row["base"]["persons"] == len({person[k] for k in bill_keys}), row
    for row in fig["fund_totals"]:
        assert row["base"]["bills"] == len(by_fund.get(row["fund_code"], set())), row
    # frequent patients: a person with several bills is one person
    [basic] = [r for r in fig["fund_totals"] if r["fund_code"] == "390100"]
    assert basic["base"]["persons"] < basic["base"]["bills"]
    assert fig["inputs"]["persons"] == len(set(bills["person_id"].to_pylist())) < 600


def test_more_and_less_add_up_to_the_changed_bills(world: dict[str, Any]) -> None:
    fig = world["fig"]
    p, ch = fig["patients"], fig["changed"]
    assert p["more"]["bills"] + p["less"]["bills"] == ch["bills"] > 0
    assert p["same"]["bills"] + ch["bills"] == fig["inputs"]["bills_compared"] == 600
    assert p["more"]["sum"] >= 0 >= p["less"]["sum"]
    t = fig["totals"]
    assert (
        p["more"]["sum"] + p["less"]["sum"]
        == t["candidate"]["net_selfpay"] - t["base"]["net_selfpay"]
    )
    with open(world["tmp"] / "sim" / "changed.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == ch["bills"]
    assert all(int(r["change"]) != 0 and r["reasons"] for r in rows)
    assert all(int(r["candidate_net_selfpay"]) - int(r["base_net_selfpay"]) == int(r["change"])
               for r in rows)  # fmt: skip
    assert {r["person_id"] for r in rows if int(r["change"]) > 0} and p["more"]["persons"] == len(
        {r["person_id"] for r in rows if int(r["change"]) > 0})  # fmt: skip
    assert sum(int(r["change"]) for r in rows if int(r["change"]) < 0) == p["less"]["sum"]
    assert sum(h["bills"] for h in p["change_histogram"]) == ch["bills"]
    # the reasons are the slip's words, counted per bill
    words = {r["reason"] for r in ch["reasons"]}
    assert "Basic medical insurance (390100): pays more" in words
    assert len(p["change_deciles"]) == 9 and p["change_deciles"] == sorted(p["change_deciles"])


def test_the_overlay_leaves_other_regions_untouched(world: dict[str, Any]) -> None:
    fig = world["fig"]
    wx = [r for r in fig["funds"] if r["region"] == "130434"]
    assert wx and all(r["base"] == r["candidate"] and r["change"] == 0 for r in wx)
    with open(world["tmp"] / "sim" / "changed.csv", encoding="utf-8") as f:
        assert {r["region"] for r in csv.DictReader(f)} == {"421122"}
    assert fig["inputs"]["candidate_regions"] == ["421122"]
    kept = world["tmp"] / "sim" / "candidate-policy" / "weixian" / "2018.yaml"
    assert kept.read_bytes() == (POLICIES / "weixian" / "2018.yaml").read_bytes()
    assert not (world["tmp"] / "sim" / "candidate-policy" / "hongan" / "2018.yaml").exists()
    # Wei county's bills settle the same in the candidate run, bill by bill
    a = read_out(world["tmp"] / "sim" / "base", "bills")
    b = read_out(world["tmp"] / "sim" / "candidate", "bills")
    wa, wb = (t.filter(pa.compute.equal(t["region"], "130434")) for t in (a, b))
    for c in ("bill_id", "total", "window_pay", "net_selfpay"):
        assert wa[c].to_pylist() == wb[c].to_pylist()


def _same(a: dict[str, Any], b: dict[str, Any]) -> None:
    for k in a:
        if k not in ("inputs", "title", "generated_at"):
            assert a[k] == b[k], k


def test_as_if_effective_equals_the_table_copied_with_moved_dates(world: dict[str, Any]) -> None:
    _same(world["as_if"], world["fig"])
    assert world["as_if"]["inputs"]["as_if_effective"] is True
    assert world["as_if"]["changed"]["bills"] > 0


def test_budgets_used_against_the_declared_budget(world: dict[str, Any]) -> None:
    fig = world["fig"]
    rows = {(r["region"], r["fund_code"], r["year"]): r for r in fig["budgets"]}
    bb = {(r["region"], r["fund_code"], r["year"]): r for r in world["batch_base"]["fund_budgets"]}
    bc = {(r["region"], r["fund_code"], r["year"]): r for r in world["batch_cand"]["fund_budgets"]}
    backbone = rows[("421122", "370200", 2018)]
    assert backbone["budget"] == 178_000_000  # policies/hongan/funds.yaml
    k = ("421122", "370200", 2018)
    assert backbone["base_used"] == FUND_USED + bb[k]["paid"] > FUND_USED
    assert backbone["candidate_used"] == FUND_USED + bc[k]["paid"]
    assert backbone["base_left"] == 178_000_000 - backbone["base_used"]
    assert backbone["candidate_left"] == 178_000_000 - backbone["candidate_used"]
    assert rows[("130434", "999109", 2018)]["budget"] == 400_000_000
    # a fund without a budget (PICC, report mode) has no budget row
    assert ("421122", "640100", 2018) not in rows


def test_shares_and_breakdowns_are_consistent(world: dict[str, Any]) -> None:
    fig = world["fig"]
    for side in ("base", "candidate"):
        s = fig["share"][side]
        assert sum(h["bills"] for h in s["histogram"]) + s["no_total_bills"] == 600
        assert len(s["deciles"]) == 9
        assert s["deciles"] == sorted(s["deciles"], key=float)
        ten = next(a for a in s["above"] if a["threshold_pct"] == "10")
        for dim in ("hospital_level", "age_band", "hospital"):
            rows = fig["breakdowns"][dim]
            assert sum(r["bills"] for r in rows) == 600, dim
            assert sum(r[f"{side}_above_10"] for r in rows) == ten["bills"], dim
            assert sum(r["more"] for r in rows) == fig["patients"]["more"]["bills"]
    tags = {r["key"]: r for r in fig["breakdowns"]["tag"]}
    assert "registered_poor" in tags and "(none)" in tags
    # only the registered poor's ratio changed: every bill that changed has that tag
    assert (
        tags["registered_poor"]["more"] + tags["registered_poor"]["less"] == fig["changed"]["bills"]
    )


def test_a_next_year_draft_changes_nothing_on_last_years_bills_from_a_shell(
    world: dict[str, Any],
) -> None:
    out = world["tmp"] / "shell"
    r = subprocess.run(
        [sys.executable, "-m", "adapters.cli.main", "simulate", *world["files"], "--policy",
         str(POLICIES), "--candidate", str(world["draft_2019"]), "--out", str(out), "--json"],
        capture_output=True, text=True, cwd=ROOT,
        env={"PATH": "", "PYTHONPATH": str(ROOT), "COLUMNS": "80"},
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    fig = json.loads(r.stdout)
    assert fig == json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert fig["changed"]["bills"] == 0 and fig["patients"]["same"]["bills"] == 600
    assert all(row["change"] == 0 for row in fig["funds"])
    # without --as-if-effective the 2018 table stays: the draft is added for 2019
    assert (out / "candidate-policy" / "hongan" / "2018.yaml").exists()


def test_refusals_are_one_line_with_the_documented_codes(world: dict[str, Any]) -> None:
    files, tmp = world["files"], world["tmp"]
    run = CliRunner().invoke
    r = run(sim_app, ["simulate", *files, "--policy", str(POLICIES), "--candidate",
                      str(tmp / "nope.yaml"), "--out", str(tmp / "x")])  # fmt: skip
    assert r.exit_code == 1 and "nope.yaml does not exist" in r.output
    r = run(sim_app, ["simulate", *files, "--policy", str(POLICIES), "--candidate",
                      str(world["draft_2019"]), "--candidate", str(world["draft_2019"]),
                      "--as-if-effective", "--out", str(tmp / "x")])  # fmt: skip
    assert r.exit_code == 2 and "one candidate per region" in r.output
    broken = tmp / "broken.yaml"
    broken.write_text(world["draft_2019"].read_text().replace("county: 8500,", "county: 18500,"))
    r = run(sim_app, ["simulate", *files, "--policy", str(POLICIES), "--candidate", str(broken),
                      "--out", str(tmp / "x")])  # fmt: skip
    assert r.exit_code == 1 and "candidate tables refused" in r.output and "broken.yaml" in r.output
    assert "Traceback" not in r.output


def test_stats_are_exact() -> None:
    from engine.simulate.stats import deciles, pct, share_deciles, share_histogram

    assert pct(1, 3) == "33.33" and pct(2, 3) == "66.67" and pct(1, 0) is None
    assert pct(5, 1000) == "0.50" and pct(-5, 1000) == "-0.50"
    assert deciles(np.arange(1, 11)) == list(range(1, 10))
    num, den = np.array([1, 1, 10]), np.array([10, 3, 10])
    assert share_deciles(num, den)[0] == "10.00" and share_deciles(num, den)[-1] == "100.00"
    h = share_histogram(num, den)
    want = [0] * 20  # 10%, 33% and 100%: bands 10-15, 30-35 and the last (95-100, with 100)
    want[2] = want[6] = want[-1] = 1
    assert [x["bills"] for x in h] == want
