"""The system Chromium for the page tests: playwright drives it by path (no browser download;
.ci/run installs the chromium package). A test skips, saying why, only where there is none."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium browser (``--no-sandbox`` when running as root), closed after."""
    sync_api = pytest.importorskip("playwright.sync_api")
    path = chromium_path()
    if path is None:
        pytest.skip("no Chromium found (chromium on PATH or /usr/bin/chromium); install it")
    with sync_api.sync_playwright() as p:
        args = ["--no-sandbox"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []
        b = p.chromium.launch(executable_path=path, headless=True, args=args)
        try:
            yield b
        finally:
            b.close()
