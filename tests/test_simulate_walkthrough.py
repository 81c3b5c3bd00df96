"""README, "What-if over a year of bills", as a bureau user runs it: a year of Hong'an bills from
``onestop example hongan-2018``, ``onestop simulate`` with the committed draft
(policies/drafts/hongan-2019-draft.yaml) and --as-if-effective, both through the real CLI in a
subprocess; the report opens in Chromium without a console error, its charts drawn, and the fund
totals it shows equal the layers the two batch runs wrote (OUT/base, OUT/candidate). Also: the
committed draft is what benchmarks/simulate_bench.py ``draft_text`` makes from the 2018 table."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds
import pytest

from benchmarks.simulate_bench import DRAFT, HONGAN, draft_text
from engine.policy.load import load_table
from tests.browser import chromium

ROOT = Path(__file__).resolve().parents[1]
CHARTS = ["funds", "patients", "share", "budgets"]


def test_the_committed_draft_is_the_2018_table_with_the_one_change() -> None:
    """Rewrite it with ``python -c 'from benchmarks.simulate_bench import write_draft;
    write_draft()'`` after policies/hongan/2018.yaml changes."""
    assert DRAFT.read_text(encoding="utf-8") == draft_text()
    draft, base = load_table(DRAFT), load_table(HONGAN)
    assert draft.effective_to is not None
    assert (draft.effective_from.year, draft.effective_to.year) == (2019, 2019)
    assert draft.region == base.region
    changed = [
        (a.id, i)
        for a, b in zip(draft.layers, base.layers, strict=True)
        for i, (va, vb) in enumerate(zip(a.variants, b.variants, strict=True))
        if va != vb
    ]
    assert changed == [("basic", 0)]  # the registered poor's variant of the basic layer only


def onestop(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "adapters.cli.main", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip


# the module's tests on one xdist worker (--dist loadgroup): its module-scoped fixtures
# are made once, not once on each worker that runs one of its tests
pytestmark = pytest.mark.xdist_group("simulate_walkthrough")


@pytest.fixture(scope="module")
def walked(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], str]:
    tmp = tmp_path_factory.mktemp("walkthrough")
    x, sim = tmp / "x", tmp / "sim"
    r = onestop("example", "hongan-2018", "--out", str(x), "--no-service", "--people", "600")
    assert r.returncode == 0, r.stderr
    assert "(input/, batch/, figures.json)" in r.stdout  # --no-service writes no service/
    inputs = [str(x / "input" / f) for f in ("bills.csv", "items.csv", "persons.csv")]
    assert all(Path(f).is_file() for f in inputs)
    r = onestop("simulate", *inputs, "--policy", "policies", "--candidate",
                "policies/drafts/hongan-2019-draft.yaml", "--as-if-effective", "--out", str(sim))  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stdout + r.stderr
    doc = json.loads((sim / "report.json").read_text(encoding="utf-8"))
    return sim, doc, r.stdout


def layer_sums(run: Path) -> dict[str, int]:
    t = ds.dataset(run / "layers", format="parquet").to_table(columns=["fund_code", "pay"])
    rows = t.group_by("fund_code").aggregate([("pay", "sum")]).to_pylist()
    return {r["fund_code"]: r["pay_sum"] for r in rows if r["pay_sum"]}


def test_simulate_as_the_readme_says(walked: tuple[Path, dict[str, Any], str]) -> None:
    sim, doc, stdout = walked
    assert doc["inputs"]["replaced_tables"] == ["policies/hongan/2018.yaml"]
    assert doc["inputs"]["as_if_effective"] is True
    # the draft raises the county-hospital ratio: someone pays less, the basic fund more
    assert doc["patients"]["less"]["bills"] > 0
    basic = next(f for f in doc["fund_totals"] if f["fund_code"] == "390100")
    assert basic["change"] > 0
    for name in ("report.html", "report.json", "changed.csv"):
        assert (sim / name).is_file(), name
    assert f"every one in {sim / 'changed.csv'}" in stdout
    # budgets: Hong'an's Backbone fund, not Wei county's untouched one (no Wei bills here)
    assert [(b["region"], b["fund_code"]) for b in doc["budgets"]] == [("421122", "370200")]
    # the fund totals are the batch outputs' layers, both runs
    for run in ("base", "candidate"):
        got = {f["fund_code"]: f[run]["pay"] for f in doc["fund_totals"] if f[run]["pay"]}
        assert got == layer_sums(sim / run), run


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


def test_the_report_in_chromium(browser: Any, walked: tuple[Path, dict[str, Any], str]) -> None:
    sim, doc, _ = walked
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    messages: list[tuple[str, str]] = []
    page.on("console", lambda m: messages.append((m.type, m.text)))
    page.on("pageerror", lambda e: messages.append(("pageerror", str(e))))
    try:
        page.goto((sim / "report.html").resolve().as_uri(), wait_until="load")
        assert messages == []
        svgs = page.locator("svg.chart-svg")
        assert [svgs.nth(i).get_attribute("data-chart") for i in range(svgs.count())] == CHARTS
        for i in range(svgs.count()):
            box = svgs.nth(i).bounding_box()
            assert box is not None and box["width"] > 200 and box["height"] > 100, box
            assert svgs.nth(i).locator("path").count() > 5  # drawn, not an empty frame
        # the fund totals the page shows (raw fen in data-value) are the batch runs' layers
        shown = page.eval_on_selector_all(
            "[data-key]", "els => els.map(e => [e.dataset.key, e.dataset.value])"
        )
        values = dict(shown)
        for run in ("base", "candidate"):
            got = {
                values[f"fund_totals.{i}.fund_code"]: int(values[f"fund_totals.{i}.{run}.pay"])
                for i in range(len(doc["fund_totals"]))
            }
            assert {k: v for k, v in got.items() if v} == layer_sums(sim / run), run
        # the changed bills show the net self-pay both ways beside the change made of it (the
        # window pay beside it differs where a fund pays after discharge)
        sample = doc["changed"]["sample"]
        assert sample
        for i, c in enumerate(sample):
            base, cand = (
                int(values[f"changed.sample.{i}.{k}_net_selfpay"]) for k in ("base", "candidate")
            )
            assert cand - base == int(values[f"changed.sample.{i}.change"]) == c["change"]
    finally:
        page.close()


def test_terminal_reasons_line_up(walked: tuple[Path, dict[str, Any], str]) -> None:
    _, doc, stdout = walked
    lines = [ln for ln in stdout.splitlines() if ln.endswith((": pays more", ": pays less"))]
    assert len(lines) == len(doc["changed"]["reasons"][:15]) > 1
    starts = {
        ln.index(r["reason"]) for ln, r in zip(lines, doc["changed"]["reasons"], strict=False)
    }
    assert len(starts) == 1, lines  # the reasons start in one column, the counts right-aligned


def whatif(*args: str) -> Any:
    from typer.testing import CliRunner

    from adapters.cli.app import app

    return CliRunner().invoke(app, ["policy", "whatif", *args])


def test_whatif_on_the_samples_with_the_draft() -> None:
    samples = sorted(str(p) for p in (ROOT / "policies" / "samples").glob("hongan-*.json"))
    draft = str(DRAFT)
    # 2018 bills, a 2019 draft: nothing changes, and the terminal says why and what to add
    r = whatif(*samples, "--candidate", draft)
    assert r.exit_code == 0, r.output
    assert "0 bill(s) changed" in r.output and "add --as-if-effective" in r.output
    r = whatif(*samples, "--candidate", draft, "--as-if-effective")
    assert r.exit_code == 0, r.output
    assert "1 bill(s) changed" in r.output and "add --as-if-effective" not in r.output
    # policies/samples/*.json takes in the registry too: one line naming it, not 153
    every = sorted(str(p) for p in (ROOT / "policies" / "samples").glob("*.json"))
    r = whatif(*every, "--candidate", draft, "--as-if-effective")
    assert r.exit_code == 1
    problems = r.output.splitlines()  # one problem: one line
    assert len(problems) == 1 and problems[0].startswith("refused: "), r.output
    assert "registry.json" in problems[0]
    assert "is a person registry" in problems[0] and "Traceback" not in r.output


def test_settle_on_every_sample_file_names_the_registry_once() -> None:
    """``onestop settle policies/samples/*.json`` (the README's glob taken one step further)
    takes in registry.json: one line naming it, as policy whatif does (one reader of bills)."""
    from typer.testing import CliRunner

    from adapters.cli.app import app

    every = sorted(str(p) for p in (ROOT / "policies" / "samples").glob("*.json"))
    r = CliRunner().invoke(app, ["settle", *every])
    assert r.exit_code == 1
    problems = r.output.splitlines()  # one problem: one line
    assert len(problems) == 1 and problems[0].startswith("refused: "), r.output
    assert "registry.json" in problems[0]


def test_a_registry_with_regions_and_villages_is_named_once_too(tmp_path: Path) -> None:
    """A registry whose persons carry their region, township and village (every field of a
    registry person) is still known as a registry among the bills: it had been read as 17
    bills, 153 problems."""
    from typer.testing import CliRunner

    from adapters.cli.app import app

    persons = json.loads((ROOT / "policies" / "samples" / "registry.json").read_text())
    for p in persons:
        p.update(region="451423", township="Shuikou", village="Bantou")
    reg = tmp_path / "registry.json"
    reg.write_text(json.dumps(persons))
    r = CliRunner().invoke(
        app, ["settle", str(ROOT / "policies/samples/longzhou-1.json"), str(reg)]
    )
    assert r.exit_code == 1
    (line,) = r.output.splitlines()
    assert line.startswith(f"refused: {reg}: '17 persons' is a person registry"), line
