"""Claims after discharge, relief cases and fund money in (domain.md sections 12-13): the data.

A layer with ``settle_at: after_discharge`` that pays more than 0 makes a **claim** for its pay
when the bill is settled; every alert emitted makes a **relief case** for its relief (possibly
0). Both have the states ``filed -> approved -> paid`` or ``filed -> rejected``.

``FundFacts`` is everything the fund views and the public page are computed from (one fund of
one region and year); the store gathers it, ``engine.fundstats`` sums it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal

ClaimKind = Literal["claim", "relief"]
ClaimStatus = Literal["filed", "approved", "rejected", "paid"]
#: the transitions a claim or case may take (anything else is refused)
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "filed": ("approved", "rejected"),
    "approved": ("paid",),
    "rejected": (),
    "paid": (),
}
MoneyInKind = Literal["premium", "donation", "government", "other"]


@dataclass(frozen=True)
class Claim:
    """One claim (after-discharge layer) or relief case (alert layer) of one settlement."""

    claim_id: str
    kind: ClaimKind
    settlement_id: str
    layer_id: str
    fund_code: str
    region: str
    year: int
    person_id: str
    household: str
    hospital: str
    bill_id: str
    discharge_date: date
    filed_amount: int  # fen: the layer's pay (claim) or relief (case) at settlement
    status: ClaimStatus
    filed_at: datetime
    filed_by: str  # principal
    approved_amount: int | None = None  # fen, 0..filed_amount, once approved
    decided_at: datetime | None = None
    decided_by: str = ""
    note: str = ""  # the approval's note
    reason: str = ""  # the rejection's reason
    paid_at: datetime | None = None  # when the payment was recorded
    paid_date: date | None = None  # the payment's value date
    payment_ref: str = ""
    paid_by: str = ""
    #: account-years the claim's layer moved at settlement: (scope, key) of the layer's account
    scope: Literal["person", "household"] = "person"
    scope_key: str = ""

    @property
    def current_amount(self) -> int:
        """What the fund owes on it now (section 12 ``used``): the filed amount, then the
        approved one; 0 once rejected."""
        if self.status == "rejected":
            return 0
        if self.approved_amount is not None:
            return self.approved_amount
        return self.filed_amount

    @property
    def days_to_payment(self) -> int | None:
        """Days from discharge to the payment's value date (paid claims only)."""
        if self.status != "paid" or self.paid_date is None:
            return None
        return (self.paid_date - self.discharge_date).days


@dataclass(frozen=True)
class MoneyIn:
    """Money into a fund: a premium, a donation (a donation platform's daily total is one
    record), a government contribution."""

    record_id: str
    region: str
    fund_code: str
    year: int
    kind: MoneyInKind
    payer: str
    amount: int  # fen, > 0
    on: date  # the value date
    note: str = ""
    recorded_by: str = ""
    recorded_at: datetime | None = None


@dataclass(frozen=True)
class FundPay:
    """One layer's pay of one settlement (window layers: paid at the window)."""

    settlement_id: str
    layer_id: str
    settle_at: str  # window | after_discharge
    pay: int  # fen (the relief of an alert layer for relief cases is in Claim)
    person_id: str
    discharge_date: date
    settled_at: datetime
    reversed: bool = False


@dataclass(frozen=True)
class FundFacts:
    """One fund of one region and year: what the views and the published page sum."""

    region: str
    region_name: str
    fund_code: str
    fund_name: str
    fund_name_zh: str
    year: int
    as_of: date  # enrolment counted on this date
    enrolled: int  # persons covered (registry x the fund's eligibility, as of ``as_of``)
    budget: int | None
    carried_in: int
    budget_mode: str
    money_in: tuple[MoneyIn, ...] = ()
    window_pays: tuple[FundPay, ...] = ()  # window layers of the fund, settled and reversed
    claims: tuple[Claim, ...] = ()  # claims and relief cases of the fund
    #: the ledger checkpoint the figures were read at: (height, block digest), if sealed
    checkpoint: tuple[int, str] | None = None
    extra: dict[str, object] = field(default_factory=dict)
