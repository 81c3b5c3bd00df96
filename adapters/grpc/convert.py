"""Proto messages <-> core types. No rules here: the engine validates what it receives.

Requests become the plain data the core parses (``parse_bill_request``, ``Person``), so every
bad field is reported by the core with its path (``items[3].amount``), exactly as for a JSON
bill. Results and records become messages field by field.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import ValidationError

from adapters.grpc.gen.onestop.settlement.v1 import settlement_pb2 as pb
from engine.accounts import LayerAccount, YearAccounts
from engine.allocation import Allocation
from engine.bill import BillRequest, Person, check_items_count, parse_bill_request
from engine.errors import InputError
from engine.explain import explain
from engine.reconcile import (
    DailyFund,
    Difference,
    Entry,
    HospitalLine,
    HospitalTotals,
    LineDifference,
    Reconciliation,
    Totals,
)
from engine.result import Buckets, LayerResult, Settlement
from engine.service.inputs import check_persons_count
from engine.service.ports import PolicyVersion, SettlementRecord
from engine.validation import problems_from

# --------------------------------------------------------------------------- requests


def item_dict(it: pb.Item) -> dict[str, Any]:
    d: dict[str, Any] = {
        "code": it.code,
        "name": it.name,
        "category": it.category,
        "unit_price": it.unit_price,
        "amount": it.amount,
    }
    if it.HasField("qty_e4"):
        d["qty_e4"] = it.qty_e4
    if it.HasField("unit_price_cap"):
        d["unit_price_cap"] = it.unit_price_cap
    if it.HasField("selfpay_ratio"):
        d["selfpay_ratio"] = it.selfpay_ratio
    return d


def _items(items: Any) -> list[dict[str, Any]]:
    """``item_dict`` inlined over a list (the hot loop of every bill: ~1 us per item)."""
    out: list[dict[str, Any]] = []
    add = out.append
    for it in items:
        d = {
            "code": it.code,
            "name": it.name,
            "category": it.category,
            "unit_price": it.unit_price,
            "amount": it.amount,
        }
        has = it.HasField
        if has("qty_e4"):
            d["qty_e4"] = it.qty_e4
        if has("unit_price_cap"):
            d["unit_price_cap"] = it.unit_price_cap
        if has("selfpay_ratio"):
            d["selfpay_ratio"] = it.selfpay_ratio
        add(d)
    return out


def bill_dict(b: pb.Bill) -> dict[str, Any]:
    """The bill as the plain data a JSON bill would be (empty region = None)."""
    d: dict[str, Any] = {
        "id": b.id,
        "hospital": b.hospital,
        "person_id": b.person_id,
        "hospital_level": b.hospital_level,
        "admission_date": b.admission_date,
        "discharge_date": b.discharge_date,
        "items": _items(b.items),
    }
    if b.region:
        d["region"] = b.region
    return d


def bill_request(b: pb.Bill, prefix: str = "") -> BillRequest:
    """The core's bill request, or InputError naming every bad field (paths under ``prefix``);
    LimitExceeded before anything is parsed when the bill has too many items."""
    check_items_count(len(b.items), f"{prefix}.items" if prefix else "items")
    try:
        return parse_bill_request(bill_dict(b))
    except InputError as err:
        if not prefix:
            raise
        raise InputError([_prefixed(prefix, p) for p in err.problems]) from None


def _prefixed(prefix: str, p: Any) -> Any:
    return type(p)(f"{prefix}.{p.field}", p.value, p.rule)


def bill_to_pb(data: dict[str, Any]) -> pb.Bill:
    """A JSON bill (as in policies/samples/*.json) as a message; for clients and tests."""
    items = []
    for it in data.get("items", []):
        kw = {k: it[k] for k in ("code", "name", "unit_price", "amount") if k in it}
        kw["category"] = str(it.get("category", ""))
        for k in ("qty_e4", "unit_price_cap", "selfpay_ratio"):
            if it.get(k) is not None:
                kw[k] = it[k]
        items.append(pb.Item(**kw))
    person_id = data.get("person_id") or (data.get("person") or {}).get("id", "")
    return pb.Bill(
        id=str(data.get("id", "")),
        hospital=str(data.get("hospital", "")),
        region=str(data.get("region") or ""),
        person_id=str(person_id),
        hospital_level=str(data.get("hospital_level", "")),
        admission_date=str(data.get("admission_date", "")),
        discharge_date=str(data.get("discharge_date", "")),
        items=items,
    )


def person_dict(p: pb.Person) -> dict[str, Any]:
    return {
        "id": p.id,
        "birth_date": p.birth_date,
        "household": p.household,
        "tags": [
            {"tag": t.tag, "valid_from": t.valid_from or None, "valid_to": t.valid_to or None}
            for t in p.tags
        ],
        "region": p.region or None,
        "township": p.township,
        "village": p.village,
    }


def persons(msgs: Any) -> list[Person]:
    """Registry persons, or one InputError naming every bad field as ``persons[i].<field>``;
    LimitExceeded before anything is parsed when there are too many."""
    check_persons_count(len(msgs))
    out: list[Person] = []
    problems = []
    for i, m in enumerate(msgs):
        try:
            out.append(Person.model_validate(person_dict(m)))
        except ValidationError as err:
            problems += problems_from(err, prefix=f"persons[{i}]")
    if problems:
        raise InputError(problems)
    return out


def person_to_pb(data: dict[str, Any]) -> pb.Person:
    """A registry.json person object as a message."""
    tags = []
    for t in data.get("tags", []) or []:
        if isinstance(t, str):
            tags.append(pb.TagSpan(tag=t))
        else:
            tags.append(
                pb.TagSpan(
                    tag=t.get("tag", ""),
                    valid_from=str(t.get("valid_from") or ""),
                    valid_to=str(t.get("valid_to") or ""),
                )
            )
    return pb.Person(
        id=str(data.get("id", "")),
        birth_date=str(data.get("birth_date", "")),
        household=str(data.get("household", "")),
        tags=tags,
        region=str(data.get("region") or ""),
        township=str(data.get("township") or ""),
        village=str(data.get("village") or ""),
    )


# --------------------------------------------------------------------------- results


def _iso(t: datetime | date | None) -> str:
    return t.isoformat() if t is not None else ""


def account_pb(a: LayerAccount) -> pb.Account:
    return pb.Account(
        deductible_used=a.deductible_used,
        eligible_cum=a.eligible_cum,
        paid=a.paid,
        selfpay_cum=a.selfpay_cum,
    )


def layer_pb(r: LayerResult) -> pb.LayerResult:
    return pb.LayerResult(
        layer_id=r.layer_id, kind=r.kind, fund_code=r.fund_code, settle_at=r.settle_at,
        scope=r.scope, applied=r.applied, reason=r.reason, variant=r.variant,
        variant_label=r.variant_label, base=r.base, deductible=r.deductible,
        eligible=r.eligible, pay=r.pay, relief=r.relief, cap=r.cap,
        account_after=account_pb(r.account), alert=r.alert, name=r.name, name_zh=r.name_zh,
    )  # fmt: skip


def items_pb(a: Allocation) -> list[pb.ItemAllocation]:
    """The per-item allocation (domain.md section 11) as ItemAllocation messages."""
    return [
        pb.ItemAllocation(
            index=it.index, code=it.code, name=it.name, amount=it.amount,
            shares=[
                pb.FundShare(fund_code=x.fund_code, layer_id=x.layer_id, amount=x.amount,
                             settle_at=x.settle_at)
                for x in it.shares
            ],
            selfpay=it.selfpay, window_pay=it.window_pay,
        )
        for it in a.items
    ]  # fmt: skip


def result_pb(s: Settlement, allocation: Allocation | None = None) -> pb.SettlementResult:
    """The result message; ``allocation`` fills ``items`` (empty without it)."""
    return fill_result(pb.SettlementResult(), s, allocation)


def fill_result(
    m: pb.SettlementResult, s: Settlement, allocation: Allocation | None = None
) -> pb.SettlementResult:
    """``result_pb`` written into ``m`` (e.g. ``PreSettleResponse().result``): the nested
    messages made in place, not built apart and copied in (a PreSettle's response)."""
    m.bill_id, m.hospital, m.person_id = s.bill_id, s.hospital, s.person_id
    m.household, m.region, m.policy, m.year = s.household, s.region, s.policy, s.year
    m.discharge_date, m.admission_no = s.discharge_date.isoformat(), s.admission_no
    b, mb = s.buckets, m.buckets
    mb.SetInParent()
    mb.total, mb.out_of_catalogue, mb.over_limit = b.total, b.out_of_catalogue, b.over_limit
    mb.pre_selfpay, mb.in_scope = b.pre_selfpay, b.in_scope
    add_layer, funds = m.layers.add, 0
    for r in s.layers:
        x = add_layer(
            layer_id=r.layer_id, kind=r.kind, fund_code=r.fund_code, settle_at=r.settle_at,
            scope=r.scope, applied=r.applied, reason=r.reason, variant=r.variant,
            variant_label=r.variant_label, base=r.base, deductible=r.deductible,
            eligible=r.eligible, pay=r.pay, relief=r.relief, cap=r.cap, alert=r.alert,
            name=r.name, name_zh=r.name_zh,
        )  # fmt: skip
        a, acc = r.account, x.account_after
        acc.SetInParent()
        acc.deductible_used, acc.eligible_cum = a.deductible_used, a.eligible_cum
        acc.paid, acc.selfpay_cum = a.paid, a.selfpay_cum
        funds += r.pay
        if r.alert:  # Settlement.alerts, in layer order
            m.alerts.add(person_id=s.person_id, household=s.household, layer_id=r.layer_id,
                         year=s.year, selfpay_cum=a.selfpay_cum, relief=r.relief)  # fmt: skip
    m.window_pay, m.net_selfpay, m.funds_total = s.window_pay, s.net_selfpay, funds
    m.admissions_after = s.admissions_after
    add_line = m.explanation.add
    for line in explain(s):
        add_line(en=line.en, zh=line.zh)
    if allocation is not None:
        m.items.extend(items_pb(allocation))
    return m


def record_pb(r: SettlementRecord, allocation: Allocation | None = None) -> pb.SettlementRecord:
    return pb.SettlementRecord(
        settlement_id=r.settlement_id,
        request_id=r.request_id,
        status=r.status,
        created_at=_iso(r.created_at),
        reversed_at=_iso(r.reversed_at),
        reversal_request_id=r.reversal_request_id or "",
        result=result_pb(r.settlement, allocation),
        bill_digest=r.bill_digest,
        registry_version=r.registry_version or 0,
    )


def year_accounts_pb(a: YearAccounts) -> pb.YearAccounts:
    return pb.YearAccounts(
        admissions=a.admissions,
        layers=[
            pb.LayerAccount(layer_id=k, account=account_pb(v))
            for k, v in sorted(a.layers.items())
            if v != LayerAccount()
        ],
    )


def policy_pb(v: PolicyVersion, *, in_force: bool, text: bool) -> pb.PolicyVersion:
    t = v.table
    return pb.PolicyVersion(
        version=v.version,
        region=v.region,
        region_name=t.region.name,
        effective_from=_iso(v.effective_from),
        effective_to=_iso(v.effective_to),
        title=t.title,
        source_name=v.source_name,
        created_at=_iso(v.created_at),
        in_force=in_force,
        layer_ids=[la.id for la in t.layers],
        yaml=v.text if text else "",
        unchanged=v.unchanged,
    )


# --------------------------------------------------------------------------- back to core types
# (for the window client's slip)


def settlement_from_pb(m: pb.SettlementResult) -> Settlement:
    b = m.buckets
    return Settlement(
        bill_id=m.bill_id, hospital=m.hospital, person_id=m.person_id, household=m.household,
        region=m.region, policy=m.policy, year=m.year,
        discharge_date=date.fromisoformat(m.discharge_date),
        admission_no=m.admission_no,
        buckets=Buckets(b.total, b.in_scope, b.pre_selfpay, b.over_limit, b.out_of_catalogue),
        layers=tuple(
            LayerResult(
                r.layer_id, r.kind, r.fund_code, r.settle_at, r.scope, r.reason, r.variant,
                r.variant_label, r.base, r.deductible, r.eligible, r.pay, r.relief, r.cap,
                account_from_pb(r.account_after), r.alert, r.name, r.name_zh,
            )
            for r in m.layers
        ),
        window_pay=m.window_pay, net_selfpay=m.net_selfpay, admissions_after=m.admissions_after,
    )  # fmt: skip


def account_from_pb(a: pb.Account) -> LayerAccount:
    return LayerAccount(a.deductible_used, a.eligible_cum, a.paid, a.selfpay_cum)


def year_accounts_from_pb(m: pb.YearAccounts) -> YearAccounts:
    return YearAccounts({la.layer_id: account_from_pb(la.account) for la in m.layers}, m.admissions)


# --------------------------------------------------------------------------- reconciliation


def _opt(m: Any, name: str) -> int | None:
    return getattr(m, name) if m.HasField(name) else None


def hospital_totals(m: pb.HospitalTotals) -> HospitalTotals:
    """The hospital's 3201 totals; a fund code given twice is refused (naming it)."""
    funds: dict[str, int] | None = None
    if m.HasField("funds"):
        funds = {}
        for i, f in enumerate(m.funds.funds):
            if f.fund_code in funds:
                raise InputError.one(
                    f"theirs.funds.funds[{i}].fund_code", f.fund_code, "is given twice"
                )
            funds[f.fund_code] = f.pay
    return HospitalTotals(
        fixmedins_setl_cnt=_opt(m, "fixmedins_setl_cnt"),
        medfee_sumamt=_opt(m, "medfee_sumamt"),
        fund_pay_sumamt=_opt(m, "fund_pay_sumamt"),
        psn_cash_pay=_opt(m, "psn_cash_pay"),
        funds=funds,
    )


def hospital_lines(m: pb.HospitalList) -> list[HospitalLine]:
    return [
        HospitalLine(
            settlement_id=x.settlement_id,
            reversal=x.reversal,
            medfee_sumamt=_opt(x, "medfee_sumamt"),
            fund_pay_sumamt=_opt(x, "fund_pay_sumamt"),
            psn_cash_pay=_opt(x, "psn_cash_pay"),
        )
        for x in m.settlements
    ]


def _funds_pb(xs: Any) -> list[pb.FundAmount]:
    return [pb.FundAmount(fund_code=k, pay=v) for k, v in sorted(xs.items())]


def totals_pb(t: Totals) -> pb.ReconTotals:
    return pb.ReconTotals(
        fixmedins_setl_cnt=t.fixmedins_setl_cnt,
        medfee_sumamt=t.medfee_sumamt,
        fund_pay_sumamt=t.fund_pay_sumamt,
        psn_cash_pay=t.psn_cash_pay,
        window_funds=_funds_pb(t.funds),
        after_discharge_funds=_funds_pb(t.after_discharge),
    )


def entry_pb(e: Entry) -> pb.ReconEntry:
    return pb.ReconEntry(
        settlement_id=e.settlement_id, reversal=e.reversal, date=_iso(e.day), at=_iso(e.at),
        hospital=e.hospital, medfee_sumamt=e.medfee_sumamt, fund_pay_sumamt=e.fund_pay_sumamt,
        psn_cash_pay=e.psn_cash_pay, window_funds=_funds_pb(e.funds),
        after_discharge_funds=_funds_pb(e.after_discharge),
    )  # fmt: skip


def line_pb(ln: HospitalLine) -> pb.HospitalSettlement:
    m = pb.HospitalSettlement(settlement_id=ln.settlement_id, reversal=ln.reversal)
    for name in ("medfee_sumamt", "fund_pay_sumamt", "psn_cash_pay"):
        v = getattr(ln, name)
        if v is not None:
            setattr(m, name, v)
    return m


def difference_pb(d: Difference) -> pb.TotalDifference:
    return pb.TotalDifference(
        field=d.name, ours=d.ours, theirs=d.theirs, entries=[entry_pb(e) for e in d.entries]
    )


def line_difference_pb(d: LineDifference) -> pb.LineDifference:
    m = pb.LineDifference(
        settlement_id=d.settlement_id, reversal=d.reversal, problem=d.problem, fields=d.fields
    )
    if d.ours is not None:
        m.ours.CopyFrom(entry_pb(d.ours))
    if d.theirs is not None:
        m.theirs.CopyFrom(line_pb(d.theirs))
    return m


def reconciliation_pb(r: Reconciliation) -> pb.ReconcileResponse:
    return pb.ReconcileResponse(
        hospital=r.hospital,
        from_date=_iso(r.start),
        to_date=_iso(r.end),
        totals=totals_pb(r.totals),
        compared=r.compared,
        match=r.match,
        differences=[difference_pb(d) for d in r.differences],
        line_differences=[line_difference_pb(d) for d in r.line_differences],
        entries=[entry_pb(e) for e in r.entries],
    )


def daily_pb(rows: list[DailyFund]) -> pb.DailyTotalsResponse:
    return pb.DailyTotalsResponse(
        rows=[
            pb.DailyFundTotal(
                date=_iso(x.day), hospital=x.hospital, fund_code=x.fund_code,
                settle_at=x.settle_at, count=x.count, pay=x.pay,
            )
            for x in rows
        ]
    )  # fmt: skip


def _fen(where: str, v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError(f"{where}: {v!r} is not an integer amount in fen")
    return v


def theirs_from_json(data: Any) -> tuple[pb.HospitalTotals | None, pb.HospitalList | None]:
    """The hospital's side from a JSON object (``onestop bureau reconcile --theirs``):
    ``{"totals": {"fixmedins_setl_cnt": n, "medfee_sumamt": fen, "fund_pay_sumamt": fen,
    "psn_cash_pay": fen, "funds": {"390100": fen, ...}}, "settlements": [{"settlement_id"
    (or "setl_id"), "reversal" (or "refd_setl_flag"), "medfee_sumamt", "fund_pay_sumamt",
    "psn_cash_pay" (or "cash_payamt")}, ...]}``; either part may be left out. Amounts are
    integer fen, a reversal line's negative. ValueError naming the place of a bad value."""
    if not isinstance(data, dict):
        raise ValueError("not a JSON object with 'totals' and/or 'settlements'")
    unknown = set(data) - {"totals", "settlements"}
    if unknown:
        raise ValueError(f"unknown key(s) {sorted(unknown)}; use 'totals' and 'settlements'")
    totals = None
    if "totals" in data:
        t = data["totals"]
        if not isinstance(t, dict):
            raise ValueError("totals: not an object")
        totals = pb.HospitalTotals()
        for k, v in t.items():
            if k == "funds":
                if not isinstance(v, dict):
                    raise ValueError("totals.funds: not an object {fund_code: fen}")
                totals.funds.SetInParent()
                for code, pay in v.items():
                    totals.funds.funds.add(
                        fund_code=str(code), pay=_fen(f"totals.funds.{code}", pay)
                    )
            elif k in ("fixmedins_setl_cnt", "medfee_sumamt", "fund_pay_sumamt", "psn_cash_pay"):
                setattr(totals, k, _fen(f"totals.{k}", v))
            else:
                raise ValueError(f"totals.{k}: unknown total")
    lines = None
    if "settlements" in data:
        xs = data["settlements"]
        if not isinstance(xs, list):
            raise ValueError("settlements: not a list")
        lines = pb.HospitalList()
        alias = {"setl_id": "settlement_id", "refd_setl_flag": "reversal",
                 "cash_payamt": "psn_cash_pay"}  # fmt: skip
        for i, x in enumerate(xs):
            if not isinstance(x, dict):
                raise ValueError(f"settlements[{i}]: not an object")
            line = lines.settlements.add()
            for k, v in x.items():
                k = alias.get(k, k)
                where = f"settlements[{i}].{k}"
                if k == "settlement_id":
                    line.settlement_id = str(v)
                elif k == "reversal":
                    line.reversal = v in (True, 1, "1", "true", "yes")
                elif k in ("medfee_sumamt", "fund_pay_sumamt", "psn_cash_pay"):
                    setattr(line, k, _fen(where, v))
                else:
                    raise ValueError(f"{where}: unknown field")
    return totals, lines
