"""SettleStream's TRIAL of packed bills: the columns straight into ``engine.columnar``
(vectorized checks, the kernel on reused output buffers, the answer read back as columns); no
per-item Python object. The registry entries and stored accounts of a message's person-years
are read in one unit of work and kept per thread while they stand (``_lookup``).
"""

from __future__ import annotations

import re
import threading
from datetime import date
from operator import is_
from typing import Any

import numpy as np

from adapters.grpc.gen.onestop.settlement.v1 import settlement_pb2 as pb
from adapters.grpc.isodays import iso_days, iso_days_joined
from adapters.grpc.packedbills import check_packed, check_packed_text
from adapters.grpc.packeditems import PackedItems, packed_items
from adapters.grpc.packedresults import fill
from adapters.grpc.packedtext import (
    BillText,
    bill_text,
    date_strings,
)
from engine import columnar as col
from engine.batch import compiled_for
from engine.bill import DATE_RULE, Person
from engine.columnar.answers import answer_columns
from engine.columnar.buffers import OutputBuffers
from engine.columnar.itemcheck import nulls_of
from engine.errors import NO_VALUE, InputError, Problem
from engine.service.usecases import SettlementService


def trial_packed(
    service: SettlementService,
    p: pb.PackedBills,
    it: PackedItems | None = None,
    le: bool = False,
) -> pb.SettleStreamResponse:
    """TRIAL of packed columns through ``engine.columnar``: vectorized checks, the kernel,
    results read back as columns (``le``: the bytes form). Any reject fails the message
    (nothing is written anyway)."""
    it = packed_items(p) if it is None else it
    text = bill_text(p)
    nb, ni, off = check_packed(p, it, text)
    check_packed_text(p, text)
    regions = service.policies().regions
    if nb and text.regions is None and len(regions) != 1:
        raise InputError.one(
            "packed.regions",
            NO_VALUE,
            f"is empty, and the tables in force cover {len(regions)} regions "
            f"({', '.join(regions[:10])}{', ...' if len(regions) > 10 else ''}); "
            "give the region of each bill",
        )
    cap = it.unit_price_cap if len(it.unit_price_cap) else None
    ratio = it.selfpay_ratio if len(it.selfpay_ratio) else None
    items = col.ItemCols(
        category=it.category,
        amount=it.amount,
        bill_start=off,  # items come grouped by bill, in the bills' order
        qty_e4=it.qty_e4 if len(it.qty_e4) else None,
        unit_price=it.unit_price if len(it.unit_price) else None,
        unit_price_cap=cap,
        unit_price_cap_null=nulls_of(cap) if cap is not None else None,
        selfpay_ratio=ratio,
        selfpay_ratio_null=nulls_of(ratio) if ratio is not None else None,
        file="items",
    )
    admission = _dates(text.admission_dates, "admission_date")
    discharge = _dates(text.discharge_dates, "discharge_date")
    person_ids = text.person_ids
    person_cols, opening = _lookup(service, person_ids, discharge)

    prep = col.prepare_columns(
        _bill_cols(p, text, admission, discharge, person_ids),
        items,
        person_cols,
        service.policies(),
        opening,
        compiled=compiled_for(service.policies().tables),
        input_order=True,
        out=_OUTPUTS,
        in_place=True,  # the kernel reads the items where they are: no reordering copy
    )
    try:
        _refuse(prep.rejects)
        _refuse(col.run(prep))  # bills the kernel refused at the account limit
        out = pb.SettleStreamResponse(n_bills=nb, n_items=ni)
        _packed_from_prep(prep, out.packed, le)  # the answer's columns are copies
    finally:
        _OUTPUTS.give_back(prep)
    return out


#: the kernel's output buffers, lent to one message at a time and reused by the next (not
#: allocated and zeroed each message: the kernel writes every field; ``OutputBuffers``)
_OUTPUTS = OutputBuffers()


def _bill_cols(
    p: pb.PackedBills,
    text: BillText,
    adm: np.ndarray,
    dis: np.ndarray,
    person_ids: col.Coded,
) -> col.BillCols:
    """The bills table: bill ids as fixed-width numpy strings (sorted and compared in C; a NUL,
    which they would drop, was refused before), hospitals, persons and regions coded by their
    few distinct values, the levels coded as sent. Rejects name their values as Python values
    (``engine.columnar`` converts numpy's)."""
    return col.BillCols(
        bill_id=text.bill_ids
        if isinstance(text.bill_ids, np.ndarray)
        else np.array(text.bill_ids, dtype=str if text.bill_ids else object),
        hospital=text.hospitals,
        person_id=person_ids,  # coded once, for _lookup too
        hospital_level=col.Coded(
            np.array(p.level_index, dtype=np.int64), np.array(list(p.levels), dtype=object)
        ),
        admission_date=adm,
        discharge_date=dis,
        region=text.regions,
        file="bills",
    )


def _refuse(rejects: list[col.Reject]) -> None:
    """Any reject fails the message: one InputError naming each bad row."""
    if rejects:
        raise InputError(
            [
                Problem(
                    f"{'bills' if r.file == 'bills' else 'items'}[{r.row}].{r.field}"
                    if r.file in ("bills", "items")
                    else f"{r.file}[{r.row}].{r.field}",
                    r.value,
                    r.rule,
                )
                for r in rejects
            ]
        )


def _dates(values: list[str] | bytes, field: str) -> np.ndarray:
    """Strict ISO dates ``YYYY-MM-DD`` as datetime64[D], checked as columns (numpy alone would
    take '1552608000' as a year and '2019-03-15T10:00' as a day), from a list or joined (10
    bytes each); InputError naming ``bills[i].<field>`` for each other value."""
    days = iso_days_joined(values) if isinstance(values, bytes) else iso_days(values)
    if days is not None:
        return days
    vals = date_strings(values) if isinstance(values, bytes) else list(values)
    problems = []
    for i, v in enumerate(vals):
        try:
            ok = _ISO_DAY.fullmatch(v) is not None and date.fromisoformat(v) is not None
        except ValueError:
            ok = False
        if not ok:
            problems.append(Problem(f"bills[{i}].{field}", v, DATE_RULE))
    raise InputError(problems or [Problem(f"bills.{field}", NO_VALUE, DATE_RULE)])


_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _person_cols(persons: Any) -> col.PersonCols:
    rows: list[tuple[Any, ...]] = []
    for p in persons:
        if not p.tags:
            rows.append((p.id, p.birth_date, p.household, "", None, None))
        for t in p.tags:
            rows.append((p.id, p.birth_date, p.household, t.tag, t.valid_from, t.valid_to))
    return col.PersonCols(
        person_id=np.array([r[0] for r in rows], dtype=object),
        birth_date=np.array([r[1] for r in rows], dtype="M8[D]"),
        household_id=np.array([r[2] for r in rows], dtype=object),
        tag=np.array([r[3] for r in rows], dtype=object),
        tag_valid_from=np.array([r[4] or "NaT" for r in rows], dtype="M8[D]"),
        tag_valid_to=np.array([r[5] or "NaT" for r in rows], dtype="M8[D]"),
    )


class _Columns:
    """The persons table (checked) and opening columns of one message's person-years, with
    what they were built from (the person-years asked for and the objects ``accounts_many``
    returned)."""

    __slots__ = ("keys", "objs", "opening", "persons")

    def __init__(self, keys: list[Any], objs: list[Any], persons: Any, opening: Any):
        self.keys, self.objs, self.persons, self.opening = keys, objs, persons, opening

    def same(self, keys: list[Any], objs: list[Any]) -> bool:
        """Built from these very objects (frozen: the same object, the same values)."""
        return self.keys == keys and len(self.objs) == len(objs) and all(map(is_, self.objs, objs))


#: each thread's last message's columns: the next message of the same person-years on that
#: thread, whose reads ``accounts_many`` keeps while nothing commits (returning the same
#: objects: a thread's kept reads are its own, so the kept columns are too: the server's pool
#: threads take messages in turn, and one shared last message's columns were rebuilt for 178
#: of 200 messages on two threads), takes them as they are instead of building them again
#: (read-only arrays; ``prepare_columns`` only reads)
_LAST = threading.local()


def _lookup(
    service: SettlementService, pids: col.Coded, dis: np.ndarray
) -> tuple[col.PersonTable, col.OpeningCols]:
    """The registry entries (as the persons table, checked: ``col.person_table``) and the
    stored accounts (as the opening table) of every (person, year) of the message (its person
    ids, coded as ``packedtext.bill_text`` codes them, and discharge dates), read in one unit
    of work (``accounts_many``). Unknown persons are named."""
    ok = ~np.isnat(dis)
    years = np.zeros(len(dis), dtype=np.int64)
    years[ok] = dis[ok].astype("M8[Y]").astype(np.int64) + 1970  # strict ISO: 0..9999
    persons: dict[str, Person] = {}
    missing: dict[str, int] = {}
    rows: list[tuple[Any, ...]] = []
    seen_h: set[tuple[str, int]] = set()
    # the distinct (person, year) pairs in the order first seen, found on the codes (for 2,000
    # bills a dict of 2,000 (str, int) tuples took ~0.15 ms)
    _, first = np.unique(np.asarray(pids.codes) * 10_000 + years, return_index=True)
    first.sort()
    labels = pids.labels
    at = {(labels[c], y): i for c, y, i in zip(
        pids.codes[first].tolist(), years[first].tolist(), first.tolist(), strict=True)}  # fmt: skip
    keys = list(at)
    got = service.accounts_many(keys)
    objs = [o for found in got.values() for o in (found or (None,))]
    last: _Columns | None = getattr(_LAST, "columns", None)
    if last is not None and last.same(keys, objs):
        return last.persons, last.opening
    for (pid, y), found in got.items():
        if found is None:
            missing.setdefault(pid, at[(pid, y)])
            continue
        person, pa, ha = found
        persons[pid] = person
        rows.append(("person", pid, y, "", 0, 0, 0, 0, pa.admissions))
        for lid, a in pa.layers.items():
            rows.append(("person", pid, y, lid, *a.as_tuple(), pa.admissions))
        if (person.household, y) not in seen_h:
            seen_h.add((person.household, y))
            for lid, a in ha.layers.items():
                rows.append(("household", person.household, y, lid, *a.as_tuple(), 0))
    if missing:
        raise InputError(
            [
                Problem(
                    f"bills[{i}].person_id",
                    pid,
                    "is not in the person registry; import the person first",
                )
                for pid, i in missing.items()
            ]
        )
    cols = list(zip(*rows, strict=True)) if rows else [()] * 9
    opening = col.OpeningCols(
        scope=np.array(cols[0], dtype=object),
        id=np.array(cols[1], dtype=object),
        year=np.array(cols[2], dtype=np.int64),
        layer_id=np.array(cols[3], dtype=object),
        deductible_used=np.array(cols[4], dtype=np.int64),  # the order of a.as_tuple()
        eligible_cum=np.array(cols[5], dtype=np.int64),
        paid=np.array(cols[6], dtype=np.int64),
        selfpay_cum=np.array(cols[7], dtype=np.int64),
        admissions=np.array(cols[8], dtype=np.int64),
    )
    person_cols = _person_cols(persons.values())
    for t in (person_cols, opening):
        for a in vars(t).values():
            if isinstance(a, np.ndarray):
                a.flags.writeable = False  # shared with later messages: read only
    table = col.person_table(person_cols)  # checked once while these reads stand
    _LAST.columns = _Columns(keys, objs, table, opening)
    return table, opening


def _packed_from_prep(prep: col.Prepared, res: pb.PackedResults, le: bool = False) -> None:
    """Results as columns, in the order of the request (the kernel works in settlement order:
    ``answers.answer_columns``, one compiled pass); ``le``: the bytes form
    (``packedresults.fill``)."""
    c = prep.kb.compiled
    L = c.max_layers
    ids = [""] * (len(c.tables) * L)
    funds = [""] * (len(c.tables) * L)
    for pi, t in enumerate(c.tables):
        for lj, layer in enumerate(t.layers):
            ids[pi * L + lj] = layer.id
            funds[pi * L + lj] = layer.fund_code
    ints = answer_columns(prep)
    key = ints.pop("layer_key")
    res.bill_ids.extend(np.asarray(prep.bills.bill_id).tolist())  # every bill, in its order
    fill(res, ints, key, ids, funds, le)
