"""``onestop batch`` runs without importing pandas.

pyarrow's conversion of an Arrow array to numpy (``Array.to_numpy``, ``ChunkedArray.to_numpy``,
``np.asarray`` of an array: every column a batch run reads goes through it) calls its C++
``ConvertArrayToPandas``, which on its first call imports pandas, if it is installed, for the
pandas types of ``to_pandas`` (``pd.NA``, ``Timestamp``; pyarrow's ``InitPandasStaticData``):
about 0.3 s of CPU and 60 MB in a process that converts no pandas type (numpy arrays of
integers, dates and strings only), and the load of pandas' ~300 modules. A run settles the
same without it: when the import fails pyarrow converts as it does where pandas is not
installed (pandas is an optional extra of this project: ``bench``).

``keep_pandas_out`` marks pandas as absent (``sys.modules["pandas"] = None``: ``import
pandas`` then raises ImportError) in the ``onestop batch`` console process only
(adapters/cli/main.py), which imports nothing else and ends with the run; not in process
(tests, ``settle_files``' callers, which may use pandas afterwards), not with a Dask cluster
(distributed's serializers look for pandas), and not where pandas is already imported.
``ONESTOP_BATCH_PANDAS=1`` leaves it importable.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

#: "1": pandas may be imported by a batch run (as before)
ALLOW = "ONESTOP_BATCH_PANDAS"


def keep_pandas_out(argv: Sequence[str]) -> bool:
    """Make ``import pandas`` fail in this process, for the ``onestop batch`` command line
    ``argv`` (its arguments after ``batch``); whether it did."""
    if os.environ.get(ALLOW) == "1" or "pandas" in sys.modules:
        return False
    if any(a.startswith(("--dask-scheduler", "--dask-local")) for a in argv):
        return False
    sys.modules["pandas"] = None  # type: ignore[assignment]
    return True
