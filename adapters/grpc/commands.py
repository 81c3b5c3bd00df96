"""Commands of the gRPC adapter: ``serve`` and the window client (``window settle``, ...).

Mounted by the ``onestop`` CLI (``onestop serve``, ``onestop window ...``); also runnable alone:

    python -m adapters.grpc.commands serve
    python -m adapters.grpc.commands window settle policies/samples/longzhou-1.json

Each lives in its own module: ``servecmd`` (serve), ``windowcmds`` (with
``windowcalls``, imported once the options and bill file are checked), ``bureaucmds`` (with
``reconcileview``), sharing ``clicommon`` (consoles, options, refusals) and ``figures`` (exact
yuan, folding tables).
"""

from __future__ import annotations

import sys

import typer

from adapters.grpc.bureaucmds import bureau_app
from adapters.grpc.clicommon import EPILOG
from adapters.grpc.servecmd import serve
from adapters.grpc.windowcmds import window_app

app = typer.Typer(help="onestop gRPC adapter (standalone).", no_args_is_help=True, epilog=EPILOG)
app.command("serve", epilog=EPILOG)(serve)
app.add_typer(window_app, name="window")
app.add_typer(bureau_app, name="bureau")


if __name__ == "__main__":
    sys.exit(app())
