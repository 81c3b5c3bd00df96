"""``onestop example``: runnable examples built from the seed facts of the issues."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from engine.money import yuan

example_app = typer.Typer(
    add_completion=False, help="Runnable examples on synthetic data (see README)."
)


@example_app.callback()
def _group() -> None:
    """Runnable examples on synthetic data."""


def _bp(x: int | None) -> str:
    return "-" if x is None else f"{x / 100:.2f}%"


@example_app.command("hongan-2018")
def hongan_2018(
    out: Annotated[Path, typer.Option("--out", help="Output directory (input/, batch/, ...)")],
    seed: Annotated[
        int, typer.Option(help="Random seed: the same seed gives the same files")
    ] = 2018,
    people: Annotated[int, typer.Option(help="Insured people (the seed's 65,940)")] = 65_940,
    service: Annotated[
        bool,
        typer.Option(help="Also run the year through the service on SQLite (claims paid)"),
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print figures.json")] = False,
) -> None:
    """The Backbone year in Hong'an, 2018, on synthetic data, beside the seed's 336 claims and
    1.16 million yuan.

    Writes a registry of insured people and a year of discharges (input/), settles them with
    `onestop batch` and policies/hongan (batch/), then, unless --no-service, records the
    premium, settles the year through the service on SQLite, approves and pays the claims
    after a simulated delay and computes the fund figures (service/)."""
    from adapters.examples import hongan2018 as ex

    if people < 1:
        typer.echo("--people is at least 1", err=True)
        raise typer.Exit(2)
    try:
        doc = ex.run(out, seed=seed, people=people, service=service)
    except (RuntimeError, OSError) as e:
        typer.echo(f"onestop example hongan-2018: {e}", err=True)
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps(doc, indent=2, ensure_ascii=False))
        return
    b, s = doc["batch"], doc["seed_facts"]
    v = doc.get("service")
    rows = [
        ("insured people", f"{people:,}", f"{s['insured']:,}"),
        ("money in (premium)", yuan(doc["money_in"]), yuan(s["money_in"])),
        ("discharges settled", f"{doc['bills']:,}", "-"),
        ("Backbone claims", f"{b['claims']:,}", f"{s['claims']:,}"),
        ("Backbone paid", yuan(b["paid"]), yuan(s["paid"])),
        ("loss ratio", _bp(b["loss_ratio_bp"]), _bp(ex.loss_ratio_bp(s["paid"], s["money_in"]))),
        ("mean claim", yuan(b["mean_claim"]), yuan((2 * s["paid"] + s["claims"]) // (2 * s["claims"]))),
        ("largest payout", yuan(b["largest"]), "16,000.00 (one person)"),
        ("payouts >= 16,000 yuan", f"{b['at_least_16000_yuan']:,}", "1 reported"),
    ]  # fmt: skip
    if v is not None:
        d = v["days_to_payment"]
        rows += [
            ("service: claims filed", f"{v['claims']:,}", f"{s['claims']:,}"),
            ("service: claims paid", f"{v['paid_claims']:,}", f"{s['claims']:,}"),
            ("service: paid", yuan(v["paid"]), yuan(s["paid"])),
            ("service: loss ratio", _bp(v["loss_ratio_bp"]), _bp(ex.loss_ratio_bp(s["paid"], s["money_in"]))),
            ("service: days to payment", f"median {d['median']}, p90 {d['p90']}", "3 days to 1 week"),
        ]  # fmt: skip
    typer.echo(f"{'':26}{'this run':>24}{'seed (CFPA, by 2019-08-28)':>30}")
    for what, mine, theirs in rows:
        typer.echo(f"{what:26}{mine:>24}{theirs:>30}")
    parts = "input/, batch/, service/" if service else "input/, batch/"
    typer.echo(f"files in {out}/ ({parts}, figures.json); seed {seed}")
