"""The dense integer and date columns of bills/, layers/ and alerts/ are written
``DELTA_BINARY_PACKED`` (adapters/batch/encodings.py), the others plain; ``--parquet-compat``
writes none; both runs hold the same content, which pyarrow, pandas and polars read back alike."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from adapters.batch import parquetout
from adapters.batch.encodings import DELTA_COLUMNS, delta_columns
from benchmarks.batch_ab import same_outputs
from tests.test_batch_helpers import POLICY, batch_cli, make_data

TABLES = ("bills", "layers", "alerts", "closing", "items_by_fund")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("enc")
    _, paths = make_data(tmp / "in", n_bills=150, items=5, seed=8)
    outs = []
    for name, extra in (("delta", ()), ("compat", ("--parquet-compat",))):
        out = tmp / name
        r = batch_cli(*paths, "--policy", POLICY, "--out", str(out), "--quiet",
                      "--chunk-bills", "50", "--items-by-fund", *extra)  # fmt: skip
        assert r.returncode == 0, r.stderr
        outs.append(out)
    return outs[0], outs[1]


def _delta_in(f: Path) -> set[str]:
    """The columns of a one-row-group Parquet file that use DELTA_BINARY_PACKED pages."""
    md = pq.ParquetFile(f).metadata
    assert md.num_row_groups == 1
    rg = md.row_group(0)
    return {rg.column(i).path_in_schema for i in range(rg.num_columns)
            if "DELTA_BINARY_PACKED" in rg.column(i).encodings}  # fmt: skip


def test_the_named_columns_are_delta_and_compat_writes_none(runs: tuple[Path, Path]) -> None:
    delta, compat = runs
    written: set[str] = set()
    for name in TABLES:
        for f in sorted((delta / name).glob("part-*.parquet")):
            got, want = _delta_in(f), DELTA_COLUMNS.get(name, frozenset())
            if not pq.ParquetFile(f).metadata.num_rows:  # no pages (no alerts in a part)
                assert got <= want, f
                continue
            written.add(name)
            if name == "bills":  # the named ones, and the pay columns non-zero on half the bills
                t = pq.read_table(f)
                dense = {c for c in t.column_names if c.startswith("pay_")
                         and 2 * np.count_nonzero(t[c].to_numpy()) >= t.num_rows}  # fmt: skip
                assert "pay_basic" in dense and len(dense) < 5, dense  # some dense, some not
                want = want | dense
            assert got == want, (f, got)
        for f in sorted((compat / name).glob("part-*.parquet")):
            assert _delta_in(f) == set(), f
    assert written >= {"bills", "layers", "closing", "items_by_fund"}, written
    assert _delta_in(delta / "funds" / "part-00000.parquet") == set()
    m = [json.loads((d / "manifest.json").read_text())["options"] for d in runs]
    assert [o["parquet_encoding"] for o in m] == ["delta", "compat"]


def test_both_encodings_hold_the_same_content(runs: tuple[Path, Path]) -> None:
    delta, compat = runs
    assert same_outputs(delta, compat) == []
    assert same_outputs(delta, compat, same_parts=False) == []
    for name in TABLES:  # and the same schema, nullability included
        assert pq.read_schema(sorted((delta / name).glob("*.parquet"))[0]) == pq.read_schema(
            sorted((compat / name).glob("*.parquet"))[0]
        ), name


def test_pandas_and_polars_read_the_delta_columns(runs: tuple[Path, Path]) -> None:
    delta, compat = runs
    for name in ("bills", "layers"):  # (alerts/: none in these small parts)
        want = pq.read_table(compat / name)
        cols = sorted(DELTA_COLUMNS[name] | ({"pay_basic"} if name == "bills" else set()))
        assert set(cols) <= set().union(*map(_delta_in, (delta / name).glob("*.parquet")))
        assert want.num_rows
        if importlib.util.find_spec("pandas") is not None:  # the bench extra
            import pandas as pd

            df = pd.read_parquet(delta / name)
            for c in cols:
                assert df[c].tolist() == want[c].to_pylist(), (name, c)
        if importlib.util.find_spec("polars") is not None:
            import polars as pl

            lf = pl.read_parquet(sorted((delta / name).glob("*.parquet")))
            for c in cols:
                assert lf[c].to_list() == want[c].to_pylist(), (name, c)


def test_a_closing_of_a_delta_run_opens_the_next(runs: tuple[Path, Path], tmp_path: Path) -> None:
    delta, compat = runs
    _, paths = make_data(tmp_path / "in", n_bills=150, items=5, seed=8)
    outs = []
    for name, opening in (("a", delta), ("b", compat)):
        out = tmp_path / name
        r = batch_cli(*paths, "--policy", POLICY, "--out", str(out), "--quiet",
                      "--chunk-bills", "50", "--opening", str(opening / "closing"))  # fmt: skip
        assert r.returncode == 0, r.stderr
        outs.append(out)
    first, second = outs
    assert same_outputs(first, second) == []


def test_delta_columns_chooses_dense_pays_and_integer_types_only() -> None:
    n = 10
    dense, sparse = np.arange(1, n + 1), np.where(np.arange(n) < 4, 7, 0)
    t = pa.table({"row": np.arange(n), "year": np.full(n, 2024), "pay_a": dense,
                  "pay_b": sparse, "pay_c": np.where(np.arange(n) < 5, 1, 0),
                  "total": pa.array([str(i) for i in range(n)])})  # fmt: skip
    assert delta_columns("bills", t) == ["row", "pay_a", "pay_c"]  # half non-zero: delta
    assert delta_columns("closing", t) == []
    assert delta_columns("layers", t) == []
    assert delta_columns("bills", t.slice(0, 0)) == ["row"]


def test_write_parquet_writes_the_columns_it_is_given_delta(tmp_path: Path) -> None:
    cols = {"d": np.arange(1000) * 37, "p": np.zeros(1000, np.int64)}
    f = tmp_path / "t.parquet"
    parquetout.write_parquet(parquetout.arrow_table(cols), f, delta=["d"])
    assert _delta_in(f) == {"d"}
    back = pq.read_table(f)
    assert back["d"].to_pylist() == cols["d"].tolist() and back["p"].to_pylist() == [0] * 1000


def _layout(p: pq.ParquetFile) -> list[tuple[Any, ...]]:
    """Each column chunk of a one-row-group file: name, codec, encodings, dictionary page."""
    rg = p.metadata.row_group(0)
    return [(c.path_in_schema, c.compression, sorted(c.encodings), c.has_dictionary_page)
            for c in (rg.column(i) for i in range(rg.num_columns))]  # fmt: skip


def test_batch_encode_writes_a_part_as_write_parquet_does(tmp_path: Path) -> None:
    """benchmarks/batch_encode.py measures what ``onestop batch`` writes: the tables it
    captures from a settled part, written into memory with its options, have the columns'
    encodings, codec and dictionary pages of ``write_parquet``'s files and read back the same;
    its variants change only the column they name."""
    from benchmarks import batch_encode as E

    make_data(tmp_path / "in", n_bills=150, items=5, seed=8)
    got = E.capture(tmp_path / "in", 0, tmp_path / "out")
    assert set(got) == {"bills", "layers", "alerts", "closing"}
    for name, (table, kw) in got.items():
        f = tmp_path / f"{name}.parquet"
        parquetout.write_parquet(table, f, **kw)
        mem = pq.ParquetFile(pa.BufferReader(E.encode(table, E.options(table, kw))))
        disk = pq.ParquetFile(f)
        assert _layout(mem) == _layout(disk), name
        assert mem.read().equals(disk.read()), name
    table, kw = got["layers"]
    opts = E.options(table, kw, dictionary={"year": True}, encoding={"pay": "DELTA_BINARY_PACKED"})
    base = E.options(table, kw)
    assert opts["use_dictionary"] == [*base["use_dictionary"], "year"]
    assert opts["column_encoding"] == {**base["column_encoding"], "pay": "DELTA_BINARY_PACKED"}
