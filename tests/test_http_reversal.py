"""2601 (冲正) over a running gateway (httpx against uvicorn): reverse what a 2304 msgid
settled, by the same reversal use case as 2305; a no-op when nothing was settled under it;
idempotent by its own msgid."""

from __future__ import annotations

from adapters.http.money import loads
from tests.test_http_gateway import SAMPLES, both, envelope, post, settle_input

__all__ = ["both"]  # the module fixture: a gRPC server and the gateway over one app


def reversal(msgid: str, omsgid: str, psn: str = "jiang", oinfno: str = "2304") -> dict:
    return envelope("2601", msgid, {"data": {"psn_no": psn, "omsgid": omsgid, "oinfno": oinfno}})


def settled(c, msgid: str, bill: str) -> dict:
    a = post(c, envelope("2304", msgid, settle_input(bill)))
    assert a["infcode"] == 0, a
    return a


def test_2601_reverses_the_settlement_of_its_omsgid(both):
    app, _, c = both
    first = settled(c, "H500112001202305201000002601", "yubei-2601-1")
    ans = post(c, reversal("R2601-1", "H500112001202305201000002601"))
    assert ans["infcode"] == 0, ans
    assert ans["output"] == {}
    rec = app.service.get(request_id="H500112001202305201000002601")
    assert rec.status == "reversed" and rec.reversal_request_id == "R2601-1"
    # idempotent by its own msgid: the same 2601 again answers the same, changes nothing
    again = post(c, reversal("R2601-1", "H500112001202305201000002601"))
    assert again["infcode"] == 0 and again["output"] == {}
    assert app.service.get(request_id="H500112001202305201000002601") == rec
    # the accounts were given back: the same bill settles again to the same figures
    second = settled(c, "H500112001202305201000002602", "yubei-2601-1")
    info1, info2 = first["output"]["setlinfo"], second["output"]["setlinfo"]
    for k in ("medfee_sumamt", "hifp_pay", "maf_pay", "psn_cash_pay"):
        assert info1[k] == info2[k], k
    assert info2["setl_id"] != info1["setl_id"]
    # a 2305 of the reversed settlement answers its reversal (no second reversal)
    cancel = post(c, envelope("2305", "C2601-1", {"data": {"setl_id": info1["setl_id"]}}))
    assert cancel["output"]["setlinfo"]["medins_setl_id"] == "R2601-1", cancel


def test_2601_with_nothing_settled_is_a_no_op(both):
    app, _, c = both
    ans = post(c, reversal("R2601-none", "H500112001209901010000000001"))
    assert ans["infcode"] == 0 and ans["output"] == {}, ans
    assert not app.service.reversed_by("R2601-none")
    assert post(c, reversal("R2601-none", "H500112001209901010000000001"))["infcode"] == 0


def test_2601_refusals_change_nothing(both):
    app, _, c = both
    om, other = "H500112001202305201000002611", "H500112001202305201000002612"
    settled(c, om, "yubei-2601-2")
    settled(c, other, "yubei-2601-3")
    for env, words in [
        (reversal("R2601-2", om, psn="somebody"), "data.psn_no"),  # another person
        (reversal("R2601-2", om, oinfno="2305"), "data.oinfno"),  # only 2304 is reversed
        (reversal(om, om), "msgid"),  # its own msgid is the original's
        (reversal(other, om), "2304"),  # a 2304's msgid
    ]:
        ans = post(c, env)
        assert ans["infcode"] == -1 and words in ans["err_msg"], (env, ans)
        assert app.service.get(request_id=om).status == "settled"
    # a 2601 msgid names one reversal: used for another original, it is a Conflict
    assert post(c, reversal("R2601-3", om))["infcode"] == 0
    reuse = post(c, reversal("R2601-3", other))
    assert reuse["infcode"] == -1 and reuse["output"]["reason"] == "CONFLICT", reuse
    assert app.service.get(request_id=other).status == "settled"
    # ... also when the other original settled nothing
    nothing = post(c, reversal("R2601-3", "H500112001209901010000000002"))
    assert nothing["infcode"] == -1 and nothing["output"]["reason"] == "CONFLICT", nothing


def test_2601_after_a_2305_cancel_is_refused_like_the_platform(both):
    """The platform refuses to reverse a settlement already refunded (2601-jd-1: infcode -1,
    "...退费结算标志不为未退费，不能办理冲正交易"); so does the gateway, in the same envelope."""
    app, _, c = both
    om = "H500112001202305201000002621"
    setl_id = settled(c, om, "yubei-2601-4")["output"]["setlinfo"]["setl_id"]
    assert post(c, envelope("2305", "C2601-4", {"data": {"setl_id": setl_id}}))["infcode"] == 0
    ans = post(c, reversal("R2601-4", om))
    assert ans["infcode"] == -1 and "already cancelled" in ans["err_msg"], ans
    assert ans["output"]["reason"] == "FAILED_PRECONDITION"
    assert app.service.get(request_id=om).reversal_request_id == "C2601-4"
    real = loads((SAMPLES / "2601-jd-1.json").read_bytes())
    assert real["infcode"] == -1 and real["err_msg"]
    assert set(ans) <= set(real), set(ans) - set(real)


def test_2305_with_another_person_cancels_nothing(both):
    app, _, c = both
    om = "H500112001202305201000002631"
    setl_id = settled(c, om, "yubei-2601-5")["output"]["setlinfo"]["setl_id"]
    ans = post(c, envelope("2305", "C2601-5", {"data": {"setl_id": setl_id, "psn_no": "x"}}))
    assert ans["infcode"] == -1 and "data.psn_no" in ans["err_msg"], ans
    assert app.service.get(request_id=om).status == "settled"
