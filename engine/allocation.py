"""Per-item allocation (domain.md section 11): which fund paid which item of a bill.

Public API::

    alloc = allocate(bill, table, settlement)
    for it in alloc.items:            # one per bill item, in the bill's order
        it.index, it.code, it.name, it.amount, it.selfpay, it.window_pay
        for s in it.shares:           # one per paying layer (reimburse, backstop) of the table
            s.layer_id, s.fund_code, s.settle_at, s.amount

Allocation is a function of the bill, the table and the settlement's layer pays only (claim
decisions of section 13 do not change it), so a stored settlement can be allocated again on
read. Invariants: per item, ``sum(s.amount for s in shares) + selfpay == amount``; per layer,
the items' shares add up to the layer's ``pay``; no share is negative. The kernel computes the
same figures (``engine.kernel``, ``out_item``); ``engine.batch`` reads them back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from engine.bill import Bill
from engine.policy.model import BUCKETS, PolicyTable
from engine.reference import split_item
from engine.result import Settlement

#: layer kinds whose pay is allocated (alert relief is not: section 11)
PAYING_KINDS = ("reimburse", "backstop")


@dataclass(frozen=True)
class Share:
    """One paying layer's share of one item (fen)."""

    layer_id: str
    fund_code: str
    settle_at: str  # "window" or "after_discharge"
    amount: int


@dataclass(frozen=True)
class ItemAllocation:
    index: int  # position in the bill's items, from 0
    code: str
    name: str
    amount: int
    shares: tuple[Share, ...]  # one per paying layer of the table, in the table's order
    selfpay: int  # the item's part of net_selfpay: amount - every share
    window_pay: int  # what the patient pays for it at the window: amount - window shares

    @property
    def funds_total(self) -> int:
        return sum(s.amount for s in self.shares)


@dataclass(frozen=True)
class Allocation:
    bill_id: str
    hospital: str
    items: tuple[ItemAllocation, ...]

    def by_layer(self) -> dict[str, int]:
        """Layer id -> the items' shares added up (equals the layer's pay)."""
        out: dict[str, int] = {}
        for it in self.items:
            for s in it.shares:
                out[s.layer_id] = out.get(s.layer_id, 0) + s.amount
        return out


def split_bucket(pay: int, left: Sequence[int]) -> list[int]:
    """Split ``pay`` (0 < pay <= sum(left)) over items in proportion to ``left``: quotients of
    ``pay * left[i] // R``, the fen left over one each to the largest remainders, ties to the
    lower index. ``pay == 0`` gives zeros."""
    total = sum(left)
    if pay <= 0:
        return [0] * len(left)
    assert pay <= total, "a bucket paid more than its items have left"
    shares = [pay * x // total for x in left]
    rems = [pay * x % total for x in left]
    extra = pay - sum(shares)
    for i in sorted(range(len(left)), key=lambda i: (-rems[i], i))[:extra]:
        shares[i] += 1
    return shares


def allocate_figures(
    item_buckets: Sequence[Sequence[int]], layers: Sequence[tuple[Sequence[str], int]]
) -> tuple[list[list[int]], list[int]]:
    """The core of section 11 over plain numbers.

    ``item_buckets[i]``: item i's four buckets in ``BUCKETS`` order; ``layers``: (covers, pay)
    of each layer to allocate, in order (pay 0 for a layer that does not pay).
    Returns ``shares[i][l]`` and each item's selfpay (what it has left)."""
    r = [list(b) for b in item_buckets]
    shares = [[0] * len(layers) for _ in r]
    for li, (covers, pay) in enumerate(layers):
        left = pay
        for k, b in enumerate(BUCKETS):
            if left <= 0:
                break
            if b not in covers:
                continue
            col = [x[k] for x in r]
            p = min(left, sum(col))
            left -= p
            for i, s in enumerate(split_bucket(p, col)):
                r[i][k] -= s
                shares[i][li] += s
        assert left == 0, "a layer paid more than its base"
    return shares, [sum(x) for x in r]


def allocate(bill: Bill, table: PolicyTable, settlement: Settlement) -> Allocation:
    """Section 11: each paying layer's final pay split over the bill's items.

    ``settlement`` must be the settlement of ``bill`` under ``table`` (its layers in the
    table's order)."""
    assert len(settlement.layers) == len(table.layers), "settlement and table differ"
    paying = paying_layers(table)
    figures = [(table.layers[li].covers, settlement.layers[li].pay) for li in paying]
    buckets = [[split_item(it, table.b_selfpay_ratio)[b] for b in BUCKETS] for it in bill.items]
    shares, selfpay = allocate_figures(buckets, figures)
    return assemble(bill, table, paying, shares, selfpay)


def assemble(
    bill: Bill,
    table: PolicyTable,
    paying: Sequence[int],
    shares: Sequence[Sequence[int]],
    selfpay: Sequence[int],
) -> Allocation:
    """An Allocation from the figures (``shares[i][j]``: item i, layer ``paying[j]``)."""
    items = []
    for i, it in enumerate(bill.items):
        row = tuple(
            Share(
                table.layers[li].id, table.layers[li].fund_code, table.layers[li].settle_at,
                int(shares[i][j]),
            )
            for j, li in enumerate(paying)
        )  # fmt: skip
        window = sum(s.amount for s in row if s.settle_at == "window")
        items.append(
            ItemAllocation(i, it.code, it.name, it.amount, row, int(selfpay[i]), it.amount - window)
        )
    return Allocation(bill.id, bill.hospital, tuple(items))


def paying_layers(table: PolicyTable) -> list[int]:
    """Indices of the table's layers whose pay is allocated."""
    return [li for li, layer in enumerate(table.layers) if layer.kind in PAYING_KINDS]
