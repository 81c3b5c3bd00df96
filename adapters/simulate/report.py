"""The bureau's report of ``onestop simulate``: the figures (schema ``onestop.simulate/1``,
adapters/simulate/FIGURES.md) as one self-contained ``report.html``, ``report.json`` and CSV tables.

``report.html`` holds everything inline (CSS, charts as SVG; no script, no font, no network):
it opens from a USB stick. It reads top down as a bureau asks: a summary in plain words, then the
sections in the order of the figures. Chinese first, English beside.

Money is shown in yuan with thousands separators and two decimals, exactly from integer fen
(``engine.money.yuan``); changes carry their sign; percentages are the figures' strings as given
(with ``%``), ``—`` where the figures say null. Nothing is cut: names wrap, numbers do not.
Every figure shown is marked ``data-key`` (its JSON path in ``report.json``, e.g.
``funds.0.change``), ``data-value`` (the raw value) and ``data-unit`` (how it is shown, see
``show``); the few figures the page derives (the summary's total change, the totals' changes)
are marked ``data-derived`` with their formula instead, so a reader can check every number.

The CSV files are UTF-8 with a BOM (Excel then reads the Chinese right), one header row, money
as two columns: ``*_yuan`` (exact two decimals, no separators) and ``*_fen`` (the integer).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Callable, Iterable, Sequence
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from adapters.simulate.charts import all_charts
from engine.money import yuan

SCHEMA = "onestop.simulate/1"
NONE = "—"
BREAKDOWNS = ("tag", "hospital_level", "age_band", "hospital")
MONEY_KEYS = ("total", "fund_pay", "window_pay", "net_selfpay", "relief")
TEMPLATES = Path(__file__).parent / "templates"


class FiguresError(ValueError):
    """The figures do not have the shape of ``onestop.simulate/1`` (the message names where)."""


# --- the shape of the figures ----------------------------------------------------------------
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


# --- figures as shown ------------------------------------------------------------------------


def signed_yuan(fen: int) -> str:
    return ("+" if fen > 0 else "") + yuan(fen)


def show(value: Any, unit: str) -> str:
    """A figure as the page shows it. Units: ``fen`` (yuan, separators, two decimals),
    ``fen+`` (the same with + on a rise), ``abs`` (yuan without the sign, where the words say
    more or less), ``bool`` (是 yes / 否 no), ``pct`` (the string as given, with %), ``pct+``
    (with + on a rise), ``count`` (separators), ``text`` (as is); null is ``—``."""
    if value is None:
        return NONE
    if unit == "fen":
        return yuan(value)
    if unit == "fen+":
        return signed_yuan(value)
    if unit == "abs":
        return yuan(abs(value))
    if unit == "bool":
        return "是 yes" if value else "否 no"
    if unit == "pct":
        return f"{value}%"
    if unit == "pct+":
        return ("+" if not value.startswith("-") and Decimal(value) != 0 else "") + f"{value}%"
    if unit == "count":
        return f"{value:,}"
    return str(value)


def percent_change(new: int, old: int) -> str | None:
    """The figures' rule: exact, two decimals, half up; null where the base is 0."""
    if old == 0:
        return None
    q = Decimal(new - old) * 100 / Decimal(old)
    return str(q.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def lookup(doc: Any, key: str) -> Any:
    """The value at a JSON path such as ``funds.0.change``."""
    for part in key.split("."):
        doc = doc[int(part)] if isinstance(doc, list) else doc[part]
    return doc


def _raw(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _marker(doc: dict[str, Any]) -> Callable[..., Markup]:
    def n(key: str, unit: str = "text", cls: str = "num") -> Markup:
        value = lookup(doc, key)
        return Markup(
            '<span class="{}" data-key="{}" data-unit="{}" data-value="{}">{}</span>'
        ).format(cls, key, unit, _raw(value), show(value, unit))

    return n


def _derived(name: str, value: Any, unit: str, cls: str = "num") -> Markup:
    return Markup(
        '<span class="{}" data-derived="{}" data-unit="{}" data-value="{}">{}</span>'
    ).format(cls, name, unit, _raw(value), show(value, unit))


def summary(doc: dict[str, Any]) -> dict[str, Any]:
    """The figures of the summary sentence (computed here from the figures, marked derived)."""
    base, cand = doc["totals"]["base"]["fund_pay"], doc["totals"]["candidate"]["fund_pay"]

    def above(run: str) -> dict[str, Any] | None:
        rows = doc["share"][run]["above"]
        i = next((i for i, a in enumerate(rows) if Decimal(a["threshold_pct"]) == 10), None)
        return None if i is None else {"i": i, **rows[i]}

    return {
        "change": cand - base,
        "change_pct": percent_change(cand, base),
        "above_base": above("base"),
        "above_candidate": above("candidate"),
    }


def _env() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["yuan"] = yuan
    env.filters["count"] = lambda v: f"{v:,}"
    return env


def _same(doc: dict[str, Any], part: str, keys: tuple[str, ...]) -> bool:
    """Whether base and candidate have the same thresholds or bins (then shown side by side)."""
    rows = [
        [tuple(r[k] for k in keys) for r in doc["share"][run][part]]
        for run in ("base", "candidate")
    ]
    return bool(rows[0]) and rows[0] == rows[1]


def render_html(figures: dict[str, Any]) -> str:
    """``report.html`` of ``figures`` (checked first: FiguresError if not the schema)."""
    check_figures(figures)
    charts = {k: Markup(v) for k, v in all_charts(figures).items()}
    return (
        _env()
        .get_template("report.html.j2")
        .render(
            doc=figures,
            n=_marker(figures),
            d=_derived,
            s=summary(figures),
            charts=charts,
            breakdowns=BREAKDOWNS,
            money_keys=MONEY_KEYS,
            csv_files=[p for p, _ in tables(figures)],
            pct=percent_change,
            same_thresholds=_same(figures, "above", ("threshold_pct",)),
            same_bins=_same(figures, "histogram", ("lo_pct", "hi_pct")),
        )
    )


# --- the CSV tables ------------------------------------------------------------------------


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


# --- writing -------------------------------------------------------------------------------


def write_report(figures: dict[str, Any], out_dir: Path) -> list[Path]:
    """Write ``report.html``, ``report.json`` and the CSV tables under ``out_dir`` (created;
    files of the same names replaced, each atomically). Returns the files written, in order.
    FiguresError if ``figures`` is not the schema (nothing written); OSError if a file
    cannot be written."""
    html = render_html(figures)  # checks the figures before anything is written
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    def put(name: str, text: str, encoding: str = "utf-8") -> None:
        path = out_dir / name
        tmp = path.with_name(f".{name}.tmp")
        with open(tmp, "w", encoding=encoding, newline="") as f:
            f.write(text)
        os.replace(tmp, path)
        written.append(path)

    put("report.html", html)
    put("report.json", json.dumps(figures, ensure_ascii=False, indent=2) + "\n")
    for name, rows in tables(figures):
        put(name, csv_text(name, rows), encoding="utf-8-sig")
    return written
