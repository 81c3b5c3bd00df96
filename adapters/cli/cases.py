"""``onestop test``: run the case files bureaus write (engine/casefile.py, engine/cases.py).

Per case PASS, FAIL (every figure that differs: bill, field, expected, got, difference in yuan
and fen, the explanation line of that layer) or ERROR (the engine refused the case's bills),
then a summary line. Exit 0 when every case passes, 8 when one fails, 1 when a case file is
malformed or a case's bills are refused, 3 when ``-k`` selects no case.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from adapters.cli.exitcodes import Exit
from adapters.cli.output import console, print_json, problem_line, text
from engine.casefile import load_cases
from engine.cases import ENGINES, CaseResult, Mismatch, run_case
from engine.errors import OnestopError, PolicyError
from engine.money import yuan
from engine.policy.load import load_policies

out = console()
err = console(stderr=True)


class Engines(StrEnum):
    reference = "reference"
    kernel = "kernel"
    both = "both"


def _shown(value: object, kind: str) -> str:
    if value is None:
        return "no such layer in the settlement"
    if kind in ("money",) and isinstance(value, int):
        return f"{yuan(value)} ({value} fen)"
    if kind == "text":
        return repr(value or "none")
    return str(value).lower() if isinstance(value, bool) else str(value)


def mismatch_line(m: Mismatch) -> str:
    c = m.check
    at = f" (line {c.line})" if c.line else ""
    line = (
        f"bill {c.bill}, {c.field}{at}: expected {_shown(c.expected, c.kind)}, "
        f"got {_shown(m.got, c.kind)}"
    )
    d = m.difference
    if d is not None:
        sign = "+" if d > 0 else ""
        line += (
            f", difference {sign}{yuan(d)} ({sign}{d} fen)"
            if c.kind == "money"
            else (f", difference {sign}{d}")
        )
    return line + f" [{', '.join(m.engines)}]"


def result_json(r: CaseResult) -> dict[str, Any]:
    """One case: file, line, name, status (pass, fail, error), engines, failures (money in
    fen; difference = got - expected), problems."""
    c = r.case
    return {
        "file": c.file, "line": c.line, "name": c.name, "status": r.status,
        "engines": list(r.engines),
        "failures": [
            {
                "bill": m.check.bill, "field": m.check.field, "line": m.check.line,
                "kind": m.check.kind, "expected": m.check.expected, "got": m.got,
                "difference": m.difference, "engines": list(m.engines),
                "explanation": [{"en": x.en, "zh": x.zh} for x in m.explanation],
            }
            for m in r.mismatches
        ],
        "problems": list(r.problems),
    }  # fmt: skip


def summary(results: list[CaseResult]) -> dict[str, int]:
    n = {s: sum(r.status == s for r in results) for s in ("pass", "fail", "error")}
    return {"cases": len(results), "passed": n["pass"], "failed": n["fail"], "errors": n["error"]}


def exit_code(results: list[CaseResult]) -> Exit:
    if any(r.status == "error" for r in results):
        return Exit.REFUSED
    return Exit.CASES_FAILED if any(r.status == "fail" for r in results) else Exit.OK


def _refuse(e: OnestopError, as_json: bool) -> None:
    problems = e.problems if isinstance(e, PolicyError) else [e]
    for p in problems:  # one line each (YAML's own messages span lines)
        problem_line(err, "refused:", " ".join(x.strip() for x in str(p).splitlines()))
    if as_json:
        print_json({
            "cases": [], "summary": summary([]), "exit_code": int(Exit.REFUSED),
            "problems": [
                {"file": p.file, "line": p.line, "field": p.path, "reason": p.reason}
                if not isinstance(p, OnestopError) else {"reason": str(p)}
                for p in problems
            ],
        })  # fmt: skip
    raise typer.Exit(Exit.REFUSED)


def test_cases(
    paths: Annotated[
        list[Path],
        typer.Argument(metavar="PATH...", help="Case files (*.yaml) or folders of them."),
    ],
    policy: Annotated[
        list[Path] | None,
        typer.Option(
            metavar="PATH",
            help="Policy table file or folder (repeatable), for the cases that name no policy.",
        ),
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print the results as JSON (money in fen)."),
    ] = False,
    select: Annotated[
        str | None,
        typer.Option(
            "-k", metavar="TEXT", help="Only the cases whose name contains TEXT (any case)."
        ),
    ] = None,
    engine: Annotated[
        Engines,
        typer.Option(
            help="Which engine must match the expectations; both: the reference and the kernel."
        ),
    ] = Engines.both,
) -> None:
    """Run case files: settle each case's bills and compare every figure it expects. Exit 0
    all pass, 8 a case failed, 1 a malformed case file or refused bills, 3 -k selects none."""
    try:
        tables = load_policies(*policy) if policy else None
        cases = load_cases(paths, tables)
    except OnestopError as e:
        _refuse(e, as_json)
    if select is not None:
        cases = [c for c in cases if select.casefold() in c.name.casefold()]
        if not cases:
            problem_line(err, "not found:", f"no case name contains {select!r}")
            raise typer.Exit(Exit.NOT_FOUND)
    engines = ENGINES if engine is Engines.both else (engine.value,)
    results = [run_case(c, engines) for c in cases]
    code = exit_code(results)
    if as_json:
        print_json({
            "cases": [result_json(r) for r in results], "summary": summary(results),
            "exit_code": int(code), "problems": [],
        })  # fmt: skip
        raise typer.Exit(code)
    for r in results:
        out.print(text(f"{r.status.upper():5} {r.case.where}  {r.case.name}"))
        for m in r.mismatches:
            out.print(text(f"  {mismatch_line(m)}"))
            for x in m.explanation:
                out.print(text(f"      {x.en}"))
        for p in r.problems:
            out.print(text(f"  refused: {p}"))
    n = summary(results)
    out.print(text(
        f"{n['cases']} case(s): {n['passed']} passed, {n['failed']} failed, {n['errors']} "
        f"refused (engines: {', '.join(engines)}); exit {int(code)}"
    ))  # fmt: skip
    raise typer.Exit(code)
