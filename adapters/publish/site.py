"""The static site of ``onestop publish``: an index of the funds and counties published, and one
page per fund, county and year with its figures in words, tables and charts (Chinese first,
English beside), the same figures as ``figures.json`` and ``figures.csv``, the ledger
checkpoint it was built from and how to check it.

Layout of ``OUT``::

    index.html                       the list of funds and counties
    figures.json, figures.csv        every page's figures together
    <region>-<fund>-<year>/index.html, figures.json, figures.csv

Money is shown in yuan with two decimals and thousands separators, converted exactly from
integer fen (``engine.money.yuan``); counts with thousands separators; the loss ratio in percent
with two decimals (exactly from basis points); never a cut or rounded figure beyond the
definitions of ``engine.fundstats``. Every number on a page is marked ``data-key`` with its key
in ``figures.json`` (``engine.fundstats.flat``), so that anyone (and the tests) can check the
page against the file. No personal data reaches a page: only ``FundFigures`` are rendered.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import DictLoader, Environment, select_autoescape
from markupsafe import Markup

from adapters.publish.charts import all_charts
from engine.fundstats import STATUSES, FundFigures, flat, unit_of
from engine.money import yuan

NONE = "—"
KIND_LABELS = {
    "premium": ("保费", "premiums"),
    "donation": ("捐赠", "donations"),
    "government": ("财政资金", "government"),
    "other": ("其他", "other"),
}
STATUS_LABELS = {
    "filed": ("待审核", "filed, awaiting decision"),
    "approved": ("已批准待支付", "approved, payable"),
    "rejected": ("不予赔付", "rejected"),
    "paid": ("已支付", "paid"),
}
MODE_LABELS = {"hard": ("硬预算（赔付以余额为限）", "hard budget (payouts limited to the balance)"),
               "report": ("报告预算（不限赔付）", "reported budget (payouts not limited)")}  # fmt: skip


def percent(bp: int) -> str:
    """1056 -> '10.56%' (exact: basis points are hundredths of a percent)."""
    sign = "-" if bp < 0 else ""
    bp = abs(bp)
    return f"{sign}{bp // 100:,}.{bp % 100:02d}%"


def show(value: Any, unit: str) -> str:
    """A figure as the page shows it."""
    if value is None:
        return NONE
    if unit == "fen":
        return yuan(value)
    if unit == "bp":
        return percent(value)
    if unit in ("count", "days"):
        return f"{value:,}"
    return str(value)


def parse_shown(text: str, unit: str) -> Any:
    """The inverse of ``show`` (the tests read pages back with it)."""
    text = text.strip()
    if text == NONE:
        return None
    if unit in ("fen", "bp"):
        body = text.rstrip("%")
        neg = body.startswith("-")
        whole, frac = body.lstrip("-").split(".")
        assert len(frac) == 2, text
        v = int(whole.replace(",", "")) * 100 + int(frac)
        return -v if neg else v
    if unit in ("count", "days"):
        return int(text.replace(",", ""))
    return text


@dataclass(frozen=True)
class Page:
    figures: FundFigures
    pending: int = 0  # ledger events not sealed when the page was built


def _csv(rows: Sequence[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["region", "fund_code", "year", "key", "value", "unit"])
    for doc in rows:
        for key, value in flat(doc):
            w.writerow([doc["region"], doc["fund_code"], doc["year"], key,
                        "" if value is None else value, unit_of(key)])  # fmt: skip
    return buf.getvalue()


def figures_json(pages: Sequence[Page]) -> list[dict[str, Any]]:
    return [p.figures.to_json() for p in pages]


def _env() -> Environment:
    env = Environment(
        loader=DictLoader({"base.html": BASE, "fund.html": FUND_PAGE, "index.html": INDEX}),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["yuan"] = yuan
    env.filters["count"] = lambda n: f"{n:,}"
    return env


def _marker(values: dict[str, Any]) -> Callable[..., Markup]:
    def n(key: str, cls: str = "num") -> Markup:
        if key not in values:
            raise KeyError(f"no figure {key!r}")
        unit = unit_of(key)
        return Markup('<span class="{}" data-key="{}" data-unit="{}">{}</span>').format(
            cls, key, unit, show(values[key], unit)
        )

    return n


def _plural(values: dict[str, Any]) -> Callable[..., str]:
    """``pl(key, "record")``: the English noun for the count ``key`` ("1 record", "2 records")."""

    def pl(key: str, one: str, many: str | None = None) -> str:
        return one if values[key] == 1 else (many or one + "s")

    return pl


def render_page(page: Page, root: str = "../", charts: bool = True) -> str:
    """One fund page (``charts=False``: without the charts, for quick checks of the text)."""
    f = page.figures
    doc = f.to_json()
    values = dict(flat(doc))
    return _env().get_template("fund.html").render(
        f=f, doc=doc, n=_marker(values), pl=_plural(values), charts=[(c, Markup(svg)) for c, svg in (all_charts(f) if charts else [])],
        statuses=STATUSES, status_labels=STATUS_LABELS, kind_labels=KIND_LABELS,
        mode=MODE_LABELS.get(f.budget_mode, (f.budget_mode, f.budget_mode)),
        pending=page.pending, root=root, title=f"{f.fund_name_zh or f.fund_name} · "
        f"{f.region_name or f.region} · {f.year}",
    )  # fmt: skip


def render_index(pages: Sequence[Page]) -> str:
    rows = []
    for p in pages:
        values = dict(flat(p.figures.to_json()))
        rows.append((p, _marker(values)))
    return _env().get_template("index.html").render(rows=rows, root="", title="公开的基金数字")


def write_site(pages: Sequence[Page], out: Path) -> list[Path]:
    """Write the site under ``out`` (created if missing; files of the same names replaced);
    returns the files written. OSError if a file cannot be written."""
    written: list[Path] = []

    def put(path: Path, text: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
        written.append(path)

    out.mkdir(parents=True, exist_ok=True)
    for p in pages:
        d = out / p.figures.slug
        doc = p.figures.to_json()
        put(d / "index.html", render_page(p))
        put(d / "figures.json", json.dumps(doc, ensure_ascii=False, indent=2) + "\n")
        put(d / "figures.csv", _csv([doc]))
    docs = figures_json(pages)
    put(out / "figures.json", json.dumps(docs, ensure_ascii=False, indent=2) + "\n")
    put(out / "figures.csv", _csv(docs))
    put(out / "index.html", render_index(pages))
    return written


# --- templates -----------------------------------------------------------------------------

BASE = """<!DOCTYPE html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>{{ title }}</title>
<style>
body { font-family: "Noto Sans CJK SC", "Noto Sans", "WenQuanYi Zen Hei", sans-serif;
       margin: 0 auto; max-width: 60rem; padding: 1rem 1.5rem 3rem; color: #222;
       line-height: 1.55; }
h1 { font-size: 1.5rem; margin-bottom: .2rem; }
h2 { font-size: 1.15rem; margin-top: 2rem; border-bottom: 1px solid #ccc; }
.en { color: #555; }
p.en, div.en { margin-top: .2rem; }
table { border-collapse: collapse; margin: .5rem 0 1rem; }
th, td { border: 1px solid #ddd; padding: .25rem .6rem; vertical-align: top; }
th { background: #f4f4f4; text-align: left; font-weight: 600; }
td.r, th.r { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
td.m { white-space: nowrap; }
.wide { overflow-x: auto; }
#monthly { font-size: .9em; }
.num { white-space: nowrap; font-variant-numeric: tabular-nums; }
.stamp { border: 1px solid #9ab; background: #f3f8fb; padding: .6rem .9rem; margin: 1rem 0; }
.stamp code, .hash { word-break: break-all; font-family: monospace; }
.warn { color: #a40; }
figure.chart { margin: 1rem 0; }
svg.chart-svg { width: 100%; max-width: 46rem; height: auto; display: block; }
code { background: #f4f4f4; padding: 0 .2rem; }
</style>
</head>
<body>
{% block body %}{% endblock %}
</body>
</html>
"""

STAMP = """
<div class="stamp" id="checkpoint">
{% if f.checkpoint %}
  账本检查点：区块高度 {{ n("checkpoint.height") }}，区块摘要
  <span class="hash" data-key="checkpoint.hash">{{ f.checkpoint.hash }}</span>
  {% if f.checkpoint.sealed_at %}（封存于 {{ f.checkpoint.sealed_at }}）{% endif %}。
  <div class="en">Ledger checkpoint: block height {{ f.checkpoint.height | count }}, block digest
  {{ f.checkpoint.hash }}{% if f.checkpoint.sealed_at %} (sealed {{ f.checkpoint.sealed_at }}){% endif %}.</div>
  {% if pending %}
  <div class="warn">另有 {{ pending | count }} 条账本事件尚未封存。 {{ pending | count }} ledger
  event(s) were not sealed yet.</div>
  {% endif %}
{% else %}
  <span class="warn" id="not-sealed">未封存</span>：生成本页时账本尚无封存区块。
  <div class="en">Not sealed: the ledger had no sealed block when this page was built.</div>
{% endif %}
</div>
"""

FUND_PAGE = (
    """{% extends "base.html" %}
{% block body %}
<p><a href="{{ root }}index.html">全部基金 All funds</a></p>
<h1>{{ f.fund_name_zh or f.fund_name }} · {{ f.region_name or f.region }} · {{ f.year }}年</h1>
<div class="en">{{ f.fund_name }} — region {{ f.region }}{% if f.region_name %} ({{ f.region_name }}){% endif %},
fund {{ f.fund_code }}, year {{ f.year }}.</div>
<p>覆盖人数按 {{ f.as_of.isoformat() }} 计算；其余数字为生成本页时库中该基金本年度的全部记录（见下方检查点）。
<span class="en">Persons covered are counted on {{ f.as_of.isoformat() }}; every other figure is the
fund-year's records as stored when this page was built (the checkpoint below).</span></p>
"""
    + STAMP
    + """
<h2>概要 <span class="en">Summary</span></h2>
<p id="summary-zh">截至 {{ f.as_of.isoformat() }}，本基金在{{ f.region_name or f.region }}覆盖
{{ n("enrolled") }} 人。{{ f.year }} 年度收到资金 {{ n("money_in.fen") }} 元（{{ n("money_in.count") }} 笔），
其中捐赠 {{ n("money_in.by_kind.donation.fen") }} 元。已支付 {{ n("money_out") }} 元：窗口结算
{{ n("window.settlements") }} 笔共 {{ n("window.fen") }} 元，出院后理赔 {{ n("claims.paid.count") }} 件共
{{ n("claims.paid.fen") }} 元，救助 {{ n("relief.paid.count") }} 件共 {{ n("relief.paid.fen") }} 元。
另有已批准待支付 {{ n("payable") }} 元。结余 {{ n("balance") }} 元。赔付率 {{ n("loss_ratio_bp") }}。</p>
<p class="en" id="summary-en">As of {{ f.as_of.isoformat() }} the fund covers {{ n("enrolled") }} {{ pl("enrolled", "person") }}
in {{ f.region_name or f.region }}. In {{ f.year }} it received {{ n("money_in.fen") }} yuan
({{ n("money_in.count") }} {{ pl("money_in.count", "record") }}), of which {{ n("money_in.by_kind.donation.fen") }} yuan in donations.
It has paid out {{ n("money_out") }} yuan: {{ n("window.fen") }} yuan at the hospital window in
{{ n("window.settlements") }} {{ pl("window.settlements", "settlement") }}, {{ n("claims.paid.fen") }} yuan on {{ n("claims.paid.count") }}
{{ pl("claims.paid.count", "claim") }} after discharge and {{ n("relief.paid.fen") }} yuan on {{ n("relief.paid.count") }} {{ pl("relief.paid.count", "relief case") }}.
A further {{ n("payable") }} yuan is approved and payable. The balance is {{ n("balance") }} yuan.
Loss ratio (paid out / money in): {{ n("loss_ratio_bp") }}.</p>

<h2>收支 <span class="en">Money in and out</span></h2>
<table id="overview">
<tr><th>项目 <span class="en">Item</span></th><th class="r">金额（元）<span class="en">Yuan</span></th></tr>
<tr><td>覆盖人数 <span class="en">Persons covered</span></td><td class="r">{{ n("enrolled") }} 人</td></tr>
<tr><td>预算方式 <span class="en">Budget</span></td><td>{{ mode[0] }} <span class="en">{{ mode[1] }}</span></td></tr>
<tr><td>年度预算 <span class="en">Budget of the year</span></td><td class="r">{{ n("budget") }}</td></tr>
<tr><td>上年结转 <span class="en">Carried in</span></td><td class="r">{{ n("carried_in") }}</td></tr>
<tr><td>收入合计 <span class="en">Money in</span></td><td class="r">{{ n("money_in.fen") }}</td></tr>
<tr><td>支出合计（已支付）<span class="en">Money out (paid)</span></td><td class="r">{{ n("money_out") }}</td></tr>
<tr><td>已批准待支付 <span class="en">Approved, payable</span></td><td class="r">{{ n("payable") }}</td></tr>
<tr><td>结余 = 收入 + 结转 − 支出 <span class="en">Balance = in + carried in − out</span></td><td class="r">{{ n("balance") }}</td></tr>
{% if f.budget_used is not none %}
<tr><td>预算已用 <span class="en">Budget used</span></td><td class="r">{{ n("budget_used") }}</td></tr>
<tr><td>预算余额 <span class="en">Budget left</span></td><td class="r">{{ n("budget_left") }}</td></tr>
{% endif %}
<tr><td>赔付率 <span class="en">Loss ratio</span></td><td class="r">{{ n("loss_ratio_bp") }}</td></tr>
</table>

<h3>收入来源 <span class="en">Money in by kind</span></h3>
<table id="money-in">
<tr><th>来源 <span class="en">Kind</span></th><th class="r">笔数 <span class="en">Records</span></th><th class="r">金额（元）<span class="en">Yuan</span></th></tr>
{% for k, (zh, en) in kind_labels.items() %}
<tr><td>{{ zh }} <span class="en">{{ en }}</span></td><td class="r">{{ n("money_in.by_kind." ~ k ~ ".count") }}</td><td class="r">{{ n("money_in.by_kind." ~ k ~ ".fen") }}</td></tr>
{% endfor %}
<tr><th>合计 <span class="en">Total</span></th><th class="r">{{ n("money_in.count") }}</th><th class="r">{{ n("money_in.fen") }}</th></tr>
</table>

<h3>支出构成 <span class="en">Money out</span></h3>
<table id="money-out">
<tr><th>项目 <span class="en">Item</span></th><th class="r">笔数 <span class="en">Count</span></th><th class="r">金额（元）<span class="en">Yuan</span></th></tr>
<tr><td>窗口结算（未冲销）<span class="en">Paid at the window (not reversed)</span></td><td class="r">{{ n("window.settlements") }}</td><td class="r">{{ n("window.fen") }}</td></tr>
<tr><td>出院后理赔（已支付）<span class="en">Claims after discharge, paid</span></td><td class="r">{{ n("claims.paid.count") }}</td><td class="r">{{ n("claims.paid.fen") }}</td></tr>
<tr><td>救助（已支付）<span class="en">Relief cases, paid</span></td><td class="r">{{ n("relief.paid.count") }}</td><td class="r">{{ n("relief.paid.fen") }}</td></tr>
<tr><th>合计 <span class="en">Total</span></th><th></th><th class="r">{{ n("money_out") }}</th></tr>
</table>
<p>已冲销的窗口结算 {{ n("window.reversed") }} 笔不计入支出。<span class="en">{{ n("window.reversed") }}
reversed window settlement(s) are not counted.</span></p>

<h2>理赔与救助 <span class="en">Claims and relief cases</span></h2>
<table id="claims">
<tr><th rowspan="2">状态 <span class="en">Status</span></th><th colspan="2">出院后理赔 <span class="en">Claims</span></th><th colspan="2">救助 <span class="en">Relief cases</span></th></tr>
<tr><th class="r">件数 <span class="en">Count</span></th><th class="r">金额（元）<span class="en">Yuan</span></th><th class="r">件数 <span class="en">Count</span></th><th class="r">金额（元）<span class="en">Yuan</span></th></tr>
{% for s in statuses %}
<tr><td>{{ status_labels[s][0] }} <span class="en">{{ status_labels[s][1] }}</span></td>
<td class="r">{{ n("claims." ~ s ~ ".count") }}</td><td class="r">{{ n("claims." ~ s ~ ".fen") }}</td>
<td class="r">{{ n("relief." ~ s ~ ".count") }}</td><td class="r">{{ n("relief." ~ s ~ ".fen") }}</td></tr>
{% endfor %}
<tr><th>全部申请 <span class="en">All filed</span></th>
<th class="r">{{ n("claims.all.count") }}</th><th class="r">{{ n("claims.all.fen") }}</th>
<th class="r">{{ n("relief.all.count") }}</th><th class="r">{{ n("relief.all.fen") }}</th></tr>
<tr><td>平均每件支付（元）<span class="en">Average paid</span></td>
<td></td><td class="r">{{ n("claims.average_paid") }}</td><td></td><td class="r">{{ n("relief.average_paid") }}</td></tr>
</table>
<p>金额：待审核与不予赔付按申请金额，已批准与已支付按批准金额；全部申请按申请金额。
<span class="en">Amounts: filed and rejected at the amount filed, approved and paid at the amount
approved; "all filed" at the amounts filed.</span></p>

<h3>出院到支付天数 <span class="en">Days from discharge to payment</span></h3>
<table id="days">
<tr><th></th><th class="r">件数 <span class="en">Paid</span></th><th class="r">中位数 <span class="en">Median</span></th><th class="r">平均 <span class="en">Mean</span></th><th class="r">90% 分位 <span class="en">90th pct.</span></th><th class="r">最短 <span class="en">Min</span></th><th class="r">最长 <span class="en">Max</span></th></tr>
{% for key, zh, en in [("claims.days_to_payment", "理赔", "claims"), ("relief.days_to_payment", "救助", "relief cases"), ("days_to_payment", "合计", "together")] %}
<tr><td>{{ zh }} <span class="en">{{ en }}</span></td>
{% for leaf in ["count", "median", "mean", "p90", "min", "max"] %}<td class="r">{{ n(key ~ "." ~ leaf) }}</td>{% endfor %}</tr>
{% endfor %}
</table>
<p>单位：天。中位数与平均数四舍五入到整天，90% 分位取第 ⌈0.9n⌉ 小的实际天数。
<span class="en">In days. Median and mean rounded half-up to whole days; the 90th percentile is the
⌈0.9n⌉-th smallest observed value.</span></p>

<h2>图表 <span class="en">Charts</span></h2>
{% for cid, svg in charts %}
<figure class="chart" id="chart-{{ cid }}">
{{ svg }}
</figure>
{% endfor %}

<h2>按月 <span class="en">By month</span></h2>
<div class="wide"><table id="monthly">
<tr><th>月份 <span class="en">Month</span></th><th class="r">收入（元）<span class="en">Money in</span></th><th class="r">支出（元）<span class="en">Paid out</span></th><th class="r">理赔申请 <span class="en">Claims filed</span></th><th class="r">理赔支付 <span class="en">Claims paid</span></th><th class="r">救助立案 <span class="en">Relief filed</span></th><th class="r">救助支付 <span class="en">Relief paid</span></th></tr>
{% for m in f.monthly %}
<tr><td class="m">{{ m.month }}</td>{% for leaf in ["money_in", "paid_out", "claims_filed", "claims_paid", "relief_filed", "relief_paid"] %}<td class="r">{{ n("monthly." ~ m.month ~ "." ~ leaf) }}</td>{% endfor %}</tr>
{% endfor %}
</table></div>

<h2>数据下载 <span class="en">Data</span></h2>
<p>同样的数字：<a href="figures.json">figures.json</a>（金额单位：分）、<a href="figures.csv">figures.csv</a>。
<span class="en">The same figures as <a href="figures.json">figures.json</a> (money in fen) and
<a href="figures.csv">figures.csv</a>.</span></p>

<h2>如何核对 <span class="en">How to check</span></h2>
<p>本页数字由结算库计算，结算、冲销与审批都记入一本只能追加的账本：每个区块的摘要包含上一个区块的摘要，
任何改写都会改变此后每一个摘要。运行 <code>onestop ledger verify</code> 可从全部事件重新计算每个区块并指出第一处不符；
运行 <code>onestop ledger headers --after {{ f.checkpoint.height if f.checkpoint else 0 }}</code> 可取得此后的区块头，
其 prev_hash 链应回到本页公布的摘要。个人可用 <code>onestop ledger prove</code> 取得自己结算的证明，并用
<code>onestop ledger check-proof</code> 离线核对。</p>
<p class="en">These figures were computed from the settlement store, whose settlements, reversals
and decisions are recorded in an append-only ledger: each block's digest covers the previous
block's, so rewriting any event changes every digest after it. <code>onestop ledger verify</code>
recomputes every block from its events and names the first difference;
<code>onestop ledger headers --after {{ f.checkpoint.height if f.checkpoint else 0 }}</code> lists the
later block headers, whose prev_hash chain must lead back to the digest published on this page.
A beneficiary can get a proof of their own settlement with <code>onestop ledger prove</code> and
check it offline with <code>onestop ledger check-proof</code>.</p>
{% endblock %}
"""
)

INDEX = """{% extends "base.html" %}
{% block body %}
<h1>公开的基金数字 <span class="en">Published fund figures</span></h1>
<p>每个基金、县和年度一页：收入、支出、理赔与救助、按月数字与图表，以及生成时的账本检查点。
<span class="en">One page per fund, county and year: money in and out, claims and relief cases,
monthly figures and charts, and the ledger checkpoint each page was built from.</span></p>
<table id="funds">
<tr><th>基金 <span class="en">Fund</span></th><th>地区 <span class="en">Region</span></th><th>年度 <span class="en">Year</span></th>
<th class="r">覆盖人数 <span class="en">Covered</span></th><th class="r">收入（元）<span class="en">Money in</span></th>
<th class="r">支出（元）<span class="en">Money out</span></th><th class="r">结余（元）<span class="en">Balance</span></th><th>检查点 <span class="en">Checkpoint</span></th></tr>
{% for p, n in rows %}
{% set f = p.figures %}
<tr data-page="{{ f.slug }}"><td><a href="{{ f.slug }}/index.html">{{ f.fund_name_zh or f.fund_name }}</a>
<span class="en">{{ f.fund_name }} ({{ f.fund_code }})</span></td>
<td>{{ f.region_name or f.region }} <span class="en">{{ f.region }}</span></td><td>{{ f.year }}</td>
<td class="r">{{ n("enrolled") }}</td><td class="r">{{ n("money_in.fen") }}</td>
<td class="r">{{ n("money_out") }}</td><td class="r">{{ n("balance") }}</td>
<td>{% if f.checkpoint %}{{ f.checkpoint.height | count }} <span class="hash">{{ f.checkpoint.hash }}</span>{% else %}未封存 <span class="en">not sealed</span>{% endif %}</td></tr>
{% endfor %}
</table>
<p>数据：<a href="figures.json">figures.json</a>、<a href="figures.csv">figures.csv</a>（金额单位：分 <span class="en">money in fen</span>）。</p>
{% endblock %}
"""
