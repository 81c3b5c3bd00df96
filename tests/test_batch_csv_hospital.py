"""A CSV items file with a hospital column (bills told apart by hospital) settles; it ended in
a traceback (a pyarrow Array has no ``chunks``) when found by the Hong'an example."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_csv_items_with_a_hospital_column(tmp_path: Path) -> None:
    (tmp_path / "bills.csv").write_text(
        "bill_id,hospital,person_id,hospital_level,admission_date,discharge_date,household_id\n"
        "b1,H1,p1,county,2018-03-01,2018-03-05,h1\nb1,H2,p1,county,2018-04-01,2018-04-05,h1\n"
    )
    (tmp_path / "items.csv").write_text(
        "bill_id,hospital,category,amount\nb1,H1,A,100000\nb1,H2,A,200000\n"
    )
    (tmp_path / "persons.csv").write_text(
        "person_id,birth_date,household_id,tag\np1,1970-01-01,h1,registered_poor\n"
    )
    r = subprocess.run(
        [sys.executable, "-m", "adapters.cli.main", "batch", *(str(tmp_path / f) for f in
         ("bills.csv", "items.csv", "persons.csv")), "--policy", "policies/hongan/2018.yaml",
         "--out", str(tmp_path / "out"), "--quiet", "--json"],
        capture_output=True, text=True, cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "", "COLUMNS": "120"},
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["counts"]["bills_settled"] == 2
    assert doc["patients"]["billed"] == 300000
