"""FHIR R4 Claim in, ClaimResponse out, over a running gateway; every resource validated twice:
with fhir.resources' R4B model classes (fhir.resources 8 offers R5 and R4B, no plain R4) and
with fhirclient's models of FHIR **R4 4.0.1** in strict mode (``r4``)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fhir.resources.R4B.claim import Claim
from fhir.resources.R4B.claimresponse import ClaimResponse
from fhir.resources.R4B.operationoutcome import OperationOutcome

from adapters.fhir.claim import EXT_LEVEL, EXT_REGION
from adapters.grpc.testing import YUBEI_PAYS, YUBEI_WINDOW, served
from adapters.http.money import dumps
from adapters.http.serve import running

FJ = {"content-type": "application/fhir+json"}


def r4(resource: dict[str, Any]) -> Any:
    """``resource`` parsed strictly by fhirclient's FHIR R4 (4.0.1) model of its type (unknown
    elements, wrong types, missing required elements: FHIRValidationError), and written back
    (``as_json`` checks the required elements again)."""
    import importlib
    import json

    from fhirclient.models.fhirabstractbase import FHIRValidationError

    rt = resource["resourceType"]
    mod = importlib.import_module(f"fhirclient.models.{rt.lower()}")
    plain = json.loads(dumps(resource))  # fhirclient types FHIR decimals as float
    try:
        obj = getattr(mod, rt)(plain, strict=True)
        obj.as_json()
    except FHIRValidationError as e:
        raise AssertionError(f"not valid FHIR R4 {rt}: {e}") from e
    return obj


# the module's tests on one xdist worker (--dist loadgroup): its module-scoped fixtures
# are made once, not once on each worker that runs one of its tests
pytestmark = pytest.mark.xdist_group("fhir")


@pytest.fixture(scope="module")
def http() -> Iterator[tuple[Any, httpx.Client]]:
    with (
        served() as (app, _srv, _grpc),
        running(app) as srv,
        httpx.Client(base_url=srv.url, timeout=30) as c,
    ):
        yield app, c


def claim(cid: str, bill_id: str = "yubei-fhir-1") -> dict[str, Any]:
    def item(seq: int, code: str, cat: str, amount: str) -> dict[str, Any]:
        return {"sequence": seq,
                "category": {"coding": [{"code": cat}]},
                "productOrService": {"coding": [{"code": code, "display": code}]},
                "quantity": {"value": 1},
                "unitPrice": {"value": Decimal(amount), "currency": "CNY"},
                "net": {"value": Decimal(amount), "currency": "CNY"}}  # fmt: skip

    return {
        "resourceType": "Claim",
        "id": cid,
        "identifier": [{"value": bill_id}],
        "extension": [{"url": EXT_LEVEL, "valueString": "level2"},
                      {"url": EXT_REGION, "valueString": "500112"}],
        "status": "active",
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/claim-type",
                             "code": "institutional"}]},
        "use": "claim",
        "patient": {"reference": "Patient/jiang"},
        "created": "2023-05-20",
        "provider": {"reference": "Organization/H500112001"},
        "priority": {"coding": [{"code": "normal"}]},
        "insurance": [{"sequence": 1, "focal": True, "coverage": {"display": "resident"}}],
        "billablePeriod": {"start": "2023-05-01", "end": "2023-05-20"},
        "item": [item(1, "A1", "A", "50000.00"), item(2, "C1", "C", "2000.00")],
    }  # fmt: skip


def post(c: httpx.Client, path: str, body: dict[str, Any]) -> httpx.Response:
    return c.post(path, content=dumps(body), headers=FJ)


def _amount(cr: dict[str, Any], code: str) -> Decimal:
    (t,) = [t for t in cr["total"] if t["category"]["coding"][0]["code"] == code]
    return t["amount"]["value"]


def test_claim_input_is_valid_fhir():
    Claim.model_validate(claim("c0"))
    r4(claim("c0"))


def test_claim_with_the_item_extensions_is_valid_r4():
    from adapters.fhir.claim import EXT_CAP, EXT_SELFPAY

    c = claim("c-ext")
    c["item"][0]["extension"] = [
        {"url": EXT_CAP, "valueMoney": {"value": Decimal("60000.00"), "currency": "CNY"}},
        {"url": EXT_SELFPAY, "valueDecimal": Decimal("0.1")},
    ]
    Claim.model_validate(c)
    r4(c)


def test_capability_statement(http):
    from fhir.resources.R4B.capabilitystatement import CapabilityStatement

    _, c = http
    r = c.get("/fhir/metadata")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/fhir+json")
    cs = r.json()
    CapabilityStatement.model_validate(cs)
    parsed = r4(cs)
    assert parsed.fhirVersion == "4.0.1"
    (claim_res,) = cs["rest"][0]["resource"]
    assert claim_res["type"] == "Claim"
    assert {o["name"] for o in claim_res["operation"]} == {"submit", "predetermine"}
    # every operation it lists is served
    ok = post(c, "/fhir/Claim/$predetermine", claim("c-cap", "yubei-fhir-cap"))
    assert ok.status_code == 200, ok.text


def test_r4_check_can_fail():
    bad = claim("c0")
    bad["nosuch"] = 1
    with pytest.raises(AssertionError, match="R4"):
        r4(bad)
    del bad["nosuch"], bad["patient"]
    with pytest.raises(AssertionError, match="patient"):
        r4(bad)


@pytest.mark.parametrize(("path", "use"), [("/fhir/Claim/$predetermine", "predetermination"),
                                           ("/fhir/Claim/$submit", "claim")])  # fmt: skip
def test_claim_response_valid_and_totals_equal_settlement(http, path, use):
    app, c = http
    r = post(c, path, claim(f"c-{use}", f"yubei-fhir-{use}"))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/fhir+json")
    cr = r.json(parse_float=Decimal)
    ClaimResponse.model_validate(cr)
    r4(cr)
    assert cr["use"] == use
    assert _amount(cr, "submitted") == Decimal("52000.00")
    assert _amount(cr, "benefit") == Decimal(sum(YUBEI_PAYS.values())) / 100
    assert _amount(cr, "memberliability") == Decimal(YUBEI_WINDOW) / 100
    assert cr["payment"]["amount"]["value"] == Decimal(52000_00 - YUBEI_WINDOW) / 100
    # per item, per fund: the items' benefits add up to each fund's pay
    per_fund: dict[str, Decimal] = {}
    for it in cr["item"]:
        adj = {a["category"]["coding"][0]["code"]: a for a in it["adjudication"]}
        for a in it["adjudication"]:
            if a["category"]["coding"][0]["code"] == "benefit":
                code = a["reason"]["coding"][0]["code"]
                per_fund[code] = per_fund.get(code, Decimal(0)) + a["amount"]["value"]
        assert adj["submitted"]["amount"]["value"] > 0
    assert per_fund == {"390100": Decimal("34790.00"), "610100": Decimal("10647.00"),
                        "610200": Decimal("937.80")}  # fmt: skip
    langs = {n["language"]["coding"][0]["code"] for n in cr["processNote"]}
    assert langs == {"en", "zh-CN"}
    if use == "claim":
        rec = app.service.get(request_id="c-claim")
        assert cr["preAuthRef"] == rec.settlement_id
        again = post(c, path, claim("c-claim", "yubei-fhir-claim")).json(parse_float=Decimal)
        assert again == cr  # same Claim.id: the same settlement
        other = post(c, path, claim("c-claim", "yubei-fhir-other"))
        assert other.status_code == 409
        OperationOutcome.model_validate(other.json())
        r4(other.json())


def test_bad_claim_answered_with_operation_outcome(http):
    _, c = http
    bad = claim("c-bad")
    bad["item"][0]["net"]["value"] = Decimal("1.001")
    r = post(c, "/fhir/Claim/$predetermine", bad)
    assert r.status_code == 400
    oo = r.json()
    OperationOutcome.model_validate(oo)
    r4(oo)
    assert oo["issue"][0]["expression"] == ["Claim.item[0].net.value"]
    bad = claim("c-bad2")
    bad["item"][1]["category"]["coding"][0]["code"] = "Z"
    oo = post(c, "/fhir/Claim/$predetermine", bad).json()
    r4(oo)
    assert oo["issue"][0]["expression"] == ["Claim.item[1].category.coding[0].code"]


def test_the_readme_example_claim(tmp_path):
    """adapters/fhir/example/claim-longzhou.json, as README posts it: valid R4, and the
    gateway over the sample tables and registry answers the Longzhou figures of README's 2303
    (basic 4,889.25, window 2,520.75) as a ClaimResponse."""
    import json
    from pathlib import Path

    from adapters.bootstrap import build

    root = Path(__file__).resolve().parents[1]
    example = json.loads((root / "adapters/fhir/example/claim-longzhou.json").read_text("utf-8"))
    Claim.model_validate(example)
    r4(example)
    app = build("memory://", policies=root / "policies",
                registry=root / "policies/samples/registry.json")  # fmt: skip
    try:
        with running(app) as srv, httpx.Client(base_url=srv.url, timeout=60) as c:
            cr = post(c, "/fhir/Claim/$predetermine", example).json(parse_float=Decimal)
    finally:
        app.close()
    assert cr["resourceType"] == "ClaimResponse", cr
    ClaimResponse.model_validate(cr)
    assert _amount(cr, "benefit") == Decimal("4889.25")
    assert _amount(cr, "memberliability") == Decimal("2520.75")
    assert cr["payment"]["amount"]["value"] == Decimal("4889.25")


def test_a_scope_refusal_names_the_claim_path():
    """A cashier's Claim of another hospital: the OperationOutcome names Claim.provider.reference,
    not the engine's bill.hospital."""
    from adapters.auth.principals import PermissionDenied
    from adapters.fhir.claim import fhir_path
    from adapters.http.nhsa import renamed

    named = r"^Claim\.provider\.reference: hospital 'H2'"
    with pytest.raises(PermissionDenied, match=named), renamed(fhir_path):
        raise PermissionDenied("bill.hospital: hospital 'H2' is not yours")
    with pytest.raises(PermissionDenied, match=r"^outside your role or scope$"), renamed(fhir_path):
        raise PermissionDenied()
