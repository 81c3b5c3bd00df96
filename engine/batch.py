"""Settling many bills with the kernel: validate, sort, build arrays, run, read back.

``settle_batch`` is the public wrapper (stumpy style): it checks every bill against its policy,
orders bills by household then (discharge date, admission date, bill id), numbers the
person-year and household-year account slots, and hands the kernel nothing but arrays.
``reference_batch`` (engine/plainbatch.py, imported here) settles the same bills with the plain
reference, for comparison and for a few bills without numba (``engine.engines``). Both refuse
a batch in which a bill would take an account field above MAX_ACCOUNT (README, Limits): one
InputError naming each such bill (settled in order, a refused bill moving nothing).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from operator import is_

import numpy as np

from engine import kernel as K
from engine.accounts import LayerAccount, Opening, YearAccounts, limit_problem
from engine.allocation import Allocation, assemble, paying_layers
from engine.bill import Bill, Person
from engine.errors import InputError, Problem

# The checks, the settlement order, the result and the plain reference over a batch live in
# engine.plainbatch (no numpy, no numba); imported here for the kernel's path and its callers.
from engine.plainbatch import (  # noqa: F401  (re-exported)
    BatchResult,
    FundYearKey,
    bill_balances,
    budget_order_key,
    check_budgets,
    order_key,
    reference_batch,
    resolve,
    spend,
)
from engine.policy.compiled import CompiledPolicies, compile_tables, mask
from engine.policy.model import PolicyTable
from engine.policy.policyset import PolicySet
from engine.result import CAPS, REASONS, Buckets, LayerResult, Settlement


@dataclass
class KernelBatch:
    """Everything the kernel reads and writes for one batch, already in settlement order."""

    compiled: CompiledPolicies
    order: np.ndarray  # settlement position -> index in the caller's list
    item_start: np.ndarray
    cat: np.ndarray
    qty: np.ndarray
    amount: np.ndarray
    price_cap: np.ndarray
    sp_ratio: np.ndarray
    b_policy: np.ndarray
    b_level: np.ndarray
    b_tags: np.ndarray
    b_age: np.ndarray
    b_pslot: np.ndarray
    b_hslot: np.ndarray
    p_acc: np.ndarray
    p_adm: np.ndarray
    h_acc: np.ndarray
    out_bill: np.ndarray
    out_layer: np.ndarray
    chunk_start: np.ndarray  # bill offsets of household-aligned chunks for parallel runs
    #: hard budgets (domain.md section 12): the balance of each (fund, year - bal_year0), -1
    #: where the fund's budget is not hard; the kernel takes the pays from it. Empty: none.
    bal: np.ndarray = field(default_factory=lambda: np.full((0, 0), -1, dtype=np.int64))
    bal_year0: int = 0
    b_fyear: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    #: per-item allocation (domain.md section 11): ``out_item[item, layer]`` the layer's share
    #: of the item (items in settlement order, as ``amount``); None: not computed (the kernel
    #: is then compiled without it)
    out_item: np.ndarray | None = None
    #: bills the last run refused at the account limit (None: not run yet)
    n_refused: int | None = None
    #: items in place (``engine.kernel.IN_PLACE_DTYPES``): bill b's items are the run of
    #: ``item_start[b + 1] - item_start[b]`` items from ``item_at[b]`` of the item columns
    #: (not in settlement order); None: the columns are in settlement order
    item_at: np.ndarray | None = None

    @property
    def n_bills(self) -> int:
        return len(self.b_policy)

    @property
    def has_budgets(self) -> bool:
        """Some fund-year of the batch has a hard budget: the bills must run serially, in the
        region-wide order (``budget_order_key``)."""
        return bool(self.bal.size) and bool((self.bal >= 0).any())

    def set_budgets(self, budgets: Mapping[FundYearKey, int], years: np.ndarray) -> None:
        """Fill ``bal`` and ``b_fyear`` from the opening balances (``years``: each bill's
        accounting year, in settlement order). Keys of funds or years no bill has are left out
        (they keep their balance)."""
        fi = self.compiled.fund_index()
        y0 = int(years.min()) if len(years) else 0
        ny = int(years.max()) - y0 + 1 if len(years) else 0
        bal = np.full((len(fi), ny), -1, dtype=np.int64)
        for (region, code, year), v in budgets.items():
            f = fi.get((region, code))
            if f is not None and 0 <= year - y0 < ny:
                bal[f, year - y0] = v
        self.bal, self.bal_year0 = bal, y0
        self.b_fyear = np.asarray(years, dtype=np.int64) - y0

    def closing_balances(self, budgets: Mapping[FundYearKey, int]) -> dict[FundYearKey, int]:
        """The ``budgets`` after a run: each balance less what the batch paid from it."""
        fi = self.compiled.fund_index()
        out = dict(budgets)
        for key in out:
            f, y = fi.get(key[:2]), key[2] - self.bal_year0
            if f is not None and 0 <= y < self.bal.shape[1]:
                out[key] = int(self.bal[f, y])
        return out

    def args(self) -> tuple[np.ndarray | None, ...]:
        # categories (1/2/3) reach the kernel as int8 whatever they came as: Bill objects and
        # Settle's one-bill path give int64, the columns and PreSettle's reader
        # (``adapters.grpc.requestwire``) int8; one dtype there is one compiled
        # variant of each mode fewer (``engine.warm.ITEM_DTYPES``: 10-20 s of CPU each)
        cat = self.cat if self.cat.dtype == np.int8 else self.cat.astype(np.int8)
        return (
            self.item_start,
            self.item_at,
            cat,
            self.qty,
            self.amount,
            self.price_cap,
            self.sp_ratio,
            self.b_policy,
            self.b_level,
            self.b_tags,
            self.b_age,
            self.b_pslot,
            self.b_hslot,
            *self.compiled.kernel_args(),
            self.p_acc,
            self.p_adm,
            self.h_acc,
            self.out_bill,
            self.out_layer,
            # None without budgets: the kernel is compiled without the budget branches
            *((self.b_fyear, self.bal) if self.has_budgets else (None, None)),
            self.out_item,
        )

    def want_allocation(self) -> None:
        """Ask the next run for the per-item allocation (``out_item``), whose rows are the
        items in settlement order: items in place (``item_at``) are copied into it first."""
        if self.item_at is not None:
            # here, not at the top: engine.columnar imports this module
            from engine.columnar.runs import take_runs

            for name in ("cat", "qty", "amount", "price_cap", "sp_ratio"):
                setattr(self, name, take_runs(getattr(self, name), self.item_at, self.item_start))
            self.item_at = None
        self.out_item = np.zeros((len(self.amount), self.compiled.max_layers), dtype=np.int64)

    def run(self, threads: int = 1) -> None:
        """Run the kernel; in parallel over household chunks if ``threads > 1`` and no hard
        budget couples the households (a balance is taken in region-wide order)."""
        parallel = threads > 1 and not self.has_budgets
        self.n_refused = K.settle_arrays(
            self.args(), self.n_bills, self.chunk_start if parallel else None
        )

    def refused(self) -> np.ndarray:
        """Settlement positions of the bills the kernel refused at the account limit (they
        moved no account); empty after a run without any (known from the run's count, without
        a pass over ``out_bill``: ~1.5-2 ms of a 1 M-bill batch, benchmarks/README.md)."""
        if self.n_refused == 0:
            return np.zeros(0, dtype=np.int64)
        return np.flatnonzero(self.out_bill[:, K.B_STATUS])

    def limit_why(self, pos: int) -> tuple[str, int, int, str, str]:
        """(layer id, account field index, value it would reach, scope, layer name) of the
        refused bill at settlement position ``pos``."""
        li, f = K.refused_at(int(self.out_bill[pos, K.B_STATUS]))
        layer = self.compiled.tables[int(self.b_policy[pos])].layers[li]
        value = int(self.out_layer[pos, li, K.F_ACC + f])
        return layer.id, f, value, layer.scope, layer.name or layer.id

    def limit_problem(self, pos: int, bill: Bill) -> Problem:
        """The problem of the refused bill at position ``pos`` (the same as the reference's)."""
        lid, f, value, scope, name = self.limit_why(pos)
        owner = bill.person.household if scope == "household" else bill.person.id
        return limit_problem(lid, f, value, scope, owner, bill.year, name)


_COMPILED: dict[tuple[int, ...], tuple[list[PolicyTable], CompiledPolicies]] = {}


def compiled_for(tables: tuple[PolicyTable, ...] | list[PolicyTable]) -> CompiledPolicies:
    """Compiled arrays for these table objects, cached by identity (tables are immutable)."""
    key = tuple(map(id, tables))  # (map and operator.is_: no generator frames a call)
    hit = _COMPILED.get(key)
    if hit is not None and all(map(is_, hit[0], tables)):  # (the key holds as many ids)
        return hit[1]
    if len(_COMPILED) > 256:
        _COMPILED.clear()
    compiled = compile_tables(tables)
    _COMPILED[key] = (list(tables), compiled)
    return compiled


def chunks_at_households(household_codes: np.ndarray, n_chunks: int) -> np.ndarray:
    """Bill offsets splitting sorted bills into about ``n_chunks`` runs of whole households."""
    n = len(household_codes)
    if n == 0 or n_chunks <= 1:
        return np.array([0, n], dtype=np.int64)
    starts = [0]
    for c in range(1, n_chunks):
        j = int(c * n // n_chunks)
        while 0 < j < n and household_codes[j] == household_codes[j - 1]:
            j += 1
        if starts[-1] < j < n:
            starts.append(j)
    starts.append(n)
    return np.array(starts, dtype=np.int64)


def prepare(
    bills: Sequence[Bill],
    policies: PolicySet,
    opening: Opening | None = None,
    n_chunks: int = 1,
    budgets: Mapping[FundYearKey, int] | None = None,
) -> tuple[KernelBatch, list[tuple[str, int]], list[tuple[str, int]]]:
    """Arrays for the kernel; also the person-year and household-year key of each slot.
    With ``budgets`` the bills are in the region-wide order (``budget_order_key``), one chunk."""
    opening = opening or Opening()
    tables = resolve(bills, policies)
    used: list[PolicyTable] = []
    for t in tables:
        if not any(t is u for u in used):
            used.append(t)
    compiled = compiled_for(used)
    pidx = [next(j for j, u in enumerate(used) if u is t) for t in tables]
    sort_key = budget_order_key if budgets else order_key
    order = sorted(range(len(bills)), key=lambda i: sort_key(bills[i]))
    n = len(bills)
    n_items = sum(len(b.items) for b in bills)
    item_start = np.zeros(n + 1, dtype=np.int64)
    cols = {k: np.zeros(n_items, dtype=np.int64) for k in ("cat", "qty", "amount")}
    price_cap = np.full(n_items, -1, dtype=np.int64)
    sp_ratio = np.full(n_items, -1, dtype=np.int64)
    per_bill = {
        k: np.zeros(n, dtype=np.int64) for k in ("policy", "level", "tags", "age", "pslot", "hslot")
    }
    pslots: dict[tuple[str, int], int] = {}
    hslots: dict[tuple[str, int], int] = {}
    hh_code = np.zeros(n, dtype=np.int64)
    j = 0
    for pos, i in enumerate(order):
        bill, t = bills[i], tables[i]
        for it in bill.items:
            cols["cat"][j] = int(it.category)
            cols["qty"][j] = it.qty_e4
            cols["amount"][j] = it.amount
            if it.unit_price_cap is not None:
                price_cap[j] = it.unit_price_cap
            if it.selfpay_ratio is not None:
                sp_ratio[j] = it.selfpay_ratio
            j += 1
        item_start[pos + 1] = j
        day = bill.admission_date
        per_bill["policy"][pos] = pidx[i]
        per_bill["level"][pos] = t.hospital_levels.index(bill.hospital_level)
        per_bill["tags"][pos] = mask(bill.person.tags_on(day), t.tags)
        per_bill["age"][pos] = bill.person.age_on(day)
        per_bill["pslot"][pos] = pslots.setdefault((bill.person.id, bill.year), len(pslots))
        hkey = (bill.person.household, bill.year)
        per_bill["hslot"][pos] = hslots.setdefault(hkey, len(hslots))
        hh_code[pos] = hh_code[pos - 1] + (
            pos > 0 and bill.person.household != bills[order[pos - 1]].person.household
        )
    S = compiled.n_slots
    p_acc = np.zeros((len(pslots), S, 4), dtype=np.int64)
    p_adm = np.zeros(len(pslots), dtype=np.int64)
    h_acc = np.zeros((len(hslots), S, 4), dtype=np.int64)
    for key, s in pslots.items():
        ya = opening.person_year(*key)
        p_adm[s] = ya.admissions
        for li, lid in enumerate(compiled.layer_ids):
            p_acc[s, li] = ya.get(lid).as_tuple()
    for key, s in hslots.items():
        ya = opening.household_year(*key)
        for li, lid in enumerate(compiled.layer_ids):
            h_acc[s, li] = ya.get(lid).as_tuple()
    kb = KernelBatch(
        compiled=compiled, order=np.array(order, dtype=np.int64), item_start=item_start,
        cat=cols["cat"], qty=cols["qty"], amount=cols["amount"], price_cap=price_cap,
        sp_ratio=sp_ratio, b_policy=per_bill["policy"], b_level=per_bill["level"],
        b_tags=per_bill["tags"], b_age=per_bill["age"], b_pslot=per_bill["pslot"],
        b_hslot=per_bill["hslot"], p_acc=p_acc, p_adm=p_adm, h_acc=h_acc,
        out_bill=np.zeros((n, K.N_BILL), dtype=np.int64),
        out_layer=np.zeros((n, compiled.max_layers, K.N_FIELDS), dtype=np.int64),
        chunk_start=chunks_at_households(hh_code, 1 if budgets else n_chunks),
    )  # fmt: skip
    if budgets:
        kb.set_budgets(budgets, np.array([bills[i].year for i in order], dtype=np.int64))
    return kb, list(pslots), list(hslots)


def settle_batch(
    bills: Sequence[Bill],
    policies: PolicySet,
    opening: Opening | None = None,
    threads: int = 1,
    budgets: Mapping[FundYearKey, int] | None = None,
    allocate_items: bool = False,
) -> BatchResult:
    """Settle ``bills`` with the kernel from ``opening`` accounts (zero where missing);
    ``budgets`` and ``allocate_items`` as in ``reference_batch``."""
    opening = opening or Opening()
    check_budgets(budgets)
    if not bills:  # nothing to settle and no table to compile: the accounts stay as opened
        return BatchResult([], opening, dict(budgets or {}), [] if allocate_items else None)
    kb, pkeys, hkeys = prepare(bills, policies, opening, max(1, threads * 4), budgets)
    if allocate_items:
        kb.want_allocation()
    kb.run(threads)
    refused = kb.refused()
    if len(refused):
        raise InputError([
            Problem(f"bills[{i}].{p.field}", p.value, p.rule)
            for i, p in sorted(
                ((int(kb.order[pos]), kb.limit_problem(pos, bills[int(kb.order[pos])]))
                 for pos in refused), key=lambda x: x[0],
            )
        ])  # fmt: skip
    return BatchResult(
        read_settlements(kb, bills), closing(kb, opening, pkeys, hkeys),
        kb.closing_balances(budgets or {}),
        read_allocations(kb, bills) if allocate_items else None,
    )  # fmt: skip


def read_allocations(kb: KernelBatch, bills: Sequence[Bill]) -> list[Allocation]:
    """The kernel's ``out_item`` as one Allocation per bill, in the caller's order."""
    assert kb.out_item is not None, "the run was not asked for the allocation"
    out: list[Allocation | None] = [None] * len(bills)
    for pos, i in enumerate(kb.order):
        bill = bills[int(i)]
        t = kb.compiled.tables[int(kb.b_policy[pos])]
        paying = paying_layers(t)
        rows = kb.out_item[int(kb.item_start[pos]) : int(kb.item_start[pos + 1])][:, paying]
        shares = rows.tolist()
        selfpay = [it.amount - sum(r) for it, r in zip(bill.items, shares, strict=True)]
        out[int(i)] = assemble(bill, t, paying, shares, selfpay)
    return [a for a in out if a is not None]


def read_settlements(kb: KernelBatch, bills: Sequence[Bill]) -> list[Settlement]:
    out: list[Settlement | None] = [None] * len(bills)
    c = kb.compiled
    for pos, i in enumerate(kb.order):
        bill = bills[int(i)]
        t = c.tables[int(kb.b_policy[pos])]
        out[int(i)] = settlement_of_rows(
            kb.out_bill[pos].tolist(), kb.out_layer[pos].tolist(), t, bill.id, bill.hospital,
            bill.person, bill.year, bill.discharge_date,
        )  # fmt: skip
    return [s for s in out if s is not None]


def settlement_of_rows(
    ob: list[int], layer_rows: list[list[int]], t: PolicyTable, bill_id: str, hospital: str,
    person: Person, year: int, discharge_date: date,
) -> Settlement:  # fmt: skip
    """One bill's settlement from its kernel output rows (``out_bill`` and the ``out_layer``
    rows of its table's layers, in layer order): the one reading of the kernel's outputs, for
    the batch and the service's one-bill path."""
    layers = []
    for layer, o in zip(t.layers, layer_rows, strict=False):
        vi = o[K.F_VARIANT]
        layers.append(LayerResult(
            layer.id, layer.kind, layer.fund_code, layer.settle_at, layer.scope,
            REASONS[o[K.F_REASON]], vi, layer.variants[vi].label if vi >= 0 else "",
            o[K.F_BASE], o[K.F_DED], o[K.F_ELIGIBLE], o[K.F_PAY], o[K.F_RELIEF],
            CAPS[o[K.F_CAP]], LayerAccount(*o[K.F_ACC:K.F_ACC + 4]), bool(o[K.F_ALERT]),
            layer.name, layer.name_zh,
        ))  # fmt: skip
    return Settlement(
        bill_id=bill_id,
        hospital=hospital,
        person_id=person.id,
        household=person.household,
        region=t.region.code,
        policy=t.label,
        year=year,
        discharge_date=discharge_date,
        admission_no=ob[K.B_ADMNO],
        buckets=Buckets(ob[K.B_TOTAL], ob[K.B_IN_SCOPE], ob[K.B_PRE], ob[K.B_OVER], ob[K.B_OOC]),
        layers=tuple(layers),
        window_pay=ob[K.B_WINDOW],
        net_selfpay=ob[K.B_NET],
        admissions_after=ob[K.B_ADMNO],
    )


def closing(
    kb: KernelBatch, opening: Opening, pkeys: list[tuple[str, int]], hkeys: list[tuple[str, int]]
) -> Opening:
    ids = kb.compiled.layer_ids
    person = dict(opening.person)
    household = dict(opening.household)
    for s, key in enumerate(pkeys):
        layers = dict(opening.person_year(*key).layers)
        for li, lid in enumerate(ids):
            layers[lid] = LayerAccount(*kb.p_acc[s, li].tolist())
        person[key] = YearAccounts(layers, int(kb.p_adm[s])).normalized()
    for s, key in enumerate(hkeys):
        ya = opening.household_year(*key)
        layers = dict(ya.layers)
        for li, lid in enumerate(ids):
            layers[lid] = LayerAccount(*kb.h_acc[s, li].tolist())
        household[key] = YearAccounts(layers, ya.admissions).normalized()
    return Opening(person, household)
