"""SettleStream: one request message (a list of bills or packed columns) -> one response.

TRIAL mode settles the message as one batch from the stored accounts and writes nothing:
bills as messages go through ``engine.batch.settle_batch``; packed columns go straight into
``engine.columnar`` (no per-item Python objects: the fast path). SETTLE mode calls the
``settle`` use case bill by bill (each its own transaction), exactly as the Settle rpc does.

Only public use cases are used (``policies``, ``person``, ``accounts``, ``settle``); a batch
trial use case in the service would read the registry and the accounts in one unit of work
(see the report in benchmarks/README.md).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from datetime import date
from operator import is_
from typing import Any

import numpy as np

from adapters.auth.access import ScopedService
from adapters.grpc import convert as cv
from adapters.grpc.gen.onestop.settlement.v1 import settlement_pb2 as pb
from adapters.grpc.isodays import iso_days, iso_days_joined
from adapters.grpc.limits import DEFAULT, Limits
from adapters.grpc.packeditems import PackedItems, given_field, packed_items
from adapters.grpc.packedresults import fill
from adapters.grpc.packedtext import (
    BillText,
    bill_text,
    date_strings,
    hospitals_for_scope,
    n_bills,
)
from engine import columnar as col
from engine.accounts import Opening
from engine.batch import compiled_for, settle_batch
from engine.bill import DATE_RULE, BillRequest, Person, check_items_count, parse_bill_request
from engine.columnar.answers import answer_columns
from engine.columnar.buffers import OutputBuffers
from engine.columnar.itemcheck import nulls_of
from engine.errors import NO_VALUE, InputError, NotFound, Problem
from engine.service.inputs import check_key
from engine.service.usecases import SettlementService
from engine.validation import ID_RULE, TEXT_RULE, bad_id_chars


def handle(
    service: SettlementService,
    req: pb.SettleStreamRequest,
    limits: Limits = DEFAULT,
    scoped: ScopedService | None = None,
    cut: Mapping[str, Any] | None = None,
) -> pb.SettleStreamResponse:
    """One message. With ``scoped`` (the caller's scope), every bill's hospital is checked
    before anything is tried or settled, and SETTLE goes through its ``settle``. ``cut``: the
    packed item columns read as views of the received bytes (``packedwire``), by field name."""
    if req.mode not in (pb.STREAM_MODE_TRIAL, pb.STREAM_MODE_SETTLE):
        raise InputError.one("mode", req.mode, "is not TRIAL (1) or SETTLE (2)")
    which = req.WhichOneof("payload")
    if which == "packed":
        items = packed_items(req.packed, cut)
        limits.check_message(n_bills(req.packed), len(items.amount))
    elif which == "bills":
        limits.check_message(len(req.bills.bills), sum(len(r.bill.items) for r in req.bills.bills))
    if scoped is not None:
        if which == "packed":
            scoped.check_hospitals(*hospitals_for_scope(req.packed))
        elif which == "bills":
            scoped.check_hospitals(
                (r.bill.hospital for r in req.bills.bills), "bills[{i}].hospital"
            )
    if which == "packed" and req.mode == pb.STREAM_MODE_TRIAL:
        return trial_packed(service, req.packed, items, le=req.packed_results_le)
    if which == "packed":
        reqs = packed_requests(req.packed, items)
    elif which == "bills":
        reqs = list_requests(req.bills)
    else:
        raise InputError.one("payload", None, "is missing; send bills or packed")
    n_items = sum(len(r.items) for _, r in reqs)
    if req.mode == pb.STREAM_MODE_TRIAL:
        results = trial_many(service, [r for _, r in reqs])
        return _respond(results, [], [], req, n_items)
    return settle_many(scoped or service, reqs, req, n_items)


def _respond(
    results: list[Any],
    ids: list[str],
    replay: list[bool],
    req: pb.SettleStreamRequest,
    n_items: int,
) -> pb.SettleStreamResponse:
    out = pb.SettleStreamResponse(
        n_bills=len(results), n_items=n_items, settlement_ids=ids, replay=replay
    )
    if req.packed_results:
        out.packed.CopyFrom(pack_results(results, ids, le=req.packed_results_le))
    else:
        out.results.extend(cv.result_pb(s) for s in results)
    return out


def pack_results(results: list[Any], ids: list[str], le: bool = False) -> pb.PackedResults:
    """Settlements as packed columns (``le``: the bytes form, ``packedresults.fill``)."""
    p = pb.PackedResults(bill_ids=[s.bill_id for s in results], settlement_ids=ids)
    ints = {
        name: np.array([getattr(s.buckets, name) for s in results], dtype=np.int64)
        for name in ("total", "in_scope", "pre_selfpay", "over_limit", "out_of_catalogue")
    }
    for name in ("window_pay", "net_selfpay", "funds_total"):
        ints[name] = np.array([getattr(s, name) for s in results], dtype=np.int64)
    ints["layer_offsets"] = np.cumsum([0] + [len(s.layers) for s in results], dtype=np.int64)
    rows = [r for s in results for r in s.layers]
    ints["layer_pay"] = np.array([r.pay for r in rows], dtype=np.int64)
    ints["layer_relief"] = np.array([r.relief for r in rows], dtype=np.int64)
    pairs: dict[tuple[str, str], int] = {}
    key = [pairs.setdefault((r.layer_id, r.fund_code), len(pairs)) for r in rows]
    fill(p, ints, np.array(key, dtype=np.int64), [i for i, _ in pairs], [f for _, f in pairs], le)
    return p


# --------------------------------------------------------------------------- bills as messages


def list_requests(bills: pb.BillList) -> list[tuple[str, BillRequest]]:
    out, problems = [], []
    for i, r in enumerate(bills.bills):
        try:
            out.append((r.request_id, cv.bill_request(r.bill, prefix=f"bills[{i}]")))
        except InputError as err:
            problems += err.problems
        problems += _request_id_problems(f"bills[{i}].request_id", r.request_id)
    if problems:
        raise InputError(problems)
    return out


def trial_many(service: SettlementService, reqs: list[BillRequest]) -> list[Any]:
    """Trial of many bills as one batch from the stored accounts (chained per person)."""
    persons = _persons(service, [r.person_id for r in reqs])
    bills, problems = [], []
    for i, r in enumerate(reqs):
        try:
            bills.append(r.with_person(persons[r.person_id]))
        except InputError as err:  # e.g. admitted before the person's birth
            problems += [Problem(f"bills[{i}].{q.field}", q.value, q.rule) for q in err.problems]
        except Exception as err:  # the person is valid; a bill that fails here is bad input
            problems.append(Problem(f"bills[{i}]", r.id, f"cannot be built: {err}"))
    if problems:
        raise InputError(problems)
    opening = _opening(service, {(b.person.id, b.year) for b in bills})
    return settle_batch(bills, service.policies(), opening).settlements


def _persons(service: SettlementService, ids: list[str]) -> dict[str, Person]:
    out: dict[str, Person] = {}
    problems = []
    for i, pid in enumerate(ids):
        if pid in out:
            continue
        try:
            out[pid] = service.person(pid)
        except NotFound:
            problems.append(
                Problem(
                    f"bills[{i}].person_id",
                    pid,
                    "is not in the person registry; import the person first",
                )
            )
    if problems:
        raise InputError(problems)
    return out


def _opening(service: SettlementService, keys: set[tuple[str, int]]) -> Opening:
    person, household = {}, {}
    for (pid, year), found in service.accounts_many(sorted(keys)).items():
        if found is None:
            raise NotFound("person", pid, "import the person registry first")
        p, pa, ha = found
        person[(pid, year)] = pa
        household[(p.household, year)] = ha
    return Opening(person, household)


def _request_id_problems(field: str, rid: str) -> list[Problem]:
    """What ``settle`` would refuse in a request id, found before any bill of the message is
    settled (so a bad id late in a message does not leave the earlier bills settled). An empty
    id is left to ``settle`` (TRIAL mode ignores request ids)."""
    try:
        check_key(field, rid)
    except InputError as err:
        return err.problems
    return []


def settle_many(
    service: SettlementService | ScopedService,
    reqs: list[tuple[str, BillRequest]],
    req: pb.SettleStreamRequest,
    n_items: int,
) -> pb.SettleStreamResponse:
    results, ids, replay = [], [], []
    for i, (rid, r) in enumerate(reqs):
        try:
            rec, again = service.settle(rid, r)
        except InputError as err:
            raise InputError(
                [Problem(f"bills[{i}].{p.field}", p.value, p.rule) for p in err.problems]
            ) from None
        results.append(rec.settlement)
        ids.append(rec.settlement_id)
        replay.append(again)
    return _respond(results, ids, replay, req, n_items)


# --------------------------------------------------------------------------- packed columns


def _check_packed(
    p: pb.PackedBills, items: PackedItems, text: BillText
) -> tuple[int, int, np.ndarray]:
    nb = len(text.bill_ids)
    off = items.item_offsets
    problems = []
    for name in ("hospitals", "person_ids", "level_index", "admission_dates", "discharge_dates"):
        field, k = text.given.get(name) or (f"packed.{name}", len(getattr(p, name)))
        if k != nb:
            problems.append(Problem(field, k, f"entries; expected {nb}"))
    field, k = text.given["regions"]
    if k and k != nb:
        problems.append(Problem(field, k, f"entries; expected {nb}"))
    if len(off) != nb + 1 or (nb >= 0 and len(off) and off[0] != 0) or np.any(np.diff(off) < 0):
        problems.append(
            Problem(
                "packed.item_offsets",
                len(off),
                f"entries; expected {nb + 1} non-decreasing offsets starting at 0",
            )
        )
    ni = int(off[-1]) if len(off) else 0
    for name in ("category", "amount"):
        if len(getattr(items, name)) != ni:
            problems.append(
                Problem(
                    _field(p, name, items), len(getattr(items, name)), f"entries; expected {ni}"
                )
            )
    for name in ("qty_e4", "unit_price_cap", "selfpay_ratio", "unit_price"):
        k = len(getattr(items, name))
        if k not in (0, ni):
            problems.append(Problem(_field(p, name, items), k, f"entries; expected 0 or {ni}"))
    n_levels = len(p.levels)
    level = np.array(p.level_index, dtype=np.int64)
    for i in np.flatnonzero((level < 0) | (level >= n_levels)).tolist():
        k = int(level[i])
        problems.append(
            Problem(
                f"packed.level_index[{i}]",
                k,
                f"is not an index into levels ({n_levels} given)"
                if n_levels
                else "is not an index into levels: levels is empty",
            )
        )
        if len(problems) > 20:
            break
    for name in ("item_codes", "item_names"):
        k = len(getattr(p, name))
        if k not in (0, ni):
            problems.append(Problem(f"packed.{name}", k, f"entries; expected 0 or {ni}"))
    if problems:
        raise InputError(problems)
    if nb:
        counts = np.diff(off)
        b = int(np.argmax(counts))
        check_items_count(int(counts[b]), f"bills[{b}].items")
    return nb, ni, off


def _field(p: pb.PackedBills, name: str, items: PackedItems) -> str:
    """The field a column came in: ``packed.amount``, or ``packed.amount_le`` if sent so."""
    return given_field(p, name, items.cut)


def _has_nul(v: str) -> bool:
    return "\x00" in v


#: Packed category numbers -> the contract's codes (other numbers are passed on and refused).
_PACKED_CATEGORY = {1: "A", 2: "B", 3: "C"}


def packed_requests(p: pb.PackedBills, items: PackedItems) -> list[tuple[str, BillRequest]]:
    """Packed bills as bill requests (SETTLE mode: each bill goes through the use case)."""
    text = bill_text(p)
    nb, _, off = _check_packed(p, items, text)
    if len(p.request_ids) != nb:
        raise InputError.one(
            "packed.request_ids", len(p.request_ids), f"entries; SETTLE mode needs {nb}"
        )
    cols = {
        k: getattr(items, k).tolist()
        for k in ("category", "qty_e4", "amount", "unit_price_cap", "selfpay_ratio", "unit_price")
    }
    cols.update(item_codes=list(p.item_codes), item_names=list(p.item_names))
    bill = {
        k: text.strings(k)
        for k in ("bill_ids", "hospitals", "person_ids", "admission_dates", "discharge_dates")
    }
    regions = text.strings("regions")
    cat = _PACKED_CATEGORY
    out, problems = [], []
    for b in range(nb):
        bill_items = []
        for j in range(int(off[b]), int(off[b + 1])):
            c = cols["category"][j]
            it: dict[str, Any] = {"category": cat.get(c, c), "amount": cols["amount"][j]}
            if cols["item_codes"]:
                it["code"] = cols["item_codes"][j]
            if cols["item_names"]:
                it["name"] = cols["item_names"][j]
            if cols["qty_e4"]:
                it["qty_e4"] = cols["qty_e4"][j]
            if cols["unit_price"]:
                it["unit_price"] = cols["unit_price"][j]
            if cols["unit_price_cap"] and cols["unit_price_cap"][j] != -1:
                it["unit_price_cap"] = cols["unit_price_cap"][j]
            if cols["selfpay_ratio"] and cols["selfpay_ratio"][j] != -1:
                it["selfpay_ratio"] = cols["selfpay_ratio"][j]
            bill_items.append(it)
        d: dict[str, Any] = {
            "id": bill["bill_ids"][b],
            "hospital": bill["hospitals"][b],
            "person_id": bill["person_ids"][b],
            "hospital_level": p.levels[p.level_index[b]],
            "admission_date": bill["admission_dates"][b],
            "discharge_date": bill["discharge_dates"][b],
            "items": bill_items,
        }
        if regions and regions[b]:
            d["region"] = regions[b]
        try:
            out.append((p.request_ids[b], parse_bill_request(d)))
        except InputError as err:
            problems += [Problem(f"bills[{b}].{q.field}", q.value, q.rule) for q in err.problems]
        problems += _request_id_problems(f"bills[{b}].request_id", p.request_ids[b])
    if problems:
        raise InputError(problems)
    return out


def _check_packed_text(p: pb.PackedBills, text: BillText) -> None:
    """TRIAL mode: the strings the message form's bill would refuse (SETTLE mode parses every
    bill, which names them as bills[b].<field>). Cheap when clean: one scan of each column
    (of a coded column, its distinct values). ``text``: the per-bill strings of ``p``."""
    problems = []
    for name, field, limit, rule, bad in (
        ("item_codes", "code", 64, ID_RULE, bad_id_chars),
        ("item_names", "name", 200, TEXT_RULE, _has_nul),
    ):
        vals = getattr(p, name)
        if len(vals) and (bad("".join(vals)) or max(map(len, vals)) > limit):
            for k, v in enumerate(vals):
                if bad(v):
                    problems.append(Problem(f"items[{k}].{field}", v, rule))
                elif len(v) > limit:
                    problems.append(
                        Problem(
                            f"items[{k}].{field}",
                            v,
                            f"string should have at most {limit} characters",
                        )
                    )
    for name, field in (("bill_ids", "id"), ("person_ids", "person_id"), ("regions", "region")):
        v = getattr(text, name)
        if isinstance(v, np.ndarray):  # ids read as an array hold no control character
            continue
        distinct = v.labels.tolist() if isinstance(v, col.Coded) else (v or [])
        if bad_id_chars("".join(distinct)):
            problems += [Problem(f"bills[{i}].{field}", v, ID_RULE)
                         for i, v in enumerate(text.strings(name)) if bad_id_chars(v)]  # fmt: skip
    if bad_id_chars("".join(p.levels)):
        problems += [Problem(f"packed.levels[{i}]", v, ID_RULE)
                     for i, v in enumerate(p.levels) if bad_id_chars(v)]  # fmt: skip
    if problems:
        raise InputError(problems)


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
    nb, ni, off = _check_packed(p, it, text)
    _check_packed_text(p, text)
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
