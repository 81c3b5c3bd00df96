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
from engine.bill import BillRequest, Person, check_items_count, parse_bill_request
from engine.errors import InputError
from engine.explain import explain
from engine.result import Buckets, LayerResult, Settlement
from engine.service.ports import PolicyVersion, SettlementRecord
from engine.service.usecases import check_persons_count
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


def result_pb(s: Settlement) -> pb.SettlementResult:
    b = s.buckets
    return pb.SettlementResult(
        bill_id=s.bill_id, hospital=s.hospital, person_id=s.person_id, household=s.household,
        region=s.region, policy=s.policy, year=s.year,
        discharge_date=s.discharge_date.isoformat(),
        admission_no=s.admission_no,
        buckets=pb.Buckets(
            total=b.total, out_of_catalogue=b.out_of_catalogue, over_limit=b.over_limit,
            pre_selfpay=b.pre_selfpay, in_scope=b.in_scope,
        ),
        layers=[layer_pb(r) for r in s.layers],
        window_pay=s.window_pay, net_selfpay=s.net_selfpay, funds_total=s.funds_total,
        alerts=[
            pb.Alert(person_id=a.person, household=a.household, layer_id=a.layer, year=a.year,
                     selfpay_cum=a.selfpay_cum, relief=a.relief)
            for a in s.alerts
        ],
        admissions_after=s.admissions_after,
        explanation=[pb.ExplanationLine(en=x.en, zh=x.zh) for x in explain(s)],
    )  # fmt: skip


def record_pb(r: SettlementRecord) -> pb.SettlementRecord:
    return pb.SettlementRecord(
        settlement_id=r.settlement_id,
        request_id=r.request_id,
        status=r.status,
        created_at=_iso(r.created_at),
        reversed_at=_iso(r.reversed_at),
        reversal_request_id=r.reversal_request_id or "",
        result=result_pb(r.settlement),
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
