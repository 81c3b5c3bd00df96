"""The settlement slip (结算单) on a terminal: one line per layer, the patient's share, the
year-to-date accounts, and the explanation in words. Shared by ``onestop settle`` and the
window client."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from engine.accounts import ZERO, YearAccounts
from engine.explain import explain
from engine.money import yuan
from engine.policy.model import PolicyTable
from engine.result import Settlement


def slip(s: Settlement, table: PolicyTable | None = None, *, zh: bool = True) -> Table:
    t = Table(
        title=f"Settlement slip 结算单 · hospital {s.hospital} · bill {s.bill_id} · person {s.person_id} · "
        f"{s.discharge_date} · policy {s.policy}",
        show_lines=False,
    )
    for col, just in (
        ("layer 险种", "left"),
        ("fund", "left"),
        ("base 基数", "right"),
        ("deductible 起付", "right"),
        ("pays 支付", "right"),
        ("note", "left"),
    ):
        t.add_column(col, justify=just)  # type: ignore[arg-type]
    b = s.buckets
    t.add_row("total 总费用", "", yuan(b.total), "", "", f"admission no. {s.admission_no}")
    for label, amount in (
        ("· in scope 政策范围内", b.in_scope),
        ("· B first self-pay 乙类先行自付", b.pre_selfpay),
        ("· over price limit 超限价", b.over_limit),
        ("· out of catalogue 全自费", b.out_of_catalogue),
    ):
        if amount:
            t.add_row(label, "", yuan(amount), "", "", "")
    names = {la.id: la.name_zh or la.name for la in table.layers} if table else {}
    names.update({r.layer_id: r.name_zh or r.name for r in s.layers if r.name})
    for r in s.layers:
        if not r.applied:
            t.add_row(
                names.get(r.layer_id, r.layer_id),
                r.fund_code,
                "",
                "",
                "-",
                f"not applied: {r.reason}",
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
            names.get(r.layer_id, r.layer_id),
            r.fund_code,
            yuan(r.base),
            yuan(r.deductible) if r.deductible else "",
            yuan(r.pay),
            note,
        )
    t.add_row("funds 基金合计", "", "", "", yuan(s.funds_total), "")
    t.add_row(
        "[bold]window 个人现金支付[/bold]",
        "",
        "",
        "",
        f"[bold]{yuan(s.window_pay)}[/bold]",
        f"net self-pay 个人负担 {yuan(s.net_selfpay)}",
    )
    return t


def accounts_table(title: str, acc: YearAccounts) -> Table:
    t = Table(title=title)
    for col in ("layer", "deductible used", "eligible cum", "paid", "self-pay cum"):
        t.add_column(col, justify="left" if col == "layer" else "right")
    for lid, a in sorted(acc.layers.items()):
        if a == ZERO:
            continue
        t.add_row(lid, *(yuan(x) for x in a.as_tuple()))
    t.caption = f"admissions this year: {acc.admissions}"
    return t


def print_slip(
    console: Console,
    s: Settlement,
    table: PolicyTable | None = None,
    person: YearAccounts | None = None,
    household: YearAccounts | None = None,
    words: bool = True,
) -> None:
    console.print(slip(s, table))
    if words:
        for line in explain(s, table):
            console.print(f"  {line.en}", highlight=False)
            console.print(f"  {line.zh}", highlight=False)
    if person is not None:
        console.print(
            accounts_table(f"Year-to-date accounts {s.year}: person {s.person_id}", person)
        )
    if household is not None and any(a != ZERO for a in household.layers.values()):
        console.print(accounts_table(f"Household {s.household} {s.year}", household))
