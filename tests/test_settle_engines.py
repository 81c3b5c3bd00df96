"""``onestop settle`` prints the same, to the character, whichever engine settles (issue 13,
item 4: a few bills go through the plain reference without importing numba, engine/engines.py).

Each check runs the real command with ``--engine kernel`` and ``--engine reference`` (and the
default, ``auto``) on the same files and compares everything it writes: the slips, ``--json``
with ``--allocate`` (each item's shares of each fund), ``--accounts-out``, and the refusal of a
batch that reaches the account limit. On every sample bill, all the sample bills at once, and
hypothesis-generated tables, bills and opening accounts (tests/strategies.py; kernel against
reference: at their size ``auto`` is the reference, the same run again).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from adapters.cli.app import app
from adapters.cli.files import opening_to_json
from engine.accounts import Opening
from engine.bill import Bill
from engine.engines import KERNEL_FROM_ITEMS, pick
from engine.money import MAX_ACCOUNT
from engine.policy.policyset import PolicySet
from tests.strategies import _source, build_table, gen_bills, gen_opening, gen_policy

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = sorted((ROOT / "policies" / "samples").glob("*-[0-9].json"))
ENGINES = ("kernel", "reference", "auto")


def run(engine: str, *args: str, tmp: Path) -> dict[str, Any]:
    """Everything ``onestop settle ARGS --engine ENGINE`` writes: exit code, the slips, the
    JSON with the allocation, the accounts after."""
    out: dict[str, Any] = {}
    after = tmp / f"after-{engine}.json"
    r = CliRunner().invoke(app, ["settle", *args, "--engine", engine, "--accounts-out", str(after)])
    out["code"], out["slips"] = r.exit_code, r.output
    out["after"] = after.read_text("utf-8") if after.exists() else None
    r = CliRunner().invoke(app, ["settle", *args, "--engine", engine, "--json", "--allocate"])
    out["json"] = r.output
    return out


def same_whichever_engine(
    *args: str, tmp: Path, engines: tuple[str, ...] = ENGINES
) -> dict[str, Any]:
    got = {e: run(e, *args, tmp=tmp) for e in engines}
    assert got["kernel"]["code"] in (0, 1), got["kernel"]["slips"]
    for e in engines[1:]:
        for what in got["kernel"]:
            assert got[e][what] == got["kernel"][what], f"{e} differs from kernel in {what}"
    return got["kernel"]


@pytest.mark.parametrize("bill", SAMPLES, ids=[p.stem for p in SAMPLES])
def test_every_sample_bill_settles_the_same_with_either_engine(bill: Path, tmp_path: Path) -> None:
    got = same_whichever_engine(str(bill), tmp=tmp_path)
    assert got["code"] == 0 and "Settlement slip" in got["slips"]
    assert json.loads(got["json"])[0]["items"], "no allocation printed: the check compared nothing"


def test_all_sample_bills_at_once_settle_the_same_with_either_engine(tmp_path: Path) -> None:
    """In one run the bills of a person follow each other (year-to-date accounts carried)."""
    got = same_whichever_engine(*map(str, SAMPLES), tmp=tmp_path)
    assert got["code"] == 0 and len(json.loads(got["json"])) == len(SAMPLES)


def test_the_account_limit_is_refused_the_same_with_either_engine(tmp_path: Path) -> None:
    bill = SAMPLES[0]
    r = CliRunner().invoke(app, ["settle", "--json", str(bill)])
    layers = [x["layer_id"] for x in json.loads(r.output)[0]["layers"]]
    doc = json.loads(bill.read_text("utf-8"))
    full = dict.fromkeys(("deductible_used", "eligible_cum", "paid", "selfpay_cum"), MAX_ACCOUNT)
    near = {"persons": {doc["person"]["id"]: {doc["discharge_date"][:4]: {
        "layers": dict.fromkeys(layers, full)}}}}  # fmt: skip
    opening = tmp_path / "opening.json"
    opening.write_text(json.dumps(near), encoding="utf-8")
    got = same_whichever_engine(str(bill), "--accounts", str(opening), tmp=tmp_path)
    assert got["code"] == 1 and "refused" in got["slips"], got["slips"]


def bill_json(b: Bill) -> dict[str, Any]:
    return b.model_dump(mode="json", exclude_none=True)


@st.composite
def files(draw: Any) -> tuple[dict[str, Any], list[Bill], Opening | None]:
    """A policy table (as written in a file), bills for it and opening accounts."""
    src = _source(draw, fast=True)
    table = gen_policy(src)
    ps = PolicySet.of([build_table(table)])
    bills = gen_bills(src, ps, max_bills=6, max_items=5)
    return table, bills, gen_opening(src, ps, bills) if src.flag() else None


CODES: list[int] = []  # exit codes of the generated runs (most settle: 0)


@settings(max_examples=min(40, settings().max_examples))  # 4 CLI runs an example
@given(files())
def test_generated_bills_settle_the_same_with_either_engine(
    case: tuple[dict[str, Any], list[Bill], Opening | None],
) -> None:
    table, bills, opening = case
    scratch = Path(tempfile.mkdtemp(prefix="engines-"))
    try:
        check_generated(scratch, table, bills, opening)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def check_generated(
    scratch: Path, table: dict[str, Any], bills: list[Bill], opening: Opening | None
) -> None:
    policy = scratch / "t.yaml"
    policy.write_text(yaml.safe_dump(table, allow_unicode=True), encoding="utf-8")
    paths = []
    for k, b in enumerate(bills):  # one file a bill, and the last two in one file as a list
        p = scratch / f"b{k}.json"
        p.write_text(json.dumps(bill_json(b)), encoding="utf-8")
        paths.append(str(p))
    if len(bills) > 2:
        p = scratch / "pair.json"
        p.write_text(json.dumps([bill_json(b) for b in bills[-2:]]), encoding="utf-8")
        paths[-2:] = [str(p)]
    args = [*paths, "--policy", str(policy)]
    if opening is not None:
        (scratch / "opening.json").write_text(json.dumps(opening_to_json(opening)), "utf-8")
        args += ["--accounts", str(scratch / "opening.json")]
    # auto is the reference below KERNEL_FROM_ITEMS (at most 30 items here): its run would be
    # the reference's again (the sample bills above run auto through the CLI; the pick itself
    # is checked below)
    assert pick("auto", bills) == "reference"
    got = same_whichever_engine(*args, tmp=scratch, engines=("kernel", "reference"))
    CODES.append(got["code"])
    if got["code"] == 0:  # the files say what the strategy made: the check compared something
        assert len(json.loads(got["json"])) == len(bills)


def test_auto_picks_the_reference_below_the_threshold_and_the_kernel_from_it() -> None:
    from engine.bill import parse_bill

    bill = parse_bill(json.loads(SAMPLES[0].read_text("utf-8")))
    n = len(bill.items)
    assert pick("auto", [bill]) == "reference"
    many = [bill] * (-(-KERNEL_FROM_ITEMS // n))
    assert pick("auto", many) == "kernel" and pick("auto", many[:-1]) == "reference"
    assert pick("reference", many) == "reference" and pick("kernel", [bill]) == "kernel"


def test_the_help_names_the_threshold() -> None:
    r = CliRunner().invoke(app, ["settle", "--help"], env={"COLUMNS": "200"})
    assert f"{KERNEL_FROM_ITEMS:,} items" in " ".join(r.output.split())


#: run ``onestop`` (its argv) in this process, then print the numba/numpy modules it loaded
NUMBA_LOADED = """
import sys
from adapters.cli.main import main
try:
    main()
except SystemExit as e:
    assert not e.code, e.code
loaded = [m for m in sys.modules if m.split(".")[0] in ("numba", "numpy") or m == "engine.kernel"]
print(sorted(loaded)[:3])
"""


@pytest.mark.parametrize("engine", ["auto", "reference"])
def test_a_few_bills_settle_without_numba_or_numpy(engine: str) -> None:
    """The default and --engine reference import neither (nor the kernel); forcing the kernel,
    through ONESTOP_ENGINE, does (so the check can fail)."""
    code = NUMBA_LOADED
    env = {"PATH": "", "PYTHONPATH": str(ROOT), "ONESTOP_ENGINE": engine}
    argv = ["settle", "--allocate", *map(str, SAMPLES[:3])]
    r = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True,
                       cwd=ROOT, env=env)  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip().splitlines()[-1] == "[]"
    env["ONESTOP_ENGINE"] = "kernel"
    r = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True,
                       cwd=ROOT, env=env)  # fmt: skip
    assert r.returncode == 0 and r.stdout.strip().splitlines()[-1] != "[]", r.stderr[-2000:]
