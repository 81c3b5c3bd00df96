"""The plain reference over a batch: check every bill, order them, settle one at a time.

``reference_batch`` settles bills with the plain rules of ``engine.reference`` (readable, exact,
no numpy or numba: ``onestop settle`` runs it for a few bills without paying numba's import,
``engine.engines``); ``engine.batch.settle_batch`` settles the same bills with the numba
kernel and shares this module's checks (``resolve``, ``check_budgets``), settlement order
(``order_key``, ``budget_order_key``) and result (``BatchResult``). The property tests hold
the two equal to the fen. A batch in which a bill would take an account field above
MAX_ACCOUNT (README, Limits) is refused: one InputError naming each such bill (settled in
order, a refused bill moving nothing).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from engine.accounts import Opening, YearAccounts
from engine.bill import Bill
from engine.checks import check_bill
from engine.errors import InputError, Problem
from engine.policy.model import PolicyTable
from engine.policy.policyset import PolicySet
from engine.reference import settle_bill
from engine.result import Settlement

if TYPE_CHECKING:  # the per-item allocation is imported when asked for (onestop settle --allocate)
    from engine.allocation import Allocation

#: (region code, fund code, accounting year) of a fund's budget (domain.md section 12)
FundYearKey = tuple[str, str, int]


@dataclass(frozen=True)
class BatchResult:
    settlements: list[Settlement]  # in the order the bills were given
    closing: Opening  # accounts after the batch (opening accounts not touched are carried over)
    #: the remaining balance of each hard-budget fund-year after the batch (the opening
    #: ``budgets`` given, less what the batch paid from them)
    balances: dict[FundYearKey, int] = field(default_factory=dict)
    #: per-item allocation of each settlement (domain.md section 11), in the order of
    #: ``settlements``; None unless asked for (``allocate=True``)
    allocations: list[Allocation] | None = None


def order_key(bill: Bill) -> tuple[str, object, object, str, str]:
    """Settlement order (domain.md sections 6 and 12): within a household, by discharge date,
    admission date, bill id, hospital. Any order that keeps this within each household gives
    the same result."""
    return (
        bill.person.household, bill.discharge_date, bill.admission_date, bill.id, bill.hospital
    )  # fmt: skip


def budget_order_key(bill: Bill) -> tuple[object, object, str, str]:
    """Settlement order across a whole region (domain.md section 12), used when a hard budget
    couples the region's households: (discharge date, admission date, bill id, hospital).
    Within one household it is ``order_key``'s order."""
    return (bill.discharge_date, bill.admission_date, bill.id, bill.hospital)


def bill_balances(
    bill: Bill, table: PolicyTable, balances: dict[FundYearKey, int]
) -> dict[str, int]:
    """The hard-budget balances a bill's layers see: fund code -> balance."""
    region, year = table.region.code, bill.year
    out = {}
    for layer in table.layers:
        key = (region, layer.fund_code, year)
        if key in balances:
            out[layer.fund_code] = balances[key]
    return out


def spend(s: Settlement, balances: dict[FundYearKey, int]) -> None:
    """Take a settlement's pays (and reliefs) from the hard-budget balances it drew on."""
    for r in s.layers:
        key = (s.region, r.fund_code, s.year)
        if key in balances and (r.pay or r.relief):
            balances[key] -= r.pay + r.relief


def _is_int(v: object) -> bool:
    """An int, or a numpy integer (numpy is not imported here: if no module has imported it,
    no value can be a numpy integer)."""
    np = sys.modules.get("numpy")
    return isinstance(v, int) or (np is not None and isinstance(v, np.integer))


def check_budgets(budgets: Mapping[FundYearKey, int] | None) -> None:
    """InputError for a balance that is not a non-negative integer (fen)."""
    problems = [
        Problem(f"budgets[{k!r}]", v, "is not a balance; balances are non-negative whole fen")
        for k, v in (budgets or {}).items()
        if isinstance(v, bool) or not _is_int(v) or v < 0
    ]
    if problems:
        raise InputError(problems)


def resolve(bills: Sequence[Bill], policies: PolicySet) -> list[PolicyTable]:
    """The table for each bill, checking every bill; one InputError with every problem."""
    problems: list[Problem] = []
    tables: list[PolicyTable] = []
    seen: dict[tuple[str, str], int] = {}
    homes: dict[str, tuple[str, int]] = {}
    for i, bill in enumerate(bills):
        try:
            key = (bill.hospital, bill.id)
            if key in seen:
                raise InputError.one(
                    "id",
                    bill.id,
                    f"is used by bill {seen[key]} of the same hospital {bill.hospital!r} too; "
                    "a bill id is unique within its hospital",
                )
            seen[key] = i
            home = homes.setdefault(bill.person.id, (bill.person.household, i))
            if home[0] != bill.person.household:
                raise InputError.one(
                    "person.household",
                    bill.person.household,
                    f"differs from {home[0]!r} given for person "
                    f"{bill.person.id!r} in bill {home[1]}; a person belongs "
                    "to one household",
                )
            table = policies.table_for(bill.region, bill.discharge_date)
            check_bill(bill, table)
            tables.append(table)
        except InputError as err:
            problems += [Problem(f"bills[{i}].{p.field}", p.value, p.rule) for p in err.problems]
    if problems:
        raise InputError(problems)
    return tables


def reference_batch(
    bills: Sequence[Bill],
    policies: PolicySet,
    opening: Opening | None = None,
    budgets: Mapping[FundYearKey, int] | None = None,
    allocate_items: bool = False,
) -> BatchResult:
    """The plain reference over a batch: one bill at a time in settlement order.

    ``budgets``: the opening balance of each hard-budget fund-year (region, fund code, year);
    with any, the bills are settled in the region-wide order of section 12.
    ``allocate_items``: also the per-item allocation of each bill (section 11)."""
    opening = opening or Opening()
    check_budgets(budgets)
    tables = resolve(bills, policies)
    person = dict(opening.person)
    household = dict(opening.household)
    balances = dict(budgets or {})
    out: list[Settlement | None] = [None] * len(bills)
    refused: list[tuple[int, InputError]] = []
    key = budget_order_key if balances else order_key
    for i in sorted(range(len(bills)), key=lambda i: key(bills[i])):
        bill = bills[i]
        pk, hk = (bill.person.id, bill.year), (bill.person.household, bill.year)
        try:
            s, person[pk], household[hk] = settle_bill(
                bill, tables[i], person.get(pk, YearAccounts()), household.get(hk, YearAccounts()),
                bill_balances(bill, tables[i], balances),
            )  # fmt: skip
        except InputError as err:  # the account limit: this bill moves nothing, go on
            refused.append((i, err))
            continue
        spend(s, balances)
        out[i] = s
    if refused:
        raise InputError([
            Problem(f"bills[{i}].{p.field}", p.value, p.rule)
            for i, err in sorted(refused, key=lambda x: x[0]) for p in err.problems
        ])  # fmt: skip
    settled = [s for s in out if s is not None]
    if allocate_items:
        from engine.allocation import allocate
    return BatchResult(
        settled,
        Opening(
            {k: v.normalized() for k, v in person.items()},
            {k: v.normalized() for k, v in household.items()},
        ),
        balances,
        [allocate(b, t, s) for b, t, s in zip(bills, tables, settled, strict=True)]
        if allocate_items
        else None,
    )
