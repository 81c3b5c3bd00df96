"""Properties of the per-item allocation (domain.md section 11) over random batches
(tests/strategies.py), with and without hard budgets:

- the kernel's allocation equals the reference's (``engine.allocation.allocate``) on every
  bill, serially and on two threads;
- per item, fund shares + selfpay = amount, and window_pay = amount - window shares;
- per layer, the items' shares add up to the layer's pay; no share is negative, and no item
  gets more from a bucket than it has there;
- asking for the allocation changes no settlement.
"""

from __future__ import annotations

from typing import Any

from hypothesis import Phase, given, note, settings
from hypothesis import strategies as st

from engine.allocation import Allocation, allocate
from engine.batch import BatchResult, reference_batch, settle_batch
from engine.bill import Bill
from engine.policy.policyset import PolicySet
from engine.result import Settlement
from tests.strategies import Batch, batches


def check_invariants(bill: Bill, s: Settlement, a: Allocation) -> None:
    assert a.bill_id == bill.id and len(a.items) == len(bill.items)
    pays = {r.layer_id: r.pay for r in s.layers if r.kind != "alert"}
    assert a.by_layer() == pays, (a.by_layer(), pays)
    for i, (it, item) in enumerate(zip(a.items, bill.items, strict=True)):
        assert it.index == i and it.amount == item.amount and it.code == item.code
        assert all(sh.amount >= 0 for sh in it.shares)
        assert it.selfpay >= 0
        assert it.funds_total + it.selfpay == it.amount
        window = sum(sh.amount for sh in it.shares if sh.settle_at == "window")
        assert it.window_pay == it.amount - window
    assert sum(it.selfpay for it in a.items) == s.net_selfpay
    assert sum(it.window_pay for it in a.items) == s.window_pay


def _run(batch: Batch) -> None:
    note(f"{len(batch.bills)} bills, budgets={batch.budgets is not None}")
    kw: dict[str, Any] = {"budgets": batch.budgets}  # both engines' keyword
    ref = reference_batch(batch.bills, batch.policies, batch.opening, allocate_items=True, **kw)
    assert ref.allocations is not None
    plain = settle_batch(batch.bills, batch.policies, batch.opening, **kw)
    assert plain.allocations is None
    for threads in (1, 2):
        ker = settle_batch(
            batch.bills, batch.policies, batch.opening, threads=threads,
            allocate_items=True, **kw,
        )  # fmt: skip
        assert ker.settlements == plain.settlements == ref.settlements
        assert ker.allocations == ref.allocations
    _check_all(batch.policies, batch.bills, ref)


def _check_all(policies: PolicySet, bills: list[Bill], res: BatchResult) -> None:
    assert res.allocations is not None
    for bill, s, a in zip(bills, res.settlements, res.allocations, strict=True):
        table = policies.table_for(bill.region, bill.discharge_date)
        assert allocate(bill, table, s) == a
        check_invariants(bill, s, a)


@settings(phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(batches(fast=True, seed_xor=0x5DEECE66D))
def test_kernel_allocation_equals_reference(batch: Batch) -> None:
    _run(batch)


@given(batches())
def test_kernel_allocation_equals_reference_shrinking(batch: Batch) -> None:
    _run(batch)


@settings(phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(batches(fast=True, budgets=True, seed_xor=0x2545F4914F6CDD1D))
def test_kernel_allocation_equals_reference_with_budgets(batch: Batch) -> None:
    _run(batch)


@given(
    st.lists(st.integers(0, 10**12), min_size=1, max_size=10),
    st.integers(0, 10_000),
)
def test_large_amounts_are_split_exactly(amounts: list[int], ratio: int) -> None:
    """Items up to MAX_AMOUNT: ``pay * left`` leaves int64; the kernel splits it exactly."""
    from engine.bill import parse_bill
    from tests.strategies import build_table
    from tests.test_allocation import BILL, TABLE

    layers = [{**TABLE["layers"][0], "variants": [{"segments": [{"ratio": ratio}]}]},
              {**TABLE["layers"][1], "kind": "backstop", "variants": [{"max_share": 1000}]}]  # fmt: skip
    table = build_table({**TABLE, "layers": layers})
    items = [{"code": f"X{i}", "category": "A", "amount": a} for i, a in enumerate(amounts)]
    bill = parse_bill({**BILL, "items": items})
    policies = PolicySet.of([("t", table)])
    ker = settle_batch([bill], policies, allocate_items=True)
    _check_all(policies, [bill], ker)
