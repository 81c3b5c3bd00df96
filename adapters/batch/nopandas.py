"""``onestop batch`` runs without importing pandas.

pyarrow's conversion of an Arrow array to numpy (``Array.to_numpy``, ``ChunkedArray.to_numpy``,
``np.asarray`` of an array: every column a batch run reads goes through it) calls its C++
``ConvertArrayToPandas``, which on its first call imports pandas, if it is installed, for the
pandas types of ``to_pandas`` (``pd.NA``, ``Timestamp``; pyarrow's ``InitPandasStaticData``):
about 0.3 s of CPU and 60 MB in a process that converts no pandas type (numpy arrays of
integers, dates and strings only), and the load of pandas' ~300 modules. A run settles the
same without it: when the import fails pyarrow converts as it does where pandas is not
installed (pandas is an optional extra of this project: ``bench``).

``keep_pandas_out`` makes ``import pandas`` fail (ModuleNotFoundError, from a finder first on
``sys.meta_path``: pyarrow's Python, Cython and C++ imports all go through it; a ``None`` in
``sys.modules`` would not do, Cython's import takes it for the module) in the ``onestop batch``
console process only (adapters/cli/main.py), which imports nothing else and ends with the run;
not in process (tests, ``settle_files``' callers, which may use pandas afterwards: pyarrow
remembers that it found none), not with a Dask cluster (distributed's serializers look for
pandas), and not where pandas is already imported. ``ONESTOP_BATCH_PANDAS=1`` leaves it
importable.
"""

from __future__ import annotations

import importlib.abc
import os
import sys
from collections.abc import Sequence
from typing import Any

#: "1": pandas may be imported by a batch run (as before)
ALLOW = "ONESTOP_BATCH_PANDAS"


class PandasKeptOut(importlib.abc.MetaPathFinder):
    """A finder that refuses pandas and its submodules (any other name: the next finder)."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name == "pandas" or name.startswith("pandas."):
            raise ModuleNotFoundError(
                f"No module named {name!r} (kept out of onestop batch: adapters/batch/nopandas.py)",
                name=name,
            )
        return None


def keep_pandas_out(argv: Sequence[str]) -> bool:
    """Make ``import pandas`` fail in this process, for the ``onestop batch`` command line
    ``argv`` (its arguments after ``batch``); whether it did."""
    if os.environ.get(ALLOW) == "1" or "pandas" in sys.modules:
        return False
    if any(a.startswith(("--dask-scheduler", "--dask-local")) for a in argv):
        return False
    if not any(isinstance(f, PandasKeptOut) for f in sys.meta_path):
        sys.meta_path.insert(0, PandasKeptOut())
    return True
