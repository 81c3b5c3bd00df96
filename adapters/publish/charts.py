"""The published page's charts: matplotlib figures as inline SVG (the ``report`` extra).

Money stays integer fen everywhere else; here fen become float yuan only to draw bars. The SVG
keeps its text as text (``svg.fonttype: none``: the browser draws it with the page's fonts,
CJK included), its ids are prefixed per chart so that several charts can share one page, and
it carries no date or random id (the same figures give the same bytes).
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib import font_manager

from engine.fundstats import STATUSES, FundFigures

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

FONTS = ["Noto Sans CJK SC", "Noto Sans CJK JP", "WenQuanYi Zen Hei", "DejaVu Sans"]
IN_COLOUR, OUT_COLOUR, RELIEF_COLOUR = "#2a7ab0", "#d9822b", "#6b9e3a"
STATUS_LABELS = {
    "filed": "待审核\nfiled",
    "approved": "已批准待付\napproved",
    "rejected": "不予赔付\nrejected",
    "paid": "已支付\npaid",
}

#: the rc settings (matplotlib's stubs name every rc key in the Literal ``RcKeyType``)
_RC: dict[RcKeyType, Any] = {
    "svg.fonttype": "none",
    "svg.hashsalt": "onestop",
    "font.family": "sans-serif",
    "font.sans-serif": FONTS,
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.unicode_minus": False,
}


def integer_ticks(ax: Any) -> None:
    """Counts on the y axis: whole ticks only (the default locator, told so)."""
    loc = ax.yaxis.get_major_locator()
    if isinstance(loc, matplotlib.ticker.MaxNLocator):  # AutoLocator, the default, is one
        loc.set_params(integer=True)


def _svg(fig: plt.Figure, chart_id: str, title: str) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None}, bbox_inches="tight")
    plt.close(fig)
    text = buf.getvalue()
    text = text[text.index("<svg") :]
    text = re.sub(r"\s*<metadata>.*?</metadata>", "", text, flags=re.S)
    # unique ids per chart: id="x" -> id="<chart>-x", and every reference to them
    text = re.sub(r'id="([^"]+)"', rf'id="{chart_id}-\1"', text)
    text = re.sub(r"url\(#([^)]+)\)", rf"url(#{chart_id}-\1)", text)
    text = re.sub(r'href="#([^"]+)"', rf'href="#{chart_id}-\1"', text)
    # scale with the page: keep the viewBox, drop the fixed size
    text = re.sub(r'<svg([^>]*?) width="[^"]*" height="[^"]*"', r"<svg\1", text, count=1)
    label = title.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
    return text.replace(
        "<svg",
        f'<svg role="img" aria-label="{label}" class="chart-svg" data-chart="{chart_id}"',
        1,
    )


def know_cjk_fonts() -> None:
    """Make sure matplotlib knows the CJK fonts this machine has. matplotlib lists the system's
    fonts once, into a cache (``~/.cache/matplotlib/fontlist-*.json``) that it never rescans:
    a CJK font installed after matplotlib's first use (fonts-noto-cjk after the report extra,
    as ``.ci/run`` installs them) stays unknown, and the charts' Chinese labels were then laid
    out with DejaVu's box glyphs (their widths, so ``bbox_inches="tight"`` could cut a label
    the browser draws wider). Looks at the font files' names only when none of ``FONTS``' CJK
    families is known (~10 ms, once a process) and adds those files."""
    known = {f.name for f in font_manager.fontManager.ttflist}
    if known.intersection(FONTS[:-1]):
        return
    for path in font_manager.findSystemFonts():
        name = os.path.basename(path).lower()
        if "cjk" in name or "wqy" in name:
            try:
                font_manager.fontManager.addfont(path)
            except (OSError, RuntimeError, ValueError):  # a file FreeType cannot read
                continue


def style() -> Any:
    """The charts' matplotlib style (CJK fonts first, text kept as text): ``with style(): ...``.
    Shared with the other reports' charts (adapters/simulate/charts.py)."""
    know_cjk_fonts()
    return plt.rc_context(_RC)


def to_svg(fig: plt.Figure, chart_id: str, title: str) -> str:
    """``fig`` as inline SVG for a page holding several charts (closes ``fig``)."""
    return _svg(fig, chart_id, title)


def _yuan(fen: int) -> float:
    return fen / 100  # drawing only


def money_by_month(f: FundFigures) -> str:
    title = "每月收入与支出（元） Money in and paid out by month (yuan)"
    with style():
        fig, ax = plt.subplots(figsize=(7.2, 3.2))
        months = [m.month for m in f.monthly]
        xs = range(len(months))
        w = 0.4
        ax.bar([x - w / 2 for x in xs], [_yuan(m.money_in) for m in f.monthly], w,
               label="收入 money in", color=IN_COLOUR)  # fmt: skip
        ax.bar([x + w / 2 for x in xs], [_yuan(m.paid_out) for m in f.monthly], w,
               label="支出 paid out", color=OUT_COLOUR)  # fmt: skip
        ax.set_xticks(list(xs), [m[2:] for m in months], rotation=45 if len(months) > 8 else 0)
        ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
        ax.set_title(title)
        ax.legend(frameon=False)
        return _svg(fig, "money", title)


def claims_by_status(f: FundFigures) -> str:
    title = "理赔与救助件数（按状态） Claims and relief cases by status"
    with style():
        fig, ax = plt.subplots(figsize=(7.2, 3.0))
        xs = range(len(STATUSES))
        w = 0.4
        c = [f.claims.status(s).count for s in STATUSES]
        r = [f.relief.status(s).count for s in STATUSES]
        b1 = ax.bar([x - w / 2 for x in xs], c, w, label="理赔 claims", color=OUT_COLOUR)
        b2 = ax.bar([x + w / 2 for x in xs], r, w, label="救助 relief cases", color=RELIEF_COLOUR)
        ax.bar_label(b1, labels=[f"{n:,}" for n in c], fontsize=8)
        ax.bar_label(b2, labels=[f"{n:,}" for n in r], fontsize=8)
        ax.set_xticks(list(xs), [STATUS_LABELS[s] for s in STATUSES])
        integer_ticks(ax)
        ax.set_title(title)
        ax.legend(frameon=False)
        return _svg(fig, "status", title)


def days_to_payment(f: FundFigures) -> str:
    title = "出院到支付天数分布 Days from discharge to payment"
    with style():
        fig, ax = plt.subplots(figsize=(7.2, 3.0))
        labels: Sequence[str] = [label for label, _ in f.days_to_payment.histogram]
        counts = [k for _, k in f.days_to_payment.histogram]
        bars = ax.bar(range(len(labels)), counts, 0.7, color=IN_COLOUR)
        ax.bar_label(bars, labels=[f"{n:,}" for n in counts], fontsize=8)
        ax.set_xticks(list(range(len(labels))), labels)
        ax.set_xlabel("天 days")
        ax.set_ylabel("已支付件数 paid")
        integer_ticks(ax)
        ax.set_title(title)
        return _svg(fig, "days", title)


def all_charts(f: FundFigures) -> list[tuple[str, str]]:
    """(chart id, inline SVG) of every chart of a page."""
    return [
        ("money", money_by_month(f)),
        ("status", claims_by_status(f)),
        ("days", days_to_payment(f)),
    ]
