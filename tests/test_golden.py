"""The worked examples of domain.md section 8, settled by the reference and by the kernel.

They are case files (tests/golden/*.yaml) read and run by the same code as ``onestop test``
(engine/casefile.py, engine/cases.py): one loader, one comparison.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.cli.cases import mismatch_line
from engine.casefile import case_files, load_cases
from engine.cases import ENGINES, run_case

GOLDEN = Path(__file__).parent / "golden"
FILES = case_files([GOLDEN])


def test_all_five_worked_examples_are_present() -> None:
    assert len(FILES) >= 5
    assert len(load_cases(FILES)) >= 5


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_golden(path: Path, engine: str) -> None:
    for case in load_cases([path]):
        assert case.checks, f"{case.name}: expects nothing"
        r = run_case(case, [engine])
        assert r.status == "pass", "\n".join([*map(mismatch_line, r.mismatches), *r.problems])
