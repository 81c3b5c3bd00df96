"""Reading a batch run's outputs (OUT/bills, OUT/layers) into an ``engine.simulate.Run``, and
the breakdown attributes (hospital level, age, tags at admission) from the batch inputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from adapters.batch import arrowcols, io
from engine.columnar import age_on
from engine.simulate import Attrs, Run

BILL_COLUMNS = ["row", "bill_id", "hospital", "person_id", "household_id", "region", "total",
                "window_pay", "net_selfpay"]  # fmt: skip
LAYER_COLUMNS = ["bill_id", "hospital", "layer_no", "layer_id", "pay", "relief", "alert", "cap",
                 "reason"]  # fmt: skip


def _parts(out: Path, name: str, columns: list[str]) -> pa.Table:
    files = sorted((out / name).glob("part-*.parquet"))
    if not files:
        return pa.table({c: pa.array([], pa.int64()) for c in columns})
    return pa.concat_tables(
        [pq.read_table(f, columns=columns) for f in files], promote_options="permissive"
    )


def _ints(col: Any) -> np.ndarray:
    return np.asarray(col.to_numpy(), dtype=np.int64) if len(col) else np.zeros(0, np.int64)


def read_run(out: Path, rejected: int) -> tuple[Run, np.ndarray]:
    """The run written to ``out`` by the batch, and each settled bill's row in the bills file."""
    b = _parts(out, "bills", BILL_COLUMNS)
    la = _parts(out, "layers", LAYER_COLUMNS)
    n = b.num_rows
    layer_no = _ints(la["layer_no"])
    # layers are written bill by bill in the bills' order, layer 0 first
    l_bill = np.cumsum(layer_no == 0) - 1
    starts = np.flatnonzero(layer_no == 0)
    if len(starts) != n:
        raise io.InputFileError(f"{out}: layers do not follow the bills ({len(starts)} bills "
                                f"in layers/, {n} in bills/)")  # fmt: skip
    run = Run(
        hospital=arrowcols.coded(b["hospital"]), bill_id=arrowcols.coded(b["bill_id"]),
        person_id=arrowcols.coded(b["person_id"]), household_id=arrowcols.coded(b["household_id"]),
        region=arrowcols.coded(b["region"]), total=_ints(b["total"]),
        window_pay=_ints(b["window_pay"]), net_selfpay=_ints(b["net_selfpay"]),
        l_bill=l_bill.astype(np.int64), l_layer=arrowcols.coded(la["layer_id"]),
        l_pay=_ints(la["pay"]), l_relief=_ints(la["relief"]),
        l_alert=np.asarray(la["alert"].to_numpy(zero_copy_only=False), bool) if n else
        np.zeros(0, bool), l_cap=arrowcols.coded(la["cap"]), l_reason=arrowcols.coded(la["reason"]),
        rejected=rejected,
    )  # fmt: skip
    return run, _ints(b["row"])


def attrs_from_files(bills: str, persons: str, rows: np.ndarray) -> Attrs:
    """Hospital level, age at admission and the tags valid at admission of the bills at
    ``rows`` of the bills file (the base run's settled bills, in its order)."""
    nb = io.n_rows(bills, "bills")
    t = io.read_rows(bills, "bills", 0, nb, ["hospital_level", "person_id", "admission_date"])
    t = t.take(pa.array(rows))
    level = arrowcols.coded(t["hospital_level"])
    adm = arrowcols.dates(t["admission_date"], f"{bills}: admission_date").astype("M8[D]")
    cols = [c for c in io.columns_of(persons, "persons")
            if c in ("person_id", "birth_date", "tag", "tag_valid_from", "tag_valid_to")]  # fmt: skip
    p = io.read_all(persons, "persons").select(cols)
    pid = arrowcols.coded(p["person_id"])
    bid = arrowcols.coded(t["person_id"])
    # birth date per person (the first row of each)
    first = np.full(len(pid.labels), -1, np.int64)
    order = np.argsort(pid.codes, kind="stable")
    u, at = np.unique(pid.codes[order], return_index=True)
    first[u] = order[at]
    birth = arrowcols.dates(p["birth_date"], f"{persons}: birth_date").astype("M8[D]")
    pos = np.searchsorted(pid.labels, bid.labels)
    pos = np.where((pos < len(pid.labels)) & (pid.labels[np.minimum(pos, len(pid.labels) - 1)]
                                              == bid.labels), pos, -1)  # fmt: skip
    bill_person = pos[bid.codes]  # person code of each bill (-1: not in the persons file)
    ok = bill_person >= 0
    age = np.zeros(len(rows), np.int64)
    if ok.any():
        age[ok] = age_on(birth[first[bill_person[ok]]], adm[ok])
    tag_bill, tag = _tags_at(p, pid, bill_person, adm) if "tag" in cols else (
        np.zeros(0, np.int64), np.zeros(0, object))  # fmt: skip
    return Attrs(hospital_level=level, age=age, tag_bill=tag_bill, tag=tag)


def _tags_at(p: pa.Table, pid: Any, bill_person: np.ndarray, adm: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """(bill, tag) for every tag row of the bill's person valid on the admission day."""
    tags = arrowcols.coded(p["tag"])
    has = tags.codes != np.searchsorted(tags.labels, "") if "" in set(tags.labels.tolist()) else (
        np.ones(len(tags.codes), bool))  # fmt: skip
    rows = np.flatnonzero(has)
    if not len(rows):
        return np.zeros(0, np.int64), np.zeros(0, object)
    frm = (arrowcols.dates(p["tag_valid_from"], "tag_valid_from").astype("M8[D]")
           if "tag_valid_from" in p.column_names else None)  # fmt: skip
    to = (arrowcols.dates(p["tag_valid_to"], "tag_valid_to").astype("M8[D]")
          if "tag_valid_to" in p.column_names else None)  # fmt: skip
    # bills by person, then every (bill, tag row) pair of one person
    border = np.argsort(bill_person, kind="stable")
    bp = bill_person[border]
    out_b, out_t = [], []
    trows = rows[np.argsort(pid.codes[rows], kind="stable")]
    tp = pid.codes[trows]
    lo, hi = np.searchsorted(bp, tp, "left"), np.searchsorted(bp, tp, "right")
    cnt = hi - lo
    rep_t = np.repeat(trows, cnt)
    off = np.arange(int(cnt.sum())) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    rep_b = border[np.repeat(lo, cnt) + off]
    day = adm[rep_b]
    valid = np.ones(len(rep_b), bool)
    if frm is not None:
        f = frm[rep_t]
        valid &= np.isnat(f) | (f <= day)
    if to is not None:
        e = to[rep_t]
        valid &= np.isnat(e) | (day <= e)
    out_b.append(rep_b[valid])
    out_t.append(tags.labels[tags.codes[rep_t[valid]]])
    return np.concatenate(out_b).astype(np.int64), np.concatenate(out_t).astype(object)


__all__ = ["attrs_from_files", "read_run"]
