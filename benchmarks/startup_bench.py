"""Start-up as a user sees it (issue 13): ``onestop settle policies/samples/<bill>.json``, the
whole process from exec to exit, cached and cold, interleaved; then where the import time goes.

    python -m benchmarks.startup_bench [--sample longzhou-1.json] [--rounds 5]
        [--no-cold] [--baseline main] [--floor] [--engine kernel]

- **cached**: a copy of this tree (engine/, adapters/, policies/) whose bytecode and numba
  cache were written by an earlier run (the warm-up): what every later ``onestop settle``
  of a user costs.
- **cold** (labelled): a fresh copy of the tree for every run (no ``__pycache__``) and an empty
  ``NUMBA_CACHE_DIR``: a fresh checkout's first ``onestop settle`` (the installed libraries
  keep the bytecode pip wrote at install, as on a user's machine).
- Both run the venv's ``onestop`` console script with ``PYTHONPATH`` set to the copy (checked:
  the child imports the copy), ``PYTHONDONTWRITEBYTECODE`` unset (a user's default).
- ``python -X importtime`` of the same command (cached copy): the modules that cost most,
  cumulative and self.
- ``--baseline REV``: the same cached run on a copy of REV's engine/, adapters/, policies/
  (``git archive``), interleaved with this tree's: an A/B of old and new code in one run.
- ``--floor``: what every ``onestop`` process pays before any of its work, each a whole process
  interleaved with the others: ``python -c pass``, importing rich + pydantic + yaml (what a
  plain ``onestop settle`` loads), typer + rich (the other commands' CLI), + pydantic + yaml,
  and ``onestop --version``.
- ``--engine``: also ``onestop settle --engine ENGINE`` (e.g. ``kernel``: numba's import and
  dispatch; the default ``auto`` settles a sample bill with the plain reference).

Rules of benchmarks/harness.py: warm-up, interleaved rounds, min / median / max, the load.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import typer

from benchmarks import harness as H

ROOT = H.ROOT
ONESTOP = Path(sys.executable).with_name("onestop")
TREE = ("engine", "adapters", "policies")
#: packages of the optional extras and dev tools (pyproject.toml): none is needed to settle a bill
NOT_BASE = ("pytest", "hypothesis", "pandas", "polars", "pytest_benchmark", "playwright", "grpc",
            "google", "sqlalchemy", "alembic", "psycopg", "cryptography", "pyarrow", "dask",
            "distributed", "matplotlib", "jinja2", "weasyprint", "fastapi", "uvicorn", "httpx",
            "fhir", "mypy", "ruff")  # fmt: skip


def copy_tree(dest: Path) -> Path:
    """The checked-in files of engine/, adapters/, policies/ (no bytecode, no numba cache)."""
    files = subprocess.run(["git", "ls-files", *TREE], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout.split()  # fmt: skip
    for f in files:
        (dest / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / f, dest / f)
    return dest


def env_for(tree: Path, cache: Path) -> dict[str, str]:
    return H.user_env(tree, NUMBA_CACHE_DIR=str(cache))


def importtime(tree: Path, cache: Path, argv: list[str], top: int) -> dict[str, Any]:
    code = ("import sys; sys.argv = " + repr(["onestop", *argv]) +
            "\nfrom adapters.cli.main import main\ntry:\n    main()\nexcept SystemExit:\n    pass")  # fmt: skip
    r = subprocess.run([sys.executable, "-X", "importtime", "-c", code], cwd=tree,
                       env=env_for(tree, cache), capture_output=True, text=True, check=False)  # fmt: skip
    rows = []
    for line in r.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)", line)
        if m:
            rows.append((int(m[1]), int(m[2]), len(m[3]), m[4]))
    total = sum(s for s, _, _, _ in rows)
    first = sorted((r for r in rows if r[2] <= 2), key=lambda r: -r[1])[:top]
    self_ = sorted(rows, key=lambda r: -r[0])[:top]
    extras = sorted({n.split(".")[0] for _, _, _, n in rows} & set(NOT_BASE))
    return {"total_s": total / 1e6, "modules": len(rows), "not_base": extras,
            "top_level_cumulative": [(n, c / 1e6) for _, c, _, n in first],
            "self": [(n, s / 1e6) for s, _, _, n in self_]}  # fmt: skip


def baseline_contender(work: Path, rev: str, argv: list[str]) -> H.Contender:
    """``onestop ARGV`` on a copy of ``rev``'s tree, with its own numba cache (cached after the
    warm-up round, as this tree's)."""
    tree = work / "baseline"
    tree.mkdir()
    tar = subprocess.run(["git", "archive", rev, *TREE], cwd=ROOT, capture_output=True,
                         check=True).stdout  # fmt: skip
    subprocess.run(["tar", "-x", "-C", str(tree)], input=tar, check=True)
    sha = subprocess.run(["git", "rev-parse", "--short", rev], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout.strip()  # fmt: skip
    env = env_for(tree, work / "baseline-numba")

    def run(_: Any) -> None:
        H.timed_process([str(ONESTOP), *argv], env, cwd=tree)

    return H.Contender(f"cached, baseline {rev} ({sha}): onestop {' '.join(argv)}", run)


#: the floor of every onestop process: (label, python -c code); a plain ``onestop settle`` loads
#: no typer (adapters/cli/quickargs.py), the other commands do
FLOOR = (
    ("floor: python -c pass", "pass"),
    (
        "floor: settle's libraries: rich (console, table), pydantic, yaml",
        "import rich.console, rich.table, pydantic, yaml",
    ),
    (
        "floor: import typer, rich (console, table)",
        "import typer, typer.main, rich.console, rich.table, typer._adapters",
    ),
    (
        "floor: + pydantic, yaml",
        "import typer, typer.main, rich.console, rich.table, typer._adapters, pydantic, yaml",
    ),
)


def floor_contenders(tree: Path, cache: Path) -> list[H.Contender]:
    env = env_for(tree, cache)
    out = []
    for label, code in FLOOR:

        def run(_: Any, code: str = code) -> None:
            H.timed_process([sys.executable, "-c", code], env, cwd=tree)

        out.append(H.Contender(label, run))

    def version(_: Any) -> None:
        H.timed_process([str(ONESTOP), "--version"], env, cwd=tree)

    return [*out, H.Contender("floor: onestop --version", version)]


def main(
    sample: str = typer.Option("longzhou-1.json", help="a bill of policies/samples/"),
    rounds: int = typer.Option(5, help="timed rounds (after one warm-up each)"),
    top: int = typer.Option(15, help="modules listed from -X importtime"),
    out: Path = typer.Option(ROOT / "benchmarks/out/startup_bench.json"),
    cold: bool = typer.Option(True, help="also the cold run (fresh tree, empty numba cache)"),
    baseline: str = typer.Option("", help="a git revision to compare with, cached (A/B)"),
    floor: bool = typer.Option(False, help="also the floor: python, typer+rich, pydantic+yaml"),
    engine: str = typer.Option("", help="also settle with --engine ENGINE (e.g. kernel)"),
) -> None:
    m = H.machine()
    print(H.machine_line(m), flush=True)
    argv = ["settle", f"policies/samples/{sample}"]
    work = Path(tempfile.mkdtemp(prefix="startup-bench-"))
    try:
        cached_tree = copy_tree(work / "cached")
        cached_cache = work / "cached-numba"
        probe = subprocess.run([sys.executable, "-c", "import adapters, engine; "
                                "print(adapters.__file__, engine.__file__)"], cwd=cached_tree,
                               env=env_for(cached_tree, cached_cache), capture_output=True,
                               text=True, check=True).stdout.strip()  # fmt: skip
        assert str(cached_tree) in probe, probe
        print(f"the child imports {probe}", flush=True)
        n = [0]

        def fresh() -> tuple[Path, Path]:
            n[0] += 1
            d = work / f"cold-{n[0]}"
            return copy_tree(d), d / "numba-empty"

        def cold_run(state: tuple[Path, Path]) -> None:
            tree, cache = state
            H.timed_process([str(ONESTOP), *argv], env_for(tree, cache), cwd=tree)
            shutil.rmtree(tree, ignore_errors=True)  # the copy and its numba cache

        def cached(_: Any) -> None:
            H.timed_process([str(ONESTOP), *argv], env_for(cached_tree, cached_cache),
                            cwd=cached_tree)  # fmt: skip

        cs = [H.Contender(f"cached: onestop {' '.join(argv)}", cached)]
        if cold:
            cs.append(H.Contender(f"cold: onestop {' '.join(argv)}", cold_run, fresh))
        if baseline:
            cs.append(baseline_contender(work, baseline, argv))
        if engine:
            eargv = [*argv, "--engine", engine]

            def forced(_: Any) -> None:
                H.timed_process([str(ONESTOP), *eargv], env_for(cached_tree, cached_cache),
                                cwd=cached_tree)  # fmt: skip

            cs.append(H.Contender(f"cached: onestop {' '.join(eargv)}", forced))
        if floor:
            cs += floor_contenders(cached_tree, cached_cache)
        figs = H.interleave(cs, rounds, say=lambda s: print(s, flush=True))
        for c in cs:
            figs[c.name].cold = c.name.startswith("cold")
        imp = importtime(cached_tree, cached_cache, argv, top)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("\n## whole process, exec to exit")
    for f in figs.values():
        print(f.line())
    print(f"\n## python -X importtime (cached): {imp['total_s']:.3f} s of imports in "
          f"{imp['modules']} modules (self times summed)")  # fmt: skip
    print(f"packages of optional extras or dev tools imported: {imp['not_base'] or 'none'}")
    print("imports of the first two levels by cumulative time:")
    for name, s in imp["top_level_cumulative"]:
        print(f"  {s * 1e3:8.1f} ms  {name}")
    print("modules by self time:")
    for name, s in imp["self"]:
        print(f"  {s * 1e3:8.1f} ms  {name}")
    H.save(out, {"machine": m, "argv": argv, "figures": figs, "importtime": imp,
                 "load_at_end": os.getloadavg()})  # fmt: skip
    print(f"\nload average at the end: {os.getloadavg()}")


if __name__ == "__main__":
    typer.run(main)
