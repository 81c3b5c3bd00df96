"""``onestop``, the console script: a plain ``onestop settle`` is read and settled without
importing typer (adapters/cli/quickargs.py, adapters/cli/settle.py); every other command
line goes to the typer app (adapters/cli/app.py: the commands, their help and usage errors).

Exit codes: one table for every command (adapters/cli/exitcodes.py, printed by ``--help``).
"""

from __future__ import annotations

import errno
import gc
import os
import sys

from adapters.cli.pydantic_plugins import skip_scan
from adapters.cli.quickargs import settle_args


def main() -> None:
    argv = sys.argv[1:]
    skip_scan(argv)  # before pydantic builds a validator (adapters/cli/pydantic_plugins.py)
    try:
        if (args := settle_args(argv, os.environ)) is None:
            from adapters.cli.app import app

            app(prog_name="onestop")
        else:
            _settle(args)
    except OSError as e:  # a file or directory the user named cannot be read or written
        where = f"{e.filename}: " if e.filename else ""
        print(f"onestop: {where}{e.strerror or e}", file=sys.stderr)
        sys.exit(1)  # the input was refused (adapters/cli/exitcodes.py)


def _settle(args: dict[str, object]) -> None:
    """``settle_bills(**args)`` as typer's standalone mode would end it: Ctrl-C exits 130, a
    closed stdout (``| head``) exits 1 without a traceback.

    Importing what settles (pydantic and the models, rich, PyYAML) allocates objects that live
    until the process ends: the cycle collector ran ~60 times over them (~15 ms of a ~330 ms
    settle's CPU). So it is off while they are imported, and they are frozen out of its later
    runs (``gc.freeze``); it is on again before any bill is read, whatever their number."""
    gc.disable()
    try:
        from adapters.cli.settle import settle_bills
    finally:
        gc.freeze()
        gc.enable()
    try:
        settle_bills(**args)  # type: ignore[arg-type]
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
    sys.exit(main())
