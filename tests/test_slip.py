"""The printed slip (adapters/slip): the PDF's text holds the settlement's figures, the reversal
slip says so, and the CLI writes it (offline ``settle --slip`` and the window client)."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import pytest
from typer.testing import CliRunner

from adapters.cli.files import read_bills
from adapters.slip.capitals import capitals
from adapters.slip.render import SlipMeta, render_slip_html, render_slip_pdf
from engine.accounts import Opening
from engine.batch import settle_batch
from engine.money import yuan
from engine.policy.load import load_policies
from engine.result import Settlement
from engine.service.ports import SettlementRecord

ROOT = Path(__file__).resolve().parent.parent
BILL = ROOT / "policies" / "samples" / "hongan-1.json"  # Hong'an: Backbone pays after discharge


def _pdf_tools_problem() -> str:
    if shutil.which("pdftotext") is None:
        return "pdftotext (poppler-utils) is not installed"
    try:
        import weasyprint  # noqa: F401
    except (ImportError, OSError) as e:  # OSError: pango/cairo libraries missing
        return f"WeasyPrint cannot run here: {e}"
    return ""


@pytest.fixture
def _pdf_tools() -> None:
    """Skip where the PDF cannot be made or read: checked when a PDF test runs, not at
    collection (importing WeasyPrint costs every test process about a second of CPU)."""
    if problem := _pdf_tools_problem():
        pytest.skip(problem)


needs_pdf = pytest.mark.usefixtures("_pdf_tools")


def pdf_text(pdf: bytes, tmp_path: Path) -> str:
    f = tmp_path / "slip.pdf"
    f.write_bytes(pdf)
    return subprocess.run(
        ["pdftotext", "-layout", str(f), "-"], check=True, capture_output=True, text=True
    ).stdout


@pytest.fixture(scope="module")
def hongan() -> tuple[Settlement, dict]:
    bills = read_bills([BILL])
    s = settle_batch(bills, load_policies(ROOT / "policies"), Opening()).settlements[0]
    return s, json.loads(BILL.read_text())


def _figures(s: Settlement, sign: int = 1) -> list[str]:
    window_funds = sum(r.pay for r in s.layers if r.settle_at != "after_discharge")
    after = sum(r.pay for r in s.layers if r.settle_at == "after_discharge")
    assert after > 0, "the sample must have an after-discharge layer that pays"
    pays = [r.pay for r in s.layers if r.applied and r.kind != "alert"]
    return [yuan(sign * x) for x in (s.buckets.total, window_funds, after, s.window_pay, *pays)]


@needs_pdf
def test_pdf_holds_the_figures(hongan: tuple[Settlement, dict], tmp_path: Path) -> None:
    s, bill = hongan
    meta = SlipMeta(settlement_id="S-2018-0001", request_id="req-77", settled_at="2018-04-20")
    out = pdf_text(render_slip_pdf(s, bill, meta=meta), tmp_path)
    for figure in _figures(s):
        assert figure in out, figure
    assert "11,448.96" in out and "5,729.38" in out  # window pay; Backbone after discharge
    assert capitals(s.window_pay) == "壹万壹仟肆佰肆拾捌元玖角陆分"
    assert capitals(s.window_pay) in out
    assert "S-2018-0001" in out and "req-77" in out and "H421122001" in out
    for r in s.layers:
        assert r.fund_code in out
    # categories, buckets, stay
    assert "40,900.00" in out and "10,000.00" in out and "8,000.00" in out
    for label in ("甲类", "乙类", "丙类", "目录外", "超限价", "先行自付", "政策范围内"):
        assert label in out
    assert "18 天 days" in out and "2018-04-02" in out and "2018-04-20" in out
    assert "冲销" not in out


def _record(s: Settlement, bill: dict, status: Literal["settled", "reversed"]) -> SettlementRecord:
    rev = status == "reversed"
    return SettlementRecord(
        settlement_id="S-2018-0002",
        request_id="req-78",
        bill_digest="0" * 64,
        bill=bill,
        settlement=s,
        moves=(),
        created_at=datetime(2018, 4, 20, 2, 0, tzinfo=UTC),
        status=status,
        reversed_at=datetime(2018, 4, 21, 3, 30, tzinfo=UTC) if rev else None,
        reversal_request_id="rev-9" if rev else None,
    )


@needs_pdf
def test_reversal_slip(hongan: tuple[Settlement, dict], tmp_path: Path) -> None:
    s, bill = hongan
    out = pdf_text(render_slip_pdf(_record(s, bill, "reversed")), tmp_path)
    assert "冲销" in out and "reversal" in out.lower()
    assert "rev-9" in out and "2018-04-21 11:30:00 (UTC+8)" in out and "S-2018-0002" in out
    for figure in _figures(s, sign=-1):
        assert figure in out, figure
    assert "负" + capitals(s.window_pay) in out


def test_html_of_a_record_and_of_bare_figures(hongan: tuple[Settlement, dict]) -> None:
    s, bill = hongan
    html = render_slip_html(_record(s, bill, "settled"))
    assert (
        "S-2018-0002" in html and "req-78" in html and "2018-04-20 10:00:00 (UTC+8)" in html
    )  # the window's clock
    assert "冲销" not in html and "11,448.96" in html
    text = render_slip_html(s, bill, meta=SlipMeta(settled_at="2026-12-01T23:00:46.695223+00:00"))
    assert "2026-12-02 07:00:46 (UTC+8)" in text
    # ids are never broken across lines (a household "lz-h2" printed as "lz-" / "h2")
    assert f'household <span class="id">{s.household}</span>' in html
    bare = render_slip_html(s)  # no bill: what only the bill knows is said to be missing
    assert "not in the record" in bare and "11,448.96" in bare
    assert "<script" not in render_slip_html(s, dict(bill, hospital_level="<script>"))
    # length of stay: discharge - admission, at least one day
    same_day = render_slip_html(s, dict(bill, admission_date=s.discharge_date.isoformat()))
    assert "1 天 days" in same_day and "18 天 days" in render_slip_html(s, bill)


def test_offline_settle_writes_the_slip(tmp_path: Path) -> None:
    from adapters.cli.app import app

    runner = CliRunner()
    html = tmp_path / "slip.html"
    r = runner.invoke(app, ["settle", str(BILL), "--policy", str(ROOT / "policies"),
                            "--slip", str(html)])  # fmt: skip
    assert r.exit_code == 0, r.output
    text = html.read_text(encoding="utf-8")
    assert "11,448.96" in text and "offline" in text
    r = runner.invoke(app, ["settle", str(BILL), "--slip", str(tmp_path / "slip.txt")])
    assert r.exit_code == 2 and ".pdf or .html" in r.output


@needs_pdf
def test_window_settle_and_reverse_write_slips(tmp_path: Path) -> None:
    from adapters.grpc.commands import app
    from adapters.grpc.testing import served

    persons = [p for p in json.loads((ROOT / "policies/samples/registry.json").read_text())
               if p["id"] == "ha-p1"]  # fmt: skip
    table = (ROOT / "policies/hongan/2018.yaml").read_text(encoding="utf-8")
    runner = CliRunner()
    with served("memory://", (table,), persons) as (_, srv, _c):
        server = f"127.0.0.1:{srv.port}"
        pdf = tmp_path / "settle.pdf"
        r = runner.invoke(app, ["window", "settle", str(BILL), "--request-id", "win-1",
                                "--server", server, "--slip", str(pdf)])  # fmt: skip
        assert r.exit_code == 0, r.output
        out = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], check=True,
                             capture_output=True, text=True).stdout  # fmt: skip
        assert "win-1" in out and "11,448.96" in out and "5,729.38" in out
        assert "壹万壹仟肆佰肆拾捌元玖角陆分" in out and "18 天 days" in out
        rev = tmp_path / "reverse.pdf"
        r = runner.invoke(app, ["window", "reverse", "win-1", "--by-request",
                                "--server", server, "--slip", str(rev)])  # fmt: skip
        assert r.exit_code == 0, r.output
        out = subprocess.run(["pdftotext", "-layout", str(rev), "-"], check=True,
                             capture_output=True, text=True).stdout  # fmt: skip
        assert "冲销" in out and "-11,448.96" in out and "win-1" in out


def test_a_layer_that_did_not_apply_says_why_in_words(tmp_path: Path) -> None:
    """A Longzhou patient with no poverty tag: the assistance and backstop lines say why in
    words, in both languages, not the reason code (tags_any)."""
    from adapters.cli.app import app

    html = tmp_path / "slip.html"
    r = CliRunner().invoke(app, ["settle", str(ROOT / "policies/samples/longzhou-3.json"),
                                 "--policy", str(ROOT / "policies"), "--slip", str(html)])  # fmt: skip
    assert r.exit_code == 0, r.output
    text = html.read_text(encoding="utf-8")
    assert "不适用：参保人不属于该项保障对象" in text
    assert "not applied: the person has none of the tags this fund is for" in text
    assert "tags_any" not in text
    # the layers that did not apply have a heading of their own: listed right after the
    # after-discharge subtotal, they read as after-discharge funds
    after = text.index("After-discharge pay (claims to be filed)")
    heading = text.index("未适用（不支付）Not applied (pay nothing)")
    assert after < heading < text.index("不适用：参保人不属于该项保障对象")
    assert heading < text.index("基金支付合计 Funds in all")


def test_terminal_reversal_lines_use_the_window_clock(hongan: tuple[Settlement, dict]) -> None:
    """`window reverse` printed the stored UTC text (2026-12-01T23:00:46.695223+00:00)."""
    from io import StringIO

    from rich.console import Console

    from adapters.cli.slip import Reversal, print_slip

    s, _bill = hongan
    buf = StringIO()
    print_slip(Console(file=buf, width=400), s,
               reversal=Reversal("S-1", "2026-12-01T23:00:46.695223+00:00"))  # fmt: skip
    out = buf.getvalue()
    assert "(settled 2026-12-02 07:00:46 (UTC+8))" in out, out
    assert "结算时间 2026-12-02 07:00:46 (UTC+8)" in out and "+00:00" not in out, out


def test_terminal_and_pdf_reversal_slips_name_it_alike(
    hongan: tuple[Settlement, dict], tmp_path: Path
) -> None:
    """The terminal's reversal slip said 冲正单 where the printed one says 冲销单."""
    from io import StringIO

    from rich.console import Console

    from adapters.cli.slip import Reversal, print_slip

    s, _bill = hongan
    buf = StringIO()
    print_slip(Console(file=buf, width=400), s, reversal=Reversal("S-1", "2026-12-01T23:00:46Z"))
    out = buf.getvalue()
    assert "冲销单" in out and "冲销结算" in out and "冲正" not in out, out


def test_a_slip_that_cannot_be_written_leaves_no_accounts_file(tmp_path: Path) -> None:
    """`settle --accounts-out A --slip S` wrote A before S failed: the accounts after a run the
    user was told had failed. The slip now goes first."""
    from tests.inprocess import onestop_in_process

    slip = tmp_path / "slip.html"
    slip.mkdir()  # a folder where the file should be: the write fails
    after = tmp_path / "after.json"
    r = onestop_in_process("settle", str(BILL), "--policy", str(ROOT / "policies"),
                           "--accounts-out", str(after), "--slip", str(slip), columns=160)  # fmt: skip
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert str(slip) in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not after.exists()
