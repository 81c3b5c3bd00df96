"""Which columns of ``onestop batch``'s Parquet outputs are written ``DELTA_BINARY_PACKED``.

Parquet's delta encoding packs each page's integers (and dates: int32 days) as bit-packed
differences in blocks of 128. For a dense column with many distinct values (every bill's
``total``, the row numbers, the dates) that is cheaper to write than the plain page snappy then
compresses, and smaller (one 100 k-bill part, branch batch8: ``total`` 1.79 -> 1.03 ms,
0.50 -> 0.29 MB). For a mostly-zero column (most layers' figures) or one of a few values
(``year``) snappy on the plain page is cheaper and as small or smaller, so those keep the plain
encoding. The columns are named per table (measured column by column on the sample data:
benchmarks/README.md, branch batch8); the bills' ``pay_<layer>`` columns, whose names come from
the policy, are delta-encoded in a part where at least half of the bills have a pay from that
layer (the first, broad layer), plain where the layer pays rarely.

The encoding is part of the Parquet format since 2.0 (2013); pyarrow, pandas and polars read it
(tests/test_batch_encodings.py). ``onestop batch --parquet-compat`` writes every column as
before (plain, text as a dictionary) for readers of older stacks that do not know it;
``manifest.json`` records which (``options.parquet_encoding``: ``delta`` or ``compat``).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

DELTA = "DELTA_BINARY_PACKED"

#: per output directory, the columns written ``DELTA_BINARY_PACKED`` (any other column: plain,
#: text as a dictionary). Tables not named here (closing/, funds/, items_by_fund/, the reject
#: file) are written plain: closing/'s figures are mostly zero, its ``year`` and
#: ``admissions`` few values.
DELTA_COLUMNS: dict[str, frozenset[str]] = {
    "bills": frozenset((
        "row", "admission_date", "discharge_date", "admission_no", "total", "in_scope",
        "pre_selfpay", "over_limit", "out_of_catalogue", "funds_total", "window_pay",
        "net_selfpay",
    )),
    "layers": frozenset(("base", "eligible")),
    "alerts": frozenset(("selfpay_cum", "relief")),
}  # fmt: skip

#: the bills' per-layer pay columns (``pay_<layer_id>``): delta where they are dense
PAY_PREFIX = "pay_"


def delta_columns(name: str, table: pa.Table) -> list[str]:
    """The columns of ``table`` (written to the output directory ``name``) to write with
    ``DELTA_BINARY_PACKED``: those of ``DELTA_COLUMNS`` it has, and in bills/ the
    ``pay_<layer>`` columns non-zero on at least half of the part's rows."""
    named = DELTA_COLUMNS.get(name, frozenset())
    out = [f.name for f in table.schema if f.name in named and _integer(f.type)]
    if name == "bills" and table.num_rows:
        for f in table.schema:
            if f.name.startswith(PAY_PREFIX) and pa.types.is_int64(f.type):
                col = table.column(f.name)
                if col.null_count == 0:
                    values = np.concatenate([c.to_numpy() for c in col.chunks])
                    if 2 * np.count_nonzero(values) >= table.num_rows:
                        out.append(f.name)
    return out


def _integer(t: pa.DataType) -> bool:
    """A type Parquet can write ``DELTA_BINARY_PACKED`` (INT32 / INT64 physical columns)."""
    return pa.types.is_integer(t) or pa.types.is_date(t)
