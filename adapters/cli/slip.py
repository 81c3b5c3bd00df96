"""The settlement slip (结算单) and the reversal slip (冲销单, as on the PDF): one line per layer, the funds
paid at the window and after discharge, the patient's share, the year-to-date accounts, and
the explanation in words. Shared by ``onestop settle`` and the window client.

Not a terminal: every line whole (adapters/cli/output.py). Data is never read as markup.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from adapters.cli.output import new_table, show, text
from adapters.clock import window_clock
from engine.accounts import ZERO, Opening, YearAccounts
from engine.bill import Bill
from engine.explain import explain
from engine.money import yuan
from engine.policy.model import PolicyTable
from engine.result import Settlement


@dataclass(frozen=True)
class Reversal:
    """What a reversal slip names: the settlement taken back and when it was made."""

    settlement_id: str
    settled_at: str  # the original settlement's time (UTC, as stored; printed in UTC+8)
    reversed_at: str = ""


def window_funds(s: Settlement) -> int:
    """What the funds pay at the window (the hospital advances it): total - window pay."""
    return sum(r.pay for r in s.layers if r.settle_at != "after_discharge")


def after_discharge_funds(s: Settlement) -> int:
    """What funds pay the patient after discharge (claims; not at the window)."""
    return sum(r.pay for r in s.layers if r.settle_at == "after_discharge")


def slip(
    s: Settlement,
    table: PolicyTable | None = None,
    *,
    zh: bool = True,
    reversal: Reversal | None = None,
) -> Table:
    """The slip as a table. A reversal slip shows every amount taken back (negative)."""
    sign = -1 if reversal else 1

    def money(x: int) -> str:
        return yuan(sign * x)

    head = (
        f"REVERSAL slip 冲销单 · takes back settlement {reversal.settlement_id} of "
        f"{window_clock(reversal.settled_at)}"
        + (f" · reversed {window_clock(reversal.reversed_at)}" if reversal.reversed_at else "")
        + " · "
        if reversal
        else "Settlement slip 结算单 · "
    )  # fmt: skip
    t = new_table(
        head + f"hospital {s.hospital} · bill {s.bill_id} · person {s.person_id} · "
        f"{s.discharge_date} · policy {s.policy}",
        [("layer 险种", "left"), ("fund", "left"), ("base 基数", "right"),
         ("deductible 起付", "right"), ("pays 支付", "right"), ("note", "left")],
    )  # fmt: skip
    t.title = text(t.title)
    b = s.buckets
    t.add_row("total 总费用", "", money(b.total), "", "", text(f"admission no. {s.admission_no}"))
    for label, amount in (
        ("· in scope 政策范围内", b.in_scope),
        ("· B first self-pay 乙类先行自付", b.pre_selfpay),
        ("· over price limit 超限价", b.over_limit),
        ("· out of catalogue 全自费", b.out_of_catalogue),
    ):
        if amount:
            t.add_row(label, "", money(amount), "", "", "")
    names = {la.id: la.name_zh or la.name for la in table.layers} if table else {}
    names.update({r.layer_id: r.name_zh or r.name for r in s.layers if r.name})
    for r in s.layers:
        if not r.applied:
            t.add_row(
                text(names.get(r.layer_id, r.layer_id)),
                text(r.fund_code),
                "",
                "",
                "-",
                text(f"not applied: {r.reason}"),
            )
            continue
        note = r.cap
        if r.settle_at == "after_discharge":
            note = ("after discharge " + note).strip()
        if r.kind == "alert":
            note = (f"ALERT relief {yuan(r.relief)}" if r.alert else "below line") + (
                f" {r.cap}" if r.cap else ""
            )
        t.add_row(
            text(names.get(r.layer_id, r.layer_id)),
            text(r.fund_code),
            money(r.base),
            money(r.deductible) if r.deductible else "",
            money(r.pay),
            text(note),
        )
    wf, af = window_funds(s), after_discharge_funds(s)
    t.add_row("funds at the window 窗口基金支付", "", "", "", money(wf), "total - window pay")
    if af or any(r.settle_at == "after_discharge" for r in s.layers):
        t.add_row(
            "funds after discharge 出院后基金支付",
            "",
            "",
            "",
            money(af),
            "paid to the patient later",
        )
    t.add_row("funds in all 基金合计", "", "", "", money(s.funds_total), "")
    t.add_row(
        Text("window 个人现金支付" + (" (refunded)" if reversal else ""), style="bold"),
        "",
        "",
        "",
        Text(money(s.window_pay), style="bold"),
        text(f"net self-pay 个人负担 {money(s.net_selfpay)}"),
    )
    return t


def accounts_table(title: str, acc: YearAccounts, *, household: bool = False) -> Table | None:
    """The year-to-date accounts, or None when no layer has any (no empty table).
    Admissions are counted per person: a household table does not show them."""
    rows = [(lid, a) for lid, a in sorted(acc.layers.items()) if a != ZERO]
    if not rows:
        return None
    t = new_table(
        title,
        [("layer", "left"), ("deductible used", "right"), ("eligible cum", "right"),
         ("paid", "right"), ("self-pay cum", "right")],
    )  # fmt: skip
    for lid, a in rows:
        t.add_row(text(lid), *(yuan(x) for x in a.as_tuple()))
    if not household:
        t.caption = f"admissions this year: {acc.admissions}"
    return t


def print_accounts(
    console: Console,
    year: int,
    person_id: str,
    person: YearAccounts | None,
    household_id: str = "",
    household: YearAccounts | None = None,
    *,
    title: str = "Year-to-date accounts",
) -> None:
    """The person's and household's accounts; a line instead of an empty table."""
    if person is not None:
        t = accounts_table(f"{title} {year}: person {person_id}", person)
        if t is not None:
            show(console, t)
        elif person.admissions:
            console.print(text(f"person {person_id}: admissions {year}: {person.admissions}; "
                               "no fund has paid anything yet"))  # fmt: skip
        else:
            console.print(text(f"person {person_id}: no accounts yet for {year}"))
    if household is not None:
        t = accounts_table(f"Household {household_id} {year}", household, household=True)
        if t is not None:
            show(console, t)


def print_slip(
    console: Console,
    s: Settlement,
    table: PolicyTable | None = None,
    person: YearAccounts | None = None,
    household: YearAccounts | None = None,
    words: bool = True,
    reversal: Reversal | None = None,
) -> None:
    show(console, slip(s, table, reversal=reversal))
    if reversal:
        wf, back = window_funds(s), s.window_pay
        console.print(text(
            f"  Reversal of settlement {reversal.settlement_id} (settled {window_clock(reversal.settled_at)}): "
            f"the window funds take back {yuan(wf)}, the patient gets {yuan(back)} back at the "
            "window; the year-to-date accounts are as before it."
        ))  # fmt: skip
        console.print(text(
            f"  冲销结算 {reversal.settlement_id}（结算时间 {window_clock(reversal.settled_at)}）：窗口基金冲回 "
            f"{yuan(wf)} 元，退还个人 {yuan(back)} 元，累计账户恢复到该次结算之前。"
        ))  # fmt: skip
    elif words:
        for line in explain(s, table):
            console.print(text(f"  {line.en}"))
            console.print(text(f"  {line.zh}"))
    if person is not None or (household is not None and any(
        a != ZERO for a in household.layers.values()
    )):  # fmt: skip
        print_accounts(
            console, s.year, s.person_id, person, s.household, household,
            title="Year-to-date accounts" + (" after the reversal" if reversal else ""),
        )  # fmt: skip


def explanation_json(s: Settlement, table: PolicyTable | None = None) -> list[dict[str, str]]:
    return [{"en": x.en, "zh": x.zh} for x in explain(s, table)]


def accounts_after_each(
    bills: Sequence[Bill], settlements: Sequence[Settlement], opening: Opening
) -> list[tuple[YearAccounts, YearAccounts]]:
    """The person's and household's accounts right after each bill (in the order given):
    walk the settlements in the engine's settlement order, each layer's account taken from the
    settlement itself (``LayerResult.account`` is the layer's account after that bill)."""
    from engine.plainbatch import order_key

    person: dict[tuple[str, int], YearAccounts] = dict(opening.person)
    household: dict[tuple[str, int], YearAccounts] = dict(opening.household)
    out: list[Any] = [None] * len(settlements)
    for i in sorted(range(len(bills)), key=lambda i: order_key(bills[i])):
        s = settlements[i]
        pk, hk = (s.person_id, s.year), (s.household, s.year)
        p = person.get(pk, YearAccounts())
        h = household.get(hk, YearAccounts())
        for r in s.layers:
            if r.scope == "household":
                h = h.with_layer(r.layer_id, r.account)
            else:
                p = p.with_layer(r.layer_id, r.account)
        p = YearAccounts(p.layers, s.admissions_after)
        person[pk], household[hk] = p, h
        out[i] = (p.normalized(), h.normalized())
    return out
