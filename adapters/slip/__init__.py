"""The printed slip: HTML and PDF (``adapters.slip.render``), amounts in capitals
(``adapters.slip.capitals``). This module imports neither jinja2 nor WeasyPrint: the CLI checks
``--slip`` here before it settles anything, and renders only when asked."""

from __future__ import annotations

from pathlib import Path

SLIP_SUFFIXES = (".pdf", ".html", ".htm")
SLIP_HELP = "Also write the printed slip (结算单) to FILE: PDF for .pdf, HTML for .html."


def slip_path_problem(path: Path | None) -> str:
    """'' when ``path`` is None or names a .pdf/.html file in an existing folder; else why not."""
    if path is None:
        return ""
    if path.suffix.lower() not in SLIP_SUFFIXES:
        return f"--slip {path}: the slip is written as .pdf or .html (by the file's extension)"
    if not path.parent.is_dir():
        return f"--slip {path}: no such folder {path.parent}"
    return ""
