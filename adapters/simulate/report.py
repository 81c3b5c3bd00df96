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
are marked ``data-derived`` with their name instead, so a reader can check every number.

The figures are checked first (adapters/simulate/schema.py); the CSV tables are
adapters/simulate/tables.py.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from adapters.simulate.charts import all_charts
from adapters.simulate.schema import BREAKDOWNS, MONEY_KEYS, check_figures
from adapters.simulate.tables import csv_text, tables
from engine.money import yuan

NONE = "—"
TEMPLATES = Path(__file__).parent / "templates"


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
