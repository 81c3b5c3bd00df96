"""The pipelined batch run (adapters/batch/run.py ``run_local``: part N+1 read and part N-1
written in threads while part N settles): the same files as one part after the other, results
in part order, and every failure (a bad row, an unreadable part, a failed write) reported in
part order with nothing left behind as if complete."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from adapters.batch import run as R
from adapters.batch.io import InputFileError
from adapters.batch.plan import plan
from adapters.batch.run import Spec, finish, run_local
from engine.columnar.prepare import Prepared
from tests.test_batch_helpers import POLICY, inputs, make_data, read_out

ROOT = Path(__file__).resolve().parent.parent
OUTS = ("bills", "layers", "alerts", "closing")


def _spec(paths: list[str], out: Path, **kw) -> Spec:
    return Spec(*inputs(paths), policy=(POLICY,), out=str(out), **kw)


def test_overlapped_run_writes_the_files_of_one_part_after_the_other(tmp_path: Path) -> None:
    _, paths = make_data(tmp_path / "in", n_bills=240, items=6, seed=3)
    got = {}
    for overlap in (False, True):
        spec = _spec(paths, tmp_path / f"o{overlap}", overlap=overlap)
        parts, _, _ = plan(spec, 23)
        assert len(parts) > 5
        results = list(run_local(spec, parts))
        assert [r.k for r in results] == [p.k for p in parts]  # in part order
        assert all(r.written for r in results)
        finish(spec, ok=True)
        got[overlap] = results
    for name in OUTS:
        files = sorted(p.name for p in (tmp_path / "oTrue" / name).glob("*.parquet"))
        assert files == sorted(p.name for p in (tmp_path / "oFalse" / name).glob("*.parquet"))
        for f in files:  # part by part: rows, types and metadata
            a = pq.read_table(tmp_path / "oFalse" / name / f)
            assert a.equals(pq.read_table(tmp_path / "oTrue" / name / f), check_metadata=True)
        assert read_out(tmp_path / "oTrue", name).num_rows == read_out(
            tmp_path / "oFalse", name).num_rows  # fmt: skip
    assert [r.totals for r in got[True]] == [r.totals for r in got[False]]


def test_a_part_that_cannot_be_read_stops_the_run_in_part_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, paths = make_data(tmp_path / "in", n_bills=120, items=4, seed=4)
    spec = _spec(paths, tmp_path / "out")
    parts, _, _ = plan(spec, 20)
    read = R.read_part

    def failing(spec: Spec, part: R.Part) -> R.PartInput:
        if part.k == 3:
            raise InputFileError("items.parquet: cannot be read (test)")
        return read(spec, part)

    monkeypatch.setattr(R, "read_part", failing)
    seen = []
    with pytest.raises(InputFileError, match="cannot be read"):
        for r in run_local(spec, parts):
            seen.append(r.k)
    assert seen == [0, 1, 2]  # the parts before it, written, in order
    tmp = tmp_path / "out" / "_tmp"
    assert sorted(p.name for p in (tmp / "bills").glob("*.parquet")) == [
        f"part-{k:05d}.parquet" for k in (0, 1, 2)
    ]
    finish(spec, ok=False)  # what the command does next: nothing is left
    assert not tmp.exists() and not (tmp_path / "out" / "bills").exists()


def test_a_failed_write_is_raised_and_no_write_runs_after_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, paths = make_data(tmp_path / "in", n_bills=120, items=4, seed=5)
    spec = _spec(paths, tmp_path / "out")
    parts, _, _ = plan(spec, 20)
    write = R.write_part

    def failing(spec: Spec, k: int, prep: Prepared, buffers: Any = None) -> None:
        if k == 1:
            raise OSError(28, "No space left on device (test)")
        write(spec, k, prep, buffers)

    monkeypatch.setattr(R, "write_part", failing)
    seen = []
    with pytest.raises(OSError, match="No space left"):
        for r in run_local(spec, parts):
            seen.append(r.k)
    assert seen == [0]
    written = sorted(p.name for p in (tmp_path / "out" / "_tmp" / "bills").glob("*.parquet"))
    assert "part-00001.parquet" not in written and len(written) <= 2  # parts 0 and 2 at most


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "adapters.batch.cli", "batch", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_a_bad_row_in_a_later_part_names_file_row_and_field_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    tables, paths = make_data(tmp_path / "in", n_bills=200, items=4, seed=6)
    b = tables[0].to_pydict()
    b["hospital_level"][150] = "moon"  # part 7 of parts of 20 bills: parts 0-6 are written
    pq.write_table(pa.table(b), paths[0])
    out = tmp_path / "out"
    r = _cli(*paths, "--policy", POLICY, "--out", str(out), "--quiet", "--chunk-bills", "20")
    assert r.returncode == 1, r.stderr
    assert "bills.parquet row 150: hospital_level:" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert out.exists() and not any(out.iterdir())  # parts 0-6 were written, then dropped

    # an item of a later part
    pq.write_table(tables[0], paths[0])
    it = tables[1].to_pydict()
    row = len(it["amount"]) - 30  # in the last part
    it["amount"][row] = -120
    pq.write_table(pa.table(it), paths[1])
    r = _cli(*paths, "--policy", POLICY, "--out", str(out), "--quiet", "--chunk-bills", "20")
    assert r.returncode == 1, r.stderr
    assert f"items.parquet row {row}: amount: -120 is negative" in r.stderr, r.stderr
    assert not out.exists() or not any(out.iterdir())
