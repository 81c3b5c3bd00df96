"""Properties of settlement over random policy tables and batches (tests/strategies.py).

- the numba kernel equals the plain reference, settlement for settlement and account for
  account, serially and on two threads;
- conservation on every bill, buckets add up, nothing negative anywhere;
- annual caps, yearly deductibles and backstop ceilings are never exceeded over a year;
- splitting a year's cost over more bills does not change a year-basis layer's total;
- settling A then B (closing of A as opening of B) equals settling A + B;
- the order of the bills in the input changes nothing;
- with hard fund budgets (domain.md 12; more in tests/test_budgets.py) the same two, the second
  part starting from the first part's closing balances.

Example counts come from the Hypothesis profile (tests/conftest.py); the kernel == reference
property takes its own count from ONESTOP_HYPOTHESIS_EXAMPLES (default 4,000 in the "ci"
profile, 20,000 in ``make test-deep``, the nightly size) and draws its batches in the seeded fast mode to make that many affordable; the count
is split over REF_SHARDS tests with seeds of their own, so that xdist workers share it.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import fields
from datetime import date, timedelta
from functools import partial
from typing import Any

from hypothesis import Phase, given, note, settings
from hypothesis import strategies as st

from engine.accounts import ACCOUNT_FIELDS, Opening, YearAccounts
from engine.batch import BatchResult, budget_order_key, reference_batch, settle_batch
from engine.bill import Bill, parse_bill
from engine.errors import InputError
from engine.policy.model import PolicyTable, Variant, by_level
from engine.policy.policyset import PolicySet
from engine.result import LayerResult, Settlement
from tests.strategies import SMALL, Batch, Source, batches, build_table, gen_segments


def _ref_examples() -> int:
    """ONESTOP_HYPOTHESIS_EXAMPLES if set; else 4,000 in the "ci" profile (10,000 took a quarter
    of the suite's CPU; ``make test-deep`` runs 20,000); else the profile's."""
    env = os.environ.get("ONESTOP_HYPOTHESIS_EXAMPLES")
    if env:
        return int(env)
    if settings.get_current_profile_name() == "ci":  # loaded in tests/conftest.py
        return 4_000
    return settings().max_examples


REF_EXAMPLES = _ref_examples()


# --------------------------------------------------------------------------- helpers


def assert_same_closing(a: Opening, b: Opening) -> None:
    """Closing accounts equal key by key (``to_dict`` drops zero layers; a missing key is
    the same as empty accounts)."""
    empty = YearAccounts().to_dict()
    for x, y, what in ((a.person, b.person, "person"), (a.household, b.household, "household")):
        for key in sorted(set(x) | set(y)):
            dx = x[key].to_dict() if key in x else empty
            dy = y[key].to_dict() if key in y else empty
            assert dx == dy, f"{what} {key}: {dx} != {dy}"


def assert_same(a: BatchResult, b: BatchResult) -> None:
    assert len(a.settlements) == len(b.settlements)
    for sa, sb in zip(a.settlements, b.settlements, strict=True):
        assert sa == sb, f"bill {sa.bill_id}:\n{sa}\n!=\n{sb}"
    assert_same_closing(a.closing, b.closing)


def by_id(res: BatchResult) -> dict[str, Settlement]:
    return {s.bill_id: s for s in res.settlements}


def table_of(policies: PolicySet, bill: Bill) -> PolicyTable:
    return policies.table_for(bill.region, bill.discharge_date)


def check_settlement(s: Settlement) -> None:
    """Conservation and signs of one settlement."""
    s.check_conservation()
    b = s.buckets
    assert b.in_scope + b.pre_selfpay + b.over_limit + b.out_of_catalogue == b.total
    for f in fields(b):
        assert getattr(b, f.name) >= 0, (s.bill_id, f.name)
    assert s.net_selfpay >= 0 and s.window_pay >= 0, s.bill_id
    after = sum(r.pay for r in s.layers if r.settle_at == "after_discharge")
    assert s.window_pay == s.net_selfpay + after, s.bill_id
    assert s.funds_total + s.net_selfpay == b.total
    for r in s.layers:
        check_layer(s, r)


def check_layer(s: Settlement, r: LayerResult) -> None:
    where = (s.bill_id, r.layer_id)
    for name in ("base", "deductible", "eligible", "pay", "relief"):
        assert getattr(r, name) >= 0, (*where, name, getattr(r, name))
    for name in ACCOUNT_FIELDS:
        assert getattr(r.account, name) >= 0, (*where, name)
    if not r.applied:
        assert (r.variant, r.base, r.pay, r.relief, r.cap, r.alert) == (-1, 0, 0, 0, "", False)
        return
    assert r.pay <= r.base, where
    if r.kind == "reimburse":
        assert r.deductible + r.eligible == r.base, where
        assert r.pay <= r.eligible, where
    if r.kind == "alert":
        assert r.pay == 0, where
    else:
        assert r.relief == 0 and not r.alert, where


def check_accounts(op: Opening) -> None:
    for accounts in (op.person, op.household):
        for key, ya in accounts.items():
            assert ya.admissions >= 0, key
            for lid, acc in ya.layers.items():
                for name in ACCOUNT_FIELDS:
                    assert getattr(acc, name) >= 0, (key, lid, name)


def settlement_order(bills: list[Bill]) -> list[Bill]:
    return sorted(bills, key=lambda b: (b.discharge_date, b.admission_date, b.id))


# --------------------------------------------------------------------------- kernel == reference


def _kernel_equals_reference(batch: Batch) -> None:
    note(f"{len(batch.bills)} bills, {len(batch.policies.tables)} table(s)")
    ref = reference_batch(batch.bills, batch.policies, batch.opening)
    assert_same(settle_batch(batch.bills, batch.policies, batch.opening), ref)
    assert_same(settle_batch(batch.bills, batch.policies, batch.opening, threads=2), ref)


#: the REF_EXAMPLES examples are split over this many tests, so that pytest-xdist runs them on
#: every core at once (one test of 10,000 was the longest of the suite by far: 95 s idle); the
#: shards XOR their drawn seeds with constants of their own, so that they never draw the same
#: batch (with the same seeds, 11% of 4 x 2,500 examples were repeats)
REF_SHARDS = 4
_SHARD_XOR = (0, 0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9)


def _kernel_equals_reference_shard(k: int) -> Any:
    n = -(-REF_EXAMPLES // REF_SHARDS)  # ceil: never fewer than REF_EXAMPLES in all

    # no shrinking: in fast mode a batch is a function of one seed, shrinking it gains nothing
    @settings(max_examples=n, phases=[Phase.explicit, Phase.reuse, Phase.generate])
    @given(batches(fast=True, seed_xor=_SHARD_XOR[k]))
    def test(batch: Batch) -> None:
        """Seeded fast mode: many examples (4,000 in CI over the shards, 20,000 in make test-deep), one kernel call per
        batch and mode. A failure prints the batch with its seed; rebuild it with
        ``gen_batch(Source(rnd=random.Random(seed)))``."""
        _kernel_equals_reference(batch)

    test.__name__ = test.__qualname__ = f"test_kernel_equals_reference_shard{k}"
    return test


test_kernel_equals_reference_shard0 = _kernel_equals_reference_shard(0)
test_kernel_equals_reference_shard1 = _kernel_equals_reference_shard(1)
test_kernel_equals_reference_shard2 = _kernel_equals_reference_shard(2)
test_kernel_equals_reference_shard3 = _kernel_equals_reference_shard(3)


@given(batches())
def test_kernel_equals_reference_shrinking(batch: Batch) -> None:
    """The same property with every choice a Hypothesis draw, so a failure shrinks."""
    _kernel_equals_reference(batch)


# --------------------------------------------------------------------------- the account limit


def _outcome(run: Any, batch: Batch, bills: list[Bill] | None = None) -> Any:
    """A batch's result, or the problems (as text) of its refusal at the account limit."""
    try:
        return run(batch.bills if bills is None else bills, batch.policies, batch.opening)
    except InputError as err:
        return [str(p) for p in err.problems]


def _near_limit(batch: Batch) -> None:
    note(f"{len(batch.bills)} bills, {len(batch.policies.tables)} table(s)")
    ref = _outcome(reference_batch, batch)
    for threads in (1, 2):
        ker = _outcome(partial(settle_batch, threads=threads), batch)
        if isinstance(ref, list):  # refused: the same bills, layers, fields and values
            assert ker == ref
        else:
            assert not isinstance(ker, list), ker
            assert_same(ker, ref)
    if isinstance(ref, list):
        # a refused bill moves nothing: without it the others settle as they did, none refused
        gone = {int(p[len("bills[") : p.index("]")]) for p in ref}
        assert all(".accounts." in p and "above the limit" in p for p in ref)
        rest = [b for i, b in enumerate(batch.bills) if i not in gone]
        ker, again = _outcome(settle_batch, batch, rest), _outcome(reference_batch, batch, rest)
        assert not isinstance(ker, list) and not isinstance(again, list), (ker, again)
        assert_same(ker, again)


@settings(phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(batches(fast=True, near_limit=True))
def test_kernel_equals_reference_near_the_account_limit(batch: Batch) -> None:
    """Opening accounts up to 10^9 fen under MAX_ACCOUNT (or under 2**63 // 10000, where the
    tier products used to wrap): the kernel and the reference settle the same bills to the same
    fen and refuse the same bills naming the same layer, field and value."""
    _near_limit(batch)


@given(batches(near_limit=True))
def test_kernel_equals_reference_near_the_account_limit_shrinking(batch: Batch) -> None:
    _near_limit(batch)


# --------------------------------------------------------------------------- conservation, signs


@given(batches())
def test_conservation_and_no_negative_amounts(batch: Batch) -> None:
    for res in (
        settle_batch(batch.bills, batch.policies, batch.opening),
        reference_batch(batch.bills, batch.policies, batch.opening),
    ):
        assert [s.bill_id for s in res.settlements] == [b.id for b in batch.bills]
        for s in res.settlements:
            check_settlement(s)
        check_accounts(res.closing)


# --------------------------------------------------------------------------- yearly limits


def _bound(values: list[int | None]) -> int | None:
    """The largest limit of the bills of one account, or None if some bill had none (then
    nothing bounds the account)."""
    if not values or any(v is None for v in values):
        return None
    return max(v for v in values if v is not None)


@given(batches(opening=False))
def test_yearly_limits_never_exceeded(batch: Batch) -> None:
    """From zero opening accounts: for each person-year (household-year for household alerts)
    and layer, ``paid`` stays within the annual cap, ``deductible_used`` within the yearly
    deductible, a backstop's ``selfpay_cum`` within its annual ceiling; each bill's pay within
    the admission cap. A limit can differ between the bills of a year (variants, levels, a
    policy change), so the bound is the largest one of the bills that moved the account.
    """
    res = settle_batch(batch.bills, batch.policies)
    bills = {b.id: b for b in batch.bills}
    caps: dict[tuple, list[int | None]] = defaultdict(list)
    deds: dict[tuple, list[int | None]] = defaultdict(list)
    ceilings: dict[tuple, list[int | None]] = defaultdict(list)
    kinds: dict[tuple, set[str]] = defaultdict(set)
    for s in res.settlements:
        bill = bills[s.bill_id]
        level = bill.hospital_level
        table = table_of(batch.policies, bill)
        for layer, r in zip(table.layers, s.layers, strict=True):
            who = s.household if layer.scope == "household" else s.person_id
            key = (layer.scope, who, s.year, layer.id)
            kinds[key].add(layer.kind)
            if not r.applied:
                continue
            v: Variant = layer.variants[r.variant]
            if v.admission_cap is not None:
                assert r.pay <= by_level(v.admission_cap, level), (s.bill_id, layer.id)
            if layer.kind in ("reimburse", "alert"):
                caps[key].append(None if v.annual_cap is None else by_level(v.annual_cap, level))
            if layer.kind == "reimburse":
                d = v.deductible
                if d is not None and d.basis == "year":
                    deds[key].append(by_level(d.amount, level))
            if layer.kind == "backstop":
                ceilings[key].append(
                    None if v.annual_ceiling is None else by_level(v.annual_ceiling, level)
                )
    for key, acc_list in _accounts_by_key(res, batch).items():
        if len(kinds[key]) > 1:  # one id for layers of different kinds: no common limit
            continue
        paid = max(a.paid for a in acc_list)
        used = max(a.deductible_used for a in acc_list)
        spent = max(a.selfpay_cum for a in acc_list)
        cap = _bound(caps.get(key, []))
        if cap is not None:
            assert paid <= cap, (key, paid, cap)
        if key in deds:
            assert used <= max(v for v in deds[key] if v is not None), (key, used, deds[key])
        else:
            assert used == 0, key
        ceiling = _bound(ceilings.get(key, []))
        if ceiling is not None:
            assert spent <= ceiling, (key, spent, ceiling)


def _accounts_by_key(res: BatchResult, batch: Batch) -> dict[tuple, list[Any]]:
    bills = {b.id: b for b in batch.bills}
    out: dict[tuple, list[Any]] = defaultdict(list)
    for s in res.settlements:
        table = table_of(batch.policies, bills[s.bill_id])
        for layer, r in zip(table.layers, s.layers, strict=True):
            who = s.household if layer.scope == "household" else s.person_id
            out[(layer.scope, who, s.year, layer.id)].append(r.account)
    # the closing accounts are the last word on each account
    for (pid, year), ya in res.closing.person.items():
        for lid, acc in ya.layers.items():
            out[("person", pid, year, lid)].append(acc)
    for (hid, year), ya in res.closing.household.items():
        for lid, acc in ya.layers.items():
            out[("household", hid, year, lid)].append(acc)
    return out


# --------------------------------------------------------------------------- splitting a year


@st.composite
def split_cases(draw: Any) -> tuple[PolicySet, list[Bill], list[Bill]]:
    """A table whose first layer is a year-deductible, year-tiers reimburse layer without caps
    covering in_scope (later layers may follow); one bill of cost X (category A items only) and
    k bills in the same year whose costs add up to X, for one person at one level."""
    src = Source(draw=draw)
    levels = ("county", "city")
    level = src.choice(levels)
    first = {
        "id": "year_layer",
        "name": "critical illness",
        "fund_code": "390200",
        "kind": "reimburse",
        "variants": [
            {
                "deductible": {
                    "basis": "year",
                    "amount": src.fen(SMALL)
                    if src.flag()
                    else {"county": src.fen(SMALL), "city": src.fen(SMALL)},
                },
                "segments": gen_segments(src, list(levels), levels),
                "tiers_basis": "year",
            }
        ],
    }
    later = []
    if src.flag():
        later.append({
            "id": "backstop", "name": "backstop", "fund_code": "640100", "kind": "backstop",
            "variants": [{"max_share": src.bp(), "annual_ceiling": src.fen(SMALL)}],
        })  # fmt: skip
    table = build_table({
        "region": {"code": "450900", "name": "split"}, "effective_from": date(2019, 1, 1),
        "hospital_levels": list(levels), "b_selfpay_ratio": 1000, "layers": [first, *later],
    })  # fmt: skip
    total = src.fen(5 * 10**8)
    k = src.int(2, 6)
    cuts = sorted(src.int(0, total) for _ in range(k - 1))
    parts = [b - a for a, b in zip([0, *cuts], [*cuts, total], strict=True)]
    year = src.choice((2021, 2022, 2023))
    person = {"id": "p", "birth_date": date(1960, 5, 5), "household": "h"}

    def bill(i: int, amount: int, day: date) -> Bill:
        n_items = src.int(1, 3)
        cut = sorted(src.int(0, amount) for _ in range(n_items - 1))
        amounts = [b - a for a, b in zip([0, *cut], [*cut, amount], strict=True)]
        return parse_bill({
            "id": f"b{i}", "hospital": "H1", "person": person, "hospital_level": level,
            "admission_date": day, "discharge_date": day,
            "items": [{"category": "A", "amount": a} for a in amounts],
        })  # fmt: skip

    start = date(year, 1, 1)
    one = [bill(0, total, start + timedelta(days=src.int(0, 364)))]
    many = [bill(i + 1, a, start + timedelta(days=src.int(0, 364))) for i, a in enumerate(parts)]
    return PolicySet.of([table]), one, many


@given(split_cases())
def test_splitting_a_year_over_bills_keeps_the_year_total(
    case: tuple[PolicySet, list[Bill], list[Bill]],
) -> None:
    policies, one, many = case
    for settle in (settle_batch, reference_batch):
        a = settle(one, policies)
        b = settle(many, policies)
        pay_a = sum(s.layers[0].pay for s in a.settlements)
        pay_b = sum(s.layers[0].pay for s in b.settlements)
        assert pay_a == pay_b, (pay_a, pay_b)
        acc_a = a.closing.person[("p", one[0].year)].get("year_layer")
        acc_b = b.closing.person[("p", one[0].year)].get("year_layer")
        assert acc_a == acc_b


# --------------------------------------------------------------------------- A then B == A + B


@given(batches(), st.data())
def test_two_batches_in_turn_equal_one_batch(batch: Batch, data: st.DataObject) -> None:
    """Cut the bills at a point of settlement order (discharge, admission, id): settling the
    first part, then the second from the first part's closing accounts, equals settling all."""
    ordered = settlement_order(batch.bills)
    cut = data.draw(st.integers(0, len(ordered)), label="cut")  # either part may be empty
    first = {b.id for b in ordered[:cut]}
    part_a = [b for b in batch.bills if b.id in first]
    part_b = [b for b in batch.bills if b.id not in first]
    for settle in (settle_batch, reference_batch):
        whole = settle(batch.bills, batch.policies, batch.opening)
        a = settle(part_a, batch.policies, batch.opening)
        b = settle(part_b, batch.policies, a.closing)
        assert {**by_id(a), **by_id(b)} == by_id(whole)
        assert_same_closing(b.closing, whole.closing)


# --------------------------------------------------------------------------- order of the input


@given(batches(), st.data())
def test_input_order_changes_nothing(batch: Batch, data: st.DataObject) -> None:
    shuffled = data.draw(st.permutations(batch.bills), label="shuffled")
    for settle in (settle_batch, reference_batch):
        a = settle(batch.bills, batch.policies, batch.opening)
        b = settle(shuffled, batch.policies, batch.opening)
        assert [s.bill_id for s in b.settlements] == [x.id for x in shuffled]
        assert by_id(a) == by_id(b)
        assert_same_closing(a.closing, b.closing)
    b2 = settle_batch(shuffled, batch.policies, batch.opening, threads=2)
    assert by_id(b2) == by_id(a)


# --------------------------------------------------------------------------- hard budgets


@given(batches(budgets=True), st.data())
def test_two_batches_in_turn_equal_one_batch_with_budgets(
    batch: Batch, data: st.DataObject
) -> None:
    """With hard budgets (domain.md 12) cut at a point of the region-wide order: the second
    part starts from the first part's closing accounts and closing balances."""
    ordered = sorted(batch.bills, key=budget_order_key)
    cut = data.draw(st.integers(0, len(ordered)), label="cut")
    first = {(b.hospital, b.id) for b in ordered[:cut]}
    part_a = [b for b in batch.bills if (b.hospital, b.id) in first]
    part_b = [b for b in batch.bills if (b.hospital, b.id) not in first]
    for settle in (settle_batch, reference_batch):
        whole = settle(batch.bills, batch.policies, batch.opening, budgets=batch.budgets)
        a = settle(part_a, batch.policies, batch.opening, budgets=batch.budgets)
        b = settle(part_b, batch.policies, a.closing, budgets=a.balances)
        assert {**by_id(a), **by_id(b)} == by_id(whole)
        assert_same_closing(b.closing, whole.closing)
        assert b.balances == whole.balances


@given(batches(budgets=True), st.data())
def test_input_order_changes_nothing_with_budgets(batch: Batch, data: st.DataObject) -> None:
    shuffled = data.draw(st.permutations(batch.bills), label="shuffled")
    want = reference_batch(batch.bills, batch.policies, batch.opening, budgets=batch.budgets)
    for threads in (1, 2):
        got = settle_batch(shuffled, batch.policies, batch.opening, threads, batch.budgets)
        assert [s.bill_id for s in got.settlements] == [x.id for x in shuffled]
        assert by_id(got) == by_id(want)
        assert got.balances == want.balances
