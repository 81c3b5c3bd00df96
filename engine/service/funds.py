"""Funds, claims after discharge, relief cases and money in (domain.md sections 12-13).

``FundService`` works over the same units of work as ``SettlementService`` (it is built on
one): fund declarations (``put_funds``), the claim steps (``file_claim``, ``approve``,
``reject``, ``pay``), money in (``record_money_in``) and the views (``facts``,
``person_cover``, ``cover_list``). Settle and Reverse (``engine.service.usecases``) use the
helpers here to create a settlement's claims and to take back what the claim decisions moved.

Account moves of a claim step (section 13), all under the settlement's account locks (and the
fund's lock when its budget is hard, ``used`` moving by the change of the current amount):

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

import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, get_args

from engine.accounts import ZERO, LayerAccount, YearAccounts
from engine.batch import FundYearKey
from engine.bill import Person
from engine.claims import TRANSITIONS, Claim, FundFacts, MoneyIn, MoneyInKind
from engine.errors import (
    Conflict,
    DuplicateRequest,
    FailedPrecondition,
    InputError,
    NotFound,
)
from engine.funds import Fund, FundBook, parse_funds
from engine.money import MAX_ACCOUNT
from engine.policy.model import Eligibility, Layer, PolicyTable
from engine.service import ledger
from engine.service.ports import (
    FundVersion,
    SettlementRecord,
    UnitOfWork,
    account_locks,
    fund_lock,
)

if TYPE_CHECKING:
    from engine.service.usecases import SettlementService

MAX_NOTE = 1_000  # characters of a note, reason or payer
MAX_PAYMENT_REF = 128
#: the reason written on the claims and cases a reversal rejects
REVERSAL_REASON = "settlement reversed"

AccountKey = tuple[str, str, str]  # (scope, person or household id, layer id)


def claim_id_of(settlement_id: str, layer_id: str) -> str:
    """A claim's id: one claim per (settlement, layer), so filing is idempotent by nature."""
    return f"{settlement_id}:{layer_id}"


def fund_in_force(versions: Sequence[FundVersion]) -> list[FundVersion]:
    """The latest stored version of each region's funds file."""
    latest: dict[str, FundVersion] = {}
    for v in sorted(versions, key=lambda v: v.version):
        latest[v.region] = v
    return sorted(latest.values(), key=lambda v: v.region)


def book_of(versions: Sequence[FundVersion]) -> FundBook:
    return FundBook.of([(f"funds version {v.version}", v.file) for v in fund_in_force(versions)])


def hard_keys(book: FundBook, region: str, year: int, codes: Sequence[str]) -> list[FundYearKey]:
    """The hard-budget fund-years among ``codes`` of the region and year, sorted."""
    return sorted(
        {(region, c, year) for c in codes if book.hard_total(region, c, year) is not None}
    )


def fund_locks(keys: Sequence[FundYearKey]) -> list[tuple[Any, str, int]]:
    return [fund_lock(*k) for k in keys]


# --- claims of a settlement ----------------------------------------------------------------


def new_claims(rec: SettlementRecord, at: datetime, principal: str) -> list[Claim]:
    """Section 13: an after-discharge layer that paid more than 0 makes a claim, every alert
    emitted a relief case (possibly 0)."""
    return [
        claim_of(rec, r.layer_id, at, principal)
        for r in rec.settlement.layers
        if r.alert or (r.settle_at == "after_discharge" and r.pay > 0)
    ]


def claim_of(rec: SettlementRecord, layer_id: str, at: datetime, principal: str) -> Claim:
    s = rec.settlement
    r = next(x for x in s.layers if x.layer_id == layer_id)
    household = r.scope == "household"
    return Claim(
        claim_id=claim_id_of(rec.settlement_id, r.layer_id),
        kind="relief" if r.alert else "claim",
        settlement_id=rec.settlement_id,
        layer_id=r.layer_id,
        fund_code=r.fund_code,
        region=s.region,
        year=s.year,
        person_id=s.person_id,
        household=s.household,
        hospital=s.hospital,
        bill_id=s.bill_id,
        discharge_date=s.discharge_date,
        filed_amount=r.relief if r.alert else r.pay,
        status="filed",
        filed_at=at,
        filed_by=principal,
        scope="household" if household else "person",
        scope_key=s.household if household else s.person_id,
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


def _diff(
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


# --- views ---------------------------------------------------------------------------------


def eligible(e: Eligibility, person: Person, on: date) -> bool:
    """Whether the person is insured under ``e`` on ``on`` (tags and age; hospital levels are
    a property of a bill, not of cover, so they are not looked at)."""
    tags = person.tags_on(on)
    age = person.age_on(on)
    if e.tags_any and not tags & set(e.tags_any):
        return False
    if tags & set(e.tags_none):
        return False
    if e.age_min is not None and age < e.age_min:
        return False
    return e.age_max is None or age <= e.age_max


def layer_covers(layer: Layer, person: Person, on: date) -> bool:
    """The layer would apply to the person on ``on`` at some hospital level: eligible, and a
    variant's ``when`` tags match (levels not looked at)."""
    if not eligible(layer.eligibility, person, on):
        return False
    tags = person.tags_on(on)
    return any(
        v.when is None or not v.when.tags_any or bool(tags & set(v.when.tags_any))
        for v in layer.variants
    )


def fund_eligibility(fund: Fund | None, table: PolicyTable | None, code: str) -> Eligibility | None:
    """Who a fund insures: its declared eligibility, else the first layer with its code in
    the table in force (None: no way to tell)."""
    if fund is not None and fund.eligibility is not None:
        return fund.eligibility
    if table is None:
        return None
    layer = next((x for x in table.layers if x.fund_code == code), None)
    return None if layer is None else layer.eligibility


@dataclass(frozen=True)
class LayerCover:
    layer_id: str
    name: str
    name_zh: str
    settle_at: str
    covered: bool


@dataclass(frozen=True)
class FundCover:
    fund_code: str
    name: str
    name_zh: str
    budget_mode: str
    covered: bool  # the fund's eligibility (declared, or its first layer's)
    layers: tuple[LayerCover, ...]


@dataclass(frozen=True)
class PersonCover:
    person: Person
    year: int
    on: date
    funds: tuple[FundCover, ...]
    settlements: tuple[SettlementRecord, ...]
    claims: tuple[Claim, ...]  # claims and relief cases, with their status


@dataclass(frozen=True)
class CoverRow:
    person_id: str
    household: str
    township: str
    village: str
    funds: tuple[str, ...]  # fund codes covering the person on the date


def _text(field: str, value: str, limit: int = MAX_NOTE, required: bool = False) -> str:
    if not isinstance(value, str):
        raise InputError.one(field, value, "is not text")
    if required and not value.strip():
        raise InputError.one(field, value, "is empty")
    if len(value) > limit:
        raise InputError.one(field, value, f"is {len(value)} characters long; at most {limit}")
    if "\x00" in value:
        raise InputError.one(field, value, "holds NUL; use plain text")
    return value


def _amount(field: str, value: object, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError.one(field, value, "is not a whole number of fen")
    if not lo <= value <= hi:
        raise InputError.one(field, value, f"is outside {lo:,} to {hi:,} fen")
    return value


class FundService:
    """The use cases of issue 10 on the stores of ``service`` (a ``SettlementService``)."""

    def __init__(self, service: SettlementService):
        self.s = service
        self._uow = service._uow
        self._clock = service._clock
        self._new_id = service._new_id
        self._lock = threading.Lock()

    # --- fund declarations -------------------------------------------------------------------
    def put_funds(
        self,
        text: str,
        source_name: str = "<request>",
        *,
        principal: str = "local",
        dry_run: bool = False,
    ) -> FundVersion:
        """Validate (``engine.funds.parse_funds``) and store a region's funds file as a new
        version, in force from now on (a region has one funds file: the latest). The same
        text as the version in force stores nothing (``unchanged``); ``dry_run`` validates
        only (version 0)."""
        from engine.service.usecases import check_source_name

        check_source_name(source_name)
        f = parse_funds(text, source_name)
        with self._uow() as uow:
            uow.lock(("policy", f.region, 0))  # a region's declarations change in turn
            now = next((v for v in fund_in_force(uow.funds.all()) if v.region == f.region), None)
            if now is not None and now.text == text:
                return replace(now, unchanged=True)
            if dry_run:
                return FundVersion(0, f.region, text, source_name, self._clock(), f)
            v = uow.funds.add(text, source_name, f, self._clock())
            ledger.append(uow, ledger.funds_event(v, principal))
            uow.commit()
        self.s.forget_funds()
        return v

    def fund_versions(self) -> list[FundVersion]:
        with self._uow() as uow:
            return uow.funds.all()

    def book(self) -> FundBook:
        """The fund declarations in force (cached, like the policy tables)."""
        return self.s.fund_book()

    def balance(self, region: str, fund_code: str, year: int) -> int | None:
        """The remaining balance of a hard-budget fund-year (None: not limited)."""
        total = self.book().hard_total(region, fund_code, year)
        if total is None:
            return None
        with self._uow() as uow:
            return max(0, total - uow.funds.used(region, fund_code, year))

    # --- claims and relief cases -------------------------------------------------------------
    def get_claim(self, claim_id: str) -> Claim:
        self._key("claim_id", claim_id)
        with self._uow() as uow:
            c = uow.claims.get(claim_id)
        if c is None:
            raise NotFound("claim", claim_id)
        return c

    def claims_of(self, settlement_id: str) -> list[Claim]:
        self._key("settlement_id", settlement_id)
        with self._uow() as uow:
            return uow.claims.for_settlement(settlement_id)

    def file_claim(self, settlement_id: str, layer_id: str, *, principal: str = "local") -> Claim:
        """File the claim (after-discharge layer that paid) or relief case (alert) of a
        settled bill whose claim is missing (settled before claims were kept). Idempotent:
        an existing claim is returned as it is."""
        self._key("settlement_id", settlement_id)
        self._key("layer_id", layer_id)
        cid = claim_id_of(settlement_id, layer_id)
        with self._uow() as uow:
            found = uow.claims.get(cid)
            if found is not None:
                return found
            rec = uow.settlements.by_id(settlement_id)
            if rec is None:
                raise NotFound("settlement", settlement_id)
            s = rec.settlement
            r = next((x for x in s.layers if x.layer_id == layer_id), None)
            if r is None:
                raise NotFound(
                    f"layer of settlement {settlement_id!r}", layer_id,
                    f"its layers are {', '.join(x.layer_id for x in s.layers)}",
                )  # fmt: skip
            if not (r.alert or (r.settle_at == "after_discharge" and r.pay > 0)):
                raise FailedPrecondition(
                    f"layer {layer_id!r} of settlement {settlement_id!r} makes no claim: only "
                    "an after-discharge layer that paid more than 0 (a claim) or an alert "
                    "emitted (a relief case) does"
                )
            if rec.status != "settled":
                raise FailedPrecondition(
                    f"settlement {settlement_id!r} is {rec.status}; a claim is filed only for "
                    "a settled bill"
                )
            keys = hard_keys(self.book(), s.region, s.year, [r.fund_code])
            uow.lock(*fund_locks(keys), *account_locks(s.person_id, s.household, s.year))
            found = uow.claims.get(cid)
            if found is not None:
                return found
            rec = uow.settlements.by_id(settlement_id)
            if rec is None or rec.status != "settled":
                raise FailedPrecondition(f"settlement {settlement_id!r} was reversed meanwhile")
            c = claim_of(rec, layer_id, self._clock(), principal)
            uow.claims.add(c)
            for k in keys:
                uow.funds.add_used(*k, c.current_amount)
            ledger.append(uow, ledger.claim_event(c, c.filed_at, principal))
            uow.commit()
        return c

    def approve(
        self,
        claim_id: str,
        amount: int | None = None,
        note: str = "",
        *,
        principal: str = "local",
    ) -> Claim:
        """filed -> approved, at ``amount`` fen (0 to the filed amount; None: the filed
        amount). A lower amount takes the difference back (section 13)."""
        _text("note", note)

        def step(c: Claim, now: datetime) -> Claim:
            amt = c.filed_amount if amount is None else _amount("amount", amount, 0, c.filed_amount)
            return replace(c, status="approved", approved_amount=amt, decided_at=now,
                           decided_by=principal, note=note)  # fmt: skip

        return self._step(claim_id, "approved", step, principal)

    def reject(self, claim_id: str, reason: str, *, principal: str = "local") -> Claim:
        """filed -> rejected: the claim's layer moves (a relief case: its relief) are taken
        back (section 13)."""
        _text("reason", reason, required=True)

        def step(c: Claim, now: datetime) -> Claim:
            return replace(
                c, status="rejected", decided_at=now, decided_by=principal, reason=reason
            )

        return self._step(claim_id, "rejected", step, principal)

    def pay(
        self,
        claim_id: str,
        paid_date: str | date,
        payment_ref: str,
        *,
        principal: str = "local",
    ) -> Claim:
        """approved -> paid: the approved amount was paid on ``paid_date`` (YYYY-MM-DD, not
        before discharge) under ``payment_ref``. Moves no account."""
        from engine.service.usecases import check_key, parse_day

        day = parse_day("paid_date", paid_date)
        _text("payment_ref", payment_ref, MAX_PAYMENT_REF, required=True)
        check_key("payment_ref", payment_ref)

        def step(c: Claim, now: datetime) -> Claim:
            if day < c.discharge_date:
                raise InputError.one(
                    "paid_date", day.isoformat(),
                    f"is before the discharge date {c.discharge_date.isoformat()} of the bill",
                )  # fmt: skip
            return replace(c, status="paid", paid_at=now, paid_date=day,
                           payment_ref=payment_ref, paid_by=principal)  # fmt: skip

        return self._step(claim_id, "paid", step, principal)

    def _step(
        self,
        claim_id: str,
        target: str,
        step: Any,
        principal: str,
    ) -> Claim:
        self._key("claim_id", claim_id)
        with self._uow() as uow:
            c = uow.claims.get(claim_id)
            if c is None:
                raise NotFound("claim", claim_id)
            if target not in TRANSITIONS[c.status]:
                raise transition_error(c, target)
            keys = hard_keys(self.book(), c.region, c.year, [c.fund_code])
            uow.lock(*fund_locks(keys), *account_locks(c.person_id, c.household, c.year))
            c = uow.claims.get(claim_id)
            assert c is not None
            if target not in TRANSITIONS[c.status]:
                raise transition_error(c, target)
            rec = uow.settlements.by_id(c.settlement_id)
            assert rec is not None
            now = self._clock()
            new: Claim = step(c, now)
            apply_moves(uow, c.year, _diff(adjustment(rec, new), adjustment(rec, c)))
            for k in keys:
                uow.funds.add_used(*k, new.current_amount - c.current_amount)
            uow.claims.update(new)
            ledger.append(uow, ledger.claim_event(new, now, principal))
            uow.commit()
        return new

    # --- money in ------------------------------------------------------------------------------
    def record_money_in(
        self,
        request_id: str,
        region: str,
        fund_code: str,
        year: int,
        kind: str,
        payer: str,
        amount: int,
        on: str | date,
        note: str = "",
        *,
        principal: str = "local",
    ) -> tuple[MoneyIn, bool]:
        """Money into a fund (a premium, a donation, government money). Idempotent by
        ``request_id``: the same request again returns the stored record (True: a replay);
        the same id with other content is a Conflict."""
        from engine.service.usecases import check_key, parse_day

        if not request_id or len(request_id) > 128:
            raise InputError.one("request_id", request_id, "must be 1 to 128 characters")
        check_key("request_id", request_id)
        self._fund_known(region, fund_code)
        if isinstance(year, bool) or not isinstance(year, int) or not 1900 <= year <= 2999:
            raise InputError.one("year", year, "is not an accounting year (1900..2999)")
        kinds = get_args(MoneyInKind)
        if kind not in kinds:
            raise InputError.one("kind", kind, f"is not one of {', '.join(kinds)}")
        _text("payer", payer, 200, required=True)
        _amount("amount", amount, 1, MAX_ACCOUNT)
        day = parse_day("on", on)
        _text("note", note)
        with self._uow() as uow:
            found = uow.claims.money_in_by_request(request_id)
            if found is not None:
                return self._money_replay(found, request_id, region, fund_code, year, kind,
                                          payer, amount, day, note), True  # fmt: skip
            m = MoneyIn(
                record_id=self._new_id(), region=region, fund_code=fund_code, year=year,
                kind=kind, payer=payer, amount=amount, on=day, note=note,  # type: ignore[arg-type]
                recorded_by=principal, recorded_at=self._clock(),
            )  # fmt: skip
            try:
                uow.claims.add_money_in(m, request_id)
                ledger.append(uow, ledger.money_in_event(m, request_id, principal))
                uow.commit()
            except DuplicateRequest:
                uow.rollback()
                with self._uow() as again:
                    twin = again.claims.money_in_by_request(request_id)
                if twin is None:
                    raise
                return self._money_replay(twin, request_id, region, fund_code, year, kind,
                                          payer, amount, day, note), True  # fmt: skip
        return m, False

    @staticmethod
    def _money_replay(found: MoneyIn, request_id: str, *same: object) -> MoneyIn:
        stored = (found.region, found.fund_code, found.year, found.kind, found.payer,
                  found.amount, found.on, found.note)  # fmt: skip
        if stored != same:
            raise Conflict(
                f"request_id {request_id!r} was already used for money in "
                f"{found.record_id!r} with different content; use a new request id"
            )
        return found

    # --- views ---------------------------------------------------------------------------------
    def _fund_known(self, region: str, fund_code: str) -> tuple[Fund | None, Layer | None]:
        """The fund's declaration and its first layer in the region's tables; NotFound when
        neither exists."""
        from engine.service.usecases import check_key

        check_key("region", region)
        check_key("fund_code", fund_code)
        fund = self.book().get(region, fund_code)
        layer = next(
            (
                x
                for t in self.s.policies().tables
                if t.region.code == region
                for x in t.layers
                if x.fund_code == fund_code
            ),
            None,
        )
        if fund is None and layer is None:
            raise NotFound(
                "fund", f"{region}/{fund_code}",
                "no funds file declares it and no policy table of the region has a layer with "
                "that fund code",
            )  # fmt: skip
        return fund, layer

    def _table_on(self, region: str, on: date) -> PolicyTable | None:
        for t in self.s.policies().tables:
            if t.region.code == region and t.covers_date(on):
                return t
        return None

    def facts(self, region: str, fund_code: str, year: int, as_of: str | date) -> FundFacts:
        """Everything the fund views and the public page are computed from: the declaration,
        enrolment (registry persons of the region insured on ``as_of``), the fund's window
        pays, its claims and relief cases, money in, and the last ledger checkpoint. Records
        only: the public figures are summed elsewhere (``engine.fundstats``)."""
        from engine.service.usecases import parse_day

        day = parse_day("as_of", as_of)
        fund, layer = self._fund_known(region, fund_code)
        fy = self.book().year(region, fund_code, year)
        table = self._table_on(region, day)
        names = [t.region.name for t in self.s.policies().tables if t.region.code == region]
        e = fund_eligibility(fund, table, fund_code)
        with self._uow() as uow:
            persons = uow.registry.in_region(region)
            enrolled = 0 if e is None else sum(eligible(e, p, day) for p in persons)
            pays = uow.funds.window_pays(region, fund_code, year)
            claims = uow.claims.for_fund(region, fund_code, year)
            money = uow.claims.money_in_for(region, fund_code, year)
            head = uow.ledger.head()
        return FundFacts(
            region=region,
            region_name=(table.region.name if table is not None else (names or [""])[-1]),
            fund_code=fund_code,
            fund_name=fund.name if fund is not None else (layer.name if layer else ""),
            fund_name_zh=fund.name_zh if fund is not None else (layer.name_zh if layer else ""),
            year=year,
            as_of=day,
            enrolled=enrolled,
            budget=None if fy is None else fy.budget,
            carried_in=0 if fy is None else fy.carried_in,
            budget_mode="report" if fy is None else fy.budget_mode,
            money_in=tuple(money),
            window_pays=tuple(pays),
            claims=tuple(claims),
            checkpoint=None if head is None else (head.header.height, head.hash),
        )

    def _covers(self, person: Person, table: PolicyTable | None, on: date) -> list[FundCover]:
        if person.region is None:
            return []
        region = person.region
        book = self.book()
        codes: list[str] = []
        if table is not None:
            codes += [x.fund_code for x in table.layers if x.fund_code not in codes]
        codes += sorted(c for (r, c) in book.funds if r == region and c not in codes)
        out = []
        for code in codes:
            fund = book.get(region, code)
            layers = [] if table is None else [x for x in table.layers if x.fund_code == code]
            e = fund_eligibility(fund, table, code)
            fy = book.year(region, code, on.year)
            out.append(FundCover(
                fund_code=code,
                name=fund.name if fund is not None else (layers[0].name if layers else ""),
                name_zh=fund.name_zh if fund is not None else (layers[0].name_zh if layers else ""),
                budget_mode="report" if fy is None else fy.budget_mode,
                covered=e is not None and eligible(e, person, on),
                layers=tuple(
                    LayerCover(x.id, x.name, x.name_zh, x.settle_at, layer_covers(x, person, on))
                    for x in layers
                ),
            ))  # fmt: skip
        return out

    def person_cover(self, person_id: str, year: int, on: str | date | None = None) -> PersonCover:
        """A person's funds and layers (whether each covers them on ``on``: default the last
        day of ``year``, or today if earlier), their settlements of the year and their claims
        and relief cases with status."""
        from engine.service.usecases import check_key, parse_day

        check_key("person_id", person_id)
        if on is None:
            today = self._clock().date()
            day = min(date(year, 12, 31), max(today, date(year, 1, 1)))
        else:
            day = parse_day("on", on)
        with self._uow() as uow:
            person = uow.registry.get(person_id)
            if person is None:
                raise NotFound("person", person_id, "import the person registry first")
            recs = uow.settlements.for_person(person_id, year)
            claims = uow.claims.for_person(person_id, year)
        table = None if person.region is None else self._table_on(person.region, day)
        return PersonCover(
            person, year, day, tuple(self._covers(person, table, day)), tuple(recs), tuple(claims)
        )

    def cover_list(
        self,
        region: str,
        township: str | None = None,
        village: str | None = None,
        as_of: str | date | None = None,
    ) -> list[CoverRow]:
        """Each registry person of the region (and township, village) with the funds
        covering them on ``as_of`` (default today): a cadre's list."""
        from engine.service.usecases import check_key, parse_day

        check_key("region", region)
        day = self._clock().date() if as_of is None else parse_day("as_of", as_of)
        table = self._table_on(region, day)
        with self._uow() as uow:
            persons = uow.registry.in_region(region, township, village)
        rows = []
        for p in persons:
            codes = tuple(f.fund_code for f in self._covers(p, table, day) if f.covered)
            rows.append(CoverRow(p.id, p.household, p.township, p.village, codes))
        return rows

    @staticmethod
    def _key(field: str, value: str) -> None:
        from engine.service.usecases import check_key

        if not value:
            raise InputError.one(field, value, "is empty")
        check_key(field, value, 200)
