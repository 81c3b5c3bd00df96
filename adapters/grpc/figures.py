"""Exact figures in terminal output: yuan from fen, tables whose cells fold (never cut), plain
tab-separated text when not on a terminal.
"""

from __future__ import annotations

import typer
from rich.table import Table

from adapters.grpc.clicommon import out


def money(fen: int) -> str:
    """Yuan with thousands separators, exact (integer arithmetic)."""
    from engine.money import yuan as grouped

    return grouped(fen)


def yuan(fen: int) -> str:
    """Exact yuan with 2 decimals (no float, no thousands separators, never shortened)."""
    sign = "-" if fen < 0 else ""
    y, f = divmod(abs(fen), 100)
    return f"{sign}{y}.{f:02d}"


def _emit(title: str, columns: list[str], rows: list[list[str]]) -> None:
    """A table on a terminal (cells fold, never cut); plain tab-separated text otherwise,
    every figure in full."""
    if out.is_terminal:
        t = Table(title=title)
        for c in columns:
            t.add_column(c, overflow="fold", justify="right" if c in _RIGHT else "left")
        for r in rows:
            t.add_row(*r)
        out.print(t)
        return
    typer.echo(f"# {title}")
    typer.echo("\t".join(columns))
    for r in rows:
        typer.echo("\t".join(r))


_RIGHT = {"ours", "theirs", "count", "pay", "amount", "medfee_sumamt", "fund_pay_sumamt",
          "psn_cash_pay", "pay (yuan)"}  # fmt: skip


def _say(text: str) -> None:
    if out.is_terminal:
        out.print(text, highlight=False)
    else:
        typer.echo(text)
