"""A settlement as a FHIR R4 ``ClaimResponse`` (domain.md section 10; per-item figures from the
allocation of section 11, ``engine.allocation.allocate``).

- ``use``: ``predetermination`` (PreSettle, 2303) or ``claim`` (Settle, 2304); ``outcome``
  ``complete``; ``preAuthRef`` / ``identifier``: the settlement id (Settle only).
- ``item[i].adjudication``: ``submitted`` (the item's amount), ``eligible`` (in scope),
  ``copay`` (category B first self-pay), ``noncovered`` (out of catalogue), one ``benefit``
  per paying fund with ``reason`` = the fund code (system FUND_SYSTEM), and
  ``memberliability`` (what the patient pays for the item at the window).
  Over-limit amounts have no FHIR category; they are in ``memberliability``.
- ``total``: the same categories over the bill (``benefit`` = every fund's pay, after-discharge
  funds included; per fund in ``addItem``-free form: the item benefits add up to it).
- ``payment.amount``: what the funds pay at the window (NHSA ``fund_pay_sumamt`` =
  total - window_pay); after-discharge funds are claimed later and said in ``processNote``.
- ``processNote``: the explanation (``engine.explain``) in English and Chinese, one note per
  line and language (``language`` en / zh-CN).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from adapters.http.money import fen_to_yuan
from engine.allocation import Allocation
from engine.bill import Bill
from engine.explain import explain
from engine.policy.model import PolicyTable
from engine.reference import split_item
from engine.result import Settlement

ADJ = "http://terminology.hl7.org/CodeSystem/adjudication"
FUND_SYSTEM = "https://onestop.example/fhir/CodeSystem/nhsa-fund-pay-type"
CLAIM_TYPE = "http://terminology.hl7.org/CodeSystem/claim-type"
LANG = "urn:ietf:bcp:47"


def money(fen: int) -> dict[str, Any]:
    return {"value": fen_to_yuan(fen), "currency": "CNY"}


def _cat(code: str) -> dict[str, Any]:
    return {"coding": [{"system": ADJ, "code": code}]}


def _adj(code: str, fen: int, reason: tuple[str, str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"category": _cat(code), "amount": money(fen)}
    if reason is not None:
        out["reason"] = {"coding": [{"system": FUND_SYSTEM, "code": reason[0],
                                     "display": reason[1]}]}  # fmt: skip
    return out


def claim_response(
    s: Settlement,
    bill: Bill,
    table: PolicyTable,
    alloc: Allocation,
    use: str,
    settlement_id: str = "",
    created: datetime | None = None,
) -> dict[str, Any]:
    names = {r.layer_id: r.name_zh or r.name or r.layer_id for r in s.layers}
    items = []
    for it, a in zip(bill.items, alloc.items, strict=True):
        parts = split_item(it, table.b_selfpay_ratio)
        adj = [_adj("submitted", it.amount), _adj("eligible", parts["in_scope"]),
               _adj("copay", parts["pre_selfpay"]), _adj("noncovered", parts["out_of_catalogue"])]  # fmt: skip
        adj += [_adj("benefit", sh.amount, (sh.fund_code, names.get(sh.layer_id, sh.layer_id)))
                for sh in a.shares if sh.amount]  # fmt: skip
        adj.append(_adj("memberliability", a.window_pay))
        items.append({"itemSequence": a.index + 1, "adjudication": adj})
    b = s.buckets
    notes = []
    for i, line in enumerate(explain(s, table)):
        notes.append(
            {
                "number": 2 * i + 1,
                "type": "display",
                "text": line.en,
                "language": {"coding": [{"system": LANG, "code": "en"}]},
            }
        )
        notes.append({"number": 2 * i + 2, "type": "display", "text": line.zh,
                      "language": {"coding": [{"system": LANG, "code": "zh-CN"}]}})  # fmt: skip
    out: dict[str, Any] = {
        "resourceType": "ClaimResponse",
        "status": "active",
        "type": {"coding": [{"system": CLAIM_TYPE, "code": "institutional"}]},
        "use": use,
        "patient": {"reference": f"Patient/{s.person_id}"},
        "created": (created or datetime.now(UTC)).isoformat(timespec="seconds"),
        "insurer": {"display": f"onestop {s.region} ({s.policy})"},
        "requestor": {"reference": f"Organization/{s.hospital}"},
        "outcome": "complete",
        "disposition": "settled" if use == "claim" else "trial settlement (nothing was paid)",
        "item": items,
        "total": [
            {"category": _cat("submitted"), "amount": money(b.total)},
            {"category": _cat("eligible"), "amount": money(b.in_scope)},
            {"category": _cat("copay"), "amount": money(b.pre_selfpay)},
            {"category": _cat("noncovered"), "amount": money(b.out_of_catalogue)},
            {"category": _cat("benefit"), "amount": money(s.funds_total)},
            {"category": _cat("memberliability"), "amount": money(s.window_pay)},
        ],
        "payment": {
            "type": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/ex-paymenttype",
                        "code": "complete",
                    }
                ]
            },
            "amount": money(b.total - s.window_pay),
        },
        "processNote": notes,
    }
    if settlement_id:
        out["identifier"] = [{"system": "https://onestop.example/fhir/settlement-id",
                              "value": settlement_id}]  # fmt: skip
        out["preAuthRef"] = settlement_id
        out["id"] = settlement_id
    return out


def operation_outcome(code: str, message: str, fields: list[str]) -> dict[str, Any]:
    issue: dict[str, Any] = {"severity": "error", "code": code, "diagnostics": message}
    if fields:
        issue["expression"] = fields
    return {"resourceType": "OperationOutcome", "issue": [issue]}


FHIR_VERSION = "4.0.1"  # FHIR R4; the resources are also valid R4B (tests check both)
SUBMIT = "http://hl7.org/fhir/OperationDefinition/Claim-submit"
PREDETERMINE = "https://onestop.example/fhir/OperationDefinition/Claim-predetermine"


def capability_statement(at: datetime | None = None) -> dict[str, Any]:
    """What ``GET /fhir/metadata`` answers: a FHIR R4 server with two operations on Claim."""
    from engine import __version__

    statement = {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": (at or datetime.now(UTC)).date().isoformat(),
        "publisher": "onestop",
        "kind": "instance",
        "software": {"name": "onestop", "version": __version__},
        "implementation": {"description": "onestop discharge settlement: FHIR Claim in, "
                           "ClaimResponse out (CNY yuan)"},
        "fhirVersion": FHIR_VERSION,
        "format": ["application/fhir+json", "json"],
        "rest": [{
            "mode": "server",
            "documentation": "Refusals are an OperationOutcome naming the Claim paths at fault.",
            "resource": [{
                "type": "Claim",
                "operation": [
                    {"name": "submit", "definition": SUBMIT,
                     "documentation": "POST /fhir/Claim/$submit: settle (2304); the Claim's id "
                                      "is the idempotency key; a ClaimResponse use=claim"},
                    {"name": "predetermine", "definition": PREDETERMINE,
                     "documentation": "POST /fhir/Claim/$predetermine: trial settlement "
                                      "(2303), nothing paid; a ClaimResponse "
                                      "use=predetermination"},
                ],
            }],
        }],
    }  # fmt: skip
    return statement
