"""The charts of the simulate report: matplotlib figures as inline SVG, drawn with the published
pages' style and SVG clean-up (``adapters.publish.charts.style`` / ``to_svg``).

Money stays integer fen in the figures; fen become float yuan here only to place bars. Every
text on a chart (names, labels) is drawn whole: long names are wrapped, never cut.
"""

from __future__ import annotations

import textwrap
from decimal import Decimal
from typing import Any

import matplotlib.pyplot as plt
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter

from adapters.publish.charts import integer_ticks, style, to_svg
from engine.money import yuan

BASE_COLOUR, CANDIDATE_COLOUR = "#8a9bb0", "#2a7ab0"
MORE_COLOUR, LESS_COLOUR, BUDGET_COLOUR = "#c8553d", "#3a8f5c", "#444444"
TEN = 10.0  # the 10% line (the Guangxi rule behind the Longzhou backstop)


def _f(fen: int) -> float:
    return fen / 100  # drawing only


def _axis_yuan(axis: Any) -> None:
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))


def _wrap(text: str, width: int = 22) -> str:
    return "\n".join(textwrap.wrap(text, width, break_long_words=True)) or text


def _signed(fen: int) -> str:
    return ("+" if fen > 0 else "") + yuan(fen)


def _nothing(chart_id: str, title: str, zh: str, en: str) -> str:
    """A chart with nothing to draw says so (it keeps its place on the page)."""
    with style():
        fig, ax = plt.subplots(figsize=(7.6, 1.6))
        ax.set_axis_off()
        ax.text(0.5, 0.5, f"{zh}  {en}", ha="center", va="center", fontsize=11, color="#555")
        ax.set_title(title)
        return to_svg(fig, chart_id, title)


def fund_label(row: dict[str, Any]) -> str:
    zh = row.get("layer_name_zh") or row.get("layer_name") or row["layer_id"]
    en = row.get("layer_name") or row["layer_id"]
    return f"{_wrap(zh, 16)}\n{_wrap(en)}\n{row['region']} · {row['fund_code']}"


def fund_changes(doc: dict[str, Any]) -> str:
    """Per (region, layer): base and draft pay side by side (left), and the change (right, more
    in red, less in green), labelled in yuan and percent: a small change to a large fund and a
    large change to a small fund are both seen."""
    title = "各基金支付：现行、草案与变化（元） Fund pay: base, draft and change (yuan)"
    rows = doc["funds"]
    if not rows:
        return _nothing("funds", title, "没有基金支付", "no fund paid")
    with style():
        fig, (left, right) = plt.subplots(
            1, 2, figsize=(8.4, 1.3 + 0.8 * max(1, len(rows))), sharey=True,
            gridspec_kw={"width_ratios": [1.1, 1]},
        )  # fmt: skip
        ys = list(range(len(rows)))
        h = 0.38
        left.barh([y - h / 2 for y in ys], [_f(r["base"]["pay"]) for r in rows], h,
                  label="现行 base", color=BASE_COLOUR)  # fmt: skip
        left.barh([y + h / 2 for y in ys], [_f(r["candidate"]["pay"]) for r in rows], h,
                  label="草案 draft", color=CANDIDATE_COLOUR)  # fmt: skip
        left.set_yticks(ys, [fund_label(r) for r in rows], fontsize=8)
        left.invert_yaxis()
        _axis_yuan(left.xaxis)
        left.tick_params(axis="x", labelrotation=30, labelsize=7)
        left.legend(frameon=False, loc="lower right", fontsize=8)
        left.set_title("支付 pay", fontsize=9)
        changes = [r["change"] for r in rows]
        bars = right.barh(ys, [_f(c) for c in changes], 0.6,
                          color=[MORE_COLOUR if c > 0 else LESS_COLOUR for c in changes])  # fmt: skip
        labels = [
            f" {_signed(r['change'])}"
            + (
                ""
                if r["change_pct"] is None
                else f"\n ({'+' if r['change'] > 0 else ''}{r['change_pct']}%)"
            )
            for r in rows
        ]
        right.bar_label(bars, labels=labels, fontsize=7, padding=2)
        right.axvline(0, color="#333", linewidth=0.8)
        _axis_yuan(right.xaxis)
        right.tick_params(axis="x", labelrotation=30, labelsize=7)
        right.margins(x=0.45)
        right.set_title("变化 change", fontsize=9)
        fig.suptitle(title, fontsize=10)
        return to_svg(fig, "funds", title)


def _bin_label(lo: int, hi: int) -> str:
    return f"{yuan(lo)}\n– {yuan(hi)}"


def winners_losers(doc: dict[str, Any]) -> str:
    """The distribution of the patient's change (bills per bin), more in red, less in green."""
    title = "患者自付变化分布（元） Change in what the patient pays (yuan), bills per bin"
    bins = doc["patients"]["change_histogram"]
    if not bins:
        return _nothing(
            "patients", title, "没有账单的患者支付变化", "no bill's patient figure changed"
        )
    with style():
        fig, ax = plt.subplots(figsize=(7.6, 3.4))
        xs = list(range(len(bins)))
        counts = [b["bills"] for b in bins]
        colours = [MORE_COLOUR if b["lo"] >= 0 else LESS_COLOUR for b in bins]
        bars = ax.bar(xs, counts, 0.75, color=colours)
        ax.bar_label(bars, labels=[f"{n:,}" for n in counts], fontsize=8)
        ax.set_xticks(xs, [_bin_label(b["lo"], b["hi"]) for b in bins], fontsize=7)
        integer_ticks(ax)
        ax.set_ylabel("账单数 bills")
        more, less = doc["patients"]["more"], doc["patients"]["less"]
        ax.legend(
            handles=[Patch(color=MORE_COLOUR, label=f"多付 pay more: {more['bills']:,} bills"),
                     Patch(color=LESS_COLOUR, label=f"少付 pay less: {less['bills']:,} bills")],
            frameon=False,
        )  # fmt: skip
        ax.set_title(title)
        return to_svg(fig, "patients", title)


def _edges(hist: list[dict[str, Any]]) -> tuple[list[float], list[int]]:
    edges = [float(Decimal(hist[0]["lo_pct"]))] + [float(Decimal(b["hi_pct"])) for b in hist]
    return edges, [b["bills"] for b in hist]


def share_before_after(doc: dict[str, Any]) -> str:
    """The patient's share of the bill, base and draft, as step histograms (bills per percent
    point of share, so unequal bins compare), with the 10% line."""
    title = "患者自付占费用比例分布 Patient's share of the bill, base and draft"
    if not any(doc["share"][run]["histogram"] for run in ("base", "candidate")):
        return _nothing("share", title, "没有分布", "no distribution given")
    with style():
        fig, ax = plt.subplots(figsize=(7.6, 3.4))
        top = 0.0
        for run, colour, name in (("base", BASE_COLOUR, "现行 base"),
                                  ("candidate", CANDIDATE_COLOUR, "草案 draft")):  # fmt: skip
            hist = doc["share"][run]["histogram"]
            if not hist:
                continue
            edges, counts = _edges(hist)
            dens = [
                c / max(hi - lo, 1e-9) for c, lo, hi in zip(counts, edges, edges[1:], strict=False)
            ]
            top = max([top, *dens])
            ax.stairs(dens, edges, label=name, color=colour, linewidth=2)
        ax.axvline(TEN, color=MORE_COLOUR, linestyle="--", linewidth=1)
        ax.text(TEN, top * 1.02 if top else 1, " 10%", color=MORE_COLOUR, va="bottom")
        ax.set_xlabel("自付占比（%） share of the bill (%)")
        ax.set_ylabel("每个百分点的账单数 bills per point")
        if top:
            ax.legend(frameon=False)
        ax.set_title(title)
        return to_svg(fig, "share", title)


def budgets_used(doc: dict[str, Any]) -> str:
    """Per fund with a budget: the budget (frame) against what base and draft use of it."""
    title = "基金预算使用：现行 与 草案（元） Budget used, base and draft (yuan)"
    rows = doc["budgets"]
    with style():
        fig, ax = plt.subplots(figsize=(7.6, 1.3 + 0.8 * max(1, len(rows))))
        ys = list(range(len(rows)))
        h = 0.36
        ax.barh(ys, [_f(r["budget"]) for r in rows], 2 * h + 0.1, fill=False,
                edgecolor=BUDGET_COLOUR, label="预算 budget")  # fmt: skip
        ax.barh([y - h / 2 for y in ys], [_f(r["base_used"]) for r in rows], h,
                color=BASE_COLOUR, label="现行已用 base used")  # fmt: skip
        bars = ax.barh([y + h / 2 for y in ys], [_f(r["candidate_used"]) for r in rows], h,
                       color=CANDIDATE_COLOUR, label="草案已用 draft used")  # fmt: skip
        ax.bar_label(bars, labels=[f" {yuan(r['candidate_used'])} / {yuan(r['budget'])}"
                                   for r in rows], fontsize=8)  # fmt: skip
        ax.set_yticks(ys, [f"{r['region']} · {r['fund_code']}\n{r['year']}" for r in rows])
        ax.invert_yaxis()
        _axis_yuan(ax.xaxis)
        ax.margins(x=0.35)
        ax.set_title(title)
        ax.legend(frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=3,
                  fontsize=8)  # fmt: skip
        return to_svg(fig, "budgets", title)


def all_charts(doc: dict[str, Any]) -> dict[str, str]:
    """Chart id -> inline SVG; ``budgets`` only where a fund declares a budget."""
    out = {
        "funds": fund_changes(doc),
        "patients": winners_losers(doc),
        "share": share_before_after(doc),
    }
    if doc["budgets"]:
        out["budgets"] = budgets_used(doc)
    return out
