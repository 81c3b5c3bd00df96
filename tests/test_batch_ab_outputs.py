"""benchmarks.batch_ab's output check: two runs cut into parts of different sizes compare
equal as whole tables, and part by part they do not (the part files differ)."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from adapters.batch.cli import settle_files
from benchmarks.batch_ab import same_outputs
from tests.test_batch_helpers import POLICY, make_data


def test_runs_cut_differently_compare_as_whole_tables(tmp_path: Path) -> None:
    _, paths = make_data(tmp_path / "in", n_bills=200, items=5)
    bills, items, persons = map(Path, paths)
    for name, chunk in (("small", 30), ("large", 90)):
        settle_files(bills, items, persons, [Path(POLICY)], tmp_path / name, chunk_bills=chunk,
                     quiet=True)  # fmt: skip
    small, large = tmp_path / "small", tmp_path / "large"
    assert len(list((small / "closing").glob("*.parquet"))) > 2
    assert same_outputs(small, large, same_parts=False) == []
    assert any(d.startswith("bills: parts") for d in same_outputs(small, large))
    # a changed figure is found in the whole-table comparison
    f = sorted((large / "layers").glob("*.parquet"))[-1]
    t = pq.read_table(f)
    pq.write_table(t.set_column(t.schema.get_field_index("pay"), "pay",
                                [[v + 1 for v in t["pay"].to_pylist()]]), f)  # fmt: skip
    assert same_outputs(small, large, same_parts=False) == [
        "layers: rows, types or metadata differ"
    ]
