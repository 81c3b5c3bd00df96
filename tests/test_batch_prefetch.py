"""What a batch run starts beside its plan (adapters/batch/prefetch.py): the persons file read
once into the cache the parts use, the inputs' digests equal to the files' SHA-256, and a bad
persons file still refused where it was, with the same message."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from adapters.batch import run as R
from adapters.batch.io import InputFileError
from adapters.batch.prefetch import Prefetch
from engine.columnar.inputs import Coded
from tests.test_batch_helpers import POLICY, inputs, make_data


def _spec(paths: list[str], out: Path) -> R.Spec:
    return R.Spec(*inputs(paths), policy=(POLICY,), out=str(out))


def test_persons_read_beside_the_plan_are_the_ones_the_parts_use(tmp_path: Path) -> None:
    _, paths = make_data(tmp_path / "in", n_bills=60, items=3, seed=11)
    spec = _spec(paths, tmp_path / "out")
    R._persons_read.cache_clear()
    pre = Prefetch(spec, persons=True, digest_paths=[])
    cols, labels, keys = R._persons(spec.persons)  # at once: waits for the thread's read, or reads
    pre.close()
    info = R._persons_read.cache_info()
    assert info.currsize == 1 and info.misses == 1  # read once, not twice
    assert R._persons(spec.persons)[0] is cols
    R._persons_read.cache_clear()
    again, labels2, keys2 = R._persons(spec.persons)
    assert labels is None and labels2 is None  # ids of one width: keys, no strings
    assert keys is not None and keys2 is not None and list(keys.keys) == list(keys2.keys)
    assert isinstance(cols.person_id, Coded) and isinstance(again.person_id, Coded)
    assert (cols.person_id.codes == again.person_id.codes).all()


def test_digests_are_the_files_sha256(tmp_path: Path) -> None:
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    a.write_bytes(b"x" * 3_000_001)
    b.write_bytes(b"yz")
    (tmp_path / "d").mkdir()
    spec = R.Spec(str(a), str(a), str(a), (POLICY,))
    pre = Prefetch(spec, persons=False, digest_paths=[str(a), str(tmp_path / "d")])
    assert pre.digest(a) == hashlib.sha256(a.read_bytes()).hexdigest()
    assert pre.digest(str(a)) == pre.digest(tmp_path / "." / "a.bin")
    assert pre.digest(b) == hashlib.sha256(b"yz").hexdigest()  # not given: taken when asked
    pre.close()


def test_the_manifest_names_the_inputs_digests(tmp_path: Path) -> None:
    from adapters.batch.cli import settle_files

    _, paths = make_data(tmp_path / "in", n_bills=60, items=3, seed=12)
    bills, items, persons = map(Path, paths)
    settle_files(bills, items, persons, [Path(POLICY)], tmp_path / "out", quiet=True)
    m = json.loads((tmp_path / "out" / "manifest.json").read_text())
    for name, p in zip(("bills", "items", "persons"), (bills, items, persons), strict=True):
        assert m["inputs"][name]["sha256"] == hashlib.sha256(p.read_bytes()).hexdigest()


def test_a_bad_persons_file_is_refused_where_it_was(tmp_path: Path) -> None:
    _, paths = make_data(tmp_path / "in", n_bills=40, items=3, seed=13)
    bad = tmp_path / "in" / "persons_bad.parquet"
    t = pq.read_table(paths[2])
    pq.write_table(t.set_column(t.schema.get_field_index("birth_date"), "birth_date",
                                pa.array(["not a date"] * t.num_rows)), bad)  # fmt: skip
    spec = _spec([paths[0], paths[1], str(bad)], tmp_path / "out")
    R._persons_read.cache_clear()
    pre = Prefetch(spec, persons=True, digest_paths=[])
    pre.close()  # the thread's failure is not raised there
    assert R._persons_read.cache_info().currsize == 0
    with pytest.raises(InputFileError, match="birth_date"):
        R._persons(spec.persons)  # but where the first part reads it


def test_a_cancel_stops_the_digests_and_the_persons_read(tmp_path: Path) -> None:
    _, paths = make_data(tmp_path / "in", n_bills=40, items=3, seed=14)
    big = tmp_path / "big.bin"
    big.write_bytes(b"z" * (3 << 20))
    spec = _spec(paths, tmp_path / "out")
    R._persons_read.cache_clear()
    R.io._read_all.cache_clear()
    pre = Prefetch(spec, persons=False, digest_paths=[])
    assert pre._sha256(str(big)) == hashlib.sha256(big.read_bytes()).hexdigest()
    pre.cancel()
    assert pre._sha256(str(big)) is None  # stopped at the next block
    Prefetch._read_persons(spec, pre._stop)  # a cancelled read: nothing read, nothing coded
    assert R._persons_read.cache_info().currsize == 0
    assert R.io._read_all.cache_info().currsize == 0
    pre.close()
    assert pre.digest(big) == hashlib.sha256(big.read_bytes()).hexdigest()  # taken when asked


def test_a_refused_run_leaves_no_prefetch_thread_running(tmp_path: Path) -> None:
    import threading

    from tests.test_batch_helpers import batch_cli

    tables, paths = make_data(tmp_path / "in", n_bills=60, items=3, seed=15)
    bills = tables[0]
    pq.write_table(bills.take(pa.array([1, 0, *range(2, bills.num_rows)])), paths[0])
    r = batch_cli(*paths, "--policy", POLICY, "--out", str(tmp_path / "out"), "--quiet")
    assert r.returncode == 1 and "is not sorted" in r.stderr, r.stderr
    assert not [t for t in threading.enumerate() if t.name.startswith("onestop-")]


def test_the_batch_process_ends_a_refused_run_at_once_with_its_line(tmp_path: Path) -> None:
    """The console script: the refusal printed (flushed before ``os._exit``), exit code 1."""
    import os
    import subprocess
    import sys

    tables, paths = make_data(tmp_path / "in", n_bills=60, items=3, seed=16)
    bills = tables[0]
    pq.write_table(bills.take(pa.array([1, 0, *range(2, bills.num_rows)])), paths[0])
    code = "import sys; from adapters.cli.main import main; sys.argv[0] = 'onestop'; main()"
    env = {**os.environ, "ONESTOP_BATCH_MEMORY": "0"}  # no re-exec of ``python -c``
    r = subprocess.run([sys.executable, "-c", code, "batch", *paths, "--policy", POLICY,
                        "--out", str(tmp_path / "out"), "--quiet"],
                       capture_output=True, text=True, env=env)  # fmt: skip
    assert r.returncode == 1, r.stderr
    assert "is not sorted" in r.stderr and not (tmp_path / "out" / "bills").exists()


def test_only_a_refusal_in_the_batch_process_leaves_the_threads_unjoined(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from adapters.batch import prefetch

    _, paths = make_data(tmp_path / "in", n_bills=40, items=3, seed=17)
    spec = _spec(paths, tmp_path / "out")
    monkeypatch.setattr(prefetch, "EXIT_REFUSED_AT_ONCE", True)
    for refused in (False, True):
        R._persons_read.cache_clear()
        pre = Prefetch(spec, persons=True, digest_paths=paths)
        pre.cancel(refused=refused)
        pre.close()
        if not refused:  # a failure (not a refusal with its exit code): joined as before
            assert not prefetch.running()
        for t in (pre._persons, pre._compiled, pre._digest):
            t.join()  # what the process would have ended under
    monkeypatch.setattr(prefetch, "EXIT_REFUSED_AT_ONCE", False)
    pre = Prefetch(spec, persons=True, digest_paths=paths)
    pre.cancel(refused=True)
    pre.close()  # in process: joined
    assert not prefetch.running()
    prefetch.exit_refused(1)  # nothing runs: returns, the process exits as usual


def test_the_batch_process_ends_a_finished_run_without_teardown(tmp_path: Path) -> None:
    """The console script after a good run: its JSON summary printed whole (flushed before
    ``os._exit``), exit 0, every output file in place, and no exit handler run (the
    interpreter's teardown skipped: an ``atexit`` marker is not written)."""
    import json
    import os
    import subprocess
    import sys

    _, paths = make_data(tmp_path / "in", n_bills=60, items=3, seed=18)
    marker = tmp_path / "teardown-ran"
    code = ("import atexit, pathlib, sys; from adapters.cli.main import main; "
            f"atexit.register(pathlib.Path({str(marker)!r}).touch); "
            "sys.argv[0] = 'onestop'; main()")  # fmt: skip
    env = {**os.environ, "ONESTOP_BATCH_MEMORY": "0"}  # no re-exec of ``python -c``
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-c", code, "batch", *paths, "--policy", POLICY,
                        "--out", str(out), "--quiet", "--json"],
                       capture_output=True, text=True, env=env)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["funds"], r.stdout  # the whole summary, flushed
    assert json.loads((out / "summary.json").read_text()) == json.loads(r.stdout)
    assert (out / "manifest.json").exists() and not (out / "_tmp").exists()
    assert all(list((out / d).glob("*.parquet")) for d in ("bills", "layers", "funds"))
    assert not marker.exists()
    r = subprocess.run([sys.executable, "-c", code, "batch", *paths, "--policy", POLICY,
                        "--out", str(tmp_path / "out2"), "--quiet", "--json", "--threads", "0"],
                       capture_output=True, text=True, env=env)  # fmt: skip
    assert r.returncode != 0 and marker.exists()  # a usage error: the usual exit, handlers run
