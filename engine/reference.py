"""The plain reference of the rules: domain.md sections 3-7, written to be read.

One bill at a time, straight from the policy table. The numba kernel (``engine.kernel``) must
agree with this to the fen on every input; the property tests compare the two.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

from engine.accounts import LayerAccount, YearAccounts, above_limit, limit_problem
from engine.bill import Bill, Category, Item
from engine.errors import InputError
from engine.money import BP, round_bp
from engine.policy.model import BUCKETS, Eligibility, Layer, PolicyTable, Segment, Variant, by_level
from engine.result import Buckets, LayerResult, Settlement


def split_item(item: Item, b_selfpay_ratio: int) -> dict[str, int]:
    """Section 3.1: one item's amount into the four buckets."""
    out = dict.fromkeys(BUCKETS, 0)
    if item.category == Category.C:
        out["out_of_catalogue"] = item.amount
        return out
    over_limit = 0
    if item.unit_price_cap is not None:
        cap_total = round_bp(item.unit_price_cap, item.qty_e4)
        over_limit = max(0, item.amount - cap_total)
    rest = item.amount - over_limit
    pre = 0
    if item.category == Category.B:
        ratio = b_selfpay_ratio if item.selfpay_ratio is None else item.selfpay_ratio
        pre = round_bp(rest, ratio)
    out["over_limit"] = over_limit
    out["pre_selfpay"] = pre
    out["in_scope"] = rest - pre
    return out


def bill_buckets(bill: Bill, table: PolicyTable) -> Buckets:
    sums = dict.fromkeys(BUCKETS, 0)
    for item in bill.items:
        for k, v in split_item(item, table.b_selfpay_ratio).items():
            sums[k] += v
    return Buckets(total=sum(sums.values()), **sums)


def why_not(e: Eligibility, tags: frozenset[str], age: int, level: str) -> str:
    """'' if a person with these tags and age at this level is eligible, else the reason code."""
    if e.tags_any and not tags & set(e.tags_any):
        return "tags_any"
    if tags & set(e.tags_none):
        return "tags_none"
    if e.age_min is not None and age < e.age_min:
        return "age_min"
    if e.age_max is not None and age > e.age_max:
        return "age_max"
    if e.levels and level not in e.levels:
        return "level"
    return ""


def pick_variant(layer: Layer, tags: frozenset[str], level: str) -> int:
    """Index of the first variant whose ``when`` matches (no ``when`` matches all); -1 if none."""
    for i, v in enumerate(layer.variants):
        w = v.when
        if w is None:
            return i
        if w.tags_any and not tags & set(w.tags_any):
            continue
        if w.levels and level not in w.levels:
            continue
        return i
    return -1


def tiered(x: int, segments: tuple[Segment, ...], level: str) -> int:
    """R(x): round(sum over segments of overlap([0, x), segment) * ratio)."""
    total, lo = 0, 0
    for s in segments:
        hi = s.up_to if s.up_to is not None else max(x, lo)
        overlap = max(0, min(x, hi) - lo)
        total += overlap * by_level(s.ratio, level)
        lo = hi
    return (total + BP // 2) // BP


def take(remaining: dict[str, int], covers: tuple[str, ...], pay: int) -> None:
    """Reduce the covered buckets by ``pay`` in the fixed order of section 5.1."""
    for b in BUCKETS:
        if b in covers and pay > 0:
            used = min(pay, remaining[b])
            remaining[b] -= used
            pay -= used
    assert pay == 0, "a layer paid more than its base"


def settle_bill(
    bill: Bill,
    table: PolicyTable,
    person: YearAccounts,
    household: YearAccounts,
    balances: Mapping[str, int] | None = None,
) -> tuple[Settlement, YearAccounts, YearAccounts]:
    """Settle one bill from the person's and household's accounts of the bill's year.

    ``balances``: the remaining balance of each fund (by fund code) of the bill's region and
    year whose budget is hard (domain.md section 12); funds not in it are not limited. A layer
    pays at most its fund's balance; a later layer of the same fund sees what is left.

    Returns the settlement and both accounts after it. The inputs are not changed.
    InputError if an account field of a layer would go above MAX_ACCOUNT (the first such layer
    and field, in order).
    """
    day: date = bill.admission_date
    tags = bill.person.tags_on(day)
    age = bill.person.age_on(day)
    level = bill.hospital_level
    buckets = bill_buckets(bill, table)
    remaining = {b: getattr(buckets, b) for b in BUCKETS}
    admission_no = person.admissions + 1
    left = dict(balances or {})  # each hard fund's balance as this bill's layers use it
    results = []
    window_paid = all_paid = 0

    for layer in table.layers:
        accounts = household if layer.scope == "household" else person
        acc = accounts.get(layer.id)
        why = why_not(layer.eligibility, tags, age, level)
        vi = pick_variant(layer, tags, level) if not why else -1
        if not why and vi < 0:
            why = "no_variant"
        if why:
            results.append(_not_applied(layer, why, acc))
            continue
        v = layer.variants[vi]
        base = sum(remaining[b] for b in layer.covers)
        bal = left.get(layer.fund_code)
        if layer.kind == "reimburse":
            ded, eligible, pay, cap, acc = _reimburse(v, base, acc, level, admission_no, bal)
            relief, alert = 0, False
        elif layer.kind == "backstop":
            covered_total = sum(getattr(buckets, b) for b in layer.covers)
            ded, eligible, relief, alert = 0, base, 0, False
            pay, cap, acc = _backstop(v, base, covered_total, acc, level, bal)
        else:
            ded, eligible, pay = 0, base, 0
            relief, alert, cap, acc = _alert(v, base, acc, level, bal)
        if bal is not None:
            left[layer.fund_code] = bal - pay - relief
        over = above_limit(acc)
        if over is not None:  # README, Limits: no account field above MAX_ACCOUNT
            owner = bill.person.household if layer.scope == "household" else bill.person.id
            raise InputError([limit_problem(
                layer.id, over[0], over[1], layer.scope, owner, bill.year, layer.name or layer.id
            )])  # fmt: skip
        take(remaining, layer.covers, pay)
        all_paid += pay
        if layer.settle_at == "window":
            window_paid += pay
        if layer.scope == "household":
            household = household.with_layer(layer.id, acc)
        else:
            person = person.with_layer(layer.id, acc)
        results.append(LayerResult(
            layer.id, layer.kind, layer.fund_code, layer.settle_at, layer.scope, "", vi, v.label,
            base, ded, eligible, pay, relief, cap, acc, alert, layer.name, layer.name_zh,
        ))  # fmt: skip

    person = YearAccounts(person.layers, admission_no)
    settlement = Settlement(
        bill_id=bill.id, hospital=bill.hospital, person_id=bill.person.id,
        household=bill.person.household, region=table.region.code, policy=table.label, year=bill.year,
        discharge_date=bill.discharge_date, admission_no=admission_no, buckets=buckets,
        layers=tuple(results), window_pay=buckets.total - window_paid,
        net_selfpay=buckets.total - all_paid, admissions_after=admission_no,
    )  # fmt: skip
    return settlement, person, household


def _not_applied(layer: Layer, why: str, acc: LayerAccount) -> LayerResult:
    return LayerResult(
        layer.id,
        layer.kind,
        layer.fund_code,
        layer.settle_at,
        layer.scope,
        why,
        -1,
        "",
        0,
        0,
        0,
        0,
        0,
        "",
        acc,
        False,
        layer.name,
        layer.name_zh,
    )


def _reimburse(
    v: Variant, base: int, acc: LayerAccount, level: str, admission_no: int, bal: int | None
) -> tuple[int, int, int, str, LayerAccount]:
    """Section 5.2."""
    d = v.deductible
    ded_used = acc.deductible_used
    if d is None:
        ded = 0
    elif d.basis == "admission":
        amount = (
            d.later_admissions if admission_no >= 2 and d.later_admissions is not None else d.amount
        )
        ded = min(base, by_level(amount, level))
    else:
        ded = min(base, max(0, by_level(d.amount, level) - acc.deductible_used))
        ded_used += ded
    eligible = base - ded
    start = acc.eligible_cum if v.tiers_basis == "year" else 0
    end = start + eligible
    eligible_cum = end if v.tiers_basis == "year" else acc.eligible_cum
    assert v.segments is not None
    pay = tiered(end, v.segments, level) - tiered(start, v.segments, level)
    cap = ""
    if v.admission_cap is not None and by_level(v.admission_cap, level) < pay:
        pay, cap = by_level(v.admission_cap, level), "admission_cap"
    if v.annual_cap is not None and by_level(v.annual_cap, level) - acc.paid < pay:
        pay, cap = by_level(v.annual_cap, level) - acc.paid, "annual_cap"
    if bal is not None and bal < pay:  # section 12: a hard budget's balance
        pay, cap = bal, "budget"
    pay = max(pay, 0)
    return (
        ded,
        eligible,
        pay,
        cap,
        LayerAccount(ded_used, eligible_cum, acc.paid + pay, acc.selfpay_cum),
    )


def _backstop(
    v: Variant, base: int, covered_total: int, acc: LayerAccount, level: str, bal: int | None
) -> tuple[int, str, LayerAccount]:
    """Section 5.3: cap the patient's share."""
    allowed, cap = base, ""
    if v.max_share is not None:
        share = round_bp(covered_total, by_level(v.max_share, level))
        if share < allowed:
            allowed, cap = share, "max_share"
    if v.annual_ceiling is not None:
        left = max(0, by_level(v.annual_ceiling, level) - acc.selfpay_cum)
        if left < allowed:
            allowed, cap = left, "annual_ceiling"
    pay = base - allowed
    if bal is not None and bal < pay:  # section 12: the patient keeps what the budget cannot pay
        pay, cap = bal, "budget"
    return (
        pay,
        cap,
        LayerAccount(acc.deductible_used, acc.eligible_cum, acc.paid, acc.selfpay_cum + base - pay),
    )


def _alert(
    v: Variant, base: int, acc: LayerAccount, level: str, bal: int | None
) -> tuple[int, bool, str, LayerAccount]:
    """Section 5.4: watch yearly self-pay, suggest relief (paid nowhere, changes no bucket)."""
    assert v.threshold is not None and v.segments is not None
    threshold = by_level(v.threshold, level)
    before = acc.selfpay_cum
    after = before + base
    relief = tiered(max(0, after - threshold), v.segments, level) - tiered(
        max(0, before - threshold), v.segments, level
    )
    cap = ""
    if v.annual_cap is not None and by_level(v.annual_cap, level) - acc.paid < relief:
        relief, cap = by_level(v.annual_cap, level) - acc.paid, "annual_cap"
    relief = max(0, relief)
    if bal is not None and bal < relief:  # section 12
        relief, cap = bal, "budget"
    return (
        relief,
        after > threshold,
        cap,
        LayerAccount(acc.deductible_used, acc.eligible_cum, acc.paid + relief, after),
    )
