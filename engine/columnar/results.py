"""Running the kernel on prepared columns and reading results back as columns."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from engine import kernel as K
from engine.accounts import ACCOUNT_FIELDS, limit_rule
from engine.batch import FundYearKey
from engine.columnar.buffers import OutputBuffers
from engine.columnar.byfield import compiled_takes, transpose_into
from engine.columnar.inputs import (
    BillCols,
    Coded,
    ItemCols,
    OpeningCols,
    PersonCols,
    Reject,
    _py,
    plain_at,
    rows_of,
    take,
    unique,
)
from engine.columnar.prepare import Prepared, prepare_columns
from engine.policy.policyset import PolicySet
from engine.result import CAPS, REASONS

# --------------------------------------------------------------------------- results


def run(
    prep: Prepared, threads: int = 1, allocate: bool = False, keep_items: bool = True
) -> list[Reject]:
    """Run the kernel, then leave out the bills it refused at the account limit (README,
    Limits): each becomes a ``Reject`` of its bills row (added to ``prep.rejects`` and returned)
    and the result arrays keep only the settled bills. A prepared batch runs once.
    ``allocate``: also the per-item allocation (domain.md section 11, ``kb.out_item``; read it
    with ``item_fund_columns``). ``keep_items=False`` (without ``allocate``): the item
    columns are let go once the kernel has run (only ``item_fund_columns`` reads them after
    it), so that a pipelined batch run reads its next part into their memory while this
    part's results are written, instead of holding a third part's items."""
    if allocate:
        prep.kb.want_allocation()
    prep.kb.run(threads)
    refused = _refuse(prep)
    if not keep_items and not allocate:
        kb = prep.kb  # empty arrays (not views, which would keep the memory): a late
        for name in ("cat", "qty", "amount", "price_cap", "sp_ratio"):  # reader finds no items
            setattr(kb, name, np.empty(0, getattr(kb, name).dtype))
    return refused


def _refuse(prep: Prepared) -> list[Reject]:
    kb = prep.kb
    pos = kb.refused()
    if len(pos) == 0:
        return []
    rows = rows_of(prep.bills.row, len(prep.bills))
    new = []
    for q in pos.tolist():
        lid, f, value, scope, name = kb.limit_why(q)
        who = prep.household if scope == "household" else prep.person
        i = int(prep.kept[q])
        new.append(Reject(
            int(rows[np.array([i])][0]), prep.bills.file, f"accounts.{lid}.{ACCOUNT_FIELDS[f]}",
            value, limit_rule(scope, str(plain_at(who, np.array([q]))[0]), int(prep.year[q]),
                              name, value),
            _py(plain_at(prep.bills.bill_id, np.array([i]))[0]),
        ))  # fmt: skip
    keep = np.ones(kb.n_bills, dtype=bool)
    keep[pos] = False
    for name in ("order", "b_policy", "b_level", "b_tags", "b_age", "b_pslot", "b_hslot",
                 "out_bill", "out_layer"):  # fmt: skip
        setattr(kb, name, getattr(kb, name)[keep])
    if len(kb.b_fyear) == len(keep):
        kb.b_fyear = kb.b_fyear[keep]
    if kb.out_item is not None:  # the refused bills' items go too
        counts = np.diff(kb.item_start)
        ikeep = np.repeat(keep, counts)
        kb.out_item, kb.amount = kb.out_item[ikeep], kb.amount[ikeep]
        kb.item_start = np.concatenate(([0], np.cumsum(counts[keep]))).astype(np.int64)
    kb.chunk_start = np.array([0, int(keep.sum())], dtype=np.int64)
    prep.kept = prep.kept[keep]
    for name in ("region", "person", "household"):
        c = getattr(prep, name)
        setattr(prep, name, Coded(c.codes[keep], c.labels))
    prep.year, prep.admission, prep.discharge = (
        prep.year[keep], prep.admission[keep], prep.discharge[keep],
    )  # fmt: skip
    prep.rejects = sorted([*prep.rejects, *new], key=lambda r: (r.file, r.row, r.field))
    return new


def bill_columns(prep: Prepared, fields: np.ndarray | None = None) -> dict[str, Any]:
    """One row per settled bill, in settlement order: buckets, pays per layer id, window and
    net shares, admission number (domain.md section 7). ``fields``: ``layer_fields(prep)``,
    if made already (else the pays are read from ``out_layer`` in place)."""
    kb, c = prep.kb, prep.kb.compiled
    ob = kb.out_bill
    n = kb.n_bills
    labels = np.array([t.label for t in c.tables], dtype=object)
    bid = take(prep.bills.bill_id, prep.kept)
    out: dict[str, Any] = {
        "row": rows_of(prep.bills.row, len(prep.bills))[prep.kept],
        "bill_id": bid,
        "hospital": take(prep.bills.hospital, prep.kept),
        "person_id": prep.person,
        "household_id": prep.household,
        "region": prep.region,
        "policy": Coded(kb.b_policy, labels),
        "year": prep.year,
        "admission_date": prep.admission.astype("M8[D]"),
        "discharge_date": prep.discharge.astype("M8[D]"),
        "admission_no": ob[:, K.B_ADMNO],
        "total": ob[:, K.B_TOTAL],
        "in_scope": ob[:, K.B_IN_SCOPE],
        "pre_selfpay": ob[:, K.B_PRE],
        "over_limit": ob[:, K.B_OVER],
        "out_of_catalogue": ob[:, K.B_OOC],
    }
    # each bill's pays scattered to their slots' columns at once (a table's layers have
    # distinct slots); 0 where a bill's table has no such layer
    pays = np.zeros((len(c.layer_ids), n), dtype=np.int64)
    if n:
        pay = _field(prep, fields, K.F_PAY).reshape(n, c.max_layers)
        valid = np.arange(c.max_layers)[None, :] < c.n_layers[kb.b_policy][:, None]
        if valid.all() and (c.slot == c.slot[:1]).all():  # each layer one slot in every table
            pays[c.slot[0]] = pay.T  # a row a layer, no scatter of every bill's (~4x cheaper)
        elif valid.all():
            pays[c.slot[kb.b_policy], np.arange(n)[:, None]] = pay
        else:
            b, li = np.nonzero(valid)
            pays[c.slot[kb.b_policy][b, li], b] = pay[b, li]
    for s, lid in enumerate(c.layer_ids):
        out[f"pay_{lid}"] = pays[s]
    out["funds_total"] = ob[:, K.B_TOTAL] - ob[:, K.B_NET]
    out["window_pay"] = ob[:, K.B_WINDOW]
    out["net_selfpay"] = ob[:, K.B_NET]
    return out


def item_fund_columns(prep: Prepared) -> dict[str, Any]:
    """Items by fund (domain.md section 11), from a run with ``allocate``: one row per settled
    bill's item and layer that paid part of it (amount > 0), then one row per item the patient
    pays part of (``layer_id`` "selfpay", ``fund_code`` ""), bills in settlement order, items
    in their order in the bill (``item_index`` from 0). Per item the rows add up to its amount;
    per bill and layer they add up to the layer's pay."""
    kb, c = prep.kb, prep.kb.compiled
    assert kb.out_item is not None, "run(prep, allocate=True) first"
    n, L = kb.n_bills, c.max_layers
    counts = np.diff(kb.item_start)
    ib = np.repeat(np.arange(n, dtype=np.int64), counts)  # settlement position of each item
    idx = np.arange(len(ib), dtype=np.int64) - kb.item_start[:-1][ib]
    it, li = np.nonzero(kb.out_item)
    selfpay = kb.amount[: len(ib)] - kb.out_item.sum(axis=1)
    sp = np.flatnonzero(selfpay)
    P = len(c.tables)
    lids = np.empty(P * L + 1, dtype=object)
    codes = np.empty(P * L + 1, dtype=object)
    lids[:], codes[:] = "selfpay", ""
    for pi, t in enumerate(c.tables):
        for lj, layer in enumerate(t.layers):
            lids[pi * L + lj], codes[pi * L + lj] = layer.id, layer.fund_code
    items = np.concatenate((it, sp))
    key = np.concatenate((kb.b_policy[ib[it]] * L + li, np.full(len(sp), P * L, np.int64)))
    amount = np.concatenate((kb.out_item[it, li], selfpay[sp]))
    order = np.lexsort((key == P * L, items))  # by item, its funds first, then the patient
    items, key, amount = items[order], key[order], amount[order]
    bpos = ib[items]
    kept = prep.kept[bpos]
    return {
        "row": rows_of(prep.bills.row, len(prep.bills))[kept],
        "bill_id": take(prep.bills.bill_id, kept),
        "hospital": take(prep.bills.hospital, kept),
        "item_index": idx[items],
        "layer_id": Coded(key, lids),
        "fund_code": Coded(key, codes),
        "amount": amount,
    }


LAYER_FIELDS = (
    "base", "deductible", "eligible", "pay", "relief",
    *ACCOUNT_FIELDS,
)  # fmt: skip


def layer_fields(prep: Prepared, out: OutputBuffers | None = None) -> np.ndarray:
    """The kernel's per-layer outputs field by field: ``(N_FIELDS, n_bills * max_layers)``,
    C-contiguous, column ``b * max_layers + li`` the bill in settlement position ``b``'s layer
    ``li`` (``by_field`` of ``out_layer``: one pass over it, which the layers' columns and then
    the alerts' take from). ``out``: written into a buffer of that pool (``take_fields``: lent
    to ``prep``, read no more once ``out.give_back(prep)``), not a fresh array."""
    rows = _layer_rows(prep)
    if out is None:
        return by_field(rows)
    size = rows.shape[0] * rows.shape[1]
    f = out.take_fields(prep, size)[:size].reshape(rows.shape[1], rows.shape[0])
    return by_field(rows, into=f)


def _layer_rows(prep: Prepared) -> np.ndarray:
    """``out_layer`` as (bill, layer) rows, bill-major, of the settled bills only (a view)."""
    kb = prep.kb
    return kb.out_layer.reshape(-1, K.N_FIELDS)[: kb.n_bills * kb.compiled.max_layers]


def _field(prep: Prepared, fields: np.ndarray | None, k: int) -> np.ndarray:
    """Field ``k`` of every (bill, layer) row, bill-major: a row of ``fields`` (``layer_fields``)
    if given, else a strided view of ``out_layer`` (no copy: a column or two is cheaper read in
    place than the whole array split)."""
    return fields[k] if fields is not None else _layer_rows(prep)[:, k]


def layer_columns(prep: Prepared, fields: np.ndarray | None = None) -> dict[str, Any]:
    """One row per settled bill and layer of its table (domain.md section 7). ``fields``:
    ``layer_fields(prep)``, if made already."""
    kb, c = prep.kb, prep.kb.compiled
    n, L = kb.n_bills, c.max_layers
    P = len(c.tables)
    nl = c.n_layers[kb.b_policy] if n else np.zeros(0, dtype=np.int64)
    f = layer_fields(prep) if fields is None else fields
    m = np.arange(L)[None, :] < nl[:, None]
    if m.all():  # every bill has L layers: the fields as they are, no gather
        b, li = np.repeat(np.arange(n), L), np.tile(np.arange(L), n)
        pl = (kb.b_policy[:, None] * L + np.arange(L)).reshape(-1)
    else:
        b, li = np.nonzero(m)
        f = f[:, b * L + li]  # each field a contiguous column: Arrow wraps it as it is
        pl = kb.b_policy[b] * L + li

    def per_layer(get: Any) -> np.ndarray:
        arr = np.empty(P * L, dtype=object)
        arr[:] = ""
        for pi, t in enumerate(c.tables):
            for lj, layer in enumerate(t.layers):
                arr[pi * L + lj] = get(layer)
        return arr

    V = c.w_tags_any.shape[2]
    vlabels = np.empty(P * L * V + 1, dtype=object)
    vlabels[:] = ""
    for pi, t in enumerate(c.tables):
        for lj, layer in enumerate(t.layers):
            for vk, v in enumerate(layer.variants):
                vlabels[(pi * L + lj) * V + vk] = v.label
    vi = f[K.F_VARIANT]
    vcode = np.where(vi >= 0, pl * V + vi, P * L * V)
    bid = take(prep.bills.bill_id, prep.kept)
    hosp = take(prep.bills.hospital, prep.kept)
    return {
        "bill_id": take(bid, b) if isinstance(bid, Coded) else Coded(b, bid),
        "hospital": take(hosp, b) if isinstance(hosp, Coded) else Coded(b, hosp),
        "year": prep.year[b],
        "layer_no": li,
        "layer_id": Coded(pl, per_layer(lambda la: la.id)),
        "layer_name": Coded(pl, per_layer(lambda la: la.name)),
        "kind": Coded(pl, per_layer(lambda la: la.kind)),
        "fund_code": Coded(pl, per_layer(lambda la: la.fund_code)),
        "settle_at": Coded(pl, per_layer(lambda la: la.settle_at)),
        "scope": Coded(pl, per_layer(lambda la: la.scope)),
        "applied": f[K.F_REASON] == 0,
        "reason": Coded(f[K.F_REASON], np.array(REASONS, dtype=object)),
        "variant": vi,
        "variant_label": Coded(vcode, vlabels),
        "base": f[K.F_BASE],
        "deductible": f[K.F_DED],
        "eligible": f[K.F_ELIGIBLE],
        "pay": f[K.F_PAY],
        "relief": f[K.F_RELIEF],
        "cap": Coded(f[K.F_CAP], np.array(CAPS, dtype=object)),
        "deductible_used": f[K.F_ACC + 0],
        "eligible_cum": f[K.F_ACC + 1],
        "paid": f[K.F_ACC + 2],
        "selfpay_cum": f[K.F_ACC + 3],
        "alert": f[K.F_ALERT] == 1,
    }


def by_field(o: np.ndarray, block: int = 8192, into: np.ndarray | None = None) -> np.ndarray:
    """A (rows, fields) array as (fields, rows), C-contiguous: each field one contiguous
    column. Copied a block of rows at a time (the block stays in the cache while each field
    is taken out of it): ~3x cheaper than numpy's transposing copy or a strided copy of each
    field, both of which read all of ``o`` once per field (1 M layer rows: ~22 against ~70 ms).
    ``into``: the (fields, rows) array to write (else a new one). C-contiguous int64 arrays
    (``out_layer``'s rows) go through one compiled loop (``byfield``: ~3x cheaper again)."""
    f = np.empty((o.shape[1], o.shape[0]), dtype=o.dtype) if into is None else into
    if compiled_takes(o, f):
        return transpose_into(o, f)
    for i in range(0, len(o), block):
        f[:, i : i + block] = o[i : i + block].T
    return f


def alert_columns(prep: Prepared, fields: np.ndarray | None = None) -> dict[str, Any]:
    """One row per alert (an alert layer whose yearly self-pay passed its threshold).
    ``fields``: ``layer_fields(prep)``, if made already (a part's writer makes it for its
    layers; else the fields are read from ``out_layer`` in place)."""
    kb, c = prep.kb, prep.kb.compiled
    L = c.max_layers
    at = np.flatnonzero(_field(prep, fields, K.F_ALERT) == 1)  # (bill, layer), row-major
    b, li = at // L, at % L
    P = len(c.tables)
    ids = np.empty(P * L, dtype=object)
    ids[:] = ""
    for pi, t in enumerate(c.tables):
        for lj, layer in enumerate(t.layers):
            ids[pi * L + lj] = layer.id
    return {  # coded columns stay coded (no string per row; Arrow takes the codes)
        "bill_id": take(prep.bills.bill_id, prep.kept[b]),
        "hospital": take(prep.bills.hospital, prep.kept[b]),
        "person_id": take(prep.person, b),
        "household_id": take(prep.household, b),
        "layer_id": Coded(kb.b_policy[b] * L + li, ids),
        "year": prep.year[b],
        "selfpay_cum": _field(prep, fields, K.F_ACC + 3)[at],
        "relief": _field(prep, fields, K.F_RELIEF)[at],
    }


def fund_figures(prep: Prepared) -> dict[tuple[str, str, int], dict[str, int]]:
    """Per (region, fund code, year) the layers of the batch drew on: ``paid`` (pays and alert
    reliefs: what a hard budget's balance gives) and ``bound_bills`` (bills where the fund's
    hard budget bound a layer, cap ``budget``)."""
    kb, c = prep.kb, prep.kb.compiled
    n, L = kb.n_bills, c.max_layers
    if n == 0:
        return {}
    applied = (np.arange(L)[None, :] < c.n_layers[kb.b_policy][:, None]) & (
        kb.out_layer[:, :, K.F_REASON] == 0
    )
    b, li = np.nonzero(applied)  # the masks below take the same (row-major) order
    ol = kb.out_layer
    took = ol[:, :, K.F_PAY][applied] + ol[:, :, K.F_RELIEF][applied]
    bound = ol[:, :, K.F_CAP][applied] == K.C_BUD
    ymin = int(prep.year.min())
    span = int(prep.year.max()) - ymin + 1
    key = c.fund[kb.b_policy[b], li] * span + (prep.year[b] - ymin)
    uk, inv = np.unique(key, return_inverse=True)
    inv = inv.reshape(-1)
    paid = np.zeros(len(uk), dtype=np.int64)
    np.add.at(paid, inv, took)
    pairs = unique(inv[bound] * n + b[bound])  # (fund-year, bill) where the budget bound
    n_bound = np.bincount(pairs // n, minlength=len(uk)) if len(pairs) else np.zeros(len(uk), int)
    out = {}
    for j, k in enumerate(uk.tolist()):
        region, code = c.fund_keys[k // span]
        out[(region, code, k % span + ymin)] = {
            "paid": int(paid[j]),
            "bound_bills": int(n_bound[j]),
        }
    return out


def closing_columns(prep: Prepared) -> dict[str, Any]:
    """The accounts after the batch, one row per slot (person-year or household-year) and
    layer that is not all zero; person rows carry the year's admission count. The text
    columns are ``Coded`` over the slots' ids (no string per row)."""
    kb, c = prep.kb, prep.kb.compiled
    parts, base = [], 0
    lids = np.array(c.layer_ids, dtype=object)
    for scope, (ids, years), acc, adm in (
        (0, prep.pslot_keys, kb.p_acc, kb.p_adm),
        (1, prep.hslot_keys, kb.h_acc, None),
    ):
        used = np.any(acc != 0, axis=2)
        if adm is not None:
            used |= adm[:, None] != 0
        s, li = np.nonzero(used)
        parts.append({
            "scope": np.full(len(s), scope, dtype=np.int8),
            "id": s + base,
            "year": np.asarray(years)[s],
            "layer_id": li,
            **{f: acc[s, li, k] for k, f in enumerate(ACCOUNT_FIELDS)},
            "admissions": adm[s] if adm is not None else np.zeros(len(s), dtype=np.int64),
        })  # fmt: skip
        base += len(ids)
    out: dict[str, Any] = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    ids = np.concatenate([np.asarray(prep.pslot_keys[0], dtype=object),
                          np.asarray(prep.hslot_keys[0], dtype=object)])  # fmt: skip
    out["scope"] = Coded(out["scope"], np.array(["person", "household"], dtype=object))
    out["id"] = Coded(out["id"], ids)
    out["layer_id"] = Coded(out["layer_id"], lids)
    return out


def plain(col: Any) -> np.ndarray:
    """A column as a plain array (``Coded`` expanded)."""
    return col.values() if isinstance(col, Coded) else np.asarray(col)


def settle_columns(
    bills: BillCols,
    items: ItemCols,
    persons: PersonCols,
    policies: PolicySet,
    opening: OpeningCols | None = None,
    threads: int = 1,
    budgets: Mapping[FundYearKey, int] | None = None,
) -> Prepared:
    """Check, prepare and settle; read results with ``bill_columns`` and friends. Bills the
    kernel refused at the account limit are in ``prep.rejects`` and not in the results.
    ``budgets``: opening balances of hard budgets; ``prep.kb.closing_balances(budgets)`` after."""
    prep = prepare_columns(bills, items, persons, policies, opening,
                           n_chunks=max(1, threads * 4), budgets=budgets)  # fmt: skip
    run(prep, threads)
    return prep


def columns_from_bills(
    bills: Any, opening: Any = None
) -> tuple[BillCols, ItemCols, PersonCols, OpeningCols | None]:
    """The column form of a list of ``Bill`` objects (and an ``Opening``): for tests and for
    comparing with the reference."""
    n = len(bills)
    ids = np.array([b.id for b in bills], dtype=object)
    region = [b.region for b in bills]
    bc = BillCols(
        bill_id=ids,
        hospital=np.array([b.hospital for b in bills], dtype=object),
        person_id=np.array([b.person.id for b in bills], dtype=object),
        household_id=np.array([b.person.household for b in bills], dtype=object),
        region=None if all(r is None for r in region) else np.array(region, dtype=object),
        hospital_level=np.array([b.hospital_level for b in bills], dtype=object),
        admission_date=np.array([b.admission_date for b in bills], dtype="M8[D]"),
        discharge_date=np.array([b.discharge_date for b in bills], dtype="M8[D]"),
    )
    its = [(i, it) for i in range(n) for it in bills[i].items]
    cap = [it.unit_price_cap for _, it in its]
    ratio = [it.selfpay_ratio for _, it in its]
    ic = ItemCols(
        bill_row=np.array([i for i, _ in its], dtype=np.int64),
        category=np.array([int(it.category) for _, it in its], dtype=np.int8),
        amount=np.array([it.amount for _, it in its], dtype=np.int64),
        qty_e4=np.array([it.qty_e4 for _, it in its], dtype=np.int64),
        unit_price=np.array([it.unit_price for _, it in its], dtype=np.int64),
        unit_price_cap=np.array([-1 if c is None else c for c in cap], dtype=np.int64),
        unit_price_cap_null=np.array([c is None for c in cap], dtype=bool),
        selfpay_ratio=np.array([-1 if r is None else r for r in ratio], dtype=np.int64),
        selfpay_ratio_null=np.array([r is None for r in ratio], dtype=bool),
    )
    people: dict[str, Any] = {}
    for b in bills:
        people.setdefault(b.person.id, b.person)
    prow: list[tuple[Any, ...]] = []
    for p in people.values():
        if not p.tags:
            prow.append((p.id, p.birth_date, p.household, "", None, None))
        for t in p.tags:
            prow.append((p.id, p.birth_date, p.household, t.tag, t.valid_from, t.valid_to))
    pc = PersonCols(
        person_id=np.array([r[0] for r in prow], dtype=object),
        birth_date=np.array([r[1] for r in prow], dtype="M8[D]"),
        household_id=np.array([r[2] for r in prow], dtype=object),
        tag=np.array([r[3] for r in prow], dtype=object),
        tag_valid_from=np.array([r[4] if r[4] else "NaT" for r in prow], dtype="M8[D]"),
        tag_valid_to=np.array([r[5] if r[5] else "NaT" for r in prow], dtype="M8[D]"),
    )
    oc = None
    if opening is not None:
        orow: list[tuple[Any, ...]] = []
        for scope, d in (("person", opening.person), ("household", opening.household)):
            for (key, year), ya in d.items():
                orow.append((scope, key, year, "", 0, 0, 0, 0, ya.admissions))
                for lid, acc in ya.layers.items():
                    orow.append((scope, key, year, lid, *acc.as_tuple(), ya.admissions))
        cols = list(zip(*orow, strict=True)) if orow else [()] * 9
        oc = OpeningCols(
            scope=np.array(cols[0], dtype=object),
            id=np.array(cols[1], dtype=object),
            year=np.array(cols[2], dtype=np.int64),
            layer_id=np.array(cols[3], dtype=object),
            deductible_used=np.array(cols[4], dtype=np.int64),
            eligible_cum=np.array(cols[5], dtype=np.int64),
            paid=np.array(cols[6], dtype=np.int64),
            selfpay_cum=np.array(cols[7], dtype=np.int64),
            admissions=np.array(cols[8], dtype=np.int64),
        )
    return bc, ic, pc, oc
