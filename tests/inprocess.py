"""``onestop ARGS`` run in the test process: the console script's own ``main`` (a plain
``onestop settle`` by its quick path, every other command line by the typer app), its stdout
and stderr captured, its exit code taken from ``SystemExit``: what a shell run prints, without
the ~0.6-1.5 s of CPU a process start costs (the imports of typer, rich, pydantic and numba).

For tests that check words or figures; never ``onestop batch`` (``main`` re-executes the
process for it and ends a finished run with ``os._exit``). A test of the process itself (a terminal or not, what
a start imports, a signal) runs ``onestop`` from a shell; each command keeps one such run.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def _columns(columns: int) -> Iterator[None]:
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(columns)
    try:
        yield
    finally:
        if old is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = old


def onestop_in_process(*args: str, columns: int = 40) -> subprocess.CompletedProcess[str]:
    """What ``onestop ARGS`` exits with and prints to stdout and stderr (COLUMNS=columns; the
    output is not a terminal). An exception other than the command's exit is raised, never
    taken for an exit code."""
    from adapters.cli.main import main

    if args[:1] == ("batch",):  # it re-executes the process and ends it with os._exit
        raise ValueError("onestop batch runs from a shell, never in a test process")
    out, err = io.StringIO(), io.StringIO()
    argv, code = sys.argv, 0
    sys.argv = ["onestop", *args]
    try:
        with _columns(columns), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main()
    except SystemExit as e:
        if isinstance(e.code, str):  # as the interpreter does at exit
            print(e.code, file=err)
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        sys.argv = argv
    return subprocess.CompletedProcess(["onestop", *args], code, out.getvalue(), err.getvalue())
