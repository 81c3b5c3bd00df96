"""``onestop publish``: the public pages of fund figures, as a static site (issue 10).

    onestop publish --fund 370200 --year 2018 --out site/ --db sqlite:///var/onestop.db
    onestop publish --fund 370200 --region 421122 --as-of 2018-12-31 --out site/ --json

Reads the store (like ``onestop ledger``; it changes no schema), gathers each (fund, county) asked
for (``FundService.facts``), sums the figures (``engine.fundstats``) and writes the site
(``adapters.publish.site``): ``index.html``, one page per fund, county and year with its
``figures.json`` and ``figures.csv``, and every page's figures together in ``figures.json`` and
``figures.csv`` at the top. The figures are read first, then the ledger's waiting events are
sealed (``--no-seal``: they are not), so that the checkpoint stamped on each page (block height
and digest) covers every record the figures were computed from.

Without ``--region``, every region whose funds file or policy tables know the fund is
published; regions with no data at all are skipped (said on stderr). ``--year`` defaults to the
year of ``--as-of``, ``--as-of`` to today (Asia/Shanghai) or the end of ``--year`` if earlier.

Exit codes (adapters/cli/exitcodes.py): 0 written; 1 the output directory cannot be written, or
a value is refused (a bad region or fund code); 2 usage (a bad date or year, memory://); 3 an
unknown fund or region, or no data for what was asked; 5 a store that cannot be opened. Every
error is one line naming the value.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, cast

import typer

from adapters.cli.exitcodes import Exit
from adapters.cli.ledger import Db, Json, _say, _user_error, open_store
from adapters.cli.output import print_json
from adapters.defaults import DEFAULT_DB
from engine.claims import FundFacts
from engine.errors import NotFound
from engine.fundstats import SHANGHAI, Checkpoint, FundFigures, figures
from engine.money import yuan


def _day(value: str) -> date:
    try:
        if len(value) != 10:
            raise ValueError
        return date.fromisoformat(value)
    except ValueError:
        _user_error(f"--as-of {value!r} is not a date YYYY-MM-DD", Exit.USAGE)


def _dates(year: int | None, as_of: str | None) -> tuple[int, date]:
    today = datetime.now(SHANGHAI).date()
    day = _day(as_of) if as_of is not None else None
    if year is None:
        year = (day or today).year
    if not 1900 <= year <= 2999:
        _user_error(f"--year {year} is not an accounting year (1900..2999)", Exit.USAGE)
    if day is None:
        day = min(today, date(year, 12, 31))
    return year, day


def _regions_of(svc: Any, funds: Any, code: str) -> list[str]:
    """Every region whose funds file declares ``code`` or whose tables have a layer with it."""
    found = {r for (r, c) in funds.book().funds if c == code}
    try:
        tables = svc.policies().tables
    except NotFound:  # no policy table stored yet
        tables = ()
    found |= {t.region.code for t in tables if any(la.fund_code == code for la in t.layers)}
    return sorted(found)


def gather(
    db: str, codes: list[str], regions: list[str] | None, year: int, as_of: date, seal: bool
) -> tuple[list[FundFigures], int]:
    """(the figures of every (fund, county) asked for, events left unsealed)."""
    from engine.service.funds import FundService
    from engine.service.ledger import LedgerService
    from engine.service.usecases import SettlementService

    with open_store(db, "data") as store:
        uow = cast(Any, store.uow)
        svc = SettlementService(uow)
        funds = FundService(svc)
        facts: list[FundFacts] = []
        for code in codes:
            asked = regions or _regions_of(svc, funds, code)
            if not asked:
                _user_error(
                    f"fund {code!r} is unknown: no funds file and no policy table in the store "
                    "names it",
                    Exit.NOT_FOUND,
                )
            for region in asked:
                facts.append(funds.facts(region, code, year, as_of))
        out: list[FundFigures] = []
        for f in facts:
            fig = figures(f)
            if not fig.has_data:
                what = f"fund {f.fund_code!r} of region {f.region!r} in {year}"
                if regions:
                    _user_error(
                        f"no data for {what}: no money in, no pays, no claims or relief cases",
                        Exit.NOT_FOUND,
                    )
                _say(f"skipped {what}: no data", err=True)
                continue
            out.append(fig)
        if not out:
            _user_error(
                f"no data for fund(s) {', '.join(repr(c) for c in codes)} in {year} in any region",
                Exit.NOT_FOUND,
            )
        ledger = LedgerService(uow)
        if seal:  # after the reads: the checkpoint covers every record read
            ledger.seal()
        head = ledger.checkpoint()
        pending = ledger.pending()
    cp = None if head is None else Checkpoint(head.header.height, head.hash, head.header.sealed_at)
    out = [replace(f, checkpoint=cp) for f in out]
    return out, pending


def publish(
    fund: Annotated[
        list[str], typer.Option("--fund", metavar="CODE", help="Fund code, repeatable.")
    ],
    out: Annotated[
        Path, typer.Option("--out", metavar="DIR", help="Write the site here (created).")
    ],
    region: Annotated[
        list[str] | None,
        typer.Option(
            "--region", metavar="CODE", help="Region (county) code, repeatable; default: all."
        ),
    ] = None,
    year: Annotated[
        int | None, typer.Option("--year", help="Accounting year (default: of --as-of).")
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of", metavar="DATE", help="Enrolment counted on this date (YYYY-MM-DD)."
        ),
    ] = None,
    db: Db = DEFAULT_DB,
    as_json: Json = False,
    seal: Annotated[
        bool,
        typer.Option(
            "--seal/--no-seal",
            help="Seal the ledger's waiting events after reading (default), so that the "
            "checkpoint on the pages covers the figures.",
        ),
    ] = True,
) -> None:
    """Publish fund figures as a static site (index, one page per fund and county, charts,
    figures.json and figures.csv), stamped with the ledger checkpoint."""
    yr, day = _dates(year, as_of)
    try:  # before reading anything: a directory that cannot be written is said at once
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".onestop-publish-probe"
        probe.write_text("", encoding="utf-8")
        probe.unlink()
    except OSError as e:
        _user_error(f"cannot write to --out {out}: {e.strerror or e}", Exit.REFUSED)
    figs, pending = gather(db, list(fund), list(region) if region else None, yr, day, seal)

    from adapters.publish.site import Page, write_site

    pages = [Page(f, pending) for f in figs]
    try:
        write_site(pages, out)
    except OSError as e:
        _user_error(f"cannot write {e.filename or out}: {e.strerror or e}", Exit.REFUSED)
    if as_json:
        print_json([f.to_json() for f in figs])
        return
    for f in figs:
        _say(
            f"{out / f.slug / 'index.html'}: {f.fund_code} {f.region} {f.year}, money in "
            f"{yuan(f.money_in.fen)}, money out {yuan(f.money_out)}, balance {yuan(f.balance)} "
            "yuan"
        )
    cp = figs[0].checkpoint
    _say(
        f"{out / 'index.html'}: {len(figs)} page(s); "
        + (
            f"ledger checkpoint height {cp.height} hash {cp.hash}"
            if cp is not None
            else "ledger not sealed"
        )
        + (f" ({pending} event(s) not sealed)" if pending else "")
    )


if __name__ == "__main__":  # pragma: no cover
    typer.run(publish)
