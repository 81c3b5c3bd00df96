"""Settling one bill from given year-to-date accounts, with the kernel (or the reference).

This is what the service calls per request: resolve the table in force, check the bill against
it, settle, and report the accounts after and how each account moved.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from engine.accounts import ZERO, LayerAccount, Opening, YearAccounts
from engine.allocation import Allocation
from engine.batch import FundYearKey, reference_batch, settle_batch
from engine.bill import Bill
from engine.errors import InputError, Problem
from engine.policy.policyset import PolicySet
from engine.result import Settlement


@dataclass(frozen=True)
class Outcome:
    settlement: Settlement
    person_after: YearAccounts
    household_after: YearAccounts
    person_moves: dict[str, LayerAccount]  # layer id -> after minus before (non-zero only)
    household_moves: dict[str, LayerAccount]
    #: per-item allocation (domain.md section 11); None unless asked for
    allocation: Allocation | None = None


def settle_one(
    bill: Bill,
    policies: PolicySet,
    person: YearAccounts,
    household: YearAccounts,
    engine: Literal["kernel", "reference"] = "kernel",
    budgets: Mapping[FundYearKey, int] | None = None,
    allocate_items: bool = False,
) -> Outcome:
    """``budgets``: the balance of each hard-budget fund-year the bill may draw on (domain.md
    section 12), keyed (region, fund code, year); the service reads them under the fund's lock.
    ``allocate_items``: also the per-item allocation (section 11), in ``Outcome.allocation``."""
    pk, hk = (bill.person.id, bill.year), (bill.person.household, bill.year)
    opening = Opening({pk: person}, {hk: household})
    run = settle_batch if engine == "kernel" else reference_batch
    try:
        result = run([bill], policies, opening, budgets=budgets, allocate_items=allocate_items)
    except InputError as err:  # one bill: its problems without the batch's "bills[0]."
        raise InputError([
            Problem(p.field.removeprefix("bills[0]."), p.value, p.rule) for p in err.problems
        ]) from None  # fmt: skip
    pa, ha = result.closing.person[pk], result.closing.household[hk]
    alloc = result.allocations[0] if result.allocations else None
    return Outcome(result.settlements[0], pa, ha, moves(person, pa), moves(household, ha), alloc)


def moves(before: YearAccounts, after: YearAccounts) -> dict[str, LayerAccount]:
    out = {}
    b, a = before.layers, after.layers
    for lid in set(b) | set(a):  # (the order the moves were always listed in)
        d = a.get(lid, ZERO).minus(b.get(lid, ZERO))
        if not d.is_zero():
            out[lid] = d
    return out


def undo(acc: YearAccounts, moved: dict[str, LayerAccount], admissions: int) -> YearAccounts:
    """Accounts with the given moves taken back (a reversal)."""
    layers = dict(acc.layers)
    for lid, d in moved.items():
        layers[lid] = acc.get(lid).minus(d)
    return YearAccounts(layers, acc.admissions - admissions)
