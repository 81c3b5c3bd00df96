"""Reconciliation (domain.md section 14; NHSA 3201 / 3202; issue 8 section 3).

Random settlements and reversals across hospitals and funds, committed through the use cases
on the in-memory store, SQLite and PostgreSQL at chosen moments (many of them on the Shanghai
midnight, 16:00 UTC): the totals equal sums computed here, independently, from the stored
settlements. A hospital-side list with one settlement missing or one amount changed is
reported as exactly that difference; a reversal in a later month shows in that month. Then
through a real gRPC server and client, and the bureau CLI (--json, CSV, Parquet, plain text).
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from typer.testing import CliRunner

from adapters.store.memory import MemoryStore
from adapters.store.sql import SqlStore
from engine.bill import Person, TagSpan, parse_bill_request
from engine.errors import InputError, LimitExceeded
from engine.reconcile import (
    Fact,
    HospitalLine,
    HospitalTotals,
    Totals,
    compare,
    entries,
    local_date,
    reconcile,
    totals,
)
from engine.service.ports import SettlementRecord
from engine.service.usecases import SettlementService
from tests.pg import fresh_database, pg_url  # noqa: F401  (fixture)

REGION = "990002"
TABLE = f"""\
region: {{code: "{REGION}", name: "Reconciliation test county"}}
effective_from: 2024-01-01
effective_to: 2024-12-31
hospital_levels: [township, county]
tags: [poor]
b_selfpay_ratio: 1000
layers:
  - id: basic
    name: Basic
    fund_code: "390100"
    kind: reimburse
    variants:
      - deductible: {{basis: admission, amount: 20000}}
        segments: [{{ratio: 6000}}]
  - id: basic_top
    name: Basic top-up for the poor (same fund code)
    fund_code: "390100"
    kind: reimburse
    eligibility: {{tags_any: [poor]}}
    variants:
      - segments: [{{ratio: 2000}}]
  - id: critical
    name: Critical illness
    fund_code: "390200"
    kind: reimburse
    covers: [in_scope, pre_selfpay]
    variants:
      - deductible: {{basis: year, amount: 300000}}
        segments: [{{ratio: 5000}}]
  - id: charity
    name: Charity, paid after discharge
    fund_code: "370200"
    kind: reimburse
    settle_at: after_discharge
    covers: [in_scope, pre_selfpay, over_limit, out_of_catalogue]
    eligibility: {{tags_any: [poor]}}
    variants:
      - segments: [{{ratio: 4000}}]
"""
HOSPITALS = ("H001", "H002", "H003")
PERSONS = [
    Person(
        id=f"p{i}",
        birth_date=date(1950 + i, 3, 1),
        household=f"h{i // 2}",
        tags=(TagSpan(tag="poor"),) if i % 2 == 0 else (),
    )
    for i in range(6)
]
#: moments of a UTC day: just before, on and just after 16:00 UTC (= Shanghai midnight)
MOMENTS = (
    timedelta(hours=15, minutes=59, seconds=59, microseconds=999_999),
    timedelta(hours=16),
    timedelta(hours=16, microseconds=1),
    timedelta(hours=3, minutes=30),
    timedelta(hours=23, minutes=59),
)


class SetClock:
    """The service's clock, set by the test to the moment of the next commit."""

    def __init__(self) -> None:
        self.t = datetime(2024, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.t


def bill_request(n: int, hospital: str, person: str, rnd: random.Random) -> Any:
    return parse_bill_request(
        {
            "id": f"b{n}",
            "hospital": hospital,
            "region": REGION,
            "person_id": person,
            "hospital_level": rnd.choice(["township", "county"]),
            # the bill's own dates are in February: reconciliation must not use them
            "admission_date": "2024-02-01",
            "discharge_date": f"2024-02-{1 + n % 28:02d}",
            "items": [
                {"code": "A", "name": "a", "category": "A", "amount": rnd.randint(1, 900_000)},
                {"code": "B", "name": "b", "category": "B", "amount": rnd.randint(0, 300_000)},
                {"code": "C", "name": "c", "category": "C", "amount": rnd.randint(0, 100_000)},
            ],
        }
    )


def make_store(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Any:
    if kind == "memory":
        return MemoryStore()
    if kind == "sqlite":
        return SqlStore(f"sqlite:///{tmp_path / 'onestop.db'}")
    return SqlStore(fresh_database(request.getfixturevalue("pg_url")))


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def env(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Any:
    store = make_store(kind, tmp_path, request)
    clock = SetClock()
    n = iter(range(1, 1_000_000))
    svc = SettlementService(store.uow, clock=clock, new_id=lambda: f"s{next(n):05d}")
    svc.put_policy(TABLE, "recon.yaml")
    svc.import_registry(PERSONS)
    yield kind, svc, clock
    if isinstance(store, SqlStore):
        store.dispose()


def run_scenario(
    svc: SettlementService, clock: SetClock, n: int, seed: int
) -> list[SettlementRecord]:
    """``n`` settlements on random days from 2024-03-28 to 2024-04-03 at MOMENTS, about 40%
    reversed 0 to 40 days later (also at MOMENTS); every commit in time order through the use
    cases. Returns the stored records, as the store reads them back."""
    rnd = random.Random(seed)
    events: list[tuple[datetime, str, int]] = []
    for i in range(n):
        day = datetime(2024, 3, 28, tzinfo=UTC) + timedelta(days=rnd.randint(0, 6))
        at = day + rnd.choice(MOMENTS)
        if i < 2:  # on both sides of March's last Shanghai midnight, the second reversed in May
            at = datetime(2024, 3, 31, 16, tzinfo=UTC) - timedelta(microseconds=i)
        events.append((at, "settle", i))
        if i == 1:
            events.append((datetime(2024, 4, 30, 16, tzinfo=UTC), "reverse", i))
        elif rnd.random() < 0.4:
            later = day + timedelta(days=rnd.choice([0, 1, 3, 35, 40])) + rnd.choice(MOMENTS)
            events.append((max(later, at + timedelta(microseconds=1)), "reverse", i))
    events.sort()
    sid: dict[int, str] = {}
    for at, what, i in events:
        clock.t = at
        if what == "settle":
            req = bill_request(i, HOSPITALS[rnd.randrange(3)], PERSONS[i % 6].id, rnd)
            sid[i] = svc.settle(f"r{i}", req)[0].settlement_id
        else:
            svc.reverse(settlement_id=sid[i], reversal_request_id=f"undo{i}")
    return [svc.get(s) for s in sid.values()]


# --- the independent computation -------------------------------------------------------------


def shanghai(t: datetime) -> date:
    return (t.astimezone(UTC) + timedelta(hours=8)).date()


def contributions(rec: SettlementRecord, d0: date, d1: date) -> list[int]:
    out = []
    if d0 <= shanghai(rec.created_at) <= d1:
        out.append(1)
    if rec.reversed_at is not None and d0 <= shanghai(rec.reversed_at) <= d1:
        out.append(-1)
    return out


def expected_totals(recs: list[SettlementRecord], hospital: str, d0: date, d1: date) -> Totals:
    count = med = fund = cash = 0
    funds: dict[str, int] = defaultdict(int)
    after: dict[str, int] = defaultdict(int)
    for rec in recs:
        s = rec.settlement
        if s.hospital != hospital:
            continue
        for sign in contributions(rec, d0, d1):
            count += sign
            med += sign * s.buckets.total
            cash += sign * s.window_pay
            fund += sign * (s.buckets.total - s.window_pay)
            for layer in s.layers:
                (funds if layer.settle_at == "window" else after)[layer.fund_code] += (
                    sign * layer.pay
                )
    return Totals(
        count,
        med,
        fund,
        cash,
        {k: v for k, v in sorted(funds.items()) if v},
        {k: v for k, v in sorted(after.items()) if v},
    )


def expected_daily(
    recs: list[SettlementRecord], d0: date, d1: date
) -> dict[tuple[str, str, str, str], tuple[int, int]]:
    rows: dict[tuple[str, str, str, str], list[int]] = defaultdict(lambda: [0, 0])
    for rec in recs:
        s = rec.settlement
        for sign, at in ((1, rec.created_at), (-1, rec.reversed_at)):
            if at is None or not d0 <= shanghai(at) <= d1:
                continue
            paid: dict[tuple[str, str], int] = defaultdict(int)
            for layer in s.layers:
                paid[(layer.settle_at, layer.fund_code)] += layer.pay
            for (settle_at, code), pay in paid.items():
                if pay:
                    row = rows[(shanghai(at).isoformat(), s.hospital, settle_at, code)]
                    row[0] += sign
                    row[1] += sign * pay
    return {k: (v[0], v[1]) for k, v in rows.items()}


RANGES = [
    (date(2024, 3, 1), date(2024, 3, 31)),  # March
    (date(2024, 4, 1), date(2024, 4, 30)),  # April
    (date(2024, 5, 1), date(2024, 5, 31)),  # May: only reversals of earlier settlements
    (date(2024, 3, 31), date(2024, 3, 31)),  # one day at the month's end
    (date(2024, 4, 1), date(2024, 4, 1)),
    (date(2024, 3, 1), date(2024, 5, 31)),
    (date(2024, 1, 1), date(2024, 2, 29)),  # before anything: the bills' own dates
]


# --- tests -----------------------------------------------------------------------------------


def test_shanghai_dates_and_bounds() -> None:
    from engine.reconcile import utc_bounds

    assert local_date(datetime(2024, 3, 31, 15, 59, 59, 999_999, tzinfo=UTC)) == date(2024, 3, 31)
    assert local_date(datetime(2024, 3, 31, 16, tzinfo=UTC)) == date(2024, 4, 1)
    assert utc_bounds(date(2024, 4, 1), date(2024, 4, 30)) == (
        datetime(2024, 3, 31, 16, tzinfo=UTC),
        datetime(2024, 4, 30, 16, tzinfo=UTC),
    )


def test_random_totals_equal_independent_sums(env: Any) -> None:
    kind, svc, clock = env
    recs = run_scenario(svc, clock, 12 if kind == "postgres" else 40, seed=8)
    assert any(r.reversed_at is not None for r in recs)
    assert any(r.created_at.time() == datetime.min.time().replace(hour=16) for r in recs)
    for rec in recs:  # section 14's identity: window funds total = total - window_pay
        s = rec.settlement
        window = sum(x.pay for x in s.layers if x.settle_at == "window")
        assert window == s.buckets.total - s.window_pay
    assert any(
        x.settle_at == "after_discharge" and x.pay for r in recs for x in r.settlement.layers
    )
    seen = 0
    for h in HOSPITALS:
        for d0, d1 in RANGES:
            r = svc.reconcile(h, d0.isoformat(), d1.isoformat())
            want = expected_totals(recs, h, d0, d1)
            assert r.totals == want, (h, d0, d1)
            assert not r.compared and not r.match
            assert len(r.entries) == sum(
                len(contributions(x, d0, d1)) for x in recs if x.settlement.hospital == h
            )
            seen += len(r.entries)
            # the hospital's own totals, equal to ours: match; one fund off by a fen: exactly it
            theirs = HospitalTotals(
                want.fixmedins_setl_cnt, want.medfee_sumamt, want.fund_pay_sumamt,
                want.psn_cash_pay, dict(want.funds),
            )  # fmt: skip
            assert svc.reconcile(h, d0, d1, theirs).match
            if want.funds:
                code = next(iter(want.funds))
                off = HospitalTotals(**{**theirs.__dict__, "funds": {**want.funds, code: 1}})
                diff = svc.reconcile(h, d0, d1, off).differences
                assert [(d.name, d.ours, d.theirs) for d in diff] == [
                    (f"fund:{code}", want.funds[code], 1)
                ]
                assert {e.settlement_id for e in diff[0].entries} == {
                    e.settlement_id for e in r.entries if e.funds.get(code)
                }
    assert seen
    # the bureau's totals per day, hospital and fund
    for d0, d1 in RANGES:
        rows = svc.daily_totals(REGION, d0, d1)
        got = {(x.day.isoformat(), x.hospital, x.settle_at, x.fund_code): (x.count, x.pay)
               for x in rows}  # fmt: skip
        assert got == expected_daily(recs, d0, d1)
        one = svc.daily_totals(REGION, d0, d1, hospital="H002")
        assert [x for x in rows if x.hospital == "H002"] == one
    assert svc.daily_totals("other-region", "2024-03-01", "2024-05-31") == []
    # a bureau's scope: only the settlements of its region count
    d0, d1 = RANGES[-2]
    assert svc.reconcile("H001", d0, d1, region=REGION).totals == expected_totals(
        recs, "H001", d0, d1
    )
    assert svc.reconcile("H001", d0, d1, region="other-region").totals == Totals()


def lines_of(recs: list[SettlementRecord], hospital: str, d0: date, d1: date) -> list[Any]:
    out = []
    for rec in recs:
        s = rec.settlement
        if s.hospital != hospital:
            continue
        for sign in contributions(rec, d0, d1):
            out.append(
                HospitalLine(
                    rec.settlement_id, sign < 0, sign * s.buckets.total,
                    sign * (s.buckets.total - s.window_pay), sign * s.window_pay,
                )
            )  # fmt: skip
    return out


def test_hospital_list_one_missing_or_one_amount_changed(env: Any) -> None:
    kind, svc, clock = env
    recs = run_scenario(svc, clock, 10 if kind == "postgres" else 30, seed=3)
    d0, d1 = date(2024, 3, 1), date(2024, 4, 30)
    h = max(HOSPITALS, key=lambda h: len(lines_of(recs, h, d0, d1)))
    lines = lines_of(recs, h, d0, d1)
    assert len(lines) >= 3
    rnd = random.Random(1)
    rnd.shuffle(lines)  # their order is theirs
    assert svc.reconcile(h, d0, d1, lines=lines).match
    # one missing on their side: exactly that one
    gone = lines[1]
    r = svc.reconcile(h, d0, d1, lines=[x for x in lines if x is not gone])
    assert not r.match and not r.differences
    assert [(d.settlement_id, d.reversal, d.problem) for d in r.line_differences] == [
        (gone.settlement_id, gone.reversal, "missing_theirs")
    ]
    # one amount changed: exactly that line and that amount
    changed = HospitalLine(gone.settlement_id, gone.reversal, gone.medfee_sumamt,
                           gone.fund_pay_sumamt, (gone.psn_cash_pay or 0) + 1)  # fmt: skip
    r = svc.reconcile(h, d0, d1, lines=[changed if x is gone else x for x in lines])
    assert [(d.settlement_id, d.problem, d.fields) for d in r.line_differences] == [
        (gone.settlement_id, "amount", ("psn_cash_pay",))
    ]
    assert r.line_differences[0].ours is not None
    assert r.line_differences[0].ours.psn_cash_pay == gone.psn_cash_pay
    # one they have and we do not (in this range): missing on our side
    extra = HospitalLine("not-ours", False, 100, 60, 40)
    r = svc.reconcile(h, d0, d1, lines=[*lines, extra])
    assert [(d.settlement_id, d.problem) for d in r.line_differences] == [
        ("not-ours", "missing_ours")
    ]
    # totals sent as well: the totals that differ follow from the missing line, and only they
    t = expected_totals(recs, h, d0, d1)
    theirs = HospitalTotals(t.fixmedins_setl_cnt - (-1 if gone.reversal else 1),
                            t.medfee_sumamt - (gone.medfee_sumamt or 0))  # fmt: skip
    r = svc.reconcile(h, d0, d1, theirs, [x for x in lines if x is not gone])
    assert [d.name for d in r.differences] == ["fixmedins_setl_cnt"] + (
        ["medfee_sumamt"] if gone.medfee_sumamt else []
    )


def test_reversal_in_a_later_month_shows_in_that_month(env: Any) -> None:
    _, svc, clock = env
    rnd = random.Random(5)
    # 2024-03-31 23:30 Shanghai; reversed at 2024-04-01 00:00:00 Shanghai (16:00 UTC)
    clock.t = datetime(2024, 3, 31, 15, 30, tzinfo=UTC)
    rec, _ = svc.settle("r1", bill_request(1, "H001", "p0", rnd))
    clock.t = datetime(2024, 3, 31, 16, 0, tzinfo=UTC)
    svc.reverse(settlement_id=rec.settlement_id)
    s = rec.settlement
    march = svc.reconcile("H001", "2024-03-01", "2024-03-31")
    april = svc.reconcile("H001", "2024-04-01", "2024-04-30")
    both = svc.reconcile("H001", "2024-03-01", "2024-04-30")
    assert (march.totals.fixmedins_setl_cnt, march.totals.medfee_sumamt) == (1, s.buckets.total)
    assert (april.totals.fixmedins_setl_cnt, april.totals.medfee_sumamt) == (-1, -s.buckets.total)
    assert april.totals.psn_cash_pay == -s.window_pay
    assert [(e.reversal, e.day) for e in april.entries] == [(True, date(2024, 4, 1))]
    assert both.totals == Totals()  # nets to 0 (no fund codes left)
    assert len(both.entries) == 2
    # a bureau's April row per fund: -1 and the negative pay
    apr = svc.daily_totals(REGION, "2024-04-01", "2024-04-30")
    assert {(x.fund_code, x.count, x.pay) for x in apr} == {
        (x.fund_code, -1, -p)
        for x, p in (
            (x, sum(y.pay for y in s.layers if y.fund_code == x.fund_code and
                    y.settle_at == x.settle_at))
            for x in s.layers
        )
        if p
    }  # fmt: skip


def test_bad_requests_name_the_field(env: Any) -> None:
    _, svc, _ = env

    def field(call: Any) -> str:
        with pytest.raises(InputError) as e:
            call()
        return e.value.problems[0].field

    assert field(lambda: svc.reconcile("H001", "2024-02-30", "2024-03-01")) == "from_date"
    assert field(lambda: svc.reconcile("H001", "2024-03-01", "2024/03/31")) == "to_date"
    assert field(lambda: svc.reconcile("H001", "2024-03-31", "2024-03-01")) == "to_date"
    assert field(lambda: svc.reconcile("", "2024-03-01", "2024-03-31")) == "hospital"
    assert field(lambda: svc.reconcile("H 1", "2024-03-01", "2024-03-31")) == "hospital"
    assert field(lambda: svc.daily_totals("", "2024-03-01", "2024-03-31")) == "region"
    dup = [HospitalLine("a"), HospitalLine("a", True), HospitalLine("a")]
    assert (
        field(lambda: svc.reconcile("H001", "2024-03-01", "2024-03-31", lines=dup))
        == "their_list.settlements[2].settlement_id"
    )
    with pytest.raises(LimitExceeded):
        svc.reconcile("H001", "2023-01-01", "2024-03-31")


def test_pure_compare_reports_exactly_the_differing_totals() -> None:
    t0 = datetime(2024, 3, 5, 2, tzinfo=UTC)
    facts = [
        Fact("a", "H1", t0, None, 1000, 300, (("390100", "window", 500), ("390100", "window",
             200), ("370200", "after_discharge", 100))),
        Fact("b", "H1", t0, t0 + timedelta(days=30), 2000, 2000, ()),
        Fact("c", "H2", t0, None, 5, 5, ()),
    ]  # fmt: skip
    es = entries(facts, date(2024, 3, 1), date(2024, 3, 31))
    t = totals([e for e in es if e.hospital == "H1"])
    assert t == Totals(2, 3000, 700, 2300, {"390100": 700}, {"370200": 100})
    same = HospitalTotals(2, 3000, 700, 2300, {"390100": 700})
    assert compare(t, same, es) == []
    assert compare(t, HospitalTotals(), es) == []  # nothing sent, nothing compared
    d = compare(t, HospitalTotals(psn_cash_pay=2299, funds={"390100": 700, "390200": 0}), es)
    assert [(x.name, x.ours, x.theirs) for x in d] == [("psn_cash_pay", 2300, 2299)]
    d = compare(t, HospitalTotals(funds={"390200": 5}), es)
    assert [(x.name, x.ours, x.theirs) for x in d] == [
        ("fund:390100", 700, 0),
        ("fund:390200", 0, 5),
    ]
    assert [e.settlement_id for e in d[0].entries] == ["a"] and d[1].entries == ()
    r = reconcile("H1", date(2024, 4, 1), date(2024, 4, 30), facts, same)
    assert r.totals == Totals(-1, -2000, 0, -2000, {}, {}) and not r.match


# --- through gRPC and the CLI ----------------------------------------------------------------


# the module's tests on one xdist worker (--dist loadgroup): its module-scoped fixtures
# are made once, not once on each worker that runs one of its tests
pytestmark = pytest.mark.xdist_group("reconcile")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from adapters.bootstrap import build
    from adapters.grpc.client import Client
    from adapters.grpc.server import running

    clock = SetClock()
    url = f"sqlite:///{tmp_path_factory.mktemp('recon') / 'onestop.db'}"
    app = build(
        url,
        policies=None,
        registry=None,
        service_factory=lambda uow: SettlementService(uow, clock=clock),
    )
    try:
        with running(app) as server, Client(f"127.0.0.1:{server.port}") as c:
            c.put_policy(TABLE, "recon.yaml")
            app.service.import_registry(PERSONS)
            recs = run_scenario(app.service, clock, 20, seed=11)
            yield c, recs
    finally:
        app.close()


def test_grpc_round_trip(served: Any) -> None:
    from adapters.grpc.errors import bad_request
    from adapters.grpc.gen.onestop.settlement.v1 import settlement_pb2 as pb

    c, recs = served
    d0, d1 = date(2024, 3, 1), date(2024, 4, 30)
    h = max(HOSPITALS, key=lambda h: len(lines_of(recs, h, d0, d1)))
    want = expected_totals(recs, h, d0, d1)
    r = c.reconcile(h, d0.isoformat(), d1.isoformat())
    t = r.totals
    assert (t.fixmedins_setl_cnt, t.medfee_sumamt, t.fund_pay_sumamt, t.psn_cash_pay) == (
        want.fixmedins_setl_cnt, want.medfee_sumamt, want.fund_pay_sumamt, want.psn_cash_pay,
    )  # fmt: skip
    assert {f.fund_code: f.pay for f in t.window_funds} == want.funds
    assert {f.fund_code: f.pay for f in t.after_discharge_funds} == want.after_discharge
    assert not r.compared and not r.match
    # their totals (match), then their list with one line missing
    theirs = pb.HospitalTotals(
        fixmedins_setl_cnt=want.fixmedins_setl_cnt, medfee_sumamt=want.medfee_sumamt,
        fund_pay_sumamt=want.fund_pay_sumamt, psn_cash_pay=want.psn_cash_pay,
        funds=pb.FundAmounts(funds=[pb.FundAmount(fund_code=k, pay=v)
                                    for k, v in want.funds.items()]),
    )  # fmt: skip
    assert c.reconcile(h, d0.isoformat(), d1.isoformat(), theirs).match
    lines = lines_of(recs, h, d0, d1)
    their_list = pb.HospitalList(
        settlements=[
            pb.HospitalSettlement(settlement_id=x.settlement_id, reversal=x.reversal,
                                  medfee_sumamt=x.medfee_sumamt, psn_cash_pay=x.psn_cash_pay)
            for x in lines[1:]
        ]
    )  # fmt: skip
    r = c.reconcile(h, d0.isoformat(), d1.isoformat(), theirs, their_list)
    assert r.compared and not r.match and not r.differences
    assert [(x.settlement_id, x.reversal, x.problem) for x in r.line_differences] == [
        (lines[0].settlement_id, lines[0].reversal, "missing_theirs")
    ]
    assert r.line_differences[0].ours.medfee_sumamt == lines[0].medfee_sumamt
    # an empty list sent is a list: every entry is missing on their side
    r = c.reconcile(h, d0.isoformat(), d1.isoformat(), their_list=pb.HospitalList())
    assert len(r.line_differences) == len(lines)
    # bad input: INVALID_ARGUMENT naming the field
    with pytest.raises(grpc.RpcError) as e:
        c.reconcile(h, "2024-13-01", "2024-04-30")
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in bad_request(e.value)] == ["from_date"]
    with pytest.raises(grpc.RpcError) as e:
        c.daily_totals(REGION, "2024-03-01", "")
    assert [f for f, _ in bad_request(e.value)] == ["to_date"]
    twice = pb.HospitalTotals(funds=pb.FundAmounts(funds=[pb.FundAmount(fund_code="390100")] * 2))
    with pytest.raises(grpc.RpcError) as e:
        c.reconcile(h, "2024-03-01", "2024-03-31", twice)
    assert [f for f, _ in bad_request(e.value)] == ["theirs.funds.funds[1].fund_code"]
    with pytest.raises(grpc.RpcError) as e:
        c.reconcile(h, "2024-01-01", "2025-01-01")
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    # daily totals
    rows = c.daily_totals(REGION, d0.isoformat(), d1.isoformat()).rows
    assert {(x.date, x.hospital, x.settle_at, x.fund_code): (x.count, x.pay) for x in rows} == (
        expected_daily(recs, d0, d1)
    )


def cli(c: Any, *args: str) -> Any:
    from adapters.grpc.commands import app

    return CliRunner().invoke(app, ["bureau", *args, "--server", c.target])


def test_cli_reconcile_json_and_theirs_file(served: Any, tmp_path: Path) -> None:
    c, recs = served
    d0, d1 = date(2024, 3, 1), date(2024, 3, 31)
    h = max(HOSPITALS, key=lambda h: len(lines_of(recs, h, d0, d1)))
    args = ["reconcile", "--hospital", h, "--from", "2024-03-01", "--to", "2024-03-31"]
    r = cli(c, *args, "--json")
    assert r.exit_code == 0, r.output
    got = json.loads(r.output)
    want = expected_totals(recs, h, d0, d1)
    assert got["totals"] == {
        "fixmedins_setl_cnt": want.fixmedins_setl_cnt, "medfee_sumamt": want.medfee_sumamt,
        "fund_pay_sumamt": want.fund_pay_sumamt, "psn_cash_pay": want.psn_cash_pay,
        "window_funds": want.funds, "after_discharge_funds": want.after_discharge,
    }  # fmt: skip
    assert got["compared"] is False and len(got["entries"]) == len(lines_of(recs, h, d0, d1))
    # the hospital's file: totals that agree, one line's amount changed (NHSA names accepted)
    lines = lines_of(recs, h, d0, d1)
    theirs = {
        "totals": {"fixmedins_setl_cnt": want.fixmedins_setl_cnt,
                   "medfee_sumamt": want.medfee_sumamt, "funds": want.funds},
        "settlements": [
            {"setl_id": x.settlement_id, "refd_setl_flag": "1" if x.reversal else "0",
             "medfee_sumamt": x.medfee_sumamt + (7 if i == 0 else 0),
             "cash_payamt": x.psn_cash_pay}
            for i, x in enumerate(lines)
        ],
    }  # fmt: skip
    f = tmp_path / "theirs.json"
    f.write_text(json.dumps(theirs), encoding="utf-8")
    r = cli(c, *args, "--theirs", str(f), "--json")
    assert r.exit_code == 1, r.output  # differs
    got = json.loads(r.output)
    assert got["match"] is False and got["differences"] == []
    assert [(d["settlement_id"], d["problem"], d["fields"]) for d in got["line_differences"]] == [
        (lines[0].settlement_id, "amount", ["medfee_sumamt"])
    ]
    assert got["line_differences"][0]["theirs"]["medfee_sumamt"] == lines[0].medfee_sumamt + 7
    # plain text (not a terminal): every figure in full, the difference named
    r = cli(c, *args, "--theirs", str(f))
    assert r.exit_code == 1
    total = f"{want.medfee_sumamt // 100}.{want.medfee_sumamt % 100:02d}"
    assert f"medfee_sumamt\t{total}\t{total}\tok" in r.output
    assert "DIFFERENT: 0 total(s), 1 settlement line(s)" in r.output
    assert lines[0].settlement_id in r.output and "…" not in r.output
    # a bad file is refused before any call
    f.write_text('{"totals": {"medfee_sumamt": 1.5}}', encoding="utf-8")
    r = cli(c, *args, "--theirs", str(f))
    assert r.exit_code == 1 and "totals.medfee_sumamt" in r.output  # refused input: 1
    r = cli(c, "reconcile", "--hospital", h, "--from", "2024-03-01", "--to", "March")
    assert r.exit_code == 1 and "to_date" in r.output


def test_cli_totals_csv_parquet_json_and_text(served: Any, tmp_path: Path) -> None:
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    c, recs = served
    d0, d1 = date(2024, 3, 1), date(2024, 5, 31)
    want = expected_daily(recs, d0, d1)
    args = ["totals", "--region", REGION, "--from", "2024-03-01", "--to", "2024-05-31"]
    r = cli(c, *args, "--json")
    assert r.exit_code == 0, r.output
    got = {(x["date"], x["hospital"], x["settle_at"], x["fund_code"]): (x["count"], x["pay_fen"])
           for x in json.loads(r.output)}  # fmt: skip
    assert got == want
    for opt, read in (("--csv", pcsv.read_csv), ("--parquet", pq.read_table)):
        f = tmp_path / f"totals.{opt[2:]}"
        r = cli(c, *args, opt, str(f))
        assert r.exit_code == 0, r.output
        t = read(f).to_pylist()
        assert {(str(x["date"]), x["hospital"], x["settle_at"], str(x["fund_code"])):
                (x["count"], x["pay_fen"]) for x in t} == want  # fmt: skip
    r = cli(c, *args)
    assert r.exit_code == 0
    for (day, h, at, code), (n, pay) in want.items():
        sign = "-" if pay < 0 else ""
        assert f"{day}\t{h}\t{code}\t{at}\t{n}\t{sign}{abs(pay) // 100}.{abs(pay) % 100:02d}" in (
            r.output
        )


def test_terminal_tables_fold_figures_never_cut(monkeypatch: pytest.MonkeyPatch) -> None:
    from rich.console import Console

    import adapters.grpc.figures as cmd

    console = Console(force_terminal=True, width=40, record=True)
    monkeypatch.setattr(cmd, "out", console)
    big = cmd.yuan(-123_456_789_012_345)
    assert big == "-1234567890123.45" and cmd.yuan(5) == "0.05"
    cmd._emit("t", ["date", "hospital", "fund_code", "settle_at", "pay (yuan)"],
              [["2024-03-01", "H5001120012345678901", "390100", "after_discharge", big]])  # fmt: skip
    assert "…" not in console.export_text()
    narrow = Console(force_terminal=True, width=9, record=True)
    monkeypatch.setattr(cmd, "out", narrow)
    cmd._emit("", ["pay"], [[big]])
    text = narrow.export_text()
    assert "…" not in text and "".join(c for c in text if c.isdigit()) == "123456789012345"
