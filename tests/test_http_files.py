"""3202 through files, as platforms run it, over a running gateway (httpx against uvicorn):
9101 uploads the zipped settlement list as base64, 3202 names its ``file_qury_no``, 9102
downloads the zipped ``result.txt`` (nhsa-interface.md section 2.6)."""

from __future__ import annotations

import base64
import io
import zipfile
from decimal import Decimal

import httpx
import pytest

from adapters.http.files import RESULT_COLUMNS, FileStore, settlement_file
from adapters.http.money import dumps, loads
from engine.errors import NotFound
from tests.test_http_gateway import (
    SAMPLES,
    _committed,
    both,
    envelope,
    post,
    schema_check,
    settle_input,
    statement_days,
)

__all__ = ["both"]


def upload(c: httpx.Client, msgid: str, zipped: bytes, name: str = "setl.zip") -> dict:
    return post(c, envelope("9101", msgid, {"fsUploadIn": {
        "in": base64.b64encode(zipped).decode(), "filename": name,
        "fixmedins_code": "H500112001"}}))  # fmt: skip


def detail(c: httpx.Client, msgid: str, **data: object) -> dict:
    begin, end = statement_days()
    q = {"setl_optins": "500112", "stmt_begndate": begin, "stmt_enddate": end, **data}
    return post(c, envelope("3202", msgid, {"data": q}))


def download(c: httpx.Client, msgid: str, qno: str) -> httpx.Response:
    env = envelope("9102", msgid, {"fsDownloadIn": {"file_qury_no": qno,
                                                    "fixmedins_code": "H500112001"}})  # fmt: skip
    return c.post("/nhsa", content=dumps(env), headers={"content-type": "application/json"})


def result_rows(zipped: bytes) -> list[dict[str, str]]:
    with zipfile.ZipFile(io.BytesIO(zipped)) as z:
        assert z.namelist() == ["result.txt"]
        text = z.read("result.txt").decode("utf-8")
    return [dict(zip(RESULT_COLUMNS, ln.split("\t"), strict=True)) for ln in text.splitlines()]


def test_9101_3202_9102_round_trip(both):
    app, _, c = both
    a = post(c, envelope("2304", "H500112001202305201000009101", settle_input("yubei-file-1")))
    b = post(c, envelope("2304", "H500112001202305201000009102", settle_input("yubei-file-2")))
    ia, ib = a["output"]["setlinfo"], b["output"]["setlinfo"]
    cancel = post(c, envelope("2305", "C9101-2", {"data": {"setl_id": ib["setl_id"]}}))
    assert cancel["infcode"] == 0, cancel

    def line(info: dict, sign: str = "", flag: str = "0") -> list[str]:
        return [info["setl_id"], info["mdtrt_id"], "jiang", f"{sign}{info['medfee_sumamt']}",
                f"{sign}{info['fund_pay_sumamt']}", "0.00", flag]  # fmt: skip

    ours = [line(ia), line(ib), line(ib, "-", "1")]
    up = upload(c, "U9101-1", settlement_file(ours))
    assert up["infcode"] == 0, up
    qno = up["output"]["file_qury_no"]
    assert len(qno) <= 30 and up["output"]["filename"] == "setl.zip"
    # totals as the HIS sends them: 1 settlement net (2 minus 1 reversal)
    ok = detail(c, "D3202-1", file_qury_no=qno, medfee_sumamt=str(ia["medfee_sumamt"]),
                fund_pay_sumamt=str(ia["fund_pay_sumamt"]), cash_payamt=str(ia["psn_cash_pay"]),
                fixmedins_setl_cnt=1)  # fmt: skip
    assert ok["infcode"] == 0, ok
    assert ok["output"]["stmtinfo"]["stmt_rslt"] == "0", ok
    res = download(c, "G9102-1", ok["output"]["fileinfo"]["file_qury_no"])
    assert res.status_code == 200 and res.headers["content-type"] == "application/zip"
    rows = result_rows(res.content)
    assert [(r["setl_id"], r["refd_setl_flag"], r["stmt_rslt"]) for r in rows] == [
        (ia["setl_id"], "0", "0"), (ib["setl_id"], "0", "0"), (ib["setl_id"], "1", "0")]  # fmt: skip
    assert rows[0]["msgid"] == "H500112001202305201000009101"  # for a 2601 of it
    assert rows[2]["msgid"] == "C9101-2" and rows[2]["medfee_sumamt"] == f"-{ib['medfee_sumamt']}"
    assert rows[0]["psn_no"] == "jiang" and rows[0]["mdtrt_id"] == "yubei-file-1"

    # their list: one amount wrong, the reversal missing, a settlement we never made
    theirs = [line(ia), [*line(ib)[:3], "1.00", *line(ib)[4:]],
              ["nosuch", "v9", "jiang", "10.00", "5.00", "0.00", "0"]]  # fmt: skip
    qno2 = upload(c, "U9101-2", settlement_file(theirs))["output"]["file_qury_no"]
    bad = detail(c, "D3202-2", file_qury_no=qno2)
    assert bad["infcode"] == 0 and bad["output"]["stmtinfo"]["stmt_rslt"] == "1", bad
    rows = result_rows(download(c, "G9102-2", bad["output"]["fileinfo"]["file_qury_no"]).content)
    by = {(r["setl_id"], r["refd_setl_flag"]): r for r in rows}
    assert by[(ia["setl_id"], "0")]["stmt_rslt"] == "0"
    assert by[(ib["setl_id"], "0")]["stmt_rslt"] == "1" and by[(ib["setl_id"], "0")]["memo"]
    assert by[(ib["setl_id"], "1")]["stmt_rslt"] == "1"  # ours only
    assert by[("nosuch", "0")]["stmt_rslt"] == "1" and by[("nosuch", "0")]["mdtrt_id"] == "v9"
    assert len(rows) == 4
    # the inline form is still served (our convenience), with a result file too
    inline = detail(c, "D3202-3", setl_list=[{"setl_id": ia["setl_id"], "refd_setl_flag": "0"}])
    assert inline["infcode"] == 0 and inline["output"]["fileinfo"]["file_qury_no"], inline
    assert app.service.get(settlement_id=ia["setl_id"]).status == "settled"


def test_file_refusals_name_the_field(both):
    _, _, c = both
    bad64 = post(c, envelope("9101", "U-bad", {"fsUploadIn": {"in": "not base64!",
                                                              "filename": "x.zip"}}))  # fmt: skip
    assert bad64["infcode"] == -1 and "fsUploadIn.in" in bad64["err_msg"], bad64
    six = upload(c, "U-six", settlement_file([["s1", "v1", "p1", "1.00", "1.00", "0.00"]]))
    qno = six["output"]["file_qury_no"]
    ans = detail(c, "D-six", file_qury_no=qno)
    assert ans["infcode"] == -1 and f"file {qno} line 1" in ans["err_msg"], ans
    notzip = upload(c, "U-notzip", b"plain text")
    ans = detail(c, "D-notzip", file_qury_no=notzip["output"]["file_qury_no"])
    assert ans["infcode"] == -1 and "not a zip" in ans["err_msg"], ans
    both_ways = detail(c, "D-both", file_qury_no=qno, setl_list=[])
    assert both_ways["infcode"] == -1 and "data.file_qury_no" in both_ways["err_msg"]
    r = download(c, "G-none", "M00/00/00/wKgB")
    assert r.headers["content-type"] == "application/json"
    assert r.json()["output"]["reason"] == "NOT_FOUND"
    schema_check(_committed(), "/nhsa/9102", "answer", r.json(parse_float=Decimal))


def test_captured_3202_request_shape(both):
    """The captured 3202 (jdzwq, Zhejiang test platform) sent a FastDFS-like file_qury_no
    ("M00/00/00/...") and stmt_enddate with a time: the date is read, the unknown file is
    refused with the envelope fields the platform's refusal carries (infcode, err_msg)."""
    _, _, c = both
    ans = detail(c, "D-jd", file_qury_no="M00/00/00/wKgBZ1", stmt_begndate="2022-01-01",
                 stmt_enddate="2022-01-21 23:59:59")  # fmt: skip
    assert ans["infcode"] == -1 and "data.file_qury_no" in ans["err_msg"], ans
    real = loads((SAMPLES / "3202-jd-1.json").read_bytes())
    assert {"infcode", "err_msg"} <= set(real) and {"infcode", "err_msg"} <= set(ans)
    assert real["infcode"] == ans["infcode"] == -1


def test_a_file_is_seen_by_its_owner_only():
    store = FileStore()
    f = store.put("cashier-a", "x.zip", "H1", b"zip")
    assert store.get("cashier-a", f.file_qury_no, "q").data == b"zip"
    with pytest.raises(NotFound):
        store.get("cashier-b", f.file_qury_no, "q")
