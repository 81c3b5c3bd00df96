"""Output columns that are never null are declared non-null (Parquet REQUIRED); the few that
can be null stay nullable; a null where none may be is refused naming the column; readers
(pyarrow, pandas, polars, ``onestop batch --opening`` on a closing/) see the same values."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from adapters.batch import parquetout
from adapters.batch.cli import REJECT_NULLABLE, write_rejects
from adapters.batch.funds import FUND_NULLABLE, fund_table
from benchmarks.batch_ab import same_outputs
from engine.columnar import Coded, Reject
from tests.test_batch_helpers import POLICY, batch_cli, make_data

PARTS = ("bills", "layers", "alerts", "closing", "items_by_fund")


def _run(tmp_path: Path, name: str = "o", *extra: str) -> Path:
    _, paths = make_data(tmp_path / "in", n_bills=120, items=5)
    out = tmp_path / name
    r = batch_cli(*paths, "--policy", POLICY, "--out", str(out), "--quiet", "--chunk-bills",
                  "40", "--items-by-fund", *extra)  # fmt: skip
    assert r.returncode == 0, r.stderr
    return out


def test_part_outputs_are_required_and_funds_keep_their_nullable_columns(tmp_path: Path) -> None:
    out = _run(tmp_path)
    for name in PARTS:
        files = sorted((out / name).glob("part-*.parquet"))
        assert len(files) >= 2, name
        for f in files:
            pf = pq.ParquetFile(f)
            n = pf.metadata.num_columns
            levels = {pf.schema.column(i).max_definition_level for i in range(n)}
            assert levels == {0}, f  # REQUIRED: no definition levels
            assert all(not fld.nullable for fld in pf.schema_arrow), f
    funds = pq.read_schema(out / "funds" / "part-00000.parquet")
    assert {f.name for f in funds if f.nullable} == set(FUND_NULLABLE)


def test_funds_and_rejects_keep_nulls_where_a_figure_does_not_apply(tmp_path: Path) -> None:
    row = {"region": "r", "fund_code": "f", "year": 2020, "name": "", "budget_mode": "report",
           "budget": None, "carried_in": 0, "used_before": 0, "opening_balance": None,
           "paid": 5, "closing_balance": None, "bound_bills": 0}  # fmt: skip
    t = fund_table([row])
    assert t["budget"].null_count == 1 and not t.schema.field("paid").nullable
    with pytest.raises(ValueError, match="output column paid: null"):
        fund_table([{**row, "paid": None}])
    rej = tmp_path / "rejects.parquet"
    write_rejects([Reject(3, "bills.parquet", "region", None, "is missing")], rej)
    back = pq.read_table(rej)
    assert {f.name for f in back.schema if f.nullable} == set(REJECT_NULLABLE)
    assert back.to_pylist() == [{"file": "bills.parquet", "row": 3, "field": "region",
                                 "value": None, "rule": "is missing", "bill_id": None,
                                 "hospital": None}]  # fmt: skip


def test_a_null_in_a_required_column_is_refused_naming_it() -> None:
    labels = np.array(["a", None], dtype=object)
    with pytest.raises(ValueError, match="output column kind: null"):
        parquetout.arrow_table({"n": np.arange(2), "kind": Coded(np.array([0, 1]), labels)})
    t = parquetout.arrow_table({"n": np.arange(2), "kind": Coded(np.array([0, 1]), labels)},
                       nullable=("kind",))  # fmt: skip
    assert t.schema.field("kind").nullable and not t.schema.field("n").nullable
    assert t["kind"].to_pylist() == ["a", None]


def test_readers_see_the_same_values_and_a_closing_opens_the_next_run(tmp_path: Path) -> None:
    out = _run(tmp_path)
    layers = pq.read_table(out / "layers")
    assert layers.num_rows and layers["layer_id"].type == pa.string()
    if importlib.util.find_spec("pandas") is not None:  # the bench extra
        import pandas as pd

        df = pd.read_parquet(out / "layers")
        assert df["layer_id"].tolist() == layers["layer_id"].to_pylist()
        assert df["pay"].tolist() == layers["pay"].to_pylist()
    if importlib.util.find_spec("polars") is not None:
        import polars as pl

        lf = pl.read_parquet(sorted((out / "layers").glob("*.parquet")))
        assert lf["kind"].to_list() == layers["kind"].to_pylist()
    again = _run(tmp_path, "again", "--opening", str(out / "closing"))
    assert pq.read_table(again / "bills").num_rows == pq.read_table(out / "bills").num_rows


def test_batch_ab_compares_content_not_nullability(tmp_path: Path) -> None:
    out = _run(tmp_path)
    loose = tmp_path / "loose"
    for d in out.iterdir():  # the same files written with every column nullable
        if d.is_dir():
            (loose / d.name).mkdir(parents=True)
            for f in d.glob("*.parquet"):
                t = pq.read_table(f)
                schema = pa.schema([x.with_nullable(True) for x in t.schema],
                                   metadata=t.schema.metadata)  # fmt: skip
                t = pa.Table.from_arrays(t.columns, schema=schema)
                pq.write_table(t, loose / d.name / f.name)
        else:
            (loose / d.name).write_bytes(d.read_bytes())
    notes: list[str] = []
    assert same_outputs(out, loose, notes=notes) == []
    assert any(n.startswith("layers: non-null columns") for n in notes), notes
    assert same_outputs(out, loose, same_parts=False) == []
    f = sorted((loose / "layers").glob("*.parquet"))[0]  # a changed figure is still found
    t = pq.read_table(f)
    pq.write_table(t.set_column(t.schema.get_field_index("pay"), "pay",
                                [[v + 1 for v in t["pay"].to_pylist()]]), f)  # fmt: skip
    assert same_outputs(out, loose) == [f"layers/{f.name}: rows, types or metadata differ"]


def test_empty_parts_and_the_reject_file_keep_their_declared_schema(tmp_path: Path) -> None:
    tables, paths = make_data(tmp_path / "in", n_bills=60, items=3, seed=21)
    bills = tables[0]
    i = bills.schema.get_field_index("hospital_level")
    pq.write_table(bills.set_column(i, "hospital_level", pa.array(["nine"] * bills.num_rows)),
                   paths[0])  # fmt: skip
    out, rej = tmp_path / "o", tmp_path / "rejects.parquet"
    r = batch_cli(*paths, "--policy", POLICY, "--out", str(out), "--quiet", "--chunk-bills",
                  "25", "--reject-file", str(rej))  # fmt: skip
    assert r.returncode == 0, r.stderr
    for name in ("bills", "layers", "alerts", "closing"):
        files = sorted((out / name).glob("part-*.parquet"))
        assert len(files) >= 2, name  # every part written, each empty
        for f in files:
            t = pq.read_table(f)
            assert t.num_rows == 0 and all(not x.nullable for x in t.schema), f
        assert pq.read_table(out / name).num_rows == 0
    back = pq.read_table(rej)
    assert back.num_rows == 60 and {f.name for f in back.schema if f.nullable} == set(
        REJECT_NULLABLE
    )
