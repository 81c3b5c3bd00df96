"""The published fund pages in a real headless browser (the system's Chromium through
playwright's sync API): each page loads with no console error, every chart's SVG is visible with
a size, every number on the page equals figures.json and equals sums computed here, apart, from
the records; no person id or bill id reaches the site."""

from __future__ import annotations

import json
import os
import shutil
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("jinja2")
sync_api = pytest.importorskip("playwright.sync_api")

from adapters.publish.site import Page, parse_shown, write_site  # noqa: E402
from engine.claims import FundFacts  # noqa: E402
from engine.fundstats import Checkpoint, figures, flat  # noqa: E402
from tests.fundfacts import golden_facts  # noqa: E402

CN = timezone(timedelta(hours=8))


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    path = chromium_path()
    if path is None:
        pytest.skip("no Chromium found (chromium on PATH or /usr/bin/chromium); install it")
    with sync_api.sync_playwright() as p:
        args = ["--no-sandbox"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []
        b = p.chromium.launch(executable_path=path, headless=True, args=args)
        yield b
        b.close()


class Loaded:
    def __init__(self, page: Any, messages: list[tuple[str, str]]):
        self.page = page
        self.messages = messages

    def numbers(self) -> dict[str, list[Any]]:
        """Every ``data-key`` element's value, read back from its text."""
        got: dict[str, list[Any]] = defaultdict(list)
        for key, unit, text in self.page.eval_on_selector_all(
            "[data-key]", "els => els.map(e => [e.dataset.key, e.dataset.unit, e.textContent])"
        ):
            got[key].append(parse_shown(text, unit or "text"))
        return got


def load(browser: Any, path: Path) -> Loaded:
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    messages: list[tuple[str, str]] = []
    page.on("console", lambda m: messages.append((m.type, m.text)))
    page.on("pageerror", lambda e: messages.append(("pageerror", str(e))))
    page.on("requestfailed", lambda r: messages.append(("requestfailed", r.url)))
    page.goto(path.resolve().as_uri(), wait_until="load")
    return Loaded(page, messages)


def check_page(browser: Any, html: Path, doc: dict[str, Any], charts: int) -> dict[str, Any]:
    """Loads ``html``: no console error, ``charts`` visible SVGs, every number = ``doc``.
    Returns the page's numbers by key (one value each)."""
    got = load(browser, html)
    try:
        errors = [m for m in got.messages if m[0] in ("error", "pageerror", "requestfailed")]
        assert errors == []
        svgs = got.page.locator("svg.chart-svg")
        assert svgs.count() == charts
        for i in range(charts):
            svg = svgs.nth(i)
            assert svg.is_visible()
            box = svg.bounding_box()
            assert box is not None and box["width"] > 50 and box["height"] > 50, box
            # drawn: it holds paths (bars, axes), not an empty frame
            assert svg.locator("path").count() > 5
        numbers = got.numbers()
        values = dict(flat(doc))
        assert numbers, "no marked number on the page"
        for key, shown in numbers.items():
            assert key in values, key
            assert all(v == values[key] for v in shown), (key, shown, values[key])
        return {k: v[0] for k, v in numbers.items()}
    finally:
        got.page.close()


# --- sums computed apart from the records ------------------------------------------------


def independent(facts: FundFacts) -> dict[str, int]:
    """The main figures summed here straight from the records (not through fundstats)."""
    out: dict[str, int] = {}
    out["money_in.fen"] = sum(r.amount for r in facts.money_in)
    out["money_in.count"] = len(facts.money_in)
    for kind in ("premium", "donation", "government", "other"):
        out[f"money_in.by_kind.{kind}.fen"] = sum(
            r.amount for r in facts.money_in if r.kind == kind
        )
    live = [p for p in facts.window_pays if p.settle_at == "window" and not p.reversed]
    out["window.fen"] = sum(p.pay for p in live)
    out["window.settlements"] = len({p.settlement_id for p in live})
    for kind, name in (("claim", "claims"), ("relief", "relief")):
        cs = [c for c in facts.claims if c.kind == kind]
        out[f"{name}.all.count"] = len(cs)
        out[f"{name}.all.fen"] = sum(c.filed_amount for c in cs)
        paid = [c for c in cs if c.status == "paid"]
        out[f"{name}.paid.count"] = len(paid)
        out[f"{name}.paid.fen"] = sum(c.approved_amount or 0 for c in paid)
        appr = [c for c in cs if c.status == "approved"]
        out[f"{name}.approved.fen"] = sum(c.approved_amount or 0 for c in appr)
        out[f"{name}.rejected.count"] = sum(c.status == "rejected" for c in cs)
        out[f"{name}.filed.count"] = sum(c.status == "filed" for c in cs)
    out["money_out"] = out["window.fen"] + out["claims.paid.fen"] + out["relief.paid.fen"]
    out["payable"] = out["claims.approved.fen"] + out["relief.approved.fen"]
    out["balance"] = out["money_in.fen"] + facts.carried_in - out["money_out"]
    out["enrolled"] = facts.enrolled
    by_month: dict[str, int] = defaultdict(int)
    for r in facts.money_in:
        by_month[r.on.strftime("%Y-%m")] += r.amount
    for m, v in by_month.items():
        out[f"monthly.{m}.money_in"] = v
    paid_out: dict[str, int] = defaultdict(int)
    for p in live:
        paid_out[p.settled_at.astimezone(CN).strftime("%Y-%m")] += p.pay
    for c in facts.claims:
        if c.status == "paid":
            assert c.paid_date is not None
            paid_out[c.paid_date.strftime("%Y-%m")] += c.approved_amount or 0
    for m, v in paid_out.items():
        out[f"monthly.{m}.paid_out"] = v
    return out


# --- the site from FundFacts fixtures ------------------------------------------------------


def report_fund() -> FundFacts:
    """A second page: a report fund with no money in yet (loss ratio none, no budget left)."""
    g = golden_facts()
    return replace(
        g, region="450921", region_name="容县", budget_mode="report", budget=None,
        carried_in=0, money_in=(),
        claims=tuple(replace(c, region="450921") for c in g.claims[:3]),
    )  # fmt: skip


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[FundFacts]]:
    out = tmp_path_factory.mktemp("site")
    facts = [golden_facts(), report_fund()]
    cp = Checkpoint(7, "0123456789abcdef" * 4, "2018-07-01T00:00:00Z")
    pages = [Page(figures(facts[0], cp)), Page(figures(facts[1], None), pending=0)]
    write_site(pages, out)
    return out, facts


def test_fund_pages_in_chromium(browser: Any, site: tuple[Path, list[FundFacts]]) -> None:
    out, facts = site
    for f in facts:
        slug = f"{f.region}-{f.fund_code}-{f.year}"
        doc = json.loads((out / slug / "figures.json").read_text(encoding="utf-8"))
        shown = check_page(browser, out / slug / "index.html", doc, charts=3)
        for key, want in independent(f).items():
            assert doc_value(doc, key) == want, key
            if key in shown:
                assert shown[key] == want, key
        # the essentials are on the page, not only in the file
        for key in ("enrolled", "money_in.fen", "money_out", "payable", "balance",
                    "claims.paid.fen", "relief.paid.fen", "window.fen", "loss_ratio_bp"):  # fmt: skip
            assert key in shown, key
        for m in doc["monthly"]:
            assert shown[f"monthly.{m['month']}.money_in"] == m["money_in"]


def doc_value(doc: dict[str, Any], key: str) -> Any:
    return dict(flat(doc)).get(key, 0)


def test_checkpoint_stamp(browser: Any, site: tuple[Path, list[FundFacts]]) -> None:
    out, _ = site
    got = load(browser, out / "421122-370200-2018" / "index.html")
    stamp = got.page.locator("#checkpoint").inner_text()
    assert "0123456789abcdef" * 4 in stamp and "7" in stamp
    assert "onestop ledger verify" in got.page.content()
    assert "onestop ledger headers --after 7" in got.page.content()
    got.page.close()
    got = load(browser, out / "450921-370200-2018" / "index.html")
    assert "Not sealed" in got.page.locator("#checkpoint").inner_text()
    ratio = got.numbers()["loss_ratio_bp"]
    assert ratio and set(ratio) == {None}  # no money in: shown as a dash
    got.page.close()


def test_index_lists_every_page(browser: Any, site: tuple[Path, list[FundFacts]]) -> None:
    out, _ = site
    docs = json.loads((out / "figures.json").read_text(encoding="utf-8"))
    got = load(browser, out / "index.html")
    try:
        assert [m for m in got.messages if m[0] in ("error", "pageerror")] == []
        rows = got.page.locator("tr[data-page]")
        assert rows.count() == len(docs) == 2
        for i, doc in enumerate(docs):
            row = rows.nth(i)
            for key in ("money_in.fen", "money_out", "balance", "enrolled"):
                text = row.locator(f'[data-key="{key}"]').inner_text()
                unit = row.locator(f'[data-key="{key}"]').get_attribute("data-unit")
                assert parse_shown(text, unit) == dict(flat(doc))[key]
            row.locator("a").click()
            got.page.wait_for_load_state("load")
            assert got.page.url.endswith(
                f"{doc['region']}-{doc['fund_code']}-{doc['year']}/index.html"
            )
            got.page.go_back()
    finally:
        got.page.close()


def test_csv_equals_json(site: tuple[Path, list[FundFacts]]) -> None:
    import csv

    out, _ = site
    for d in sorted(p for p in out.iterdir() if p.is_dir()):
        doc = json.loads((d / "figures.json").read_text(encoding="utf-8"))
        with (d / "figures.csv").open(encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        values = dict(flat(doc))
        assert [r["key"] for r in rows] == list(values)
        for r in rows:
            v = values[r["key"]]
            assert r["value"] == ("" if v is None else str(v))


def test_no_personal_data(site: tuple[Path, list[FundFacts]]) -> None:
    out, facts = site
    secret = set()
    for f in facts:
        for c in f.claims:
            secret |= {c.person_id, c.bill_id, c.settlement_id, c.claim_id, c.household}
        for p in f.window_pays:
            secret |= {p.person_id, p.settlement_id}
        for r in f.money_in:
            secret |= {r.payer, r.record_id}
    files = [p for p in out.rglob("*") if p.is_file()]
    assert len(files) == 9
    for p in files:
        text = p.read_text(encoding="utf-8")
        for s in secret:
            assert s not in text, (p, s)
        for marker in ("PID-", "BILL-", "SET-", "PAYER-"):
            assert marker not in text, (p, marker)


def test_times_read_in_shanghai() -> None:
    """S1 settled 2018-02-28T17:00Z counts in March (Asia/Shanghai), as the page says."""
    f = figures(golden_facts())
    march = next(m for m in f.monthly if m.month == "2018-03")
    s1 = next(p for p in golden_facts().window_pays if p.settlement_id == "S1")
    assert s1.settled_at.astimezone(UTC).month == 2
    assert march.paid_out >= s1.pay
