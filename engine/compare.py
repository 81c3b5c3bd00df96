"""What-if: the same bills under two policy sets, per fund and per bill.

Bureaus run this before a table takes effect; analysts use it to compare policies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from engine.accounts import Opening
from engine.batch import settle_batch
from engine.bill import Bill
from engine.policy.policyset import PolicySet
from engine.result import Settlement


@dataclass(frozen=True)
class FundTotals:
    fund_code: str
    layer_ids: tuple[str, ...]
    bills: int  # bills on which the fund paid something
    amount: int


@dataclass(frozen=True)
class Comparison:
    base: list[Settlement]
    candidate: list[Settlement]
    base_funds: dict[str, FundTotals]
    candidate_funds: dict[str, FundTotals]

    @property
    def changed(self) -> list[tuple[Settlement, Settlement]]:
        return [
            (a, b)
            for a, b in zip(self.base, self.candidate, strict=True)
            if a.window_pay != b.window_pay
            or a.net_selfpay != b.net_selfpay
            or [r.pay for r in a.layers] != [r.pay for r in b.layers]
        ]

    def totals(self, which: str) -> tuple[int, int, int]:
        """(funds, window, net self-pay) over all bills."""
        ss = self.base if which == "base" else self.candidate
        return (
            sum(s.funds_total for s in ss),
            sum(s.window_pay for s in ss),
            sum(s.net_selfpay for s in ss),
        )


def by_fund(settlements: Sequence[Settlement]) -> dict[str, FundTotals]:
    acc: dict[str, tuple[set[str], int, int]] = {}
    for s in settlements:
        for r in s.layers:
            if r.kind == "alert":
                continue
            ids, n, amount = acc.get(r.fund_code, (set(), 0, 0))
            ids.add(r.layer_id)
            acc[r.fund_code] = (ids, n + (r.pay > 0), amount + r.pay)
    return {f: FundTotals(f, tuple(sorted(ids)), n, a) for f, (ids, n, a) in sorted(acc.items())}


def compare(
    bills: Sequence[Bill], base: PolicySet, candidate: PolicySet, opening: Opening | None = None
) -> Comparison:
    a = settle_batch(bills, base, opening).settlements
    b = settle_batch(bills, candidate, opening).settlements
    return Comparison(a, b, by_fund(a), by_fund(b))
