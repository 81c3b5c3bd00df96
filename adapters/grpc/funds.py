"""The ``FundsService`` gRPC service (protos/onestop/settlement/v1/funds.proto): thin servicers over
the fund use cases, each call through ``ScopedFunds`` (adapters/auth/access.py) with the
caller's principal; domain errors go through the one table of ``adapters.grpc.errors``."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from adapters.auth.access import ScopedFunds
from adapters.grpc import auth
from adapters.grpc.gen.onestop.settlement.v1 import funds_pb2 as fpb
from adapters.grpc.gen.onestop.settlement.v1 import funds_pb2_grpc as fpbg
from adapters.grpc.servicers import _Base, _unary
from engine.claims import Claim, MoneyIn
from engine.errors import InputError
from engine.fundstats import Days
from engine.reconcile import local_date
from engine.service.claimviews import ClaimFilter
from engine.service.cover import (
    CoverRow,
    FundCover,
    cover_after,
    cover_page_size,
    cover_token,
)
from engine.service.funds import FundService
from engine.service.inputs import check_key, parse_day
from engine.service.ports import SettlementRecord
from engine.service.statements import Statement, as_of_default, statement
from engine.service.usecases import SettlementService

MAX_TEXT = 500  # characters of a note or reason
MAX_REF = 128  # characters of a payment reference


def _iso(x: datetime | date | None) -> str:
    return "" if x is None else x.isoformat()


def claim_pb(c: Claim) -> fpb.Claim:
    m = fpb.Claim(
        claim_id=c.claim_id, kind=c.kind, settlement_id=c.settlement_id, layer_id=c.layer_id,
        fund_code=c.fund_code, region=c.region, year=c.year, person_id=c.person_id,
        household=c.household, hospital=c.hospital, bill_id=c.bill_id,
        discharge_date=_iso(c.discharge_date), filed_amount=c.filed_amount, status=c.status,
        filed_at=_iso(c.filed_at), filed_by=c.filed_by, current_amount=c.current_amount,
        decided_at=_iso(c.decided_at), decided_by=c.decided_by, note=c.note, reason=c.reason,
        paid_at=_iso(c.paid_at), paid_date=_iso(c.paid_date), payment_ref=c.payment_ref,
        paid_by=c.paid_by,
    )  # fmt: skip
    if c.approved_amount is not None:
        m.approved_amount = c.approved_amount
    if c.days_to_payment is not None:
        m.days_to_payment = c.days_to_payment
    return m


def money_in_pb(r: MoneyIn) -> fpb.MoneyIn:
    return fpb.MoneyIn(
        record_id=r.record_id, region=r.region, fund_code=r.fund_code, year=r.year,
        kind=r.kind, payer=r.payer, amount=r.amount, on=_iso(r.on), note=r.note,
        recorded_by=r.recorded_by, recorded_at=_iso(r.recorded_at),
    )  # fmt: skip


def days_pb(d: Days) -> fpb.DaysToPayment:
    m = fpb.DaysToPayment(count=d.count)
    for name in ("median", "mean", "p90", "min", "max"):
        v = getattr(d, name)
        if v is not None:
            setattr(m, name, v)
    return m


def statement_pb(s: Statement) -> fpb.FundStatementResponse:
    g = s.figures
    paid = g.claims.paid.fen + g.relief.paid.fen
    m = fpb.FundStatementResponse(
        region=g.region, region_name=g.region_name, fund_code=g.fund_code,
        fund_name=g.fund_name, fund_name_zh=g.fund_name_zh, year=g.year, as_of=_iso(g.as_of),
        enrolled=g.enrolled, carried_in=g.carried_in, budget_mode=g.budget_mode,
        money_in=g.money_in.fen, money_in_records=[money_in_pb(r) for r in s.records],
        window_paid=g.window.fen, window_count=g.window.settlements,
        window_reversed=g.window.reversed, claims_paid=paid, claims_payable=g.payable,
        claims_pending=g.claims.filed.fen + g.relief.filed.fen, used=s.used,
        money_out=g.money_out, balance=g.balance,
        claims=[fpb.ClaimTotals(kind=t.kind, status=t.status, count=t.count,
                                filed_amount=t.filed_amount, current_amount=t.current_amount)
                for t in s.totals],
        days_to_payment=days_pb(g.days_to_payment),
    )  # fmt: skip
    if g.budget is not None:
        m.budget = g.budget
    if g.budget_left is not None:
        m.budget_left = g.budget_left
    if g.loss_ratio_bp is not None:
        m.loss_ratio_bp = g.loss_ratio_bp
    if g.checkpoint is not None:
        m.checkpoint_height, m.checkpoint_digest = g.checkpoint.height, g.checkpoint.hash
    return m


def public_pb(s: Statement) -> fpb.PublicFiguresResponse:
    """Aggregates only: no person, household, bill, claim, payer or operator's note."""
    g = s.figures
    m = fpb.PublicFiguresResponse(
        region=g.region, region_name=g.region_name, fund_code=g.fund_code,
        fund_name=g.fund_name, fund_name_zh=g.fund_name_zh, year=g.year, as_of=_iso(g.as_of),
        enrolled=g.enrolled, money_in=g.money_in.fen, money_out=g.money_out,
        payable=g.payable, balance=g.balance,
        claims_filed=g.claims.all.count + g.relief.all.count,
        claims_paid=g.claims.paid.count + g.relief.paid.count,
        claims_rejected=g.claims.rejected.count + g.relief.rejected.count,
        days_to_payment=days_pb(g.days_to_payment),
    )  # fmt: skip
    if g.loss_ratio_bp is not None:
        m.loss_ratio_bp = g.loss_ratio_bp
    if g.budget_left is not None:
        m.budget_left = g.budget_left
    return m


def brief_pb(r: SettlementRecord) -> fpb.SettlementBrief:
    s = r.settlement
    return fpb.SettlementBrief(
        settlement_id=r.settlement_id, hospital=s.hospital, bill_id=s.bill_id,
        discharge_date=_iso(s.discharge_date), status=r.status, total=s.buckets.total,
        funds_total=s.funds_total, window_pay=s.window_pay,
    )  # fmt: skip


def fund_cover_pb(f: FundCover) -> fpb.FundCover:
    return fpb.FundCover(
        region=f.region, fund_code=f.fund_code, fund_name=f.name, fund_name_zh=f.name_zh,
        operator=f.operator, covered=f.covered, budget_mode=f.budget_mode,
        layers=[fpb.LayerCover(layer_id=la.layer_id, name=la.name, name_zh=la.name_zh,
                               settle_at=la.settle_at, covered=la.covered) for la in f.layers],
    )  # fmt: skip


def cover_row_pb(r: CoverRow) -> fpb.CoverEntry:
    return fpb.CoverEntry(
        person_id=r.person_id,
        household=r.household,
        township=r.township,
        village=r.village,
        fund_codes=list(r.fund_codes),
    )


def _text(field: str, value: str, limit: int, required: bool = False) -> str:
    if required and not value.strip():
        raise InputError.one(field, value, "is empty; give it")
    if len(value) > limit:
        raise InputError.one(field, value, f"is {len(value)} characters long; at most {limit}")
    if "\x00" in value:
        raise InputError.one(field, value, "holds NUL; use plain text")
    return value


def _year(field: str, y: int, default: int | None = None) -> int:
    if y == 0 and default is not None:
        return default
    if not 1900 <= y <= 2999:
        raise InputError.one(field, y, "is not an accounting year (1900..2999)")
    return y


def _today() -> date:
    return local_date(datetime.now(UTC))


def _claim_id(value: str) -> str:
    if not value:
        raise InputError.one("claim_id", "", "is empty; name the claim")
    check_key("claim_id", value)
    return value


class FundsServicer(_Base, fpbg.FundsServiceServicer):
    """Every rpc of the ``FundsService``; bodies run in the thread pool (``_unary``)."""

    def __init__(self, service: SettlementService, executor: Any, limits: Any, funds: FundService):
        super().__init__(service, executor, limits)
        self.funds = funds

    def scoped_funds(self) -> ScopedFunds:
        return ScopedFunds(self.funds, self.service, auth.current())

    @_unary
    def PutFunds(self, request: fpb.PutFundsRequest) -> fpb.PutFundsResponse:
        v = self.scoped_funds().put_funds(
            request.yaml, request.source_name or "<request>", request.dry_run
        )
        return fpb.PutFundsResponse(
            region=v.region,
            fund_codes=[f.fund_code for f in v.file.funds],
            stored=not request.dry_run and not v.unchanged,
            unchanged=v.unchanged,
            version=v.version,
        )

    @_unary
    def RecordMoneyIn(self, request: fpb.RecordMoneyInRequest) -> fpb.RecordMoneyInResponse:
        if not request.request_id:
            raise InputError.one("request_id", "", "is empty; give an id for this record")
        check_key("request_id", request.request_id)
        for name in ("region", "fund_code", "kind"):
            if not getattr(request, name):
                raise InputError.one(name, "", "is empty; give it")
        if request.amount <= 0:
            raise InputError.one("amount", request.amount, "must be more than 0 (fen)")
        record, replay = self.scoped_funds().record_money_in(
            request.request_id, request.region, request.fund_code,
            _year("year", request.year), request.kind,
            _text("payer", request.payer, 200, required=True), request.amount,
            parse_day("on", request.on), _text("note", request.note, MAX_TEXT),
        )  # fmt: skip
        return fpb.RecordMoneyInResponse(record=money_in_pb(record), replay=replay)

    @_unary
    def FileClaim(self, request: fpb.FileClaimRequest) -> fpb.FileClaimResponse:
        if not request.settlement_id:
            raise InputError.one("settlement_id", "", "is empty; name the settlement")
        if not request.layer_id:
            raise InputError.one("layer_id", "", "is empty; name the after-discharge layer")
        check_key("settlement_id", request.settlement_id)
        check_key("layer_id", request.layer_id)
        c = self.scoped_funds().file_claim(request.settlement_id, request.layer_id)
        return fpb.FileClaimResponse(claim=claim_pb(c))

    @_unary
    def GetClaim(self, request: fpb.GetClaimRequest) -> fpb.GetClaimResponse:
        c = self.scoped_funds().get_claim(_claim_id(request.claim_id))
        return fpb.GetClaimResponse(claim=claim_pb(c))

    @_unary
    def ListClaims(self, request: fpb.ListClaimsRequest) -> fpb.ListClaimsResponse:
        for name in ("region", "fund_code", "person_id"):
            check_key(name, getattr(request, name))
        f = ClaimFilter(
            region=request.region, fund_code=request.fund_code, person_id=request.person_id,
            status=request.status, kind=request.kind,
            year=_year("year", request.year) if request.HasField("year") else None,
        )  # fmt: skip
        claims, token = self.scoped_funds().list_claims(f, request.page_size, request.page_token)
        return fpb.ListClaimsResponse(claims=[claim_pb(c) for c in claims], next_page_token=token)

    @_unary
    def ApproveClaim(self, request: fpb.ApproveClaimRequest) -> fpb.ApproveClaimResponse:
        amount = request.amount if request.HasField("amount") else None
        if amount is not None and amount < 0:
            raise InputError.one("amount", amount, "is negative; approve 0 to the filed amount")
        c = self.scoped_funds().approve(
            _claim_id(request.claim_id), amount, _text("note", request.note, MAX_TEXT)
        )
        return fpb.ApproveClaimResponse(claim=claim_pb(c))

    @_unary
    def RejectClaim(self, request: fpb.RejectClaimRequest) -> fpb.RejectClaimResponse:
        reason = _text("reason", request.reason, MAX_TEXT, required=True)
        c = self.scoped_funds().reject(_claim_id(request.claim_id), reason)
        return fpb.RejectClaimResponse(claim=claim_pb(c))

    @_unary
    def PayClaim(self, request: fpb.PayClaimRequest) -> fpb.PayClaimResponse:
        ref = _text("payment_ref", request.payment_ref, MAX_REF, required=True)
        day = parse_day("paid_date", request.paid_date)
        c = self.scoped_funds().pay(_claim_id(request.claim_id), day, ref)
        return fpb.PayClaimResponse(claim=claim_pb(c))

    def _facts_args(self, request: Any) -> tuple[str, str, int]:
        for name in ("region", "fund_code"):
            value = getattr(request, name)
            if not value:
                raise InputError.one(name, "", "is empty; name the fund's region and code")
            check_key(name, value)
        return request.region, request.fund_code, _year("year", request.year)

    @_unary
    def FundStatement(self, request: fpb.FundStatementRequest) -> fpb.FundStatementResponse:
        region, code, year = self._facts_args(request)
        as_of = (
            parse_day("as_of", request.as_of) if request.as_of else as_of_default(year, _today())
        )
        return statement_pb(statement(self.scoped_funds().facts(region, code, year, as_of)))

    @_unary
    def PublicFigures(self, request: fpb.PublicFiguresRequest) -> fpb.PublicFiguresResponse:
        region, code, year = self._facts_args(request)
        facts = self.scoped_funds().public_facts(region, code, year, as_of_default(year, _today()))
        return public_pb(statement(facts))

    @_unary
    def PersonCover(self, request: fpb.PersonCoverRequest) -> fpb.PersonCoverResponse:
        pid = request.person_id
        if not pid:
            raise InputError.one("person_id", "", "is empty; name the person")
        check_key("person_id", pid)
        year = _year("year", request.year, default=_today().year)
        cover = self.scoped_funds().person_cover(pid, year)  # PermissionDenied outside the scope
        person = cover.person
        return fpb.PersonCoverResponse(
            person_id=person.id, household=person.household, region=person.region or "",
            township=person.township, village=person.village, year=year,
            funds=[fund_cover_pb(f) for f in cover.funds],
            settlements=[brief_pb(r) for r in cover.settlements],
            claims=[claim_pb(c) for c in sorted(cover.claims, key=lambda c: (c.filed_at, c.claim_id))],
            cover_date=_iso(cover.on),
        )  # fmt: skip

    @_unary
    def CoverList(self, request: fpb.CoverListRequest) -> fpb.CoverListResponse:
        if not request.region:
            raise InputError.one("region", "", "is empty; name the region")
        for name in ("region", "township", "village"):
            check_key(name, getattr(request, name), 100)
        listing: list[object] = [request.region, request.township, request.village, request.as_of]
        size = cover_page_size(request.page_size)
        if request.page_token:
            as_of, after = cover_after(request.page_token, listing)
        else:
            as_of = parse_day("as_of", request.as_of) if request.as_of else _today()
            after = None
        rows = self.scoped_funds().cover_list(
            request.region, request.township, request.village, as_of, after=after, limit=size + 1
        )
        page = rows[:size]
        token = cover_token(listing, as_of, page[-1]) if len(rows) > size else ""
        return fpb.CoverListResponse(
            region=request.region, as_of=as_of.isoformat(),
            persons=[cover_row_pb(r) for r in page], next_page_token=token,
        )  # fmt: skip
