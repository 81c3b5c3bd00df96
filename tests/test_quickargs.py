"""The typer-free front of ``onestop settle`` (adapters/cli/quickargs.py) reads a command line
as typer's does, or leaves it to typer: the same options, the same values, and from a shell the
same slips, JSON, refusals and exit codes; and it imports no typer."""

from __future__ import annotations

import inspect
import os
import shutil
import subprocess
import sys
import typing
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.core import TyperGroup, TyperOption
from typer.testing import CliRunner

import adapters.cli.app as cli_app
import adapters.cli.settle as cli_settle
from adapters.cli.app import app
from adapters.cli.quickargs import ENGINE_VAR, ENGINES, OPTIONS, Engine, settle_args
from adapters.cli.settle import settle_bills

ROOT = Path(__file__).resolve().parent.parent
S1, S2 = "policies/samples/longzhou-1.json", "policies/samples/longzhou-2.json"


def test_the_options_are_the_typer_commands() -> None:
    """Every option of typer's ``settle`` is in the table with its kind, and no other; the
    engine's values and variable are typer's; the keywords are settle_bills' parameters."""
    group = typer.main.get_command(app)
    assert isinstance(group, TyperGroup)
    cmd = group.commands["settle"]
    got = {}
    for p in cmd.params:
        if p.param_type_name == "argument":
            assert (p.name, p.multiple or p.nargs == -1) == ("bills", True)
            continue
        if p.name == "help":
            continue
        assert isinstance(p, TyperOption)
        kind = "flag" if p.is_flag else "many" if p.multiple else "one"
        for name in (*p.opts, *p.secondary_opts):
            got[name] = (p.name, kind)
        if p.name == "engine":
            assert p.envvar == ENGINE_VAR
    assert got == OPTIONS
    hints = typing.get_type_hints(cli_app.settle, include_extras=True)
    assert typing.get_args(hints["engine"])[0] is Engine and tuple(Engine) == ENGINES
    keywords = {k for k, _ in OPTIONS.values()} | {"bills"}
    assert set(inspect.signature(settle_bills).parameters) == keywords


#: command lines both fronts read (the environment's ONESTOP_ENGINE in the last)
ACCEPTED: list[tuple[list[str], dict[str, str]]] = [
    ([S1], {}),
    ([S1, S2, "--json", "--allocate"], {}),
    (["--policy", "policies", S1, "--policy=policies/longzhou", "--engine", "kernel"], {}),
    ([S1, "--accounts=a.json", "--accounts-out", "b.json", "--slip", "s.html", S2], {}),
    (["--engine=reference", S1], {ENGINE_VAR: "kernel"}),
    ([S1], {ENGINE_VAR: "reference"}),
    ([S1], {ENGINE_VAR: ""}),
]
#: command lines left to typer (its help, or its usage error)
LEFT: list[tuple[list[str], dict[str, str]]] = [
    ([], {}),
    (["--help"], {}),
    ([S1, "--help"], {}),
    ([S1, "-h"], {}),
    (["--json"], {}),
    ([S1, "--json=1"], {}),
    ([S1, "--json", "--json"], {}),
    ([S1, "--no-json"], {}),
    ([S1, "--accounts"], {}),
    ([S1, "--accounts", "a.json", "--accounts", "b.json"], {}),
    ([S1, "--accounts", "--json"], {}),
    ([S1, "--policy="], {}),
    ([S1, "--engine", "Kernel"], {}),
    ([S1], {ENGINE_VAR: "fast"}),
    (["--", S1], {}),
    ([S1, ""], {}),
    (["-"], {}),
]


def typer_reads(argv: list[str], env: dict[str, str], monkeypatch: Any) -> dict[str, Any]:
    """The keywords typer's front passes to settle_bills for ``onestop settle ARGV``."""
    seen: dict[str, Any] = {}

    def record(*args: Any) -> None:
        names = list(inspect.signature(settle_bills).parameters)
        seen.update(zip(names, args, strict=True))

    monkeypatch.setattr(cli_settle, "settle_bills", record)
    r = CliRunner().invoke(app, ["settle", *argv], env={ENGINE_VAR: None, **env})
    assert r.exit_code == 0, r.output
    seen["bills"] = list(seen["bills"])
    seen["policy"] = list(seen["policy"]) if seen["policy"] else None
    return seen


@pytest.mark.parametrize(("argv", "env"), ACCEPTED)
def test_both_fronts_read_the_same(argv: list[str], env: dict[str, str], monkeypatch: Any) -> None:
    quick = settle_args(["settle", *argv], env)
    assert quick is not None
    want = typer_reads(argv, env, monkeypatch)
    defaults = {k: v.default for k, v in inspect.signature(settle_bills).parameters.items()}
    assert {**defaults, **quick} == want


@pytest.mark.parametrize(("argv", "env"), LEFT)
def test_anything_else_is_left_to_typer(argv: list[str], env: dict[str, str]) -> None:
    assert settle_args(["settle", *argv], env) is None


def test_not_settle_is_left_to_typer() -> None:
    for argv in (["policy", "check", "policies"], ["--version"], ["--help"], [], ["warm"]):
        assert settle_args(argv, {}) is None
    assert settle_args(["settle", S1], {"_ONESTOP_COMPLETE": "bash_complete"}) is None


def test_an_unreadable_path_is_left_to_typer(tmp_path: Path) -> None:
    f = tmp_path / "accounts.json"
    f.write_text("{}")
    assert settle_args(["settle", S1, "--accounts", str(f)], {}) is not None
    f.chmod(0)
    if not os.access(f, os.R_OK):
        assert settle_args(["settle", S1, "--accounts", str(f)], {}) is None
        return
    # root reads every file: ask a child that is root without the capabilities to do so
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root, and no setpriv (util-linux) to drop the read capabilities")
    code = (
        "import sys\nfrom adapters.cli.quickargs import settle_args\n"
        "print(settle_args(['settle', sys.argv[1], '--accounts', sys.argv[2]], {}) is None)"
    )
    r = subprocess.run(
        [setpriv, "--bounding-set", "-dac_override,-dac_read_search", sys.executable, "-c", code,
         S1, str(f)],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
        env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert (r.returncode, r.stdout.strip()) == (0, "True"), r.stderr


def shell(*argv: str) -> subprocess.CompletedProcess[str]:
    """``onestop ARGV`` in a fresh process (the console script's main); prints whether typer
    was imported as its last line on stderr."""
    code = (
        "import sys\nfrom adapters.cli.main import main\ntry:\n    main()\nfinally:\n"
        "    print('typer' in sys.modules, file=sys.stderr)"
    )
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT), "COLUMNS": "80"}
    return subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=120)  # fmt: skip


@pytest.mark.parametrize(
    "argv",
    [
        [S1, S2],
        [S2, S1, "--json", "--allocate"],
        ["policies/samples/nope.json"],
        [S1, "--slip", "x.txt"],
    ],
)
def test_from_a_shell_the_same_as_typer(argv: list[str], tmp_path: Path) -> None:
    """Slips, JSON, a refusal (exit 1) and a bad --slip (exit 2): stdout, stderr and the exit
    code of the typer-free front equal typer's; typer is not imported."""
    r = shell("settle", *argv)
    *err, typer_loaded = r.stderr.splitlines()
    assert typer_loaded == "False", r.stderr
    t = CliRunner().invoke(app, ["settle", *argv], env={ENGINE_VAR: None, "COLUMNS": "80"})
    assert (r.returncode, r.stdout, err) == (t.exit_code, t.stdout, t.stderr.splitlines())


def test_a_mistake_goes_to_typer_from_a_shell() -> None:
    r = shell("settle", S1, "--engine", "fast")
    *err, typer_loaded = r.stderr.splitlines()
    assert (r.returncode, typer_loaded) == (2, "True")
    assert "'fast' is not one of" in " ".join(err), err
