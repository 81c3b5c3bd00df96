"""The printed slip (结算单) and reversal slip (冲销单): HTML from a jinja2 template, PDF from
that HTML with WeasyPrint (font: Noto Sans CJK SC through fontconfig; nothing downloaded).

Public: ``render_slip_html(record_or_settlement, ...) -> str`` and ``render_slip_pdf(...) ->
bytes`` (the window client, ``onestop settle --slip`` and the HTTP gateway use them), and
``write_slip(path, ...)`` which picks HTML or PDF by the file's extension.

Money is formatted from integer fen only (``engine.money.yuan``, ``capitals``): no floats.
Data is never read as markup (autoescape on).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from adapters.clock import window_clock
from adapters.slip.capitals import capitals
from engine.bill import CATEGORY_NAMES, Bill, BillRequest, Category
from engine.explain import why_not
from engine.money import yuan
from engine.policy.model import PolicyTable
from engine.result import Settlement
from engine.service.ports import SettlementRecord

#: The font the PDF asks fontconfig for (Debian/Ubuntu: fonts-noto-cjk).
FONT = "Noto Sans CJK SC"

_CATEGORY = {
    Category.A: ("甲类", "A"),
    Category.B: ("乙类", "B"),
    Category.C: ("丙类", "C"),
}
_CAP = {
    "admission_cap": ("单次限额", "per-admission cap"),
    "annual_cap": ("年度限额", "annual cap"),
    "max_share": ("个人负担比例上限", "share limit"),
    "annual_ceiling": ("年度自付封顶", "annual self-pay ceiling"),
    "budget": ("基金预算余额", "fund budget left"),
}
_LEVEL = {
    "township": "乡镇级",
    "county": "县级",
    "city": "市级",
    "province": "省级",
    "out_of_province": "省外",
}


@dataclass(frozen=True)
class SlipMeta:
    """What the stored record adds to the figures: ids and times (ISO 8601, UTC; printed in
    Asia/Shanghai, UTC+8)."""

    settlement_id: str = ""
    request_id: str = ""
    settled_at: str = ""
    reversed: bool = False
    reversed_at: str = ""
    reversal_request_id: str = ""
    #: printed above the slip (e.g. "offline: not stored"), '' for none
    note: str = ""


@dataclass(frozen=True)
class _Fund:
    code: str
    name: str
    name_zh: str
    pay: int
    note_zh: str
    note_en: str


@dataclass
class _Slip:
    s: Settlement
    meta: SlipMeta
    sign: int
    level: str = ""
    admission: date | None = None
    categories: list[tuple[str, str, int]] = field(default_factory=list)
    window_funds: list[_Fund] = field(default_factory=list)
    after_funds: list[_Fund] = field(default_factory=list)
    not_applied: list[_Fund] = field(default_factory=list)

    def money(self, fen: int) -> str:
        return yuan(self.sign * fen)

    def capitals(self, fen: int) -> str:
        return capitals(self.sign * fen)

    @property
    def stay_days(self) -> int | None:
        if self.admission is None:
            return None
        return max(1, (self.s.discharge_date - self.admission).days)

    @property
    def window_funds_total(self) -> int:
        return sum(f.pay for f in self.window_funds)

    @property
    def after_funds_total(self) -> int:
        return sum(f.pay for f in self.after_funds)


def _bill_parts(bill: Bill | BillRequest | Mapping[str, Any] | None) -> tuple[
    str, date | None, list[tuple[str, str, int]]
]:  # fmt: skip
    """Hospital level, admission date, and the totals by category (甲乙丙, in that order)."""
    if bill is None:
        return "", None, []
    totals = {c: 0 for c in Category}
    adm: date | None
    if isinstance(bill, Bill | BillRequest):
        for it in bill.items:
            totals[Category(it.category)] += it.amount
        level, adm = bill.hospital_level, bill.admission_date
    else:
        for it in bill.get("items", ()):
            totals[CATEGORY_NAMES[str(it["category"])]] += int(it["amount"])
        level = str(bill.get("hospital_level", ""))
        a = bill.get("admission_date")
        adm = date.fromisoformat(a) if isinstance(a, str) else a if isinstance(a, date) else None
    cats = [(*_CATEGORY[c], totals[c]) for c in Category]
    return level, adm, cats


def _build(
    what: Settlement | SettlementRecord,
    bill: Bill | BillRequest | Mapping[str, Any] | None,
    meta: SlipMeta | None,
    table: PolicyTable | None,
    reversal: bool | None,
) -> _Slip:
    if isinstance(what, SettlementRecord):
        s = what.settlement
        bill = bill if bill is not None else what.bill
        meta = meta or SlipMeta(
            settlement_id=what.settlement_id,
            request_id=what.request_id,
            settled_at=window_clock(what.created_at),
            reversed=what.status == "reversed",
            reversed_at=window_clock(what.reversed_at),
            reversal_request_id=what.reversal_request_id or "",
        )
    else:
        s = what
        meta = meta or SlipMeta()
    if reversal is not None:
        meta = SlipMeta(**{**meta.__dict__, "reversed": reversal})
    # times as the window's clock reads them, however the caller gave them
    meta = SlipMeta(**{**meta.__dict__, "settled_at": window_clock(meta.settled_at),
                       "reversed_at": window_clock(meta.reversed_at)})  # fmt: skip
    level, adm, cats = _bill_parts(bill)
    out = _Slip(s, meta, -1 if meta.reversed else 1, level, adm, cats)
    names = {la.id: (la.name, la.name_zh) for la in table.layers} if table else {}
    for r in s.layers:
        name, name_zh = (r.name, r.name_zh) if r.name else names.get(r.layer_id, (r.layer_id, ""))
        if not r.applied:
            en, zh = why_not(r.reason)  # words, not the code (tags_any)
            out.not_applied.append(_Fund(r.fund_code, name, name_zh, 0, f"不适用：{zh}", en))
            continue
        zh, en = _CAP.get(r.cap, ("", ""))
        if r.kind == "alert":
            zh, en = (
                (
                    "防贫预警，建议救助 " + yuan(r.relief),
                    "alert: relief suggested " + yuan(r.relief),
                )
                if r.alert
                else ("未达预警线", "below the alert line")
            )
        f = _Fund(r.fund_code, name, name_zh, r.pay, zh, en)
        (out.after_funds if r.settle_at == "after_discharge" else out.window_funds).append(f)
    return out


_env = Environment(
    loader=PackageLoader("adapters.slip", "templates"),
    autoescape=select_autoescape(["html", "j2"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def render_slips_html(slips: Sequence[_Slip]) -> str:
    return _env.get_template("slip.html.j2").render(slips=slips, font=FONT, levels=_LEVEL)


def render_slip_html(
    what: Settlement | SettlementRecord,
    bill: Bill | BillRequest | Mapping[str, Any] | None = None,
    *,
    meta: SlipMeta | None = None,
    table: PolicyTable | None = None,
    reversal: bool | None = None,
) -> str:
    """The slip as one HTML page. ``what``: a stored record (its ids, times, bill and status
    are used) or bare figures (then ``bill`` gives the admission date, hospital level and the
    category totals, ``meta`` the ids). ``reversal``: force or suppress the reversal slip
    (default: the record's status / ``meta.reversed``)."""
    return render_slips_html([_build(what, bill, meta, table, reversal)])


def slip_data(
    what: Settlement | SettlementRecord,
    bill: Bill | BillRequest | Mapping[str, Any] | None = None,
    *,
    meta: SlipMeta | None = None,
    table: PolicyTable | None = None,
    reversal: bool | None = None,
) -> _Slip:
    """One slip's data, for ``render_slips_html`` (several slips in one document)."""
    return _build(what, bill, meta, table, reversal)


def html_to_pdf(html: str) -> bytes:
    from weasyprint import HTML  # heavy: imported when a PDF is asked for

    pdf = HTML(string=html).write_pdf()
    assert pdf is not None
    return bytes(pdf)


def render_slip_pdf(
    what: Settlement | SettlementRecord,
    bill: Bill | BillRequest | Mapping[str, Any] | None = None,
    *,
    meta: SlipMeta | None = None,
    table: PolicyTable | None = None,
    reversal: bool | None = None,
) -> bytes:
    """The slip as a PDF (A4): ``render_slip_html`` through WeasyPrint."""
    return html_to_pdf(render_slip_html(what, bill, meta=meta, table=table, reversal=reversal))


def write_slip(path: Path, slips: Sequence[_Slip]) -> None:
    """Write the slips to ``path``: PDF for ``.pdf``, HTML for ``.html``/``.htm``."""
    html = render_slips_html(slips)
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        path.write_bytes(html_to_pdf(html))
    elif suffix in (".html", ".htm"):
        path.write_text(html, encoding="utf-8")
    else:
        raise ValueError(f"{path}: the slip is written as .pdf or .html")
