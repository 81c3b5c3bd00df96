"""The shape of the figures of ``onestop simulate`` (schema ``onestop.simulate/1``,
adapters/simulate/FIGURES.md), checked before a report is drawn from them: the first place where a
document differs is named in one line (``figures.funds.2.base.pay: expected an integer``).
"""

from __future__ import annotations

import json
import re
from typing import Any

SCHEMA = "onestop.simulate/1"
BREAKDOWNS = ("tag", "hospital_level", "age_band", "hospital")
MONEY_KEYS = ("total", "fund_pay", "window_pay", "net_selfpay", "relief")


class FiguresError(ValueError):
    """The figures do not have the shape of ``onestop.simulate/1`` (the message names where)."""


# a leaf is a type name: int (not bool), str, bool, dec (a decimal string: "5.12", "-0.50", "10"),
# pct (dec or null); [x]: a list of x

_RUN = {"bills": "int", "persons": "int", "pay": "int"}
_TOTALS = dict.fromkeys(MONEY_KEYS, "int")
_BREAKDOWN_ROW = {
    "key": "str",
    "bills": "int",
    "persons": "int",
    "base_fund_pay": "int",
    "candidate_fund_pay": "int",
    "change": "int",
    "more": "int",
    "less": "int",
    "base_above_10": "int",
    "candidate_above_10": "int",
}
_CASE = {
    "hospital": "str",
    "bill_id": "str",
    "person_id": "str",
    "base": "int",
    "candidate": "int",
    "change": "int",
    "reasons": ["str"],
}
_SHARE = {
    "deciles": ["dec"],
    "histogram": [{"lo_pct": "dec", "hi_pct": "dec", "bills": "int"}],
    "above": [{"threshold_pct": "dec", "bills": "int", "persons": "int"}],
}
_ALERTS = {"alerts": "int", "households": "int", "persons": "int", "relief": "int"}
SHAPE: dict[str, Any] = {
    "schema": "str",
    "title": "str",
    "generated_at": "str",
    "inputs": {
        "bills_file": "str",
        "items_file": "str",
        "policy_dir": "str",
        "candidate_files": ["str"],
        "candidate_regions": ["str"],
        "as_if_effective": "bool",
        "bills": "int",
        "items": "int",
        "persons": "int",
        "rejected": {"base": "int", "candidate": "int"},
    },
    "totals": {"base": _TOTALS, "candidate": _TOTALS},
    "funds": [
        {
            "region": "str",
            "fund_code": "str",
            "layer_id": "str",
            "layer_name": "str",
            "layer_name_zh": "str",
            "kind": "str",
            "base": _RUN,
            "candidate": _RUN,
            "change": "int",
            "change_pct": "pct",
        }
    ],
    "fund_totals": [
        {
            "fund_code": "str",
            "name": "str",
            "name_zh": "str",
            "base": _RUN,
            "candidate": _RUN,
            "change": "int",
            "change_pct": "pct",
        }
    ],
    "patients": {
        "measure": "str",
        "more": {"bills": "int", "persons": "int", "sum": "int"},
        "less": {"bills": "int", "persons": "int", "sum": "int"},
        "same": {"bills": "int"},
        "change_histogram": [{"lo": "int", "hi": "int", "bills": "int"}],
        "change_deciles": ["int"],
        "largest_more": [_CASE],
        "largest_less": [_CASE],
    },
    "share": {"base": _SHARE, "candidate": _SHARE},
    "breakdowns": {name: [_BREAKDOWN_ROW] for name in BREAKDOWNS},
    "alerts": {
        "base": _ALERTS,
        "candidate": _ALERTS,
        "by_layer": [
            {
                "region": "str",
                "layer_id": "str",
                "base_alerts": "int",
                "candidate_alerts": "int",
                "base_relief": "int",
                "candidate_relief": "int",
            }
        ],
    },
    "budgets": [
        {
            "region": "str",
            "fund_code": "str",
            "year": "int",
            "budget": "int",
            "base_used": "int",
            "candidate_used": "int",
            "base_left": "int",
            "candidate_left": "int",
            "base_bound_bills": "int",
            "candidate_bound_bills": "int",
        }
    ],
    "changed": {
        "bills": "int",
        "file": "str",
        "reasons": [{"reason": "str", "bills": "int"}],
        "sample": [
            {
                "hospital": "str",
                "bill_id": "str",
                "person_id": "str",
                "base_window_pay": "int",
                "candidate_window_pay": "int",
                "change": "int",
                "reasons": ["str"],
            }
        ],
    },
}
_DECIMAL = re.compile(r"-?\d+(\.\d+)?")
_NULLABLE = {"layer_name_zh", "name_zh"}  # a layer or fund may have no Chinese name


def _check(value: Any, shape: Any, where: str) -> None:
    if isinstance(shape, dict):
        if not isinstance(value, dict):
            raise FiguresError(f"{where}: expected an object, got {json.dumps(value)[:60]}")
        for key, sub in shape.items():
            if key not in value:
                raise FiguresError(f"{where}.{key}: missing")
            if value[key] is None and key in _NULLABLE:
                continue
            _check(value[key], sub, f"{where}.{key}")
        return
    if isinstance(shape, list):
        if not isinstance(value, list):
            raise FiguresError(f"{where}: expected a list, got {json.dumps(value)[:60]}")
        for i, item in enumerate(value):
            _check(item, shape[0], f"{where}.{i}")
        return
    ok = {
        "int": isinstance(value, int) and not isinstance(value, bool),
        "str": isinstance(value, str),
        "bool": isinstance(value, bool),
        "dec": isinstance(value, str) and _DECIMAL.fullmatch(value) is not None,
        "pct": value is None or (isinstance(value, str) and _DECIMAL.fullmatch(value) is not None),
    }[shape]
    if not ok:
        want = {
            "int": "an integer",
            "str": "a string",
            "bool": "true or false",
            "dec": 'a percent string like "5.12"',
            "pct": 'a percent string like "5.12" or null',
        }[shape]
        raise FiguresError(f"{where}: expected {want}, got {json.dumps(value)[:60]}")


def check_figures(doc: Any) -> None:
    """FiguresError naming the first place where ``doc`` is not ``onestop.simulate/1``."""
    if not isinstance(doc, dict):
        raise FiguresError("figures: expected a JSON object")
    if doc.get("schema") != SCHEMA:
        raise FiguresError(f"schema: expected {SCHEMA!r}, got {json.dumps(doc.get('schema'))}")
    _check(doc, SHAPE, "figures")
