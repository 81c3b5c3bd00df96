"""The files of a simulation: changed.csv (here) and the report (adapters/simulate/report.py).

``write_report(figures, out_dir)`` of adapters/simulate/report.py writes report.html,
report.json and the CSV files of the figures. Until that module is in the tree, the figures
are written as report.json alone (``write_report_json``); the ImportError fallback is a
temporary seam, to go when report.py lands.
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


def write_report(figures: dict[str, Any], out_dir: Path) -> list[Path]:
    """The report files: adapters/simulate/report.py's when present, else report.json."""
    try:  # temporary seam: report.py is being written by another engineer (issue 12 item 3)
        from adapters.simulate.report import write_report as full
    except ImportError:
        return write_report_json(figures, out_dir)
    return full(figures, out_dir)
