"""Start-up as a user sees it (issue 13 item 4).

- ``onestop settle FILE``, ``onestop --version`` and the other offline commands import none of
  the extras' heavy modules nor a test tool (checked with ``python -X importtime``, which
  lists every module a process imports); ``--version`` does not even load the engine.
- ``onestop --help`` lists the lazy commands (adapters/cli/lazy.py) without importing them, and
  the listing is the one the loaded commands give.
- ``onestop warm`` (``engine.warm``) compiles every kernel variant the CLI, the server's unary
  calls and ``onestop batch`` run: after it, those paths add no signature to the kernel.

(The dev install's numba imports ``coverage`` when it is installed: a user's install has no
coverage, so it is not in the list.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = "policies/samples/longzhou-1.json"
HEAVY = (
    "grpc", "sqlalchemy", "pyarrow", "dask", "pandas", "matplotlib", "weasyprint", "fastapi",
    "hypothesis", "pytest", "alembic", "psycopg", "polars", "jinja2", "httpx", "uvicorn",
)  # fmt: skip


def imported(*args: str) -> set[str]:
    """Every module ``onestop ARGS`` imports (it must exit 0)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COV_", "COVERAGE_"))}
    r = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "adapters.cli.main", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    names = {
        line.rsplit("|", 1)[1].strip()
        for line in r.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    # every path imports it (adapters/cli/main.py); typer not: a plain settle reads no typer
    assert "adapters.cli.quickargs" in names, "no -X importtime listing: the check sees nothing"
    return names


def heavy(names: set[str]) -> list[str]:
    return sorted(n for n in names if n.split(".")[0] in HEAVY)


@pytest.mark.parametrize(
    "args",
    [
        ("--version",),
        ("settle", SAMPLE),
        ("settle", "--json", "--allocate", SAMPLE, "policies/samples/longzhou-2.json"),
        ("policy", "check", "policies"),
        ("--help",),
        ("settle", "--help"),
    ],
    ids=["version", "settle", "settle-json-allocate", "policy-check", "help", "settle-help"],
)
def test_offline_commands_import_no_heavy_module(args: tuple[str, ...]) -> None:
    names = imported(*args)
    assert heavy(names) == [], f"onestop {' '.join(args)} imports {heavy(names)}"


def test_the_help_lists_the_lazy_commands_as_if_they_were_loaded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``onestop --help`` with the lazy commands' summaries (nothing imported) prints exactly
    what it prints with every command loaded (a summary that drifts from its command fails)."""
    from typer.testing import CliRunner

    from adapters.cli import lazy
    from adapters.cli.app import app

    assert set(lazy.SUMMARY) == set(lazy.LAZY)
    env = {"COLUMNS": "100"}
    listed = CliRunner().invoke(app, ["--help"], env=env)
    assert listed.exit_code == 0 and "serve-http" in listed.output, listed.output
    assert "not available" not in listed.output  # the dev install has every extra
    monkeypatch.setattr(lazy, "listed", lazy.load)  # the listing from the loaded commands
    loaded = CliRunner().invoke(app, ["--help"], env=env)
    assert loaded.exit_code == 0
    assert loaded.output == listed.output


def test_settle_skips_the_pydantic_plugin_scan_unless_asked() -> None:
    """``onestop settle`` builds its validators without pydantic's plugin loader and its
    ``importlib.metadata`` scan (adapters/cli/pydantic_plugins.py); with
    ``PYDANTIC_DISABLE_PLUGINS`` set (here empty: load every plugin) pydantic loads them as it
    documents, so the check sees the import when it happens."""
    assert "importlib.metadata" not in imported("settle", SAMPLE)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYDANTIC_DISABLE_PLUGINS", "")
        assert "importlib.metadata" in imported("settle", SAMPLE)


def test_the_plugin_stand_in_replaces_what_pydantic_imports() -> None:
    """The stand-in takes the place pydantic imports ``get_plugins`` from: a pydantic that
    moved it would leave the stand-in unused (the scan back, nothing wrong), and this fails."""
    import inspect

    import pydantic.plugin._loader as real
    from pydantic.plugin import _schema_validator

    from adapters.cli import pydantic_plugins as pp

    assert real.__name__ == pp.LOADER and callable(real.get_plugins)
    assert "from ._loader import get_plugins" in inspect.getsource(_schema_validator)
    assert list(real.get_plugins()) == []  # no extra installs a plugin: nothing is lost
    env = {"PATH": "/bin"}
    assert pp.skips_scan(["settle", SAMPLE], env) and pp.skips_scan(["--version"], env)
    assert not pp.skips_scan(["serve", "--port", "0"], env)
    assert not pp.skips_scan(["serve-http"], env)
    assert not pp.skips_scan(["settle"], {"PYDANTIC_DISABLE_PLUGINS": "1"})


def test_version_does_not_load_the_engine() -> None:
    assert {"numba", "numpy", "pydantic", "yaml"} & imported("--version") == set()


def test_the_heavy_check_sees_a_heavy_import() -> None:
    """The check is live: the batch command's help imports pyarrow (the batch extra)."""
    assert "pyarrow" in heavy(imported("batch", "--help"))


WARM_THEN_RUN = r"""
import json, pathlib, sys, tempfile
from engine import kernel as K
from engine.policy.load import load_policies
from engine.warm import warm

def sigs():
    return {str(s) for d in (K._settle_range, K._settle_chunks) for s in d.signatures}

ps = load_policies(pathlib.Path("policies"))
warm(ps)
warmed = sigs()
new = {}

def check(what):
    extra = sigs() - warmed
    if extra:
        new[what] = sorted(extra)

from engine.batch import settle_batch
from engine.bill import parse_bill
bills = [parse_bill(json.loads(f.read_text("utf-8")))
         for f in sorted(pathlib.Path("policies/samples").glob("*.json")) if f.name != "registry.json"]
settle_batch(bills, ps); check("settle")
settle_batch(bills, ps, allocate_items=True); check("settle --allocate")
b = bills[0]
t = ps.table_for(b.region, b.discharge_date)
fund = next(la.fund_code for la in t.layers if la.fund_code)
budgets = {(t.region.code, fund, b.year): 10**9}
settle_batch(bills, ps, budgets=budgets); check("server, hard budgets")
settle_batch(bills, ps, budgets=budgets, allocate_items=True); check("server, budgets, allocation")
settle_batch(bills, ps, threads=2); check("settle_batch threads=2")

from engine.columnar import columns_from_bills, settle_columns
bc, ic, pc, _ = columns_from_bills(bills)
settle_columns(bc, ic, pc, ps); check("columns")
settle_columns(*columns_from_bills(bills)[:3], ps, budgets=budgets)
check("columns, hard budgets (onestop batch --fund-used on CSV files)")
for absent in ("selfpay_ratio", "unit_price_cap"):  # a packed stream with one of them sent
    bc, ic, pc, _ = columns_from_bills(bills)
    setattr(ic, absent, None)
    setattr(ic, absent + "_null", None)
    settle_columns(bc, ic, pc, ps); check(f"columns without {absent}")

import numpy as np
from engine.columnar import prepare_columns, run
bc, ic, pc, _ = columns_from_bills(bills)  # as the packed stream gives them: read in place
ic.bill_start = np.searchsorted(ic.bill_row, np.arange(len(bc) + 1))
ic.bill_row = None
for name, dt in (("category", np.int8), ("qty_e4", np.int32), ("unit_price_cap", np.int32),
                 ("selfpay_ratio", np.int16)):
    a = np.array(getattr(ic, name), dtype=dt)
    a.flags.writeable = False
    setattr(ic, name, a)
prep = prepare_columns(bc, ic, pc, ps, input_order=True, in_place=True)
assert prep.kb.item_at is not None
run(prep); check("the packed stream, items in place")

from tests.test_batch_helpers import POLICY, make_data
from adapters.batch.plan import plan
from adapters.batch.run import Spec, finish, run_local
tmp = pathlib.Path(tempfile.mkdtemp())
_, paths = make_data(tmp / "pq", 40)
_, csv_paths = make_data(tmp / "csv", 40, csv=True)
runs = [(paths, {}), (paths, {"threads": 2}), (paths, {"items_by_fund": True}), (csv_paths, {})]
for k, (files, kw) in enumerate(runs):
    spec = Spec(*files, policy=(POLICY,), out=str(tmp / f"out{k}"), **kw)
    parts, _, _ = plan(spec, 1000)
    list(run_local(spec, parts))
    finish(spec, ok=True)
    check(f"batch {files[0]} {kw}")
print(json.dumps(new))
"""


def test_warm_compiles_every_variant_the_commands_run() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COV_", "COVERAGE_"))}
    env.pop("NUMBA_DISABLE_JIT", None)
    env["PYTHONPATH"] = str(ROOT)
    r = subprocess.run([sys.executable, "-c", WARM_THEN_RUN], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=1800)  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    new = json.loads(r.stdout.strip().splitlines()[-1])
    assert new == {}, f"kernel variants compiled after onestop warm: {new}"


def test_a_groups_listing_shows_each_summary_as_one_sentence() -> None:
    """typer keeps the line breaks of a docstring's first paragraph in a group's listing (not
    in the command's own help): ``put-policy  ...A table with`` / ``the same region...``. At a
    width where no summary wraps, each is printed on one line, whole (adapters/cli/output.py)."""
    import inspect

    from typer.testing import CliRunner

    from adapters.cli import lazy
    from adapters.cli.app import app

    joined = 0
    for group in ["", *(n for n, spec in lazy.LAZY.items() if spec[2] == "group")]:
        shown = CliRunner().invoke(
            app, [group, "--help"] if group else ["--help"], env={"COLUMNS": "400"}
        )
        assert shown.exit_code == 0, (group, shown.output)
        if group:
            commands = lazy.load(group).commands  # a group's commands, loaded
            docs = {n: c.help or "" for n, c in commands.items()}
        else:
            docs = dict(lazy.SUMMARY)
        for name, doc in docs.items():
            paragraph = inspect.cleandoc(doc).split("\n\n")[0]
            assert " ".join(paragraph.split()) in shown.output, (group, name, paragraph)
            joined += "\n" in paragraph
    assert joined, "no summary spans lines: the test proves nothing"
