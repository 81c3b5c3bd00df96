"""FundFacts fixtures: the hand-computed golden fund-year and a hypothesis strategy of random
but consistent ones (claims in a valid state, money in > 0). Person, bill, settlement and claim
ids carry markers (``PID-``, ``BILL-``) that a published page must never show."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from hypothesis import strategies as st

from engine.claims import Claim, ClaimKind, ClaimStatus, FundFacts, FundPay, MoneyIn, MoneyInKind

REGION, FUND, YEAR = "421122", "370200", 2018


def _t(s: str) -> datetime:
    return datetime.fromisoformat(s).replace(tzinfo=UTC)


def claim(
    cid: str,
    kind: ClaimKind,
    filed: int,
    status: ClaimStatus,
    filed_at: str,
    discharge: str,
    approved: int | None = None,
    paid: str | None = None,
) -> Claim:
    return Claim(
        claim_id=cid,
        kind=kind,
        settlement_id=f"SET-{cid}",
        layer_id="backbone" if kind == "claim" else "alert",
        fund_code=FUND,
        region=REGION,
        year=YEAR,
        person_id=f"PID-{cid}",
        household=f"HH-{cid}",
        hospital="H001",
        bill_id=f"BILL-{cid}",
        discharge_date=date.fromisoformat(discharge),
        filed_amount=filed,
        status=status,
        filed_at=_t(filed_at),
        filed_by="clerk",
        approved_amount=approved,
        decided_at=None if status == "filed" else _t(filed_at) + timedelta(days=1),
        paid_at=None if paid is None else _t(paid + "T02:00:00"),
        paid_date=None if paid is None else date.fromisoformat(paid),
    )


def golden_facts() -> FundFacts:
    """The golden fund-year (figures computed by hand in tests/test_fundstats.py)."""
    mi: list[tuple[str, MoneyInKind, int, str]] = [
        ("M1", "premium", 300000, "2018-01-15"),
        ("M2", "donation", 150050, "2018-02-03"),
        ("M3", "donation", 49950, "2018-03-10"),
        ("M4", "government", 100000, "2018-03-20"),
    ]
    money_in = tuple(
        MoneyIn(rid, REGION, FUND, YEAR, kind, f"PAYER-{rid}", amt, date.fromisoformat(on))
        for rid, kind, amt, on in mi
    )
    pays = (
        # 17:00 UTC on Feb 28 is Mar 1 in Shanghai
        FundPay("S1", "backbone_w", "window", 12345, "PID-S1", date(2018, 2, 27), _t("2018-02-28T17:00:00")),
        FundPay("S2", "backbone_w", "window", 5000, "PID-S2", date(2018, 3, 4), _t("2018-03-05T02:00:00"), reversed=True),
        FundPay("S3", "backbone_w", "window", 0, "PID-S3", date(2018, 3, 31), _t("2018-04-01T01:00:00")),
    )  # fmt: skip
    claims = (
        claim("C1", "claim", 30000, "paid", "2018-02-05T03:00:00", "2018-02-01", 25001, "2018-03-03"),
        claim("C2", "claim", 20000, "paid", "2018-03-02T01:00:00", "2018-03-01", 20000, "2018-03-16"),
        claim("C3", "claim", 10000, "approved", "2018-03-10T01:00:00", "2018-03-08", 8000),
        claim("C4", "claim", 7000, "rejected", "2018-04-02T01:00:00", "2018-03-30"),
        # 16:30 UTC on Apr 30 is May 1 in Shanghai
        claim("C5", "claim", 4000, "filed", "2018-04-30T16:30:00", "2018-04-28"),
        claim("R1", "relief", 0, "paid", "2018-01-12T01:00:00", "2018-01-10", 0, "2018-01-20"),
        claim("R2", "relief", 6000, "paid", "2018-03-25T01:00:00", "2018-03-20", 6000, "2018-05-29"),
        claim("R3", "relief", 3000, "approved", "2018-04-10T01:00:00", "2018-04-08", 2500),
    )  # fmt: skip
    return FundFacts(
        region=REGION,
        region_name="红安县",
        fund_code=FUND,
        fund_name="Backbone public-welfare health insurance",
        fund_name_zh="顶梁柱健康扶贫公益保险",
        year=YEAR,
        as_of=date(2018, 6, 30),
        enrolled=1200,
        budget=500000,
        carried_in=20000,
        budget_mode="hard",
        money_in=money_in,
        window_pays=pays,
        claims=claims,
    )


# --- random fund-years -----------------------------------------------------------------

_day = st.dates(date(2017, 11, 1), date(2019, 3, 31))
_fen = st.one_of(st.sampled_from([0, 1, 49, 50, 99, 100, 10**8]), st.integers(0, 10**9))


@st.composite
def claims_st(draw: st.DrawFn, i: int) -> Claim:
    kinds: list[ClaimKind] = ["claim", "relief"]
    statuses: list[ClaimStatus] = ["filed", "approved", "rejected", "paid"]
    kind = draw(st.sampled_from(kinds))
    status = draw(st.sampled_from(statuses))
    filed = draw(_fen)
    discharge = draw(_day)
    filed_at = datetime(discharge.year, discharge.month, discharge.day, tzinfo=UTC) + timedelta(
        hours=draw(st.integers(0, 24 * 40))
    )
    approved = draw(st.integers(0, filed)) if status in ("approved", "paid") else None
    paid_date = None
    if status == "paid":
        paid_date = discharge + timedelta(days=draw(st.integers(0, 400)))
    return Claim(
        claim_id=f"CLM-{i}",
        kind=kind,
        settlement_id=f"SET-{i}",
        layer_id="l",
        fund_code=FUND,
        region=REGION,
        year=YEAR,
        person_id=f"PID-{i}",
        household=f"HH-{i}",
        hospital="H001",
        bill_id=f"BILL-{i}",
        discharge_date=discharge,
        filed_amount=filed,
        status=status,
        filed_at=filed_at,
        filed_by="clerk",
        approved_amount=approved,
        # sometimes only paid_at (the payment's date comes from it)
        paid_date=paid_date if draw(st.booleans()) else None,
        paid_at=None
        if paid_date is None
        else datetime(paid_date.year, paid_date.month, paid_date.day, 3, tzinfo=UTC),
    )


@st.composite
def fund_facts(draw: st.DrawFn) -> FundFacts:
    n_in = draw(st.integers(0, 8))
    money_in = tuple(
        MoneyIn(f"MI-{i}", REGION, FUND, YEAR,
                draw(st.sampled_from(["premium", "donation", "government", "other"])),
                f"PAYER-{i}", draw(st.integers(1, 10**9)), draw(_day))
        for i in range(n_in)
    )  # fmt: skip
    pays = []
    for i in range(draw(st.integers(0, 8))):
        d = draw(_day)
        pays.append(FundPay(
            f"WS-{i}", "w", draw(st.sampled_from(["window", "window", "after_discharge"])),
            draw(_fen), f"PID-W{i}", d,
            datetime(d.year, d.month, d.day, tzinfo=UTC) + timedelta(hours=draw(st.integers(0, 47))),
            reversed=draw(st.booleans()),
        ))  # fmt: skip
    claims = tuple(draw(claims_st(i)) for i in range(draw(st.integers(0, 10))))
    mode = draw(st.sampled_from(["report", "hard"]))
    budget = draw(st.one_of(st.none(), st.integers(0, 10**10))) if mode == "report" else draw(
        st.integers(0, 10**10))  # fmt: skip
    return FundFacts(
        region=REGION, region_name="红安县", fund_code=FUND, fund_name="Backbone",
        fund_name_zh="顶梁柱", year=YEAR, as_of=draw(_day), enrolled=draw(st.integers(0, 10**6)),
        budget=budget, carried_in=draw(st.integers(0, 10**8)), budget_mode=mode,
        money_in=money_in, window_pays=tuple(pays), claims=claims,
    )  # fmt: skip
