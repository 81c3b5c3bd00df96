"""The ``onestop batch`` console process keeps pandas out (adapters/batch/nopandas.py): pyarrow's
to_numpy would import it for nothing; the run's outputs are those of a run with pandas."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from adapters.batch.nopandas import ALLOW, keep_pandas_out
from benchmarks.batch_ab import same_outputs
from tests.test_batch_helpers import POLICY, make_data

#: the console script in a child process, which says at exit whether pandas was imported
CODE = (
    "import atexit, sys; from adapters.cli.main import main; sys.argv[0] = 'onestop'; "
    "atexit.register(lambda: print('pandas:', repr(sys.modules.get('pandas', 'never'))[:16], "
    "file=sys.stderr)); main()"
)


def _batch(paths: list[str], out: Path, **env: str) -> str:
    env = {**os.environ, "ONESTOP_BATCH_MEMORY": "0", **env}  # no re-exec of ``python -c``
    r = subprocess.run([sys.executable, "-c", CODE, "batch", *paths, "--policy", POLICY,
                        "--out", str(out), "--quiet", "--chunk-bills", "40"],
                       capture_output=True, text=True, env=env)  # fmt: skip
    assert r.returncode == 0, r.stderr
    return r.stderr.strip().splitlines()[-1]


@pytest.mark.skipif(importlib.util.find_spec("pandas") is None, reason="pandas not installed")
def test_the_batch_process_settles_without_importing_pandas(tmp_path: Path) -> None:
    _, paths = make_data(tmp_path / "in", n_bills=120, items=4, seed=5)
    assert _batch(paths, tmp_path / "a") == "pandas: None"  # marked absent, never imported
    assert _batch(paths, tmp_path / "b", **{ALLOW: "1"}).startswith("pandas: <module")
    assert same_outputs(tmp_path / "a", tmp_path / "b") == []


def test_keep_pandas_out_only_where_it_may(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ALLOW, raising=False)
    monkeypatch.delitem(sys.modules, "pandas", raising=False)
    assert not keep_pandas_out(["b", "i", "p", "--dask-local", "2"])
    assert "pandas" not in sys.modules
    monkeypatch.setenv(ALLOW, "1")
    assert not keep_pandas_out(["b", "i", "p"]) and "pandas" not in sys.modules
    monkeypatch.delenv(ALLOW)
    assert keep_pandas_out(["b", "i", "p"]) and sys.modules["pandas"] is None
    with pytest.raises(ImportError):
        import pandas  # noqa: F401
    monkeypatch.setitem(sys.modules, "pandas", object())  # already imported: left as it is
    assert not keep_pandas_out(["b", "i", "p"])
