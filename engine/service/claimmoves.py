"""Claims after discharge and relief cases of a settlement, and the account moves of their
decisions (domain.md section 13).

Account moves of a claim step, all under the settlement's account locks (and the fund's lock
when its budget is hard, ``used`` moving by the change of the current amount):

- a claim rejected: its layer's moves of that settlement (``deductible_used``,
  ``eligible_cum``, ``paid``) are taken back; a relief case rejected: its relief from ``paid``;
- approved lower: the difference from ``paid`` only (at most what the settlement moved into
  the layer's ``paid``);
- what a claim's rejection or lower approval takes back is added to ``selfpay_cum`` of the same
  bill's alert layers (applied) that follow the claim's layer.

``adjustment(rec, claim)`` is what the decisions on one claim have moved so far; a step moves
the accounts by the adjustment after it minus the one before, and a reversal takes back the
settlement's moves plus the adjustments of all its claims ("as they stand", nothing twice).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from engine.accounts import ZERO, LayerAccount, YearAccounts
from engine.claims import TRANSITIONS, Claim
from engine.errors import FailedPrecondition
from engine.service.ports import SettlementRecord, UnitOfWork

#: the reason written on the claims and cases a reversal rejects
REVERSAL_REASON = "settlement reversed"

AccountKey = tuple[str, str, str]  # (scope, person or household id, layer id)


def claim_id_of(settlement_id: str, layer_id: str) -> str:
    """A claim's id: one claim per (settlement, layer), so filing is idempotent by nature."""
    return f"{settlement_id}:{layer_id}"


# --- claims of a settlement ----------------------------------------------------------------


def new_claims(
    rec: SettlementRecord, at: datetime, principal: str, plain: dict[str, Any] | None = None
) -> list[Claim]:
    """Section 13: an after-discharge layer that paid more than 0 makes a claim, every alert
    emitted a relief case (possibly 0). Read from ``plain``, the settlement's ``to_dict()``
    (a Settle's, written from the kernel's rows: ``SettledRows.plain``), else from the
    model (tests/test_settled_plain.py holds the two equal)."""
    s = rec.settlement.to_dict() if plain is None else plain
    return [
        _claim(rec.settlement_id, s, r, at, principal)
        for r in s["layers"]
        if r["alert"] or (r["settle_at"] == "after_discharge" and r["pay"] > 0)
    ]


def claim_of(rec: SettlementRecord, layer_id: str, at: datetime, principal: str) -> Claim:
    """The claim (or relief case) of one layer of ``rec``, filed at ``at`` by ``principal``."""
    s = rec.settlement.to_dict()
    r = next(x for x in s["layers"] if x["layer_id"] == layer_id)
    return _claim(rec.settlement_id, s, r, at, principal)


def _claim(
    settlement_id: str, s: dict[str, Any], r: dict[str, Any], at: datetime, principal: str
) -> Claim:
    """The claim of layer ``r`` of the settlement ``s`` (both as ``to_dict()`` writes them)."""
    household = r["scope"] == "household"
    return Claim(
        claim_id=claim_id_of(settlement_id, r["layer_id"]),
        kind="relief" if r["alert"] else "claim",
        settlement_id=settlement_id,
        layer_id=r["layer_id"],
        fund_code=r["fund_code"],
        region=s["region"],
        year=s["year"],
        person_id=s["person_id"],
        household=s["household"],
        hospital=s["hospital"],
        bill_id=s["bill_id"],
        discharge_date=date.fromisoformat(s["discharge_date"]),
        filed_amount=r["relief"] if r["alert"] else r["pay"],
        status="filed",
        filed_at=at,
        filed_by=principal,
        scope="household" if household else "person",
        scope_key=s["household"] if household else s["person_id"],
    )


def adjustment(rec: SettlementRecord, c: Claim) -> dict[AccountKey, LayerAccount]:
    """What the decisions on claim ``c`` (as it stands) have moved on the accounts, beyond the
    settlement's own moves (section 13)."""
    taken = c.filed_amount - c.current_amount
    out: dict[AccountKey, LayerAccount] = {}
    if taken <= 0:
        return out
    move = next((m for m in rec.moves if m.layer_id == c.layer_id), None)
    if move is not None:
        d = move.delta
        if c.kind == "claim" and c.status == "rejected":
            own = LayerAccount(-d.deductible_used, -d.eligible_cum, -d.paid, 0)
        else:
            own = LayerAccount(0, 0, -min(taken, max(d.paid, 0)), 0)
        if own != ZERO:
            out[(move.scope, move.key, c.layer_id)] = own
    if c.kind == "claim":
        s = rec.settlement
        ids = [r.layer_id for r in s.layers]
        for r in s.layers[ids.index(c.layer_id) + 1 :]:
            if r.kind == "alert" and r.applied:
                owner = s.household if r.scope == "household" else s.person_id
                key: AccountKey = (r.scope, owner, r.layer_id)
                out[key] = out.get(key, ZERO).plus(LayerAccount(0, 0, 0, taken))
    return out


def diff(
    after: dict[AccountKey, LayerAccount], before: dict[AccountKey, LayerAccount]
) -> dict[AccountKey, LayerAccount]:
    out = {}
    for k in set(after) | set(before):
        d = after.get(k, ZERO).minus(before.get(k, ZERO))
        if d != ZERO:
            out[k] = d
    return out


def standing_moves(
    rec: SettlementRecord, claims: Sequence[Claim]
) -> tuple[dict[str, LayerAccount], dict[str, LayerAccount]]:
    """The settlement's moves as they stand (its own plus what its claims' decisions moved),
    per layer id: (person moves, household moves); what a reversal takes back."""
    total: dict[AccountKey, LayerAccount] = {}
    for m in rec.moves:
        mk: AccountKey = (m.scope, m.key, m.layer_id)
        total[mk] = total.get(mk, ZERO).plus(m.delta)
    for c in claims:
        for k, d in adjustment(rec, c).items():
            total[k] = total.get(k, ZERO).plus(d)
    pm = {lid: d for (scope, _, lid), d in total.items() if scope == "person"}
    hm = {lid: d for (scope, _, lid), d in total.items() if scope == "household"}
    return pm, hm


def apply_moves(uow: UnitOfWork, year: int, moves: dict[AccountKey, LayerAccount]) -> None:
    """Add ``moves`` to the stored accounts of the year (admissions unchanged)."""
    by_owner: dict[tuple[str, str], dict[str, LayerAccount]] = {}
    for (scope, key, lid), d in moves.items():
        by_owner.setdefault((scope, key), {})[lid] = d
    for (scope, key), ds in sorted(by_owner.items()):
        acc: YearAccounts = (
            uow.accounts.person_year(key, year)
            if scope == "person"
            else uow.accounts.household_year(key, year)
        )
        layers = dict(acc.layers)
        for lid, d in ds.items():
            layers[lid] = acc.get(lid).plus(d)
        new = YearAccounts(layers, acc.admissions)
        if scope == "person":
            uow.accounts.save_person_year(key, year, new)
        else:
            uow.accounts.save_household_year(key, year, new)


def refuse_paid(claims: Sequence[Claim], settlement_id: str) -> None:
    paid = [c for c in claims if c.status == "paid"]
    if paid:
        kinds = ", ".join(f"{c.kind} {c.claim_id!r}" for c in paid)
        raise FailedPrecondition(
            f"settlement {settlement_id!r} cannot be reversed: its {kinds} "
            f"{'is' if len(paid) == 1 else 'are'} paid (section 13: a settlement with a paid "
            "claim or relief case stays; settle a correction instead)"
        )


def transition_error(c: Claim, target: str) -> FailedPrecondition:
    allowed = TRANSITIONS[c.status]
    can = f"it may only be {' or '.join(allowed)}" if allowed else "it takes no further step"
    return FailedPrecondition(
        f"claim {c.claim_id!r} is {c.status}; it cannot be {target}: {can} "
        "(filed -> approved -> paid, or filed -> rejected)"
    )
