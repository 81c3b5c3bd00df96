"""numpy -> Arrow for batch runs: the engine.columnar columns as output tables (``to_arrow``,
``arrow_table``, ``required``, labels) and Parquet out (``write_parquet``, ``COMPRESSIONS``)."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from engine.columnar import Coded


def to_arrow(cols: dict[str, Any]) -> pa.Table:
    arrays, names = [], []
    for k, v in cols.items():
        if isinstance(v, Coded):  # plain strings: a dictionary column loads as a pandas
            # categorical, whose categories differ per part and do not sort alphabetically
            labels = arrow_labels(v)
            a: pa.Array = labels.take(pa.array(np.asarray(v.codes, dtype=np.int64)))
        else:
            a = _plain_array(v)
        arrays.append(a)
        names.append(k)
    return pa.table(arrays, names=names)


def arrow_labels(v: Coded) -> pa.Array:
    """A ``Coded`` column's labels as Arrow strings: those the reader made them from when it
    kept them (``Coded.native``: a part's 100 k bill ids, ~4 ms of Python strings to Arrow
    spared a part), else from the Python strings."""
    got = v.native
    if isinstance(got, pa.StringArray) and len(got) == len(v.labels):
        return got
    return pa.array(np.asarray(v.labels, dtype=object), pa.string())


def _plain_array(v: Any) -> pa.Array:
    """A numpy column as Arrow: dates as date32, objects as strings, numbers as they are."""
    v = np.asarray(v)
    if v.dtype.kind == "M":
        return pa.array(v.astype("M8[D]"), pa.date32())
    if v.dtype == object:
        return pa.array(v, pa.string())
    return pa.array(np.ascontiguousarray(v))


def arrow_table(
    cols: dict[str, Any],
    labels: dict[int, tuple[Any, pa.Array]] | None = None,
    nullable: Collection[str] = (),
) -> pa.Table:
    """The columns as Arrow without copying rows where it can (what ``write_parquet`` takes):
    a ``Coded`` column becomes a dictionary array over its labels (no string per row), a
    contiguous numeric array is wrapped as it is. Written by ``write_parquet`` these read back
    as plain strings, as from ``to_arrow``. ``labels``: Arrow labels already made, by the
    ``id`` of their numpy labels, each with those labels (kept alive, so that no other array
    takes their ``id`` while the dict is used): a part's bill ids serve its bills and layers.

    Every column but those named in ``nullable`` is declared non-null (an Arrow field with
    ``nullable=False``: a Parquet REQUIRED column, written without definition levels, ~27 %
    less CPU for a layers part); a null in such a column is refused here (ValueError naming
    the column), never written as a value."""
    arrays, fields = [], []
    for k, v in cols.items():
        if isinstance(v, Coded):
            v = _distinct_labels(v)
            codes = np.asarray(v.codes)
            idx = pa.array(codes if codes.dtype.kind == "i" else codes.astype(np.int64))
            seen = None if labels is None else labels.get(id(v.labels))
            if seen is not None:
                lab = seen[1]
            else:
                lab = arrow_labels(v)
                if labels is not None:  # the numpy labels too: their id is not reused
                    labels[id(v.labels)] = (v.labels, lab)
            a: pa.Array = pa.DictionaryArray.from_arrays(idx, lab)
        else:
            a = _plain_array(v)
        required = k not in nullable
        if required and (a.null_count or (isinstance(a, pa.DictionaryArray)
                                          and a.dictionary.null_count)):  # fmt: skip
            raise _null_in(k)
        arrays.append(a)
        fields.append(pa.field(k, a.type, nullable=not required))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def _null_in(column: str) -> ValueError:
    """The refusal of a null in a column declared non-null (``arrow_table``, ``required``)."""
    return ValueError(f"output column {column}: null value(s) in a column declared non-null")


def required(table: pa.Table, nullable: Collection[str] = ()) -> pa.Table:
    """``table`` with every column but those in ``nullable`` declared non-null (as
    ``arrow_table`` declares them); ValueError naming a column that holds a null."""
    for f in table.schema:
        if f.name not in nullable and table.column(f.name).null_count:
            raise _null_in(f.name)
    schema = pa.schema([f.with_nullable(f.name in nullable) for f in table.schema],
                       metadata=table.schema.metadata)  # fmt: skip
    return pa.Table.from_arrays(table.columns, schema=schema)


#: a ``Coded`` column with at most this many labels is written over distinct labels
SMALL_LABELS = 4096


def _distinct_labels(v: Coded) -> Coded:
    """``v`` over distinct labels when it has few labels with repeats (a layer's kind, scope,
    fund code per table and layer): pyarrow's Parquet writer writes a dictionary with
    repeated values ~3x slower than one without (a hash per row instead of the dictionary
    as it is). Large label arrays (ids) are left as they are: no hash of every label."""
    if len(v.labels) > SMALL_LABELS:
        return v
    first: dict[Any, int] = {}
    remap = np.array([first.setdefault(x, len(first)) for x in v.labels.tolist()], np.int64)
    if len(first) == len(v.labels):
        return v
    return Coded(remap[np.asarray(v.codes)], np.array(list(first), dtype=object))


#: codecs ``write_parquet`` takes (``onestop batch --compression``); snappy is the default:
#: Parquet's usual codec, read by every reader, ~1.5x the CPU-cheapest of these to write
#: beside zstd (whose files are ~40 % smaller: ``--compression zstd``, the default before)
COMPRESSIONS = ("snappy", "zstd", "lz4", "none")
COMPRESSION = "snappy"


#: rows the Parquet writer encodes at a time (pyarrow's ``write_batch_size``; its default 1024):
#: between two batches it checks whether the page is full and falls back from a dictionary
#: grown too large; 64 k rows a batch: ~5-8 % less CPU for a 500 k-row layers part (branch
#: batch12w). A page may then end up to one batch past ``data_page_size`` (1 MB); the values
#: read back are the same
WRITE_BATCH_ROWS = 65536


def write_parquet(
    table: pa.Table, path: str | Path, metadata: dict[str, str] | None = None, *,
    compression: str = COMPRESSION, statistics: bool = False, delta: Collection[str] = (),
) -> None:  # fmt: skip
    """Write one Parquet file; ``metadata`` goes into the schema's key-value metadata.
    ``delta``: integer or date columns written ``DELTA_BINARY_PACKED`` (adapters/batch/
    encodings.py chooses them), the others plain.

    Only text columns are dictionary-encoded in the file (numbers are not hashed for a
    dictionary they would not use). Dictionary columns (``arrow_table``) are written as their
    dictionary (mostly distinct ids plain: ``_mostly_distinct``), without the Arrow schema:
    readers get plain strings back. ``statistics``:
    min/max/null counts per column chunk (off by default: a part is one row group, sorted by
    household, so they prune little; they cost ~20 % of the write)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    coded = any(pa.types.is_dictionary(f.type) for f in table.schema)
    md = {**{k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()},
          **(metadata or {})}  # fmt: skip
    opts = writer_options(table, compression, statistics, delta)
    if not coded:
        if md:
            table = table.replace_schema_metadata(md)
        pq.write_table(table, str(path), **opts)
        return
    with pq.ParquetWriter(str(path), table.schema, store_schema=False, **opts) as w:
        w.write_table(table)
        if md:
            w.add_key_value_metadata(md)


def writer_options(
    table: pa.Table, compression: str = COMPRESSION, statistics: bool = False,
    delta: Collection[str] = (),
) -> dict[str, Any]:  # fmt: skip
    """pyarrow's Parquet writer options ``write_parquet`` writes ``table`` with (also what
    benchmarks/batch_encode.py varies): text columns dictionary-encoded but mostly distinct
    ids, ``delta`` columns ``DELTA_BINARY_PACKED``, ``WRITE_BATCH_ROWS`` a batch."""
    text = [f.name for f in table.schema if (pa.types.is_dictionary(f.type)
            and not _mostly_distinct(table.column(f.name), table.num_rows))
            or pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]  # fmt: skip
    opts: dict[str, Any] = {"compression": compression, "use_dictionary": text,
                            "write_statistics": statistics,
                            "write_batch_size": WRITE_BATCH_ROWS}  # fmt: skip
    if delta:
        opts["column_encoding"] = dict.fromkeys(delta, "DELTA_BINARY_PACKED")
    return opts


def _mostly_distinct(col: pa.ChunkedArray, n_rows: int) -> bool:
    """A dictionary column whose labels are many and mostly used once (a part's bill,
    person and household ids in bills/): written plain, not as a Parquet dictionary, whose
    writer hashes every label (~2x the CPU of the plain page for bills/, files no larger).
    Few labels, or labels used several times each (bill ids in layers/), keep it."""
    n_labels = sum(len(c.dictionary) for c in col.chunks)
    return n_labels > SMALL_LABELS and 2 * n_labels >= n_rows
