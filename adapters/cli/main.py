"""``onestop``, the console script: a plain ``onestop settle`` is read and settled without
importing typer (adapters/cli/quickargs.py, adapters/cli/settle.py); every other command
line goes to the typer app (adapters/cli/app.py: the commands, their help and usage errors).

Exit codes: one table for every command (adapters/cli/exitcodes.py, printed by ``--help``).
"""

from __future__ import annotations

import errno
import gc
import importlib
import os
import sys
from typing import Any

from adapters.cli.pydantic_plugins import skip_scan
from adapters.cli.quickargs import settle_args


def main() -> None:
    argv = sys.argv[1:]
    batch = argv[:1] == ["batch"]
    if batch:  # its allocators keep freed memory (adapters/batch/memory.py)
        from adapters.batch.memory import reexec_keeping_memory

        reexec_keeping_memory()
    skip_scan(argv)  # before pydantic builds a validator (adapters/cli/pydantic_plugins.py)
    if batch:  # a refused run ends without joining its prefetch threads (exit_refused)
        _imported("adapters.batch.prefetch").EXIT_REFUSED_AT_ONCE = True
        # pyarrow's to_numpy would import pandas, unused (adapters/batch/nopandas.py)
        _imported("adapters.batch.nopandas").keep_pandas_out(argv[1:])
    try:
        if (args := settle_args(argv, os.environ)) is None:
            _imported("adapters.cli.app").app(prog_name="onestop")
        else:
            _settle(args)
    except SystemExit as e:  # a refused batch run ends without waiting for its prefetch
        if batch and isinstance(e.code, int) and e.code:
            _imported("adapters.batch.prefetch").exit_refused(e.code)
        if batch and not e.code:
            _end_finished_batch()
        raise
    except OSError as e:  # a file or directory the user named cannot be read or written
        where = f"{e.filename}: " if e.filename else ""
        print(f"onestop: {where}{e.strerror or e}", file=sys.stderr)
        sys.exit(1)  # the input was refused (adapters/cli/exitcodes.py)


def _end_finished_batch() -> None:
    """End a finished ``onestop batch`` process at once (``os._exit(0)``), without the
    interpreter's teardown: its output files are written and closed, its threads ended
    (``settle_files`` waits for them), and what the teardown would do is free ~1 GB of
    arrays and every module one object at a time, on one core, after the work: 0.13-0.19 s
    of a run, summary to exit (benchmarks/README.md, branch batch9). stdout and stderr are flushed first;
    returns (the process then exits as usual) if that flush fails or a Python thread that is
    not a daemon still runs."""
    import threading

    if any(not t.daemon and t is not threading.main_thread() for t in threading.enumerate()):
        return
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        return
    os._exit(0)


def _imported(module: str) -> Any:
    """``module``, imported with the cycle collector off, its objects then frozen out of the
    collector's later runs (``gc.freeze``) and the collector on again.

    What a command imports first (typer and rich for the app; pydantic and the models, rich and
    PyYAML for a plain settle) allocates objects that live until the process ends: the
    collector ran ~35 times over the app's (~8 ms of a ~95 ms ``onestop --version``) and ~60
    times over settle's (~15 ms of ~230 ms), and once more over all of them at exit. It is on
    again before any command runs, so a large input or a long-lived server is collected as
    before."""
    gc.disable()
    try:
        return importlib.import_module(module)
    finally:
        gc.freeze()
        gc.enable()


def _settle(args: dict[str, object]) -> None:
    """``settle_bills(**args)`` as typer's standalone mode would end it: Ctrl-C exits 130, a
    closed stdout (``| head``) exits 1 without a traceback."""
    settle_bills = _imported("adapters.cli.settle").settle_bills
    try:
        settle_bills(**args)
    except KeyboardInterrupt:
        sys.exit(130)
    except OSError as e:
        if e.errno != errno.EPIPE:
            raise
        from typer._click.utils import PacifyFlushWrapper  # as typer's _main does

        sys.stdout = PacifyFlushWrapper(sys.stdout)
        sys.stderr = PacifyFlushWrapper(sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
