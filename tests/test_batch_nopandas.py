"""The ``onestop batch`` console process keeps pandas out (adapters/batch/nopandas.py): pyarrow's
to_numpy would import it for nothing; the run's outputs are those of a run with pandas."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from adapters.batch.nopandas import ALLOW, PandasKeptOut, keep_pandas_out
from benchmarks.batch_ab import same_outputs
from tests.test_batch_helpers import POLICY, make_data

#: the console script in a child process, which says as it ends whether pandas was imported
#: (a finished run ends with ``os._exit``, no ``atexit`` handler: said just before it)
CODE = (
    "import sys; import adapters.cli.main as m; end = m._end_finished_batch; "
    "m._end_finished_batch = lambda: (print('pandas:', repr(sys.modules.get('pandas', "
    "'never'))[:16], file=sys.stderr), end()); sys.argv[0] = 'onestop'; m.main()"
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
    from adapters.batch.cli import settle_files

    _, paths = make_data(tmp_path / "in", n_bills=120, items=4, seed=5)
    assert _batch(paths, tmp_path / "a") == "pandas: 'never'"  # never imported
    # the run with pandas: the same command's code in this process, where nothing keeps pandas
    # out (pandas imported first); one console process above is the one whose imports count
    import pandas  # noqa: F401

    bills, items, persons = map(Path, paths)
    settle_files(bills, items, persons, [Path(POLICY)], tmp_path / "b", chunk_bills=40, quiet=True)
    assert not any(isinstance(f, PandasKeptOut) for f in sys.meta_path)
    assert same_outputs(tmp_path / "a", tmp_path / "b") == []


def test_keep_pandas_out_only_where_it_may(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))  # put back after the test
    monkeypatch.delenv(ALLOW, raising=False)
    monkeypatch.delitem(sys.modules, "pandas", raising=False)
    assert not keep_pandas_out(["b", "i", "p", "--dask-local", "2"])
    monkeypatch.setenv(ALLOW, "1")
    assert not keep_pandas_out(["b", "i", "p"])
    assert not any(isinstance(f, PandasKeptOut) for f in sys.meta_path)
    monkeypatch.delenv(ALLOW)
    assert keep_pandas_out(["b", "i", "p"]) and isinstance(sys.meta_path[0], PandasKeptOut)
    assert (
        keep_pandas_out(["b", "i", "p"])
        and len([f for f in sys.meta_path if isinstance(f, PandasKeptOut)]) == 1
    )
    with pytest.raises(ImportError, match="kept out of onestop batch"):
        import pandas  # noqa: F401
    with pytest.raises(ImportError):
        importlib.import_module("pandas.no_such_submodule")  # not cached
    assert importlib.import_module("json")  # any other module as before
    monkeypatch.setitem(sys.modules, "pandas", object())  # already imported: left as it is
    monkeypatch.setattr(sys, "meta_path", [f for f in sys.meta_path
                                           if not isinstance(f, PandasKeptOut)])  # fmt: skip
    assert not keep_pandas_out(["b", "i", "p"])
