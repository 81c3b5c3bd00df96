"""The settlement in words, English and Chinese, built only from the figures of the result.

One line per layer (what it took as its base, the deductible, what it paid, which limit bound,
or why it did not apply), then the patient's share.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.money import yuan
from engine.policy.model import PolicyTable
from engine.result import LayerResult, Settlement

_WHY = {
    "tags_any": ("the person has none of the tags this fund is for", "参保人不属于该项保障对象"),
    "tags_none": ("the person has a tag this fund excludes", "参保人属于该项保障排除的人群"),
    "age_min": ("the person is younger than this fund's minimum age", "年龄低于该项保障的下限"),
    "age_max": ("the person is older than this fund's maximum age", "年龄高于该项保障的上限"),
    "level": ("this fund does not pay at this hospital level", "该项保障不支付此级别医院的费用"),
    "no_variant": ("no rule of this fund matches the person and hospital",
                   "没有与参保人和医院级别相符的支付规则"),
}  # fmt: skip


def why_not(reason: str) -> tuple[str, str]:
    """Why a layer did not apply, in words (English, Chinese), from its reason code."""
    return _WHY.get(reason, (reason, reason))


_CAP = {
    "admission_cap": ("limited by the per-admission cap", "受单次住院支付限额限制"),
    "annual_cap": ("limited by the annual cap", "受年度支付限额限制"),
    "max_share": ("the patient's share is limited to a set share of the cost",
                  "个人负担不超过费用的规定比例"),
    "annual_ceiling": ("the patient's share is limited by the annual self-pay ceiling",
                       "个人负担受年度自付封顶额限制"),
    "budget": ("limited by what is left of the fund's budget this year",
               "受本基金本年度剩余预算限制"),
}  # fmt: skip


def why_words(reason: str) -> str:
    """Why a layer did not apply (a code of engine.result.REASONS), in the slip's words."""
    return _WHY[reason][0] if reason in _WHY else ""


def cap_words(cap: str) -> str:
    """Which limit bound a layer (a code of engine.result.CAPS), in the slip's words."""
    return _CAP[cap][0] if cap in _CAP else ""


@dataclass(frozen=True)
class Line:
    en: str
    zh: str


def _names(table: PolicyTable | None, r: LayerResult) -> tuple[str, str]:
    if r.name:
        return r.name, r.name_zh or r.name
    if table is not None:
        for layer in table.layers:
            if layer.id == r.layer_id:
                return layer.name, layer.name_zh or layer.name
    return r.layer_id, r.layer_id


def layer_line(r: LayerResult, table: PolicyTable | None = None) -> Line:
    en_name, zh_name = _names(table, r)
    head_en, head_zh = f"{en_name} ({r.fund_code})", f"{zh_name}（{r.fund_code}）"
    if not r.applied:
        why_en, why_zh = _WHY[r.reason]
        return Line(f"{head_en}: does not apply: {why_en}.", f"{head_zh}：不适用，{why_zh}。")
    cap_en, cap_zh = _CAP.get(r.cap, ("", ""))
    later_en = " (paid after discharge)" if r.settle_at == "after_discharge" else ""
    later_zh = "（出院后理赔支付）" if r.settle_at == "after_discharge" else ""
    # each amount formatted once for both languages (this runs on every PreSettle response)
    if r.kind == "reimburse":
        base = yuan(r.base)
        en = f"{head_en}: base {base}"
        zh = f"{head_zh}：计算基数 {base} 元"
        if r.deductible:
            ded, elig = yuan(r.deductible), yuan(r.eligible)
            en += f", less deductible {ded} = {elig}"
            zh += f"，扣除起付线 {ded} 元后 {elig} 元"
        pay = yuan(r.pay)
        en += f"; pays {pay}{later_en}"
        zh += f"，支付 {pay} 元{later_zh}"
    elif r.kind == "backstop":
        base, kept, pay = yuan(r.base), yuan(r.base - r.pay), yuan(r.pay)
        en = f"{head_en}: of {base} left, the patient keeps {kept}; pays {pay}{later_en}"
        zh = f"{head_zh}：剩余 {base} 元，个人负担 {kept} 元，兜底支付 {pay} 元{later_zh}"
    else:
        cum = yuan(r.account.selfpay_cum)
        en = f"{head_en}: self-pay this year {cum}"
        zh = f"{head_zh}：本年度累计自付 {cum} 元"
        if r.alert:
            relief = yuan(r.relief)
            en += (
                f", above the warning line; suggested relief {relief} (not paid at "
                "the window; follow-up by the county)"
            )
            zh += f"，超过预警线；建议救助 {relief} 元（不在窗口支付，由县里跟进核查）"
        else:
            en += ", below the warning line"
            zh += "，未超过预警线"
    if cap_en:
        en += f" ({cap_en})"
        zh += f"（{cap_zh}）"
    return Line(en + ".", zh + "。")


def explain(s: Settlement, table: PolicyTable | None = None) -> list[Line]:
    b = s.buckets
    total, in_scope, pre, over, ooc = map(
        yuan, (b.total, b.in_scope, b.pre_selfpay, b.over_limit, b.out_of_catalogue)
    )
    lines = [Line(
        f"Total {total}: in scope {in_scope}, category B first self-pay {pre}, over price "
        f"limits {over}, out of catalogue {ooc}. Admission no. {s.admission_no} this year.",
        f"医疗费用总额 {total} 元：政策范围内 {in_scope} 元，乙类先行自付 {pre} 元，超限价自付 "
        f"{over} 元，全自费 {ooc} 元。本年度第 {s.admission_no} 次住院。",
    )]  # fmt: skip
    lines += [layer_line(r, table) for r in s.layers]
    after = s.window_pay - s.net_selfpay
    funds, window = yuan(s.funds_total), yuan(s.window_pay)
    tail_en = f"Funds pay {funds}. The patient pays {window} at the window"
    tail_zh = f"各项基金合计支付 {funds} 元。个人在窗口支付 {window} 元"
    if after:
        back, net = yuan(after), yuan(s.net_selfpay)
        tail_en += f", and gets {back} back after discharge (net {net})"
        tail_zh += f"，出院后另获理赔 {back} 元（个人实际负担 {net} 元）"
    lines.append(Line(tail_en + ".", tail_zh + "。"))
    return lines
