"""``onestop policy whatif`` is a front of the simulation (issue 12): each flaw the issue lists,
fixed, on the sample bills and tables; and its figures equal ``onestop simulate``'s."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from tests.simulate_data import POLICIES, ROOT, hongan_draft, two_counties
from tests.test_batch_helpers import bills_from_tables

SAMPLES = POLICIES / "samples"
BILLS = [*(SAMPLES / f"hongan-{i}.json" for i in range(1, 6)),
         *(SAMPLES / f"weixian-{i}.json" for i in range(1, 5)), SAMPLES / "longzhou-1.json"]  # fmt: skip


def whatif(
    *args: str, python: tuple[str, ...] = (), **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *python, "-m", "adapters.cli.main", "policy", "whatif",
         *map(str, BILLS), *args],
        capture_output=True, text=True, cwd=ROOT,
        env={"PATH": "", "PYTHONPATH": str(ROOT), "COLUMNS": "60", **env},
    )  # fmt: skip


def imports(r: subprocess.CompletedProcess[str]) -> set[str]:
    """The top-level packages a ``python -X importtime`` run imported."""
    return {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in r.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }


@pytest.fixture(scope="module")
def draft(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return hongan_draft(tmp_path_factory.mktemp("whatif") / "hongan-2019-draft.yaml", 2019)


def test_a_next_year_draft_is_not_refused_and_changes_nothing_on_this_years_bills(
    draft: Path,
) -> None:
    r = whatif("--candidate", str(draft), "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["inputs"]["bills"] == len(BILLS) and d["changed"]["bills"] == 0
    assert d["changed"]["sample"] == [] and d["patients"]["same"]["bills"] == len(BILLS)


def test_whatif_as_if_effective_fixes_the_issues_flaws(draft: Path) -> None:
    r = whatif("--candidate", str(draft), "--as-if-effective", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    # one region overlaid: Wei county's and Longzhou's bills settle under their own tables
    assert d["inputs"]["candidate_regions"] == ["421122"]
    others = [f for f in d["funds"] if f["region"] != "421122"]
    assert {f["region"] for f in others} == {"130434", "451423"}
    assert all(f["base"] == f["candidate"] for f in others)
    # a bill counted once per fund, however many layers of the fund paid it
    per_region = {"421122": 5, "130434": 4, "451423": 1}
    assert all(f["base"]["bills"] <= per_region[f["region"]] for f in d["funds"])
    assert all(f["base"]["bills"] <= len(BILLS) for f in d["fund_totals"])
    # only bills whose patient figure changed are listed, with the reasons
    ch = d["changed"]
    assert ch["bills"] == len(ch["sample"]) >= 1
    assert all(c["change"] != 0 and c["reasons"] for c in ch["sample"])
    assert {c["bill_id"] for c in ch["sample"]} <= {f"hongan-{i}" for i in range(1, 6)}
    # winners and losers both shown; relief and alerts are there
    p = d["patients"]
    assert p["more"]["bills"] + p["less"]["bills"] == ch["bills"]
    assert "relief" in d["totals"]["base"] and set(d["alerts"]) >= {"base", "candidate"}
    # the terminal form: both sides of the change, the changed bill and why
    r = whatif("--candidate", str(draft), "--as-if-effective")
    assert r.returncode == 0, r.stderr
    assert "pay more" in r.stdout and "pay less" in r.stdout and "…" not in r.stdout
    first = ch["sample"][0]
    assert f"{first['hospital']}/{first['bill_id']}: window " in r.stdout


def test_whatif_figures_equal_simulate_on_the_same_bills(tmp_path: Path, draft: Path) -> None:
    from adapters.simulate.command import app
    from adapters.simulate.settled import whatif as whatif_figures

    files = two_counties(tmp_path / "data", n_bills=60, items=5, seed=11)
    r = CliRunner().invoke(app, ["simulate", *files, "--policy", str(POLICIES), "--candidate",
                                 str(draft), "--as-if-effective", "--out", str(tmp_path / "o"),
                                 "--json", "--quiet"])  # fmt: skip
    assert r.exit_code == 0, r.output
    sim = json.loads((tmp_path / "o" / "report.json").read_text(encoding="utf-8"))
    tables = [pq.read_table(f) for f in files]
    bills = bills_from_tables(*(_decoded(t) for t in tables))
    got, _, _ = whatif_figures(bills, [POLICIES], [draft], True, None)
    for k in sim:
        if k in ("inputs", "title", "generated_at"):
            continue
        a, b = sim[k], got[k]
        if k == "changed":
            a, b = {**a, "file": ""}, {**b, "file": ""}
        assert a == b, k
    assert sim["changed"]["bills"] > 0


def _decoded(t: Any) -> Any:
    import pyarrow as pa

    return pa.table(
        [c.cast(c.type.value_type) if pa.types.is_dictionary(c.type) else c for c in t.columns],
        names=t.column_names,
    )


def test_whatif_settles_a_handful_of_bills_without_numba_and_as_the_kernel_does(
    draft: Path,
) -> None:
    """``auto`` takes the plain reference for a few bills (engine.engines, as ``onestop
    settle``): no numba in the process, and the figures the kernel gives, character for
    character (but the time they were made)."""
    args = ("--candidate", str(draft), "--as-if-effective", "--json")
    auto = whatif(*args, python=("-X", "importtime"))
    kernel = whatif(*args, python=("-X", "importtime"), ONESTOP_ENGINE="kernel")
    assert auto.returncode == 0, auto.stderr[-3000:]
    assert kernel.returncode == 0, kernel.stderr[-3000:]
    assert "numba" not in imports(auto) and "typer" in imports(auto)
    assert "numba" in imports(kernel)  # the check sees numba when it is there
    a, k = json.loads(auto.stdout), json.loads(kernel.stdout)
    assert a["changed"]["bills"] >= 1  # the candidate changes something to compare
    a.pop("generated_at"), k.pop("generated_at")
    assert a == k


def test_whatif_prints_the_same_text_whichever_engine(draft: Path) -> None:
    """The terminal form, character for character, from either engine: the command's typer
    app in this process (``policy whatif`` goes to it from the console script too); which
    engine imports what is the test above's, in real processes."""
    from adapters.cli.app import app

    args = ["policy", "whatif", *map(str, BILLS), "--candidate", str(draft), "--as-if-effective"]
    got = {
        engine: CliRunner().invoke(app, args, env={"COLUMNS": "60", "ONESTOP_ENGINE": engine})
        for engine in ("auto", "kernel", "reference")
    }
    for engine, r in got.items():
        assert r.exit_code == 0, (engine, r.output[-3000:])
    assert "pay more" in got["auto"].output
    assert got["auto"].output == got["kernel"].output == got["reference"].output
