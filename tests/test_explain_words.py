"""The settlement in words (``engine.explain``), pinned word for word: every kind of line (a
reimbursing layer with and without deductible and cap, paid after discharge, a layer that does
not apply, the backstop, an alert layer over and under its line, a negative amount, the tail
with a refund after discharge). The texts are those the explanation had before each amount was
formatted once for both languages (PreSettle builds them on every call)."""

from __future__ import annotations

from datetime import date

from engine.accounts import LayerAccount
from engine.explain import explain
from engine.result import Buckets, LayerResult, Settlement

_LAYERS = (
    LayerResult("basic", "reimburse", "390100", "window", "person", "", 0, "", 5000000, 30000,
                4970000, 3479000, 0, "admission_cap", LayerAccount(30000, 4970000, 3479000, 0),
                False, "Basic", "基本医保"),
    LayerResult("ci", "reimburse", "390200", "after_discharge", "person", "", 0, "", 1491000, 0,
                1491000, 1064700, 0, "", LayerAccount(0, 1491000, 1064700, 0), False, "CI",
                "大病保险"),
    LayerResult("med", "reimburse", "510100", "window", "person", "level", -1, "", 0, 0, 0, 0, 0,
                "", LayerAccount(), False, "Assist", ""),
    LayerResult("back", "backstop", "640100", "window", "person", "", 0, "", 656300, 0, 0, 93780,
                0, "max_share", LayerAccount(0, 0, 93780, 562520), False, "Backstop", "兜底"),
    LayerResult("alert", "alert", "370200", "window", "household", "", 0, "", 0, 0, 0, 0, 123456,
                "", LayerAccount(0, 0, 0, 1234567), True, "Alert", "预警"),
    LayerResult("alert2", "alert", "370200", "window", "household", "", 0, "", 0, 0, 0, 0, 0, "",
                LayerAccount(0, 0, 0, -5), False, "", ""),
)  # fmt: skip

EXPECTED = [
    (
        "Total 52,000.00: in scope 50,000.00, category B first self-pay 0.00, over price limits 0.00, out of catalogue 2,000.00. Admission no. 2 this year.",
        "医疗费用总额 52,000.00 元：政策范围内 50,000.00 元，乙类先行自付 0.00 元，超限价自付 0.00 元，全自费 2,000.00 元。本年度第 2 次住院。",
    ),
    (
        "Basic (390100): base 50,000.00, less deductible 300.00 = 49,700.00; pays 34,790.00 (limited by the per-admission cap).",
        "基本医保（390100）：计算基数 50,000.00 元，扣除起付线 300.00 元后 49,700.00 元，支付 34,790.00 元（受单次住院支付限额限制）。",
    ),
    (
        "CI (390200): base 14,910.00; pays 10,647.00 (paid after discharge).",
        "大病保险（390200）：计算基数 14,910.00 元，支付 10,647.00 元（出院后理赔支付）。",
    ),
    (
        "Assist (510100): does not apply: this fund does not pay at this hospital level.",
        "Assist（510100）：不适用，该项保障不支付此级别医院的费用。",
    ),
    (
        "Backstop (640100): of 6,563.00 left, the patient keeps 5,625.20; pays 937.80 (the patient's share is limited to a set share of the cost).",
        "兜底（640100）：剩余 6,563.00 元，个人负担 5,625.20 元，兜底支付 937.80 元（个人负担不超过费用的规定比例）。",
    ),
    (
        "Alert (370200): self-pay this year 12,345.67, above the warning line; suggested relief 1,234.56 (not paid at the window; follow-up by the county).",
        "预警（370200）：本年度累计自付 12,345.67 元，超过预警线；建议救助 1,234.56 元（不在窗口支付，由县里跟进核查）。",
    ),
    (
        "alert2 (370200): self-pay this year -0.05, below the warning line.",
        "alert2（370200）：本年度累计自付 -0.05 元，未超过预警线。",
    ),
    (
        "Funds pay 46,374.80. The patient pays 16,272.20 at the window, and gets 10,647.00 back after discharge (net 5,625.20).",
        "各项基金合计支付 46,374.80 元。个人在窗口支付 16,272.20 元，出院后另获理赔 10,647.00 元（个人实际负担 5,625.20 元）。",
    ),
]


def test_every_kind_of_line_word_for_word() -> None:
    s = Settlement(
        bill_id="b", hospital="H", person_id="p", household="h", region="r", policy="x",
        year=2023, discharge_date=date(2023, 1, 1), admission_no=2,
        buckets=Buckets(5200000, 5000000, 0, 0, 200000), layers=_LAYERS, window_pay=1627220,
        net_selfpay=562520, admissions_after=2,
    )  # fmt: skip
    assert [(x.en, x.zh) for x in explain(s)] == EXPECTED


def _yuan_before(fen: int) -> str:
    """``engine.money.yuan`` as it was before the table of cents (the reference)."""
    sign = "-" if fen < 0 else ""
    fen = abs(fen)
    return f"{sign}{fen // 100:,}.{fen % 100:02d}"


def test_yuan_equals_the_reference_formatter() -> None:
    from hypothesis import given
    from hypothesis import strategies as st

    from engine.money import yuan

    edges = [0, 1, 99, 100, 101, 99_999, 100_000, 100_001, 123_456_789, 10**15, -1, -99, -100,
             -100_000, -123_456_789_012_345]  # fmt: skip
    for fen in edges:
        assert yuan(fen) == _yuan_before(fen), fen

    @given(st.integers(min_value=-(10**16), max_value=10**16))
    def same(fen: int) -> None:
        assert yuan(fen) == _yuan_before(fen)

    same()
