"""Parquet and CSV input files for batch runs (pyarrow). Arrow -> engine.columnar columns:
arrowcols.py; items streamed by row group: itemstream.py; numpy -> Arrow and Parquet out:
parquetout.py.

Inputs (column names; extra columns are ignored):
- bills: bill_id, hospital, person_id, hospital_level, admission_date, discharge_date,
  [household_id], [region]. A bill is (hospital, bill_id): ``hospital`` is the NHSA
  fixmedins_code (1 to 30 letters and digits); two hospitals may use one bill id.
- items: bill_id, [hospital], category, amount, [qty_e4], [unit_price], [unit_price_cap],
  [selfpay_ratio]. ``hospital`` is needed when a bill id is used by several hospitals.
- persons: person_id, birth_date, household_id, [tag], [tag_valid_from], [tag_valid_to]
  (one row per person and tag; a person without tags has one row with an empty tag)
- opening: scope, id, year, layer_id, deductible_used, eligible_cum, paid, selfpay_cum,
  [admissions]

Parquet files are read by row groups (only the rows of the part being settled); CSV files are
read whole (convert large CSV inputs to Parquet first). CSV headers and bodies are read by
pyarrow.csv: a UTF-8 byte-order mark is skipped, ``.tsv`` files are split on tabs, and other
encodings (gbk, gb18030: ``--encoding``) are transcoded to UTF-8 as the file is read.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

STR, DATE, INT = pa.string(), pa.date32(), pa.int64()
SCHEMAS: dict[str, dict[str, tuple[pa.DataType, bool]]] = {
    # name: (type as read from CSV, required)
    "bills": {
        "bill_id": (STR, True), "hospital": (STR, True), "person_id": (STR, True),
        "hospital_level": (STR, True),
        "admission_date": (DATE, True), "discharge_date": (DATE, True),
        "household_id": (STR, False), "region": (STR, False),
    },
    "items": {
        "bill_id": (STR, True), "hospital": (STR, False), "category": (STR, True),
        "amount": (INT, True),
        "qty_e4": (INT, False), "unit_price": (INT, False), "unit_price_cap": (INT, False),
        "selfpay_ratio": (INT, False),
    },
    "persons": {
        "person_id": (STR, True), "birth_date": (DATE, True), "household_id": (STR, True),
        "tag": (STR, False), "tag_valid_from": (DATE, False), "tag_valid_to": (DATE, False),
    },
    "opening": {
        "scope": (STR, True), "id": (STR, True), "year": (INT, True), "layer_id": (STR, True),
        "deductible_used": (INT, True), "eligible_cum": (INT, True), "paid": (INT, True),
        "selfpay_cum": (INT, True), "admissions": (INT, False),
    },
}  # fmt: skip


class InputFileError(Exception):
    """A whole input file is unusable (missing column, unsorted, unreadable)."""


def is_csv(path: str | Path) -> bool:
    return str(path).lower().endswith((".csv", ".csv.gz", ".tsv", ".tsv.gz"))


#: The text encoding of CSV inputs, by path (default UTF-8; a UTF-8 byte-order mark is
#: skipped). Set per process from the run's Spec (``use_encoding``), on Dask workers too.
_ENCODING: dict[str, str] = {}


def use_encoding(paths: Sequence[str | Path], encoding: str) -> None:
    """Read these CSV files in ``encoding`` (e.g. gbk, gb18030): pyarrow transcodes the stream
    to UTF-8 block by block. LookupError if Python does not know the encoding."""
    import codecs

    if codecs.lookup(encoding).name == "utf-8":
        encoding = "utf8"  # read natively by pyarrow, not transcoded
    for p in paths:
        _ENCODING[str(p)] = encoding


def _csv_options(path: str) -> tuple[pcsv.ReadOptions, pcsv.ParseOptions]:
    """How a CSV file is read: the header and the body by the same reader; ``.tsv`` split on
    tabs, anything else on commas; the encoding set by ``use_encoding``."""
    enc = _ENCODING.get(path, "utf8")
    tab = path.lower().endswith((".tsv", ".tsv.gz"))
    return pcsv.ReadOptions(encoding=enc), pcsv.ParseOptions(delimiter="\t" if tab else ",")


def columns_of(path: str | Path, kind: str) -> list[str]:
    """The columns of ``kind`` present in the file; InputFileError if a required one lacks."""
    names = _names(str(path))
    _require_columns(path, kind, names)
    return [c for c in SCHEMAS[kind] if c in names]


def _require_columns(path: str | Path, kind: str, names: Sequence[str]) -> None:
    missing = [c for c, (_, req) in SCHEMAS[kind].items() if req and c not in names]
    if missing:
        raise InputFileError(
            f"{path}: column(s) {', '.join(missing)} missing; "
            f"{'an' if kind[0] in 'aeiou' else 'a'} {kind} file has "
            f"{', '.join(SCHEMAS[kind])} (optional: "
            f"{', '.join(c for c, (_, r) in SCHEMAS[kind].items() if not r) or 'none'}); "
            f"found {', '.join(names)}"
        )


def _names(path: str) -> tuple[str, ...]:
    return _names_in(path, _ENCODING.get(path, "utf8"))


@lru_cache(maxsize=16)
def _names_in(path: str, encoding: str) -> tuple[str, ...]:
    if is_csv(path):
        read, parse = _csv_options(path)
        try:
            with pcsv.open_csv(path, read_options=read, parse_options=parse) as r:
                return tuple(r.schema.names)
        except (pa.ArrowInvalid, UnicodeDecodeError) as e:
            raise InputFileError(
                f"{path}: cannot be read as CSV ({_csv_hint(path)}): {e}"
            ) from None
    try:
        return tuple(pq.ParquetFile(path).schema_arrow.names)
    except (pa.ArrowException, OSError) as e:  # not Parquet, cut short, a folder, unreadable
        raise _not_parquet(path, e) from None


def _not_parquet(path: str | Path, e: BaseException) -> InputFileError:
    """The refusal of a file pyarrow could not read as Parquet, its reason on one line
    (pyarrow's runs over several)."""
    return InputFileError(
        f"{path}: cannot be read as Parquet (a file named .csv, .csv.gz or .tsv is read as "
        f"CSV): {' '.join(str(e).split()) or type(e).__name__}"
    )


def _csv_hint(path: str) -> str:
    enc = _ENCODING.get(path, "utf8").replace("utf8", "utf-8")
    return f"encoding {enc}; give --encoding gbk or gb18030 for files saved in those"


def n_rows(path: str | Path, kind: str) -> int:
    if is_csv(path):
        return read_all(str(path), kind).num_rows
    return pq.ParquetFile(str(path)).metadata.num_rows


def read_all(path: str, kind: str | None) -> pa.Table:
    """A whole file (CSV with the types of ``kind``); cached per process."""
    return _read_all(path, kind, _ENCODING.get(path, "utf8"))


@lru_cache(maxsize=8)
def _read_all(path: str, kind: str | None, encoding: str) -> pa.Table:
    if is_csv(path):
        types = {c: t for c, (t, _) in SCHEMAS[kind].items()} if kind else {}
        opts = pcsv.ConvertOptions(column_types=types, strings_can_be_null=True)
        read, parse = _csv_options(path)
        try:
            return pcsv.read_csv(path, read_options=read, parse_options=parse,
                                 convert_options=opts)  # fmt: skip
        except (pa.ArrowInvalid, UnicodeDecodeError) as e:
            raise InputFileError(
                f"{path}: cannot be read as CSV ({_csv_hint(path)}): {e}"
            ) from None
    return pq.read_table(path)


def read_rows(path: str | Path, kind: str, lo: int, hi: int, columns: list[str]) -> pa.Table:
    """Rows [lo, hi) of a file: for Parquet only the row groups that hold them are read."""
    path = str(path)
    if is_csv(path):
        return read_all(path, kind).select(columns).slice(lo, hi - lo)
    f = pq.ParquetFile(path)
    md = f.metadata
    groups, start, first = [], 0, None
    for g in range(md.num_row_groups):
        n = md.row_group(g).num_rows
        if start < hi and start + n > lo:
            groups.append(g)
            if first is None:
                first = start
        start += n
    if not groups:
        return f.schema_arrow.empty_table().select(columns)
    t = f.read_row_groups(groups, columns=columns)
    return t.slice(lo - (first or 0), hi - lo)


def iter_column(path: str | Path, kind: str, column: str, batch_rows: int = 1 << 20):
    """Batches of one column (Parquet: streamed by record batches)."""
    path = str(path)
    if is_csv(path):
        t = read_all(path, kind).column(column)
        yield from t.chunks
        return
    f = pq.ParquetFile(path)
    t = f.schema_arrow.field(column).type
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_dictionary(t):
        # the file's dictionary pages as they are: indices, not one string per row
        f = pq.ParquetFile(path, read_dictionary=[column])
    for b in f.iter_batches(batch_size=batch_rows, columns=[column]):
        yield b.column(0)


def read_opening(path: str | Path) -> pa.Table:
    """An opening file (or a directory of parts, e.g. the closing/ of an earlier run);
    InputFileError when it cannot be read or lacks a required column."""
    p = Path(path)
    try:
        t = pq.read_table(p) if p.is_dir() else read_all(str(p), "opening")
    except (pa.ArrowException, OSError) as e:  # not Parquet, cut short, unreadable
        raise _not_parquet(p, e) from None
    _require_columns(p, "opening", t.column_names)
    return t
