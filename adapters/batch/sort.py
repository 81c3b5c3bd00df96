"""``batch --sort``: store unsorted bills and items in the order a batch run needs.

Order: bills by household_id, discharge_date, admission_date, bill_id, hospital; items grouped
by bill in the bills' order (an item keeps its place among the items of its bill).

Out of core. The bills' key columns are read whole (as ``plan`` reads them: five values per
bill) and ranked in memory. Then bills and items are streamed once (one record batch at a
time) into range buckets by the rank of their bill, written as Parquet files in a temporary
directory; each bucket is read back, sorted by (rank, original row) and appended to the output.
Memory: the bills' key columns plus one bucket (``bucket_rows`` rows, default 2,000,000) plus
one input batch. Disk: one more copy of the inputs in the temporary directory while sorting.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from adapters.batch import arrowcols, io, itemstream
from engine import columnar as C

KEYS = ["household_id", "discharge_date", "admission_date", "bill_id", "hospital"]


def bill_ranks(bills: str) -> tuple[np.ndarray, C.Coded]:
    """Each bill row's place in the sorted order, and the bills' key (``arrowcols.bill_key``)."""
    cols = io.columns_of(bills, "bills")
    if "household_id" not in cols:
        raise io.InputFileError(f"{bills}: column household_id missing; --sort sorts by it")
    nb = io.n_rows(bills, "bills")
    keys = io.read_rows(bills, "bills", 0, nb, KEYS)
    h, bid, hosp = (arrowcols.coded(keys[c]) for c in ("household_id", "bill_id", "hospital"))
    d = arrowcols.dates(keys["discharge_date"], f"{bills}: discharge_date").astype(np.int64)
    a = arrowcols.dates(keys["admission_date"], f"{bills}: admission_date").astype(np.int64)
    order = np.lexsort((np.arange(nb), hosp.codes, bid.codes, a, d, h.codes))
    rank = np.empty(nb, dtype=np.int64)
    rank[order] = np.arange(nb)
    return rank, arrowcols.coded(arrowcols.bill_key(keys))


def _bucketed(
    path: str, kind: str, rank_of, n_rank: int, out: Path, tmp: Path, bucket_rows: int, n: int
) -> None:
    """Stream ``path`` into buckets by rank (``rank_of(batch) -> ranks``), then write each
    bucket sorted by (rank, original row) to ``out``."""
    n_buckets = max(1, -(-n // bucket_rows))
    per = max(1, -(-n_rank // n_buckets))  # ranks per bucket
    cols = io.columns_of(path, kind)
    writers: dict[int, pq.ParquetWriter] = {}
    pos = 0
    schema = None
    try:
        for batch in itemstream.row_batches(path, kind, 0, n, cols):
            t = pa.Table.from_batches([batch])
            t = pa.table([arrowcols._one(c) for c in t.columns], names=t.column_names)
            t = _plain(t)
            r = rank_of(batch)
            t = t.append_column("_rank", pa.array(r)).append_column(
                "_row", pa.array(np.arange(pos, pos + len(t), dtype=np.int64))
            )
            schema = schema or t.schema
            b = np.minimum(r // per, n_buckets - 1)
            for k in np.unique(b):
                if int(k) not in writers:
                    writers[int(k)] = pq.ParquetWriter(tmp / f"{kind}-{int(k):05d}.parquet", schema)
                writers[int(k)].write_table(t.filter(pa.array(b == k)).cast(schema))
            pos += len(t)
    finally:
        for w in writers.values():
            w.close()
    with pq.ParquetWriter(out, _strip(schema) if schema else _empty(path, kind)) as w:
        for k in sorted(writers):
            f = tmp / f"{kind}-{k:05d}.parquet"
            t = pq.read_table(f).sort_by([("_rank", "ascending"), ("_row", "ascending")])
            w.write_table(t.drop_columns(["_rank", "_row"]), row_group_size=1 << 20)
            del t
            f.unlink()


def _plain(t: pa.Table) -> pa.Table:
    """Dictionary columns as plain values (buckets of one file share one schema)."""
    return pa.table(
        [c.cast(c.type.value_type) if pa.types.is_dictionary(c.type) else c for c in t.columns],
        names=t.column_names,
    )


def _strip(schema: pa.Schema) -> pa.Schema:
    return pa.schema([f for f in schema if f.name not in ("_rank", "_row")])


def _empty(path: str, kind: str) -> pa.Schema:
    cols = io.columns_of(path, kind)
    return pa.schema([(c, io.SCHEMAS[kind][c][0]) for c in cols])


def sort_inputs(
    bills: str, items: str, out_dir: str | Path, bucket_rows: int = 2_000_000
) -> tuple[str, str]:
    """Write ``out_dir``/bills.parquet and items.parquet in batch order; return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rank, key = bill_ranks(bills)
    nb = len(rank)
    by_hospital = "hospital" in io.columns_of(items, "items")
    items_key = key if by_hospital else arrowcols.coded(
        io.read_rows(bills, "bills", 0, nb, ["bill_id"])["bill_id"]
    )  # fmt: skip
    first = np.full(len(items_key.labels), nb, dtype=np.int64)  # key -> smallest rank
    np.minimum.at(first, items_key.codes, rank)
    pos = [0]

    def bill_rank(batch: pa.RecordBatch) -> np.ndarray:
        r = rank[pos[0] : pos[0] + batch.num_rows]
        pos[0] += batch.num_rows
        return r

    def item_rank(batch: pa.RecordBatch) -> np.ndarray:
        k = batch.column("bill_id") if not by_hospital else arrowcols.bill_key(batch)
        c = arrowcols.coded(k)
        at = C.lookup(items_key.labels, c.labels)
        lab_rank = np.where(at >= 0, first[np.maximum(at, 0)], nb)  # no such bill: at the end
        return lab_rank[c.codes]

    tmp = Path(tempfile.mkdtemp(prefix="onestop-sort-", dir=out))
    try:
        ob, oi = out / "bills.parquet", out / "items.parquet"
        _bucketed(bills, "bills", bill_rank, nb, ob, tmp, bucket_rows, nb)
        ni = io.n_rows(items, "items")
        _bucketed(items, "items", item_rank, nb + 1, oi, tmp, bucket_rows, ni)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return str(ob), str(oi)
