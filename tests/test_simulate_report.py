"""The bureau's report of ``onestop simulate`` (adapters/simulate/report.py), as a bureau opens it:
in the system's Chromium (playwright's sync API, like tests/test_publish.py) the page loads with
no console error and no request beyond the file, every chart's SVG is drawn with a size, every
figure shown equals report.json formatted by the rules written here apart (yuan from fen with
Decimal), every figure of the file is on the page; the CSV files hold the same figures (yuan
equal to fen exactly, the same sums); long names and 13-digit amounts are shown whole; the
``simulate-report`` command writes the files or refuses in one line."""

from __future__ import annotations

import copy
import csv
import json
import re
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("jinja2")
sync_api = pytest.importorskip("playwright.sync_api")

from typer.testing import CliRunner  # noqa: E402

from adapters.cli.app import app as cli  # noqa: E402
from adapters.simulate.report import write_report  # noqa: E402
from adapters.simulate.schema import FiguresError, check_figures  # noqa: E402
from tests.browser import chromium  # noqa: E402

FIXTURE = Path(__file__).parent / "fixtures" / "simulate-figures.json"
CSV_FILES = ["funds.csv", "fund_totals.csv", "patients_largest.csv", "share.csv",
             "breakdown_tag.csv", "breakdown_hospital_level.csv", "breakdown_age_band.csv",
             "breakdown_hospital.csv", "alerts.csv", "budgets.csv"]  # fmt: skip
CHARTS = ["funds", "patients", "share", "budgets"]


# the module's tests on one xdist worker (--dist loadgroup): its module-scoped fixtures
# are made once, not once on each worker that runs one of its tests
pytestmark = pytest.mark.xdist_group("simulate_report")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


def figures() -> dict[str, Any]:
    return json.loads(FIXTURE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("report")
    doc = figures()
    written = write_report(doc, out)
    assert [p.name for p in written] == ["report.html", "report.json", *CSV_FILES]
    return out, doc


# --- the rules of the page, written apart from the renderer --------------------------------

MONEY = {"total", "fund_pay", "window_pay", "net_selfpay", "relief", "pay", "change", "sum",
         "lo", "hi", "base_fund_pay", "candidate_fund_pay", "budget", "base_used",
         "candidate_used", "base_left", "candidate_left", "base_relief", "candidate_relief",
         "base_window_pay", "candidate_window_pay", "base_net_selfpay",
         "candidate_net_selfpay"}  # fmt: skip
PERCENT = {"change_pct", "lo_pct", "hi_pct", "threshold_pct"}


def kind_of(key: str, value: Any) -> str:
    """money, percent, count or text: what the figure at ``key`` is (by the schema)."""
    parts = [p for p in key.split(".") if not p.isdigit()]
    leaf = parts[-1]
    if isinstance(value, bool) or (value is None and leaf not in PERCENT):
        return "text"
    if isinstance(value, int):
        if (
            leaf in MONEY
            or leaf == "change_deciles"
            or (leaf in ("base", "candidate") and parts[-2].startswith("largest_"))
        ):
            return "money"
        return "count" if leaf != "year" else "text"
    if leaf in PERCENT or leaf == "deciles":
        return "percent"
    return "text"


ALLOWED = {"money": {"fen", "fen+", "abs"}, "percent": {"pct", "pct+"}, "count": {"count"},
           "text": {"text", "bool"}}  # fmt: skip


def expected_text(value: Any, unit: str) -> str:
    if value is None:
        return "—"
    if unit in ("fen", "fen+", "abs"):
        d = Decimal(value) / 100
        if unit == "abs":
            d = abs(d)
        return ("+" if unit == "fen+" and value > 0 else "") + f"{d:,.2f}"
    if unit in ("pct", "pct+"):
        return ("+" if unit == "pct+" and Decimal(value) > 0 else "") + f"{value}%"
    if unit == "count":
        return f"{value:,}"
    if unit == "bool":
        return {True: "是 yes", False: "否 no"}[value]
    return str(value)


def raw(value: Any) -> str:
    return "null" if value is None else json.dumps(value) if isinstance(value, bool) else str(value)


def at(doc: Any, key: str) -> Any:
    for p in key.split("."):
        doc = doc[int(p)] if isinstance(doc, list) else doc[p]
    return doc


def leaves(doc: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from leaves(v, f"{prefix}{k}.")
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from leaves(v, f"{prefix}{i}.")
    else:
        yield prefix[:-1], doc


def pct(new: int, old: int) -> str | None:
    if old == 0:
        return None
    return str((Decimal(new - old) * 100 / old).quantize(Decimal("0.01"), ROUND_HALF_UP))


# --- the page in Chromium ------------------------------------------------------------------


class Opened:
    def __init__(self, browser: Any, html: Path, width: int = 1200):
        self.page = browser.new_page(viewport={"width": width, "height": 900})
        self.messages: list[tuple[str, str]] = []
        self.requests: list[str] = []
        self.page.on("console", lambda m: self.messages.append((m.type, m.text)))
        self.page.on("pageerror", lambda e: self.messages.append(("pageerror", str(e))))
        self.page.on("requestfailed", lambda r: self.messages.append(("requestfailed", r.url)))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.goto(html.resolve().as_uri(), wait_until="load")
        self.url = html.resolve().as_uri()

    def marked(self, attr: str) -> list[dict[str, str]]:
        return self.page.eval_on_selector_all(
            f"[data-{attr}]",
            f"""els => els.map(e => ({{key: e.dataset.{attr}, unit: e.dataset.unit,
                 value: e.dataset.value, text: e.textContent}}))""",
        )

    def close(self) -> None:
        self.page.close()


def test_page_loads_charts_and_every_figure(browser: Any, report: tuple[Path, dict]) -> None:
    out, doc = report
    got = Opened(browser, out / "report.html")
    try:
        assert got.messages == []
        # self-contained: nothing is fetched but the file itself (the icon is a data: URL)
        assert [u for u in got.requests if u != got.url and not u.startswith("data:")] == []
        svgs = got.page.locator("svg.chart-svg")
        assert [svgs.nth(i).get_attribute("data-chart") for i in range(svgs.count())] == CHARTS
        for i in range(svgs.count()):
            svg = svgs.nth(i)
            assert svg.is_visible()
            box = svg.bounding_box()
            assert box is not None and box["width"] > 200 and box["height"] > 100, box
            assert svg.locator("path").count() > 5  # drawn: bars, axes, not an empty frame

        check_every_figure(got, doc)
    finally:
        got.close()


def check_every_figure(got: Opened, doc: dict[str, Any]) -> None:
    """Every figure shown equals the JSON, formatted by the rules above; every figure of the
    JSON is shown; the derived ones equal sums made here."""
    marked = got.marked("key")
    values = dict(leaves(doc))
    for m in marked:
        key = m["key"]
        assert key in values, key
        value = values[key]
        assert m["unit"] in ALLOWED[kind_of(key, value)], (key, m["unit"])
        assert m["value"] == raw(value), key
        assert m["text"] == expected_text(value, m["unit"]), (key, m["text"])
    missing = set(values) - {m["key"] for m in marked}
    # the draft's thresholds and bins are shown once, beside the base's, where they are the same
    same = re.compile(r"share\.candidate\.(above\.\d+\.threshold_pct|histogram\.\d+\.(lo|hi)_pct)")
    for key in sorted(missing):
        assert same.fullmatch(key), f"{key} is not on the page"
        assert values[key] == values[key.replace("candidate", "base")], key

    tb, tc = doc["totals"]["base"], doc["totals"]["candidate"]
    want = {"summary.change": tc["fund_pay"] - tb["fund_pay"],
            "summary.change_pct": pct(tc["fund_pay"], tb["fund_pay"])}  # fmt: skip
    for k in tb:
        want[f"totals.change.{k}"] = tc[k] - tb[k]
        want[f"totals.change_pct.{k}"] = pct(tc[k], tb[k])
    derived = got.marked("derived")
    assert {m["key"] for m in derived} <= set(want)
    assert {m["key"] for m in derived} >= set(want) - {"summary.change_pct"}
    for m in derived:
        assert m["value"] == raw(want[m["key"]]), m
        assert m["text"] == expected_text(want[m["key"]], m["unit"]), m


def quiet_draft() -> dict[str, Any]:
    """A draft that changes nothing, over one bill no fund paid: every other list empty, every
    change 0, every percent null, no 10% threshold asked."""
    doc = figures()
    zero = {"total": 500, "fund_pay": 0, "window_pay": 0, "net_selfpay": 500, "relief": 0}
    doc["totals"] = {"base": dict(zero), "candidate": dict(zero)}
    doc["funds"], doc["fund_totals"], doc["budgets"] = [], [], []
    p = doc["patients"]
    p["more"] = {"bills": 0, "persons": 0, "sum": 0}
    p["less"] = {"bills": 0, "persons": 0, "sum": 0}
    p["same"] = {"bills": 1}
    p["change_histogram"], p["change_deciles"], p["largest_more"], p["largest_less"] = (
        [],
        [],
        [],
        [],
    )
    # one bill; thresholds and bins that differ between the runs (shown one run after the other)
    doc["share"]["base"] = {
        "deciles": [],
        "above": [{"threshold_pct": "20", "bills": 1, "persons": 1}],
        "histogram": [{"lo_pct": "0", "hi_pct": "100", "bills": 1}],
    }
    doc["share"]["candidate"] = {"deciles": [], "above": [{"threshold_pct": "40", "bills": 1, "persons": 1}],
                                 "histogram": [{"lo_pct": "0", "hi_pct": "50", "bills": 1}]}  # fmt: skip
    doc["breakdowns"] = {k: [] for k in doc["breakdowns"]}
    doc["alerts"]["by_layer"] = []
    doc["changed"] = {"bills": 0, "file": "changed.csv", "reasons": [], "sample": []}
    return doc


def test_a_quiet_draft(browser: Any, tmp_path: Path) -> None:
    doc = quiet_draft()
    write_report(doc, tmp_path)
    got = Opened(browser, tmp_path / "report.html")
    try:
        assert got.messages == []
        svgs = got.page.locator("svg.chart-svg")
        assert svgs.count() == 3  # no budget: no budget chart
        for i in range(3):
            box = svgs.nth(i).bounding_box()
            assert box is not None and box["width"] > 200 and box["height"] > 100, box
        check_every_figure(got, doc)
        text = " ".join(got.page.locator("#summary-en").inner_text().split())
        assert text == (
            "The draft pays the same as the base (¥0.00 change); 0 patients pay more (0 bills, "
            "¥0.00 in total), 0 pay less (0 bills, ¥0.00 in total)."
        )
        assert "没有基金声明预算" in got.page.locator("#budgets").inner_text()
    finally:
        got.close()
    for name in CSV_FILES:
        rows = read_csv(tmp_path / name)
        if name == "alerts.csv":
            assert [r["scope"] for r in rows] == ["all"]
        elif name == "share.csv":
            assert [(r["run"], r["section"]) for r in rows] == [
                ("base", "histogram"), ("base", "above"),
                ("candidate", "histogram"), ("candidate", "above"),
            ]  # fmt: skip
        else:
            assert rows == [], name


def test_summary_in_plain_words(browser: Any, report: tuple[Path, dict]) -> None:
    out, doc = report
    got = Opened(browser, out / "report.html")
    try:
        first = got.page.locator("section").first
        assert first.get_attribute("id") == "summary"
        text = " ".join(got.page.locator("#summary-en").inner_text().split())
        p = doc["patients"]
        above = {r: next(a for a in doc["share"][r]["above"] if a["threshold_pct"] == "10")
                 for r in ("base", "candidate")}  # fmt: skip
        assert text == (
            "The draft pays ¥173,434.75 more (+0.85%); "
            f"{p['more']['persons']} patients pay more (65 bills, ¥5,866.28 in total), "
            f"{p['less']['persons']:,} pay less (1,126 bills, ¥298,765.43 in total); "
            f"{above['candidate']['persons']:,} still pay more than 10% of their bill "
            f"(was {above['base']['persons']:,})."
        )
        zh = got.page.locator("#summary-zh").inner_text()
        assert "草案比现行政策多支付" in zh and "16,012 人自付超过费用的 10%" in zh
        # the sections follow the figures' order
        ids = got.page.eval_on_selector_all("section", "els => els.map(e => e.id)")
        assert ids == ["summary", "inputs", "totals", "funds", "patients", "share",
                       "breakdowns", "alerts", "budgets", "changed"]  # fmt: skip
    finally:
        got.close()


# --- the files beside the page ---------------------------------------------------------------


def read_csv(path: Path) -> list[dict[str, str]]:
    assert path.read_bytes().startswith(b"\xef\xbb\xbf"), f"{path.name}: no BOM"
    with open(path, encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f))


def fen(rows: list[dict[str, str]], col: str) -> int:
    return sum(int(r[f"{col}_fen"]) for r in rows if r[f"{col}_fen"] != "")


def test_json_is_the_figures(report: tuple[Path, dict]) -> None:
    out, doc = report
    text = (out / "report.json").read_text(encoding="utf-8")
    assert json.loads(text) == doc
    assert list(json.loads(text)) == list(doc)  # the order as given
    assert "红安慈善医疗基金" in text  # not \\u-escaped


def test_csv_equals_the_json(report: tuple[Path, dict]) -> None:
    out, doc = report
    tables = {name: read_csv(out / name) for name in CSV_FILES}
    # every yuan column is its fen column, exactly, with two decimals
    for name, rows in tables.items():
        for r in rows:
            for col, v in r.items():
                if col.endswith("_yuan"):
                    assert re.fullmatch(r"-?\d+\.\d\d", v), (name, col, v)
                    assert Decimal(v) * 100 == int(r[col[:-5] + "_fen"]), (name, col, v)

    funds = tables["funds.csv"]
    assert len(funds) == len(doc["funds"])
    for run in ("base", "candidate"):
        assert fen(funds, f"{run}_pay") == sum(f[run]["pay"] for f in doc["funds"])
        assert fen(funds, f"{run}_pay") == doc["totals"][run]["fund_pay"]
        assert fen(tables["fund_totals.csv"], f"{run}_pay") == sum(
            f[run]["pay"] for f in doc["fund_totals"]
        )
    assert fen(funds, "change") == sum(f["change"] for f in doc["funds"])
    assert [r["change_pct"] for r in funds] == [f["change_pct"] or "" for f in doc["funds"]]
    assert funds[3]["layer_name_zh"] == "红安慈善医疗基金"

    largest = tables["patients_largest.csv"]
    for d in ("more", "less"):
        rows = [r for r in largest if r["direction"] == d]
        assert sum(int(r["change_fen"]) for r in rows) == sum(
            c["change"] for c in doc["patients"][f"largest_{d}"]
        )
        assert [r["bill_id"] for r in rows] == [
            c["bill_id"] for c in doc["patients"][f"largest_{d}"]
        ]

    share = tables["share.csv"]
    for run in ("base", "candidate"):
        hist = [r for r in share if r["run"] == run and r["section"] == "histogram"]
        assert sum(int(r["bills"]) for r in hist) == sum(
            h["bills"] for h in doc["share"][run]["histogram"]
        )
        deciles = [r["pct"] for r in share if r["run"] == run and r["section"] == "decile"]
        assert deciles == doc["share"][run]["deciles"]

    for name, rows in doc["breakdowns"].items():
        t = tables[f"breakdown_{name}.csv"]
        assert [r["key"] for r in t] == [r["key"] for r in rows]
        for col in ("base_fund_pay", "candidate_fund_pay", "change"):
            assert fen(t, col) == sum(r[col] for r in rows), (name, col)
        for col in ("bills", "more", "less", "candidate_above_10"):
            assert sum(int(r[col]) for r in t) == sum(r[col] for r in rows), (name, col)

    alerts = tables["alerts.csv"]
    total = [r for r in alerts if r["scope"] == "all"]
    layers = [r for r in alerts if r["scope"] == "layer"]
    for run in ("base", "candidate"):
        assert int(total[0][f"{run}_alerts"]) == doc["alerts"][run]["alerts"]
        assert fen(total, f"{run}_relief") == doc["alerts"][run]["relief"]
        assert fen(layers, f"{run}_relief") == sum(
            r[f"{run}_relief"] for r in doc["alerts"]["by_layer"]
        )

    budgets = tables["budgets.csv"]
    for col in ("budget", "base_used", "candidate_used", "base_left", "candidate_left"):
        assert fen(budgets, col) == sum(b[col] for b in doc["budgets"]), col


# --- nothing cut ---------------------------------------------------------------------------

LONG_NAME = (
    "Hong'an County Charity Medical Aid Fund & Poor Households <B"  # 60 characters, & and < escaped
)
LONG_ZH = "红安县慈善总会困难群众大病医疗救助专项基金（二〇一九年度试行草案）"


def test_long_names_and_13_digit_amounts_whole(browser: Any, tmp_path: Path) -> None:
    assert len(LONG_NAME) == 60
    doc = figures()
    f = copy.deepcopy(doc["funds"][3])
    f.update(layer_name=LONG_NAME, layer_name_zh=LONG_ZH)
    f["base"]["pay"] = 1234567890123  # 13 digits of fen: 12,345,678,901.23 yuan
    f["candidate"]["pay"] = 9876543210987
    f["change"] = f["candidate"]["pay"] - f["base"]["pay"]
    f["change_pct"] = pct(f["candidate"]["pay"], f["base"]["pay"])
    doc["funds"][3] = f
    doc["budgets"][0]["budget"] = 9999999999999
    write_report(doc, tmp_path)
    got = Opened(browser, tmp_path / "report.html", width=760)  # a narrow window
    try:
        assert got.messages == []
        for key, text in [
            ("funds.3.base.pay", "12,345,678,901.23"),
            ("funds.3.candidate.pay", "98,765,432,109.87"),
            ("funds.3.change", "+86,419,753,208.64"),
            ("budgets.0.budget", "99,999,999,999.99"),
            ("funds.3.layer_name", LONG_NAME),
            ("funds.3.layer_name_zh", LONG_ZH),
        ]:
            el = got.page.locator(f'[data-key="{key}"]')
            assert el.count() >= 1
            for i in range(el.count()):
                assert el.nth(i).text_content() == text
                # not cut: no ellipsis, no hidden overflow on it or any ancestor, its cell
                # holds its whole width
                cut = el.nth(i).evaluate(
                    """e => { const out = [];
                      for (let a = e; a && a !== document.body; a = a.parentElement) {
                        const s = getComputedStyle(a);
                        if (s.textOverflow === 'ellipsis') out.push('ellipsis');
                        if (['hidden', 'clip'].includes(s.overflowX)) out.push('hidden');
                        if (a.tagName === 'TD' && a.scrollWidth > a.clientWidth) out.push('td');
                      }
                      const r = e.getBoundingClientRect();
                      if (r.width === 0 || r.height === 0) out.push('empty');
                      return out; }"""
                )
                assert cut == [], (key, cut)
        # the chart draws the names whole too (wrapped over lines, never cut)
        chart_text = "".join(got.page.locator('svg[data-chart="funds"] text').all_text_contents())
        squeeze = re.compile(r"\s+")
        assert squeeze.sub("", LONG_NAME) in squeeze.sub("", chart_text)
        assert LONG_ZH in squeeze.sub("", chart_text)
    finally:
        got.close()


# --- the command ---------------------------------------------------------------------------


def run(*args: str) -> Any:
    return CliRunner().invoke(cli, ["simulate-report", *args])


def test_cli_renders_a_saved_report(report: tuple[Path, dict], tmp_path: Path) -> None:
    out, _ = report
    res = run(str(out / "report.json"), "--out", str(tmp_path / "again"), "--json")
    assert res.exit_code == 0, res.output
    files = json.loads(res.stdout)
    assert [Path(p).name for p in files] == ["report.html", "report.json", *CSV_FILES]
    assert all(Path(p).is_file() for p in files)
    assert (tmp_path / "again" / "report.html").read_text(encoding="utf-8") == (
        out / "report.html"
    ).read_text(encoding="utf-8")  # the same figures give the same page
    for name in CSV_FILES:
        assert (tmp_path / "again" / name).read_bytes() == (out / name).read_bytes()


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda d: d.update(schema="onestop.simulate/0"), "schema: expected 'onestop.simulate/1', got \"onestop.simulate/0\""),
        (lambda d: d["funds"][2]["base"].update(pay="12.50"), "figures.funds.2.base.pay: expected an integer, got \"12.50\""),
        (lambda d: d["patients"].pop("largest_less"), "figures.patients.largest_less: missing"),
        (lambda d: d["share"]["base"].update(deciles=[3.21]), 'figures.share.base.deciles.0: expected a percent string like "5.12", got 3.21'),
        (lambda d: d["funds"][0].update(change_pct="5,12"), 'figures.funds.0.change_pct: expected a percent string like "5.12" or null, got "5,12"'),
    ],
)  # fmt: skip
def test_cli_refuses_what_is_not_the_figures(tmp_path: Path, change: Any, words: str) -> None:
    doc = figures()
    change(doc)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc), encoding="utf-8")
    res = run(str(bad), "--out", str(tmp_path / "out"))
    assert res.exit_code == 1, res.output
    lines = res.output.strip().splitlines()
    assert lines == [f"error: {bad}: not the figures of onestop simulate: {words}"]
    assert not (tmp_path / "out").exists()  # nothing written
    with pytest.raises(FiguresError):
        check_figures(doc)


def test_cli_missing_and_broken_files(tmp_path: Path) -> None:
    res = run(str(tmp_path / "none.json"), "--out", str(tmp_path / "out"))
    assert res.exit_code == 1
    assert res.output.strip().splitlines() == [f"error: {tmp_path / 'none.json'}: no such file"]
    broken = tmp_path / "broken.json"
    broken.write_text('{"schema": ', encoding="utf-8")
    res = run(str(broken), "--out", str(tmp_path / "out"))
    assert res.exit_code == 1
    assert res.output.strip().splitlines() == [
        f"error: {broken}: not JSON (line 1 column 12: Expecting value)"
    ]
    afile = tmp_path / "a-file"
    afile.write_text("x")
    res = run(str(FIXTURE), "--out", str(afile / "out"))
    assert res.exit_code == 1 and len(res.output.strip().splitlines()) == 1, res.output
    assert str(afile / "out") in res.output
    res = run(str(FIXTURE))
    assert res.exit_code == 2  # --out is required: a usage error


def test_without_the_report_extra_one_line(tmp_path: Path) -> None:
    from tests.test_cli_errors import _blocked, one_line
    from tests.test_cli_errors import onestop as run_onestop

    site = _blocked(tmp_path, "import sys\nsys.modules['matplotlib'] = None\n")
    r = run_onestop("simulate-report", str(FIXTURE), "--out", str(tmp_path / "o"), pythonpath=site)
    one_line(r, 2, "onestop simulate-report", "pip install 'onestop[report]'")
    assert not (tmp_path / "o").exists()


def test_simulate_without_the_report_extra_writes_json_and_csv(tmp_path, monkeypatch):
    """Without matplotlib (the report extra) simulate still writes the figures and says why
    report.html is missing, in one line naming the extra."""
    import sys

    from adapters.simulate import outputs

    ours = ("adapters.simulate.report", "adapters.simulate.charts", "adapters.publish.charts")
    for name in [m for m in sys.modules if m.startswith(ours)]:
        monkeypatch.delitem(sys.modules, name)
    for name in [m for m in sys.modules if m.split(".")[0] == "matplotlib"] + ["matplotlib"]:
        monkeypatch.setitem(sys.modules, name, None)  # import matplotlib -> ModuleNotFoundError
    figures = json.loads(FIXTURE.read_text(encoding="utf-8"))
    written, why = outputs.write_report(figures, tmp_path)
    names = {p.name for p in written}
    assert "report.html" not in names and "report.json" in names and "funds.csv" in names
    assert (
        why
        == "report.html not written: matplotlib is not installed (pip install 'onestop[report]')"
    )
    assert json.loads((tmp_path / "report.json").read_text(encoding="utf-8")) == figures
