"""A FHIR R4 ``Claim`` as the engine's bill request.

| Claim                                         | bill                 |
|-----------------------------------------------|----------------------|
| identifier[0].value (else id)                 | id                   |
| provider.reference ``Organization/<code>``    | hospital             |
| patient.reference ``Patient/<id>``            | person_id            |
| billablePeriod.start / .end                   | admission / discharge|
| extension hospital-level (valueString)        | hospital_level       |
| extension region (valueString), optional      | region               |
| item[i].productOrService.coding[0].code/display | items[i].code/name |
| item[i].category.coding[0].code (A/B/C, 01/02/03) | items[i].category  |
| item[i].quantity.value (to 0.0001)            | items[i].qty_e4      |
| item[i].unitPrice.value (yuan)                | items[i].unit_price  |
| item[i].net.value (yuan)                      | items[i].amount      |
| item[i] extension unit-price-cap (valueMoney) | items[i].unit_price_cap |
| item[i] extension selfpay-ratio (valueDecimal 0..1) | items[i].selfpay_ratio |

Amounts are CNY yuan, parsed exactly (``adapters.http.money``). Errors name the Claim path.
"""

from __future__ import annotations

from typing import Any

from adapters.http.money import QTY_HINT, RATIO_HINT, scaled, yuan_to_fen
from engine.bill import BillRequest, check_items_count, parse_bill_request
from engine.errors import NO_VALUE, InputError

BASE = "https://onestop.example/fhir/StructureDefinition/"
EXT_LEVEL, EXT_REGION = BASE + "hospital-level", BASE + "region"
EXT_CAP, EXT_SELFPAY = BASE + "unit-price-cap", BASE + "selfpay-ratio"

_ITEM = {"code": "productOrService.coding[0].code", "name": "productOrService.coding[0].display",
         "category": "category.coding[0].code", "qty_e4": "quantity.value",
         "unit_price": "unitPrice.value", "amount": "net.value",
         "unit_price_cap": f"extension[{EXT_CAP}]", "selfpay_ratio": f"extension[{EXT_SELFPAY}]"}  # fmt: skip
_BILL = {"id": "Claim.identifier[0].value", "hospital": "Claim.provider.reference",
         "person_id": "Claim.patient.reference", "admission_date": "Claim.billablePeriod.start",
         "discharge_date": "Claim.billablePeriod.end", "region": f"Claim.extension[{EXT_REGION}]",
         "hospital_level": f"Claim.extension[{EXT_LEVEL}]", "items": "Claim.item"}  # fmt: skip


def fhir_path(field: str) -> str:
    if field.startswith("items["):
        head, _, rest = field.partition("].")
        return f"Claim.item[{head[6:]}].{_ITEM.get(rest, rest)}" if rest else field
    return _BILL.get(field, field)


def _get(d: Any, *path: str | int) -> Any:
    for p in path:
        if isinstance(p, int):
            d = d[p] if isinstance(d, list) and len(d) > p else None
        else:
            d = d.get(p) if isinstance(d, dict) else None
    return d


def _ext(d: dict[str, Any], url: str) -> dict[str, Any] | None:
    for e in d.get("extension") or ():
        if isinstance(e, dict) and e.get("url") == url:
            return e
    return None


def _ref(claim: dict[str, Any], key: str, kind: str) -> str:
    ref = _get(claim, key, "reference")
    if not isinstance(ref, str) or not ref.startswith(kind + "/"):
        raise InputError.one(f"Claim.{key}.reference", ref if ref else NO_VALUE,
                             f"is not a reference {kind}/<id>")  # fmt: skip
    return ref[len(kind) + 1 :]


def bill_request(claim: Any) -> BillRequest:
    if not isinstance(claim, dict) or claim.get("resourceType") != "Claim":
        raise InputError.one("resourceType", _get(claim, "resourceType") or NO_VALUE,
                             "is not Claim; send a FHIR R4 Claim")  # fmt: skip
    items = claim.get("item")
    if not isinstance(items, list) or not items:
        raise InputError.one("Claim.item", NO_VALUE, "is missing or empty")
    check_items_count(len(items), "Claim.item")
    level = _ext(claim, EXT_LEVEL)
    region = _ext(claim, EXT_REGION)
    raw: dict[str, Any] = {
        "id": _get(claim, "identifier", 0, "value") or claim.get("id") or "",
        "hospital": _ref(claim, "provider", "Organization"),
        "person_id": _ref(claim, "patient", "Patient"),
        "hospital_level": (level or {}).get("valueString", ""),
        "admission_date": str(_get(claim, "billablePeriod", "start") or "")[:10],
        "discharge_date": str(_get(claim, "billablePeriod", "end") or "")[:10],
        "items": [],
    }
    if region:
        raw["region"] = region.get("valueString", "")
    for i, it in enumerate(items):
        w = f"Claim.item[{i}]."
        if not isinstance(it, dict):
            raise InputError.one(f"Claim.item[{i}]", NO_VALUE, "is not an object")
        item: dict[str, Any] = {
            "code": _get(it, "productOrService", "coding", 0, "code") or "",
            "category": _get(it, "category", "coding", 0, "code") or "",
            "amount": yuan_to_fen(w + "net.value", _get(it, "net", "value")),
        }
        if _get(it, "productOrService", "coding", 0, "display"):
            item["name"] = _get(it, "productOrService", "coding", 0, "display")
        if _get(it, "quantity", "value") is not None:
            item["qty_e4"] = scaled(w + "quantity.value", it["quantity"]["value"], 4, "to 0.0001",
                                    QTY_HINT)  # fmt: skip
        if _get(it, "unitPrice", "value") is not None:
            item["unit_price"] = yuan_to_fen(w + "unitPrice.value", it["unitPrice"]["value"])
        cap = _ext(it, EXT_CAP)
        if cap is not None:
            item["unit_price_cap"] = yuan_to_fen(w + "extension[unit-price-cap]",
                                                 _get(cap, "valueMoney", "value"))  # fmt: skip
        sp = _ext(it, EXT_SELFPAY)
        if sp is not None:
            item["selfpay_ratio"] = scaled(w + "extension[selfpay-ratio]",
                                           sp.get("valueDecimal"), 4, "a ratio 0..1 to 0.0001",
                                           RATIO_HINT)  # fmt: skip
        raw["items"].append(item)
    from adapters.http.nhsa import renamed

    with renamed(fhir_path):
        return parse_bill_request(raw)
