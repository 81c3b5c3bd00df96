"""The settlement slip for the window client: the core CLI's slip (``adapters.cli.slip``) when
it is installed, else a plain one here (one line per layer: fund code, base, pay, cap; window
pay; net self-pay; accounts)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from engine.accounts import ZERO, YearAccounts
from engine.result import Settlement


def _yuan(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100:,}.{abs(fen) % 100:02d}"


def accounts_table(title: str, acc: YearAccounts) -> Table:
    t = Table(title=title)
    for c in ("layer", "deductible used", "eligible cum", "paid", "self-pay cum"):
        t.add_column(c, justify="left" if c == "layer" else "right")
    for lid, a in sorted(acc.layers.items()):
        if a != ZERO:
            t.add_row(lid, *(_yuan(x) for x in a.as_tuple()))
    t.caption = f"admissions this year: {acc.admissions}"
    return t


def _plain_slip(
    console: Console,
    s: Settlement,
    person: YearAccounts | None,
    household: YearAccounts | None,
) -> None:
    t = Table(
        title=f"Settlement slip 结算单 · bill {s.bill_id} · person {s.person_id} · {s.policy}"
    )
    for c in ("layer", "fund", "base", "deductible", "pay", "cap / note"):
        t.add_column(c, justify="left" if c in ("layer", "fund", "cap / note") else "right")
    t.add_row("total 总费用", "", _yuan(s.buckets.total), "", "", "")
    for r in s.layers:
        note = r.cap if r.applied else f"not applied: {r.reason}"
        if r.settle_at == "after_discharge":
            note = f"after discharge {note}".strip()
        if r.alert:
            note = f"ALERT relief {_yuan(r.relief)}"
        t.add_row(
            r.layer_id,
            r.fund_code,
            _yuan(r.base) if r.applied else "",
            _yuan(r.deductible) if r.deductible else "",
            _yuan(r.pay) if r.applied else "-",
            note,
        )
    t.add_row("window 个人现金支付", "", "", "", f"[bold]{_yuan(s.window_pay)}[/bold]", "")
    t.add_row("net self-pay 个人负担", "", "", "", _yuan(s.net_selfpay), "")
    console.print(t)
    if person is not None:
        console.print(accounts_table(f"Year-to-date {s.year}: person {s.person_id}", person))
    if household is not None and any(a != ZERO for a in household.layers.values()):
        console.print(accounts_table(f"Household {s.household} {s.year}", household))


def print_slip(
    console: Console,
    s: Settlement,
    person: YearAccounts | None = None,
    household: YearAccounts | None = None,
) -> None:
    try:
        from adapters.cli.slip import print_slip as core_print_slip
    except ImportError:
        _plain_slip(console, s, person, household)
        return
    core_print_slip(console, s, None, person, household)
