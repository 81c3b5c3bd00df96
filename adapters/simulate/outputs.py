"""The files of a simulation: changed.csv (here) and the report (adapters/simulate/report.py).

``write_report(figures, out_dir)`` of adapters/simulate/report.py writes report.html,
report.json and the CSV files of the figures. report.html needs the ``report`` extra
(matplotlib, jinja2); without it the simulation still writes report.json and the CSV files and
says which extra to install, because the figures are the result and the page only shows them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv

from engine.simulate.figures import CHANGED_COLUMNS

CHANGED_FILE = "changed.csv"


def write_changed(cols: dict[str, Any], out_dir: Path) -> Path:
    """Every changed bill, one row each (integer fen; ``reasons`` joined by '; ')."""
    out_dir.mkdir(parents=True, exist_ok=True)
    t = pa.table({
        c: pa.array(np.asarray(cols[c]).tolist(), pa.string() if cols[c].dtype == object
                    else pa.int64())
        for c in CHANGED_COLUMNS
    })  # fmt: skip
    path = out_dir / CHANGED_FILE
    pcsv.write_csv(t, path)
    return path


def write_report_json(figures: dict[str, Any], out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "report.json"
    path.write_text(json.dumps(figures, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return [path]


# what report.html needs beyond the batch extra (pyproject.toml's ``report`` extra)
REPORT_MODULES = frozenset({"matplotlib", "jinja2", "markupsafe"})
NO_HTML = "report.html not written: {} is not installed (pip install 'onestop[report]')"


def write_report(figures: dict[str, Any], out_dir: Path) -> tuple[list[Path], str | None]:
    """The report files and, when report.html could not be made, the one-line reason."""
    try:
        from adapters.simulate.report import write_report as full
    except ModuleNotFoundError as e:
        if (e.name or "").split(".")[0] not in REPORT_MODULES:
            raise
        from adapters.simulate.tables import csv_text, tables

        written = write_report_json(figures, out_dir)
        for name, rows in tables(figures):
            path = out_dir / name
            path.write_text(csv_text(name, rows), encoding="utf-8-sig", newline="")
            written.append(path)
        return written, NO_HTML.format((e.name or "").split(".")[0])
    return full(figures, out_dir), None
