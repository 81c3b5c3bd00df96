"""The CSV tables of the simulate report: one file per table of the figures, UTF-8 with a BOM
(Excel then reads the Chinese right), one header row, money as two columns: ``*_yuan`` (exact,
two decimals, no separators) and ``*_fen`` (the integer).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

from adapters.simulate.schema import BREAKDOWNS


def plain_yuan(fen: int) -> str:
    """12345 -> '123.45', -5 -> '-0.05' (exact; no separators, for spreadsheets)."""
    sign = "-" if fen < 0 else ""
    fen = abs(fen)
    return f"{sign}{fen // 100}.{fen % 100:02d}"


def _money(name: str, fen: int) -> dict[str, Any]:
    return {f"{name}_yuan": plain_yuan(fen), f"{name}_fen": fen}


def _runs(row: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for run in ("base", "candidate"):
        out[f"{run}_bills"] = row[run]["bills"]
        out[f"{run}_persons"] = row[run]["persons"]
        out.update(_money(f"{run}_pay", row[run]["pay"]))
    out.update(_money("change", row["change"]))
    out["change_pct"] = row["change_pct"]
    return out


def _funds(doc: dict[str, Any]) -> list[dict[str, Any]]:
    keys = ("region", "fund_code", "layer_id", "layer_name_zh", "layer_name", "kind")
    return [{**{k: r[k] for k in keys}, **_runs(r)} for r in doc["funds"]]


def _fund_totals(doc: dict[str, Any]) -> list[dict[str, Any]]:
    keys = ("fund_code", "name_zh", "name")
    return [{**{k: r[k] for k in keys}, **_runs(r)} for r in doc["fund_totals"]]


def _largest(doc: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for direction in ("more", "less"):
        for i, r in enumerate(doc["patients"][f"largest_{direction}"], 1):
            out.append(
                {
                    "direction": direction,
                    "rank": i,
                    "hospital": r["hospital"],
                    "bill_id": r["bill_id"],
                    "person_id": r["person_id"],
                    **_money("base", r["base"]),
                    **_money("candidate", r["candidate"]),
                    **_money("change", r["change"]),
                    "reasons": "; ".join(r["reasons"]),
                }
            )
    return out


def _share(doc: dict[str, Any]) -> list[dict[str, Any]]:
    blank = dict.fromkeys(
        ("point", "lo_pct", "hi_pct", "threshold_pct", "pct", "bills", "persons"), ""
    )
    out = []
    for run in ("base", "candidate"):
        sh = doc["share"][run]
        for i, v in enumerate(sh["deciles"], 1):
            out.append({"run": run, "section": "decile", **blank, "point": f"p{i * 10}", "pct": v})
        for h in sh["histogram"]:
            out.append(
                {
                    "run": run,
                    "section": "histogram",
                    **blank,
                    "lo_pct": h["lo_pct"],
                    "hi_pct": h["hi_pct"],
                    "bills": h["bills"],
                }
            )
        for a in sh["above"]:
            out.append(
                {
                    "run": run,
                    "section": "above",
                    **blank,
                    "threshold_pct": a["threshold_pct"],
                    "bills": a["bills"],
                    "persons": a["persons"],
                }
            )
    return out


def _breakdown(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "key": r["key"],
            "bills": r["bills"],
            "persons": r["persons"],
            **_money("base_fund_pay", r["base_fund_pay"]),
            **_money("candidate_fund_pay", r["candidate_fund_pay"]),
            **_money("change", r["change"]),
            "more": r["more"],
            "less": r["less"],
            "base_above_10": r["base_above_10"],
            "candidate_above_10": r["candidate_above_10"],
        }
        for r in rows
    ]


def _alerts(doc: dict[str, Any]) -> list[dict[str, Any]]:
    a = doc["alerts"]
    out = [
        {
            "scope": "all",
            "region": "",
            "layer_id": "",
            "base_alerts": a["base"]["alerts"],
            "candidate_alerts": a["candidate"]["alerts"],
            "base_households": a["base"]["households"],
            "candidate_households": a["candidate"]["households"],
            "base_persons": a["base"]["persons"],
            "candidate_persons": a["candidate"]["persons"],
            **_money("base_relief", a["base"]["relief"]),
            **_money("candidate_relief", a["candidate"]["relief"]),
        }
    ]
    for r in a["by_layer"]:
        out.append(
            {
                "scope": "layer",
                "region": r["region"],
                "layer_id": r["layer_id"],
                "base_alerts": r["base_alerts"],
                "candidate_alerts": r["candidate_alerts"],
                "base_households": "",
                "candidate_households": "",
                "base_persons": "",
                "candidate_persons": "",
                **_money("base_relief", r["base_relief"]),
                **_money("candidate_relief", r["candidate_relief"]),
            }
        )
    return out


def _budgets(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "region": r["region"],
            "fund_code": r["fund_code"],
            "year": r["year"],
            **_money("budget", r["budget"]),
            **_money("base_used", r["base_used"]),
            **_money("candidate_used", r["candidate_used"]),
            **_money("base_left", r["base_left"]),
            **_money("candidate_left", r["candidate_left"]),
            "base_bound_bills": r["base_bound_bills"],
            "candidate_bound_bills": r["candidate_bound_bills"],
        }
        for r in doc["budgets"]
    ]


def _money_cols(*names: str) -> list[str]:
    return [f"{n}_{u}" for n in names for u in ("yuan", "fen")]


_RUN_COLS = [
    *(
        f"{r}_{c}"
        for r in ("base", "candidate")
        for c in ("bills", "persons", "pay_yuan", "pay_fen")
    ),
    *_money_cols("change"),
    "change_pct",
]
#: file -> header (every row has exactly these columns; csv.DictWriter refuses any other)
HEADERS: dict[str, list[str]] = {
    "funds.csv": [
        "region",
        "fund_code",
        "layer_id",
        "layer_name_zh",
        "layer_name",
        "kind",
        *_RUN_COLS,
    ],
    "fund_totals.csv": ["fund_code", "name_zh", "name", *_RUN_COLS],
    "patients_largest.csv": [
        "direction",
        "rank",
        "hospital",
        "bill_id",
        "person_id",
        *_money_cols("base", "candidate", "change"),
        "reasons",
    ],
    "share.csv": [
        "run",
        "section",
        "point",
        "lo_pct",
        "hi_pct",
        "threshold_pct",
        "pct",
        "bills",
        "persons",
    ],
    **{
        f"breakdown_{name}.csv": [
            "key",
            "bills",
            "persons",
            *_money_cols("base_fund_pay", "candidate_fund_pay", "change"),
            "more",
            "less",
            "base_above_10",
            "candidate_above_10",
        ]
        for name in BREAKDOWNS
    },
    "alerts.csv": [
        "scope",
        "region",
        "layer_id",
        "base_alerts",
        "candidate_alerts",
        "base_households",
        "candidate_households",
        "base_persons",
        "candidate_persons",
        *_money_cols("base_relief", "candidate_relief"),
    ],
    "budgets.csv": [
        "region",
        "fund_code",
        "year",
        *_money_cols("budget", "base_used", "candidate_used", "base_left", "candidate_left"),
        "base_bound_bills",
        "candidate_bound_bills",
    ],
}


def tables(doc: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    """(file name, rows) of every CSV table, in the report's order."""
    out = [
        ("funds.csv", _funds(doc)),
        ("fund_totals.csv", _fund_totals(doc)),
        ("patients_largest.csv", _largest(doc)),
        ("share.csv", _share(doc)),
    ]
    out += [(f"breakdown_{name}.csv", _breakdown(doc["breakdowns"][name])) for name in BREAKDOWNS]
    out += [("alerts.csv", _alerts(doc)), ("budgets.csv", _budgets(doc))]
    return out


def csv_text(name: str, rows: Iterable[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=HEADERS[name], lineterminator="\r\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: "" if v is None else v for k, v in r.items()})
    return buf.getvalue()
