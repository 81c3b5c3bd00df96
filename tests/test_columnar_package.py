"""``engine.columnar`` imports its names on first use: ``engine.columnar.inputs`` (engine.simulate,
``onestop policy whatif``) loads neither the kernel nor numba, and every name the package lists
is still there for ``from engine.columnar import X``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import sys
import engine.columnar.inputs, engine.simulate.figures
print(sorted(m for m in ("numba", "engine.kernel", "engine.batch") if m in sys.modules))
from engine.columnar import prepare_columns
print(sorted(m for m in ("numba", "engine.kernel") if m in sys.modules))
"""


def test_the_inputs_load_no_kernel_and_the_kernel_names_load_it() -> None:
    r = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=600,
        env={"PATH": "", "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.splitlines() == ["[]", "['engine.kernel', 'numba']"]


def test_every_listed_name_resolves() -> None:
    from engine import columnar as C

    assert sorted(C.__all__) == sorted(C._WHERE)
    for name in C.__all__:
        assert getattr(C, name) is not None
    assert C.K.__name__ == "engine.kernel"
    try:
        C.not_a_name  # noqa: B018
    except AttributeError as e:
        assert "not_a_name" in str(e)
    else:
        raise AssertionError("an unknown name resolved")
