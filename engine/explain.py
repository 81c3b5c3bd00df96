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


def cap_texts(cap: str) -> tuple[str, str] | None:
    """Which limit bound a layer (a code of engine.result.CAPS), English and Chinese, as a
    layer's line says it; None for a code the line does not name."""
    return _CAP.get(cap)


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
    return Line(*layer_words(
        en_name, zh_name, r.fund_code, r.kind, r.settle_at, r.reason, r.cap, r.base,
        r.deductible, r.eligible, r.pay, r.relief, r.account.selfpay_cum, r.alert,
    ))  # fmt: skip


def layer_words(
    en_name: str, zh_name: str, fund_code: str, kind: str, settle_at: str, reason: str,
    cap: str, base: int, deductible: int, eligible: int, pay: int, relief: int,
    selfpay_cum: int, alert: bool,
) -> tuple[str, str]:  # fmt: skip
    """A layer's line (English, Chinese) from its figures (``layer_line`` of a result).
    PreSettle's answer writes the same words compiled (``adapters.grpc.resultwire``, held to
    these by its tests)."""
    head_en, head_zh = f"{en_name} ({fund_code})", f"{zh_name}（{fund_code}）"
    if reason:
        why_en, why_zh = _WHY[reason]
        return f"{head_en}: does not apply: {why_en}.", f"{head_zh}：不适用，{why_zh}。"
    later = settle_at == "after_discharge"  # said of a paying layer only
    # each amount formatted once for both languages (this runs on every PreSettle response)
    if kind == "reimburse":
        b = yuan(base)
        if deductible:
            ded, elig = yuan(deductible), yuan(eligible)
            en = f"{head_en}: base {b}, less deductible {ded} = {elig}"
            zh = f"{head_zh}：计算基数 {b} 元，扣除起付线 {ded} 元后 {elig} 元"
        else:
            en = f"{head_en}: base {b}"
            zh = f"{head_zh}：计算基数 {b} 元"
        p = yuan(pay)
        en = f"{en}; pays {p}"
        zh = f"{zh}，支付 {p} 元"
    elif kind == "backstop":
        b, kept, p = yuan(base), yuan(base - pay), yuan(pay)
        en = f"{head_en}: of {b} left, the patient keeps {kept}; pays {p}"
        zh = f"{head_zh}：剩余 {b} 元，个人负担 {kept} 元，兜底支付 {p} 元"
    else:
        cum = yuan(selfpay_cum)
        if alert:
            r = yuan(relief)
            en = (
                f"{head_en}: self-pay this year {cum}, above the warning line; suggested relief "
                f"{r} (not paid at the window; follow-up by the county)"
            )
            zh = (
                f"{head_zh}：本年度累计自付 {cum} 元，超过预警线；建议救助 {r} 元（不在窗口支付，"
                "由县里跟进核查）"
            )
        else:
            en = f"{head_en}: self-pay this year {cum}, below the warning line"
            zh = f"{head_zh}：本年度累计自付 {cum} 元，未超过预警线"
    if later and (kind == "reimburse" or kind == "backstop"):
        en += " (paid after discharge)"
        zh += "（出院后理赔支付）"
    if cap:
        c = _CAP.get(cap)
        if c is not None:
            return f"{en} ({c[0]}).", f"{zh}（{c[1]}）。"
    return en + ".", zh + "。"


def bill_words(
    total: int, in_scope: int, pre: int, over: int, ooc: int, admission_no: int
) -> tuple[str, str]:
    """The first line (English, Chinese): the bill's buckets and the admission's number."""
    t, i, p, o, c = yuan(total), yuan(in_scope), yuan(pre), yuan(over), yuan(ooc)
    return (
        f"Total {t}: in scope {i}, category B first self-pay {p}, over price limits {o}, "
        f"out of catalogue {c}. Admission no. {admission_no} this year.",
        f"医疗费用总额 {t} 元：政策范围内 {i} 元，乙类先行自付 {p} 元，超限价自付 {o} 元，"
        f"全自费 {c} 元。本年度第 {admission_no} 次住院。",
    )


def tail_words(funds_total: int, window_pay: int, net_selfpay: int) -> tuple[str, str]:
    """The last line (English, Chinese): what the funds and the patient pay."""
    funds, window = yuan(funds_total), yuan(window_pay)
    after = window_pay - net_selfpay
    if after:
        back, net = yuan(after), yuan(net_selfpay)
        return (
            f"Funds pay {funds}. The patient pays {window} at the window, and gets {back} back "
            f"after discharge (net {net}).",
            f"各项基金合计支付 {funds} 元。个人在窗口支付 {window} 元，出院后另获理赔 {back} 元"
            f"（个人实际负担 {net} 元）。",
        )
    return (
        f"Funds pay {funds}. The patient pays {window} at the window.",
        f"各项基金合计支付 {funds} 元。个人在窗口支付 {window} 元。",
    )


def explain(s: Settlement, table: PolicyTable | None = None) -> list[Line]:
    b = s.buckets
    lines = [Line(*bill_words(
        b.total, b.in_scope, b.pre_selfpay, b.over_limit, b.out_of_catalogue, s.admission_no
    ))]  # fmt: skip
    lines += [layer_line(r, table) for r in s.layers]
    lines.append(Line(*tail_words(s.funds_total, s.window_pay, s.net_selfpay)))
    return lines
