"""pydantic's plugin scan, skipped by the short commands (issue 13, target 12).

The first validator a process builds (typer's option parsing builds some, then the bill and
policy models) makes pydantic import ``pydantic.plugin._loader``, which imports
``importlib.metadata`` (with email, zipfile, csv and socket) and reads the entry points of every
installed distribution to find pydantic plugins (observability tools such as logfire): 50-75 ms
of a cached ``onestop settle``'s ~0.6 s, for plugins onestop does not use (none is installed by
any extra).

So ``onestop`` puts a stand-in loader that finds no plugin where pydantic looks for its own,
before anything builds a validator. Not for the servers (``serve``, ``serve-http``: long-lived,
where an operator may instrument pydantic), and not when ``PYDANTIC_DISABLE_PLUGINS`` is set at
all: then pydantic reads it as it documents (set it empty to load every plugin the command
line's way too). tests/test_startup.py checks both ways and that pydantic still imports its
loader by that name (a pydantic that moved it would make the stand-in inert, not wrong).
"""

from __future__ import annotations

import os
import sys
import types
from collections.abc import Iterable, Sequence
from typing import Any

#: where pydantic (2.x: ``pydantic/plugin/_schema_validator.py``) imports ``get_plugins`` from
LOADER = "pydantic.plugin._loader"
#: commands that keep pydantic's plugin loading as it is
SERVERS = frozenset({"serve", "serve-http"})


def _no_plugins() -> Iterable[Any]:
    return ()


def skips_scan(argv: Sequence[str], environ: dict[str, str] | os._Environ[str]) -> bool:
    """Whether ``onestop ARGV`` runs without pydantic's plugin scan."""
    command = next((a for a in argv if not a.startswith("-")), "")
    return command not in SERVERS and "PYDANTIC_DISABLE_PLUGINS" not in environ


def skip_scan(argv: Sequence[str]) -> None:
    """Install the stand-in loader for ``onestop ARGV`` (see the module's text); a no-op when
    pydantic's own loader is already imported."""
    if LOADER in sys.modules or not skips_scan(argv, os.environ):
        return
    stand_in = types.ModuleType(LOADER, "onestop: pydantic plugins are not loaded (no scan)")
    vars(stand_in).update(get_plugins=_no_plugins)  # its namespace: the name pydantic imports
    sys.modules[LOADER] = stand_in
