"""Helpers of the simulate tests (no tests here): two counties' synthetic bills on the real
sample tables, and a Hong'an draft made from policies/hongan/2018.yaml."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pyarrow as pa

from benchmarks import synth
from engine.policy.load import load_table

ROOT = Path(__file__).resolve().parent.parent
POLICIES = ROOT / "policies"
HONGAN = POLICIES / "hongan" / "2018.yaml"
WEIXIAN = POLICIES / "weixian" / "2018.yaml"


def _plain(t: pa.Table) -> pa.Table:
    return pa.table(
        [c.cast(c.type.value_type) if pa.types.is_dictionary(c.type) else c for c in t.columns],
        names=t.column_names,
    )


def _prefixed(t: pa.Table, prefix: str, cols: tuple[str, ...]) -> pa.Table:
    import pyarrow.compute as pc

    for c in cols:
        if c in t.column_names:
            i = t.column_names.index(c)
            t = t.set_column(i, c, pc.binary_join_element_wise(prefix, t[c], ""))
    return t


def county(table_path: Path, n_bills: int, items: float, seed: int, prefix: str
           ) -> tuple[pa.Table, pa.Table, pa.Table]:  # fmt: skip
    """synth bills in the table's region, levels and dates, ids prefixed, the tags the table
    does not declare left out (a person left without tags gets one untagged row)."""
    t = load_table(table_path)
    start = np.datetime64(t.effective_from, "D")
    end = np.datetime64(t.effective_to, "D") if t.effective_to else start + np.timedelta64(364, "D")
    kw = {"region": t.region.code, "levels": list(t.hospital_levels), "start": start, "end": end}
    bills, its, persons = (_plain(x) for x in synth.generate(n_bills, items, seed, **kw))
    ids = ("bill_id", "person_id", "household_id")
    bills = _prefixed(bills, prefix, ids)
    its = _prefixed(its, prefix, ("bill_id",))
    persons = _prefixed(persons, prefix, ids)
    tag = persons["tag"].to_numpy(zero_copy_only=False)
    declared = np.array([x is None or x in t.tags for x in tag])
    pid = persons["person_id"].to_numpy(zero_copy_only=False)
    kept = persons.filter(pa.array(declared))
    lost = np.setdiff1d(np.unique(pid), np.unique(pid[declared]))
    if len(lost):
        blank = persons.filter(pa.array(~declared))
        _, first = np.unique(blank["person_id"].to_numpy(zero_copy_only=False), return_index=True)
        blank = blank.take(pa.array(first))
        keep = np.isin(blank["person_id"].to_numpy(zero_copy_only=False), lost)
        blank = blank.filter(pa.array(keep))
        blank = blank.set_column(blank.column_names.index("tag"), "tag",
                                 pa.nulls(blank.num_rows, pa.string()))  # fmt: skip
        for c in ("tag_valid_from", "tag_valid_to"):
            blank = blank.set_column(blank.column_names.index(c), c,
                                     pa.nulls(blank.num_rows, pa.date32()))  # fmt: skip
        kept = pa.concat_tables([kept, blank])
    kept = kept.sort_by([("household_id", "ascending"), ("person_id", "ascending")])
    return bills, its, kept


def two_counties(out: Path, n_bills: int = 400, items: float = 8, seed: int = 3) -> list[str]:
    """Hong'an and Wei county bills of 2018 in one set of files (bills, items, persons)."""
    a = county(HONGAN, n_bills, items, seed, "ha-")
    b = county(WEIXIAN, n_bills // 2, items, seed + 1, "wx-")
    tables = tuple(
        pa.concat_tables([x, y], promote_options="permissive") for x, y in zip(a, b, strict=True)
    )
    return [str(p) for p in synth.write(out, tables)]  # type: ignore[arg-type]


def hongan_draft(path: Path, year: int = 2019, county_ratio: int = 8500) -> Path:
    """The Hong'an table as next year's draft: the registered poor's county-hospital basic
    ratio raised from 80% (the issue's "80% to 85% for the poor"), dated ``year``."""
    text = HONGAN.read_text(encoding="utf-8")
    new = text.replace(
        "ratio: {township: 9000, county: 8000,", f"ratio: {{township: 9000, county: {county_ratio},"
    )
    assert new != text
    new = re.sub(r"effective_from: 2018-01-01", f"effective_from: {year}-01-01", new)
    new = re.sub(r"effective_to: 2018-12-31", f"effective_to: {year}-12-31", new)
    path.write_text(new, encoding="utf-8")
    return path


def moved(draft: Path, path: Path, year: int = 2018) -> Path:
    """The draft copied with its dates moved to ``year`` (what --as-if-effective stands for)."""
    text = draft.read_text(encoding="utf-8")
    text = re.sub(r"effective_from: \d{4}-01-01", f"effective_from: {year}-01-01", text)
    text = re.sub(r"effective_to: \d{4}-12-31", f"effective_to: {year}-12-31", text)
    path.write_text(text, encoding="utf-8")
    return path
