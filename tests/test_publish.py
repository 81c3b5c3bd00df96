"""The published fund pages in a real headless browser (the system's Chromium through
playwright's sync API): each page loads with no console error, every chart's SVG is visible with
a size, every number on the page equals figures.json and equals sums computed here, apart, from
the records; no person id or bill id reaches the site."""

from __future__ import annotations

import json
import os
import re
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

from typer.testing import CliRunner  # noqa: E402

from adapters.cli.app import app as cli  # noqa: E402
from adapters.publish.site import Page, parse_shown, write_site  # noqa: E402
from engine.claims import ClaimKind, FundFacts  # noqa: E402
from engine.fundstats import Checkpoint, figures, flat  # noqa: E402
from tests.browser import chromium  # noqa: E402
from tests.fundfacts import golden_facts  # noqa: E402

CN = timezone(timedelta(hours=8))


# the module's tests on one xdist worker (--dist loadgroup): its module-scoped fixtures
# are made once, not once on each worker that runs one of its tests
pytestmark = pytest.mark.xdist_group("publish")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


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
    for path in files:
        text = path.read_text(encoding="utf-8")
        for s in secret:
            assert s not in text, (path, s)
        for marker in ("PID-", "BILL-", "SET-", "PAYER-"):
            assert marker not in text, (path, marker)


def test_times_read_in_shanghai() -> None:
    """S1 settled 2018-02-28T17:00Z counts in March (Asia/Shanghai), as the page says."""
    f = figures(golden_facts())
    march = next(m for m in f.monthly if m.month == "2018-03")
    s1 = next(p for p in golden_facts().window_pays if p.settlement_id == "S1")
    assert s1.settled_at.astimezone(UTC).month == 2
    assert march.paid_out >= s1.pay


# --- the command over a real store, data made through the use cases ---------------------


class Expect:
    """What each fund's page must show, summed here from what the use cases returned."""

    def __init__(self) -> None:
        self.v: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.secret: set[str] = set()

    def add(self, fund: str, key: str, n: int) -> None:
        self.v[fund][key] += n


@pytest.fixture(scope="module")
def store_site(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path, Expect, Any]:
    from adapters.store.sql import SqlStore
    from engine.service.funds import FundService
    from engine.service.usecases import SettlementService
    from tests.claims_fixtures import PERSONS, REGION, TABLE, bill, funds_yaml, person

    d = tmp_path_factory.mktemp("store")
    url = f"sqlite:///{d}/onestop.db"
    store = SqlStore(url, migrate=True)
    svc = SettlementService(store.uow)
    fs = FundService(svc)
    svc.put_policy(TABLE)
    fs.put_funds(funds_yaml(budget=5_000_000, mode="hard"))
    # the fixture's persons under ids long enough to look for in the site
    ids = {p.id: f"PID-{p.id}-4711" for p in PERSONS}
    svc.import_registry([
        person(ids[p.id], f"HH-{p.household}-4711", poor=any(t.tag == "poor" for t in p.tags),
               birth_date=p.birth_date.isoformat(), township=p.township, village=p.village)
        for p in PERSONS
    ])  # fmt: skip
    ex = Expect()
    ex.add("370200", "enrolled", 2)  # p1, p2: poor and 18-60 (p3 not poor, p4 too old)
    ex.add("390100", "enrolled", 4)  # no eligibility: every person of the region
    ex.add("610900", "enrolled", 4)
    recs = {}
    for i, (pid, amount, month) in enumerate(
        [("p1", 900_000, 3), ("p2", 2_500_000, 4), ("p4", 1_200_000, 5), ("p3", 700_000, 6),
         ("p1", 300_000, 7)]
    ):  # fmt: skip
        rec, _ = svc.settle(f"req-{i}-4711", bill(f"BILL-{i}-4711", ids[pid], amount, month=month))
        recs[i] = rec
        ex.secret |= {ids[pid], f"BILL-{i}-4711", rec.settlement_id, f"req-{i}-4711",
                      rec.settlement.household}  # fmt: skip
    svc.reverse(settlement_id=recs[4].settlement_id, reversal_request_id="rev-4")
    for i, rec in recs.items():
        for r in rec.settlement.layers:
            if r.settle_at == "window" and not r.alert and i != 4:
                ex.add(r.fund_code, "window.fen", r.pay)
                ex.add(r.fund_code, "window.settlements", 1)
    # claims (370200) and relief cases (610900): approve, pay, reject
    claims = {i: {c.kind: c for c in fs.claims_of(rec.settlement_id)} for i, rec in recs.items()}
    for by in claims.values():
        for c in by.values():
            ex.secret.add(c.claim_id)
            name = "claims" if c.kind == "claim" else "relief"
            ex.add(c.fund_code, f"{name}.all.count", 1)
            ex.add(c.fund_code, f"{name}.all.fen", c.filed_amount)
    # (bill, kind, step, amount, paid date)
    steps: list[tuple[int, ClaimKind, str, int | None, str | None]] = [
        (0, "claim", "pay", None, "2024-04-20"),
        (1, "claim", "pay", 800_000, "2024-06-30"),
        (2, "claim", "reject", None, None),
        (0, "relief", "pay", None, "2024-05-01"),
        (1, "relief", "approve", 200_000, None),
        (3, "relief", "reject", None, None),
    ]  # p4's relief case stays filed; bill 4's claims were rejected by its reversal
    for i, kind, step, approved, paid in steps:
        c = claims[i][kind]
        name = "claims" if kind == "claim" else "relief"
        if step == "reject":
            fs.reject(c.claim_id, "not covered")
            ex.add(c.fund_code, f"{name}.rejected.count", 1)
            continue
        c = fs.approve(c.claim_id, approved, "checked")
        if step == "approve":
            ex.add(c.fund_code, f"{name}.approved.fen", c.approved_amount or 0)
            ex.add(c.fund_code, "payable", c.approved_amount or 0)
            continue
        assert paid is not None  # every pay step has its date
        c = fs.pay(c.claim_id, paid, f"PAYREF-{i}-{kind}")
        ex.secret.add(f"PAYREF-{i}-{kind}")
        ex.add(c.fund_code, f"{name}.paid.count", 1)
        ex.add(c.fund_code, f"{name}.paid.fen", c.approved_amount or 0)
    kinds: list[tuple[ClaimKind, str]] = [("claim", "claims"), ("relief", "relief")]
    for kind, section in kinds:
        c4 = claims[4].get(kind)
        if c4 is not None:
            ex.add(c4.fund_code, f"{section}.rejected.count", 1)  # by the reversal
    ex.add("610900", "relief.filed.count", 1)  # p4's case
    money = [
        ("370200", "donation", "Donor Zhang San", 2_500_050, "2024-01-10"),
        ("370200", "premium", "Insurer PAYER-X", 1_499_951, "2024-02-01"),
        ("610900", "government", "County finance", 1_000_000, "2024-01-05"),
        ("390100", "premium", "Medical insurance fund", 9_000_000, "2024-01-02"),
    ]
    for j, (code, source, payer, amount, on) in enumerate(money):
        fs.record_money_in(f"mi-{j}", REGION, code, 2024, source, payer, amount, on)
        ex.add(code, "money_in.fen", amount)
        ex.add(code, "money_in.count", 1)
        ex.add(code, f"money_in.by_kind.{source}.fen", amount)
        ex.secret.add(payer)
    # the service's own section 12 balance of the hard fund (its fund_used row)
    ex.v["370200"]["budget_left"] = fs.balance(REGION, "370200", 2024) or 0
    for v in ex.v.values():
        v["money_out"] = v["window.fen"] + v["claims.paid.fen"] + v["relief.paid.fen"]
        v["balance"] = v["money_in.fen"] - v["money_out"]
    store.dispose()

    out = d / "site"
    res = CliRunner().invoke(cli, [
        "publish", "--fund", "370200", "--fund", "610900", "--fund", "390100",
        "--region", REGION, "--year", "2024", "--as-of", "2024-12-31",
        "--out", str(out), "--db", url, "--json",
    ])  # fmt: skip
    assert res.exit_code == 0, res.output
    return url, out, ex, json.loads(res.stdout)


def test_published_from_the_store(browser: Any, store_site: tuple[str, Path, Expect, Any]) -> None:
    url, out, ex, printed = store_site
    assert [d["fund_code"] for d in printed] == ["370200", "610900", "390100"]
    for doc in printed:
        slug = f"{doc['region']}-{doc['fund_code']}-{doc['year']}"
        assert json.loads((out / slug / "figures.json").read_text(encoding="utf-8")) == doc
        shown = check_page(browser, out / slug / "index.html", doc, charts=3)
        values = dict(flat(doc))
        want = ex.v[doc["fund_code"]]
        for key in set(want) | {"money_in.fen", "money_out", "balance", "enrolled", "payable",
                                "window.fen", "claims.paid.fen", "relief.paid.fen"}:  # fmt: skip
            assert values[key] == want.get(key, 0), (doc["fund_code"], key)
            if key in shown:
                assert shown[key] == want.get(key, 0), (doc["fund_code"], key)
        # sealed after reading: the stamp is the ledger's head now
        assert doc["checkpoint"] is not None
    res = CliRunner().invoke(cli, ["ledger", "checkpoint", "--db", url, "--json"])
    head = json.loads(res.stdout)
    assert all(d["checkpoint"]["hash"] == head["hash"] for d in printed)
    assert all(d["checkpoint"]["height"] == head["height"] for d in printed)
    # the hard budget: used = the claims at their current amounts (the window layer is 390100),
    # the same balance the settlement service limits the fund with
    bb = dict(flat(printed[0]))
    assert bb["budget_left"] == 5_000_000 - bb["budget_used"] == ex.v["370200"]["budget_left"]
    # bill 0's claim paid in full, bill 1's approved lower and paid; rejected ones give theirs back
    assert bb["budget_used"] == 225_000 + 800_000


def test_store_site_has_no_personal_data(store_site: tuple[str, Path, Expect, Any]) -> None:
    _, out, ex, _ = store_site
    files = [p for p in out.rglob("*") if p.is_file()]
    assert len(files) == 3 * 3 + 3
    for p in files:
        text = p.read_text(encoding="utf-8")
        for s in ex.secret:
            assert s not in text, (p, s)
        # the ids' marker as an id ends ("PID-3-4711"), not inside a chart's coordinate
        # ("M 165.974711 ...", which a date-dependent chart can draw)
        assert not re.search(r"-4711(?![\d.])", text), p
        assert "PID-" not in text and "BILL-" not in text and "HH-" not in text


# --- mistakes: one line naming the value, the documented exit code ----------------------


@pytest.fixture(scope="module")
def small_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A store with the claims county's table and funds and one donation: nothing sealed."""
    from adapters.store.sql import SqlStore
    from engine.service.funds import FundService
    from engine.service.usecases import SettlementService
    from tests.claims_fixtures import REGION, TABLE, funds_yaml

    url = f"sqlite:///{tmp_path_factory.mktemp('small')}/onestop.db"
    store = SqlStore(url, migrate=True)
    svc = SettlementService(store.uow)
    fs = FundService(svc)
    svc.put_policy(TABLE)
    fs.put_funds(funds_yaml())
    fs.record_money_in(
        "d1", REGION, "370200", 2024, "donation", "Platform", 123_456_789, "2024-03-01"
    )
    store.dispose()
    return url


def run_publish(*args: str) -> Any:
    return CliRunner().invoke(cli, ["publish", *args])


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["--fund", "999999"], 3, "'999999'"),
        (["--fund", "370200", "--region", "000000"], 3, "000000/370200"),
        (["--fund", "370200", "--region", "990010", "--year", "2023"], 3, "no data for fund '370200' of region '990010' in 2023"),
        (["--fund", "370200", "--as-of", "2024-13-01"], 2, "'2024-13-01'"),
        (["--fund", "370200", "--year", "99"], 2, "--year 99"),
    ],
)  # fmt: skip
def test_mistakes(small_store: str, tmp_path: Path, args: list[str], code: int, words: str) -> None:
    res = run_publish(*args, "--out", str(tmp_path / "site"), "--db", small_store)
    assert res.exit_code == code, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], res.output


def test_unwritable_out_and_bad_store(small_store: str, tmp_path: Path) -> None:
    afile = tmp_path / "a-file"
    afile.write_text("x")
    res = run_publish("--fund", "370200", "--out", str(afile / "site"), "--db", small_store)
    assert res.exit_code == 1, res.output
    assert res.output.strip().splitlines() == [res.output.strip()]
    assert f"--out {afile / 'site'}" in res.output
    res = run_publish("--fund", "370200", "--out", str(tmp_path / "s"), "--db", "memory://")
    assert res.exit_code == 2 and "memory://" in res.output
    missing = tmp_path / "none.db"
    res = run_publish(
        "--fund", "370200", "--out", str(tmp_path / "s"), "--db", f"sqlite:///{missing}"
    )
    assert res.exit_code == 5 and str(missing) in res.output


def test_not_sealed_is_said(browser: Any, small_store: str, tmp_path: Path) -> None:
    out = tmp_path / "site"
    res = run_publish("--fund", "370200", "--year", "2024", "--out", str(out), "--db", small_store,
                      "--no-seal")  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "ledger not sealed" in res.output and "event(s) not sealed" in res.output
    doc = json.loads((out / "990010-370200-2024" / "figures.json").read_text(encoding="utf-8"))
    assert doc["checkpoint"] is None and doc["money_in"]["fen"] == 123_456_789
    shown = check_page(browser, out / "990010-370200-2024" / "index.html", doc, charts=3)
    assert shown["money_in.fen"] == 123_456_789
    got = load(browser, out / "990010-370200-2024" / "index.html")
    assert "1,234,567.89" in got.page.locator("#summary-zh").inner_text()
    assert "Not sealed" in got.page.locator("#checkpoint").inner_text()
    got.page.close()


def test_cjk_fonts_installed_after_matplotlibs_cache_are_found(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """matplotlib never rescans its font cache: a CJK font installed after its first use (as
    .ci/run installs fonts-noto-cjk) must still be the charts' font, not DejaVu's boxes."""
    from matplotlib import font_manager

    from adapters.publish import charts

    cjk = [
        p
        for p in font_manager.findSystemFonts()
        if "cjk" in os.path.basename(p).lower() or "wqy" in os.path.basename(p).lower()
    ]
    if not cjk:
        pytest.skip("no CJK font file on this machine (.ci/run installs fonts-noto-cjk)")
    stale = [f for f in font_manager.fontManager.ttflist if f.name not in charts.FONTS[:-1]]
    monkeypatch.setattr(font_manager.fontManager, "ttflist", stale)  # the cache from before
    with charts.style():
        known = {f.name: f.fname for f in font_manager.fontManager.ttflist}
    got = [known[n] for n in charts.FONTS[:-1] if n in known]
    assert got and got[0] in cjk


def test_summary_nouns_agree_with_their_counts() -> None:
    """ "1 record", "2 records": the English summary's nouns follow the figures beside them."""
    from adapters.publish.site import render_page

    g = golden_facts()
    paid = tuple(c for c in g.claims if c.status == "paid" and c.kind == "claim")[:1]
    one = replace(g, money_in=g.money_in[:1], claims=paid, enrolled=1)
    seen = set()
    for facts in (g, one):
        html = render_page(Page(figures(facts, None), pending=0), charts=False)
        m = re.search(r'id="summary-en">(.*?)</p>', html, re.S)
        assert m is not None
        text = " ".join(re.sub(r"<[^>]+>", "", m.group(1)).split())
        pairs = re.findall(
            r"([\d,]+) (persons?|records?|settlements?|claims?|relief cases?)\b", text
        )
        assert len(pairs) == 5, text
        for num, noun in pairs:
            assert noun.endswith("s") == (num != "1"), (num, noun, text)
            seen.add(num == "1")
    assert seen == {True, False}
