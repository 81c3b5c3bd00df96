"""Packed bills (``PackedBills``: the bills of a SettleStream message as columns): the checks
of their shape and strings, and (SETTLE mode) each bill as a bill request for the ``settle``
use case. TRIAL mode's columnar path is ``packedtrial``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from adapters.grpc.gen.onestop.settlement.v1 import settlement_pb2 as pb
from adapters.grpc.packeditems import PackedItems, given_field
from adapters.grpc.packedtext import (
    BillText,
    bill_text,
)
from engine import columnar as col
from engine.bill import BillRequest, check_items_count, parse_bill_request
from engine.errors import InputError, Problem
from engine.service.inputs import key_problems
from engine.validation import ID_RULE, TEXT_RULE, bad_id_chars


def check_packed(
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
    nb, _, off = check_packed(p, items, text)
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
        problems += key_problems(f"bills[{b}].request_id", p.request_ids[b])
    if problems:
        raise InputError(problems)
    return out


def check_packed_text(p: pb.PackedBills, text: BillText) -> None:
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
