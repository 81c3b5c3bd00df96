"""The same parts on a dask.distributed LocalCluster (two worker processes) give the same
files as the single-process run."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from adapters.batch.plan import plan
from adapters.batch.run import Spec, finish, run_dask
from tests.test_batch_helpers import POLICY, inputs, make_data, read_out, run_files


def test_dask_equals_local(tmp_path: Path) -> None:
    distributed = pytest.importorskip("dask.distributed")
    _, paths = make_data(tmp_path / "in", n_bills=300, items=5, seed=4)
    run_files(paths, tmp_path / "local", chunk=40)
    spec = Spec(*inputs(paths), policy=(POLICY,), out=str(tmp_path / "dask"))
    parts, _, _ = plan(spec, 40)
    t0 = time.perf_counter()
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        results = list(run_dask(spec, parts, client=client))
        workers = {w for w in client.run(lambda: 1)}
    finish(spec, ok=True)
    assert len(workers) == 2
    assert sorted(r.k for r in results) == list(range(len(parts))) and len(parts) > 4
    assert all(not r.rejects and r.written for r in results)
    for name in ("bills", "layers", "alerts", "closing"):
        assert read_out(tmp_path / "local", name).equals(read_out(tmp_path / "dask", name)), name
    assert time.perf_counter() - t0 < 120
