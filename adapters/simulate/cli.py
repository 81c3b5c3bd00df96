"""``onestop simulate-report``: render a saved ``report.json`` of ``onestop simulate`` again.

    onestop simulate-report out/report.json --out again/ [--json]

Writes ``report.html``, ``report.json`` and the CSV tables (adapters/simulate/report.py) under
``--out``; ``--json`` prints the list of files written. Exit codes (adapters/cli/exitcodes.py):
0 written; 1 the file is missing, not JSON or not the ``onestop.simulate/1`` figures, or the
output cannot be written (one line naming the file and the place). Nothing is written when the
figures are refused.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from adapters.cli.exitcodes import Exit
from adapters.cli.output import print_json
from adapters.simulate.report import write_report  # matplotlib, jinja2: the report extra
from adapters.simulate.schema import FiguresError


def _error(msg: str, code: Exit = Exit.REFUSED) -> NoReturn:
    print(f"error: {msg}", file=sys.stderr, flush=True)
    raise typer.Exit(code)


def simulate_report(
    figures: Annotated[
        Path, typer.Argument(metavar="FIGURES.json", help="report.json of onestop simulate.")
    ],
    out: Annotated[Path, typer.Option("--out", metavar="DIR", help="Write the report here.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the files written.")] = False,
) -> None:
    """Render the bureau's report (report.html with charts, report.json, CSV tables) from the
    figures of onestop simulate."""
    try:
        text = figures.read_text(encoding="utf-8")
    except FileNotFoundError:
        _error(f"{figures}: no such file")
    except (OSError, UnicodeDecodeError) as e:
        _error(f"{figures}: cannot be read: {getattr(e, 'strerror', None) or e}")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        _error(f"{figures}: not JSON (line {e.lineno} column {e.colno}: {e.msg})")
    try:
        written = write_report(doc, out)
    except FiguresError as e:
        _error(f"{figures}: not the figures of onestop simulate: {e}")
    except OSError as e:
        _error(f"cannot write {e.filename or out}: {e.strerror or e}")
    if as_json:
        print_json([str(p) for p in written])
        return
    for p in written:
        print(p)
