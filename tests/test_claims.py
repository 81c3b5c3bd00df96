"""Claims after discharge and relief cases (domain.md section 13) through the service: every
transition and every illegal one, the account moves against an independent replay (the plain
reference plus the section 13 rules written out here), reversal, filing, money in, views and
the ledger. On the memory fake and SQLite (PostgreSQL where marked)."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from adapters.store.memory import MemoryStore
from adapters.store.sql import SqlStore
from engine.accounts import ZERO, LayerAccount, YearAccounts
from engine.errors import Conflict, FailedPrecondition, InputError, NotFound
from engine.policy.load import parse_table
from engine.reference import settle_bill
from engine.service.funds import FundService
from engine.service.ledger import LedgerService
from engine.service.ports import ClaimQuery
from engine.service.usecases import SettlementService
from tests.claims_fixtures import PERSONS, REGION, TABLE, bill, funds_yaml
from tests.pg import db_url, pg_url  # noqa: F401  (fixtures)


class Clock:
    def __init__(self) -> None:
        self.t = datetime(2024, 6, 1, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.t += timedelta(seconds=1)
        return self.t


def make(store: Any) -> tuple[SettlementService, FundService, Any]:
    n = itertools.count(1)
    svc = SettlementService(store.uow, clock=Clock(), new_id=lambda: f"s{next(n):04d}")
    svc.POLICY_RECHECK = 0.0
    funds = FundService(svc)
    svc.put_policy(TABLE, "claims.yaml")
    funds.put_funds(funds_yaml(), "funds.yaml", principal="bureau:990010")
    svc.import_registry(PERSONS)
    return svc, funds, store


@pytest.fixture(params=["memory", "sqlite"])
def env(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "memory":
        yield make(MemoryStore())
        return
    store = SqlStore(f"sqlite:///{tmp_path / 'c.db'}")
    yield make(store)
    store.dispose()


@pytest.fixture
def any_db(db_url: str) -> Any:  # noqa: F811
    store = SqlStore(db_url)
    yield make(store)
    store.dispose()


def claims_by_layer(funds: FundService, sid: str) -> dict[str, Any]:
    return {c.layer_id: c for c in funds.claims_of(sid)}


# --- filing at settlement ------------------------------------------------------------------


def test_settle_files_a_claim_and_a_relief_case(env: Any) -> None:
    svc, funds, _ = env
    rec, _ = svc.settle("r1", bill("b1", "p1", 1_500_000, c=300_000), principal="cashier:H1")
    cs = claims_by_layer(funds, rec.settlement_id)
    layers = {r.layer_id: r for r in rec.settlement.layers}
    assert set(cs) == {"backbone", "relief"}
    bb, rl = cs["backbone"], cs["relief"]
    assert (bb.kind, bb.status, bb.filed_amount) == ("claim", "filed", layers["backbone"].pay)
    assert (rl.kind, rl.status, rl.filed_amount) == ("relief", "filed", layers["relief"].relief)
    assert bb.filed_by == rl.filed_by == "cashier:H1"
    assert (rl.scope, rl.scope_key) == ("household", "h1")
    assert (bb.scope, bb.scope_key) == ("person", "p1")
    assert bb.claim_id == f"{rec.settlement_id}:backbone"
    assert funds.get_claim(bb.claim_id) == bb


def test_an_alert_with_zero_relief_still_makes_a_case_and_no_pay_no_claim(env: Any) -> None:
    svc, funds, _ = env
    # p3 is not poor: no backbone; self-pay 210,000 is above the threshold by 10,000 -> relief
    rec, _ = svc.settle("r1", bill("b1", "p3", 420_000))
    assert set(claims_by_layer(funds, rec.settlement_id)) == {"relief"}
    # a small bill of p4 (poor, 74: backbone does not apply): below the threshold, no alert
    rec2, _ = svc.settle("r2", bill("b2", "p4", 100_000))
    assert funds.claims_of(rec2.settlement_id) == []
    # the household of p3 goes on above the threshold with an annual cap reached: relief 0
    rec3, _ = svc.settle("r3", bill("b3", "p3", 9_000_000, day=20))
    rec4, _ = svc.settle("r4", bill("b4", "p3", 100_000, month=5))
    case = claims_by_layer(funds, rec4.settlement_id)["relief"]
    assert case.filed_amount == 0 and case.status == "filed"
    assert claims_by_layer(funds, rec3.settlement_id)["relief"].filed_amount > 0


# --- transitions ---------------------------------------------------------------------------


def test_approve_then_pay(env: Any) -> None:
    svc, funds, _ = env
    rec, _ = svc.settle("r1", bill("b1", "p1", 1_500_000, c=300_000))
    cid = f"{rec.settlement_id}:backbone"
    a = funds.approve(cid, note="documents complete", principal="charity:cfpa")
    assert (a.status, a.approved_amount, a.decided_by, a.note) == (
        "approved", a.filed_amount, "charity:cfpa", "documents complete")  # fmt: skip
    p = funds.pay(cid, "2024-04-02", "ALIPAY-0001", principal="charity:cfpa")
    assert (p.status, p.paid_date, p.payment_ref, p.paid_by) == (
        "paid", date(2024, 4, 2), "ALIPAY-0001", "charity:cfpa")  # fmt: skip
    assert p.days_to_payment == (date(2024, 4, 2) - date(2024, 3, 15)).days
    assert funds.get_claim(cid) == p


def test_reject_and_lower_approval(env: Any) -> None:
    svc, funds, _ = env
    rec, _ = svc.settle("r1", bill("b1", "p1", 1_500_000, c=300_000))
    bb = funds.reject(f"{rec.settlement_id}:backbone", "not insured", principal="charity:cfpa")
    assert (bb.status, bb.reason, bb.current_amount) == ("rejected", "not insured", 0)
    rl = funds.approve(f"{rec.settlement_id}:relief", 10_000, "partial")
    assert (rl.status, rl.approved_amount, rl.current_amount) == ("approved", 10_000, 10_000)
    rl0 = funds.claims_of(rec.settlement_id)
    assert {c.layer_id: c.status for c in rl0} == {"backbone": "rejected", "relief": "approved"}


ILLEGAL = [
    # (steps taken first, the refused step, what the message must say it may do)
    ([], "pay", "it may only be approved or rejected"),
    (["approve"], "approve", "it may only be paid"),
    (["approve"], "reject", "it may only be paid"),
    (["reject"], "approve", "it takes no further step"),
    (["reject"], "reject", "it takes no further step"),
    (["reject"], "pay", "it takes no further step"),
    (["approve", "pay"], "pay", "it takes no further step"),
    (["approve", "pay"], "approve", "it takes no further step"),
    (["approve", "pay"], "reject", "it takes no further step"),
]


def _do(funds: FundService, step: str, cid: str) -> Any:
    if step == "approve":
        return funds.approve(cid)
    if step == "reject":
        return funds.reject(cid, "no")
    return funds.pay(cid, "2024-05-01", "REF-1")


@pytest.mark.parametrize(("before", "step", "allowed"), ILLEGAL)
def test_illegal_transitions_are_refused_naming_claim_status_and_allowed(
    env: Any, before: list[str], step: str, allowed: str
) -> None:
    svc, funds, _ = env
    rec, _ = svc.settle("r1", bill("b1", "p1", 1_500_000, c=300_000))
    cid = f"{rec.settlement_id}:backbone"
    for s in before:
        _do(funds, s, cid)
    stored = funds.get_claim(cid)
    acc = svc.accounts("p1", 2024)
    with pytest.raises(FailedPrecondition) as err:
        _do(funds, step, cid)
    msg = str(err.value)
    assert cid in msg and f"is {stored.status}" in msg and allowed in msg
    assert isinstance(err.value, Conflict)
    assert funds.get_claim(cid) == stored and svc.accounts("p1", 2024) == acc


def test_bad_amounts_dates_and_names(env: Any) -> None:
    svc, funds, _ = env
    rec, _ = svc.settle("r1", bill("b1", "p1", 1_500_000, c=300_000))
    cid = f"{rec.settlement_id}:backbone"
    filed = funds.get_claim(cid).filed_amount
    for bad in (filed + 1, -1, True, 1.5):
        with pytest.raises(InputError, match="amount"):
            funds.approve(cid, bad)
    with pytest.raises(InputError, match="reason"):
        funds.reject(cid, "")
    with pytest.raises(NotFound, match="nope"):
        funds.approve("nope")
    funds.approve(cid, 0)  # 0 is an amount
    for day in ("2024-4-2", "2024-04-02T00:00:00", "20240402"):
        with pytest.raises(InputError, match="paid_date"):
            funds.pay(cid, day, "REF")
    with pytest.raises(InputError, match="before the discharge date"):
        funds.pay(cid, "2024-03-14", "REF")
    with pytest.raises(InputError, match="payment_ref"):
        funds.pay(cid, "2024-03-20", "")
    assert funds.pay(cid, "2024-03-15", "REF").status == "paid"


# --- account moves against an independent replay -------------------------------------------


class Replay:
    """The plain reference, one bill at a time, and the section 13 rules written out: what
    the accounts must be."""

    def __init__(self) -> None:
        self.table = parse_table(TABLE, "claims.yaml")
        self.p: dict[str, YearAccounts] = {}
        self.h: dict[str, YearAccounts] = {}
        self.moves: dict[str, dict[tuple[str, str], LayerAccount]] = {}  # sid -> (scope, lid)
        self.layers: dict[str, Any] = {}
        self.taken: dict[tuple[str, str], int] = {}  # (sid, layer) -> amount taken back
        self.rejected: set[tuple[str, str]] = set()
        self.owner: dict[str, tuple[str, str]] = {}

    def settle(self, sid: str, req: Any) -> Any:
        person = next(p for p in PERSONS if p.id == req.person_id)
        b = req.with_person(person)
        pb = self.p.get(person.id, YearAccounts())
        hb = self.h.get(person.household, YearAccounts())
        s, pa, ha = settle_bill(b, self.table, pb, hb)
        self.p[person.id], self.h[person.household] = pa, ha
        mv = {}
        for x in s.layers:
            scope = x.scope
            before = (hb if scope == "household" else pb).get(x.layer_id)
            after = (ha if scope == "household" else pa).get(x.layer_id)
            mv[(scope, x.layer_id)] = after.minus(before)
        self.moves[sid] = mv
        self.layers[sid] = s
        self.owner[sid] = (person.id, person.household)
        return s

    def _add(self, sid: str, scope: str, lid: str, d: LayerAccount) -> None:
        pid, hid = self.owner[sid]
        book, key = (self.h, hid) if scope == "household" else (self.p, pid)
        acc = book[key]
        book[key] = acc.with_layer(lid, acc.get(lid).plus(d))

    def _alerts_after(self, sid: str, lid: str, amount: int) -> None:
        s = self.layers[sid]
        ids = [x.layer_id for x in s.layers]
        for x in s.layers[ids.index(lid) + 1 :]:
            if x.kind == "alert" and x.reason == "":
                self._add(sid, x.scope, x.layer_id, LayerAccount(0, 0, 0, amount))

    def _scope(self, sid: str, lid: str) -> str:
        return next(x.scope for x in self.layers[sid].layers if x.layer_id == lid)

    def reject(self, sid: str, lid: str, kind: str) -> None:
        m = self.moves[sid][(self._scope(sid, lid), lid)]
        filed = self._filed(sid, lid)
        if kind == "claim":  # the layer's moves back; the pay added to the alerts' self-pay
            self._add(sid, self._scope(sid, lid), lid,
                      LayerAccount(-m.deductible_used, -m.eligible_cum, -m.paid, 0))  # fmt: skip
            self._alerts_after(sid, lid, filed)
        else:  # a relief case: its relief back from paid only
            self._add(sid, self._scope(sid, lid), lid, LayerAccount(0, 0, -filed, 0))
        self.taken[(sid, lid)] = filed
        self.rejected.add((sid, lid))

    def approve(self, sid: str, lid: str, kind: str, amount: int) -> None:
        diff = self._filed(sid, lid) - amount
        self._add(sid, self._scope(sid, lid), lid, LayerAccount(0, 0, -diff, 0))
        if kind == "claim":
            self._alerts_after(sid, lid, diff)
        self.taken[(sid, lid)] = diff

    def _filed(self, sid: str, lid: str) -> int:
        x = next(x for x in self.layers[sid].layers if x.layer_id == lid)
        return x.relief if x.alert else x.pay

    def reverse(self, sid: str) -> None:
        """The settlement's moves back, less what its decisions took back already (nothing
        twice), and the self-pay those decisions added to its alerts back too."""
        for (scope, lid), d in self.moves[sid].items():
            if (sid, lid) in self.rejected and not self._alert(sid, lid):
                back = LayerAccount(d.deductible_used, d.eligible_cum, d.paid, 0)
            else:
                back = LayerAccount(0, 0, self.taken.get((sid, lid), 0), 0)
            self._add(sid, scope, lid, ZERO.minus(d.minus(back)))
        for (s2, lid), amount in self.taken.items():
            if s2 == sid and not self._alert(sid, lid):
                self._alerts_after(sid, lid, -amount)
        pid, _ = self.owner[sid]
        self.p[pid] = replace(self.p[pid], admissions=self.p[pid].admissions - 1)

    def _alert(self, sid: str, lid: str) -> bool:
        return any(x.layer_id == lid and x.alert for x in self.layers[sid].layers)

    def check(self, svc: SettlementService) -> None:
        for pid, acc in self.p.items():
            hid = next(p.household for p in PERSONS if p.id == pid)
            _, pa, ha = svc.accounts(pid, 2024)
            assert pa.normalized() == acc.normalized(), pid
            assert ha.normalized() == self.h[hid].normalized(), hid


def test_accounts_after_decisions_and_reversal_equal_the_replay(env: Any) -> None:
    svc, funds, _ = env
    rp = Replay()

    def settle(rid: str, req: Any) -> str:
        rec, _ = svc.settle(rid, req)
        s = rp.settle(rec.settlement_id, req)
        assert rec.settlement == s
        return rec.settlement_id

    s1 = settle("r1", bill("b1", "p1", 1_500_000, c=300_000))
    rp.check(svc)
    funds.reject(f"{s1}:backbone", "not insured")
    rp.reject(s1, "backbone", "claim")
    rp.check(svc)
    funds.approve(f"{s1}:relief", 20_000)  # lower approval of a relief case
    rp.approve(s1, "relief", "relief", 20_000)
    rp.check(svc)
    s2 = settle("r2", bill("b2", "p2", 2_000_000, day=20))  # same household, sees the moves
    rp.check(svc)
    c2 = funds.get_claim(f"{s2}:backbone")
    funds.approve(c2.claim_id, c2.filed_amount - 12_345)
    rp.approve(s2, "backbone", "claim", c2.filed_amount - 12_345)
    rp.check(svc)
    s3 = settle("r3", bill("b3", "p1", 800_000, month=5))
    funds.approve(f"{s3}:backbone")  # at the filed amount: nothing moves
    rp.approve(s3, "backbone", "claim", funds.get_claim(f"{s3}:backbone").filed_amount)
    rp.check(svc)
    s4 = settle("r4", bill("b4", "p2", 600_000, month=6))
    rp.check(svc)
    # reversals: s2 (a lower approval and a filed case), s1 (a rejection and a lower case)
    for sid in (s2, s1, s4):
        svc.reverse(settlement_id=sid)
        rp.reverse(sid)
        rp.check(svc)
        for c in funds.claims_of(sid):
            assert c.status == "rejected"
    assert funds.get_claim(f"{s2}:backbone").reason == "settlement reversed"
    assert funds.get_claim(f"{s1}:backbone").reason == "not insured"  # rejected before: kept
    _, pa, _ = svc.accounts("p1", 2024)
    assert pa.admissions == 1  # s3 stays; later settlements are not recomputed


def test_a_settlement_with_a_paid_claim_cannot_be_reversed(env: Any) -> None:
    svc, funds, _ = env
    rec, _ = svc.settle("r1", bill("b1", "p1", 1_500_000, c=300_000))
    cid = f"{rec.settlement_id}:relief"
    funds.approve(cid)
    funds.pay(cid, "2024-04-01", "BANK-7")
    acc = svc.accounts("p1", 2024)
    with pytest.raises(FailedPrecondition, match=f"relief '{cid}' is paid"):
        svc.reverse(settlement_id=rec.settlement_id)
    assert svc.get(rec.settlement_id).status == "settled"
    assert svc.accounts("p1", 2024) == acc
    assert funds.get_claim(f"{rec.settlement_id}:backbone").status == "filed"


def test_claims_of_a_reversed_settlement_take_no_step(env: Any) -> None:
    svc, funds, _ = env
    rec, _ = svc.settle("r1", bill("b1", "p1", 1_500_000, c=300_000))
    svc.reverse(settlement_id=rec.settlement_id)
    with pytest.raises(FailedPrecondition, match="is rejected"):
        funds.approve(f"{rec.settlement_id}:backbone")
    _, again = svc.reverse(settlement_id=rec.settlement_id)
    assert again  # a replay: nothing rejected twice


# --- filing later --------------------------------------------------------------------------


def test_file_claim_is_idempotent_and_files_a_missing_claim(env: Any) -> None:
    svc, funds, store = env
    rec, _ = svc.settle("r1", bill("b1", "p1", 1_500_000, c=300_000))
    sid = rec.settlement_id
    existing = funds.get_claim(f"{sid}:backbone")
    assert funds.file_claim(sid, "backbone", principal="x") == existing
    # a settlement from before claims were kept: its claim is missing
    if isinstance(store, MemoryStore):
        del store.claims[f"{sid}:backbone"]
    else:
        with store.engine.begin() as c:
            c.exec_driver_sql(f"DELETE FROM claims WHERE claim_id = '{sid}:backbone'")
    acc = svc.accounts("p1", 2024)
    c = funds.file_claim(sid, "backbone", principal="clerk:1")
    assert (c.status, c.filed_by, c.filed_amount) == ("filed", "clerk:1", existing.filed_amount)
    assert svc.accounts("p1", 2024) == acc  # the settlement moved the accounts already
    with pytest.raises(FailedPrecondition, match="makes no claim"):
        funds.file_claim(sid, "basic")
    with pytest.raises(NotFound, match="'nope'"):
        funds.file_claim(sid, "nope")
    with pytest.raises(NotFound, match="settlement"):
        funds.file_claim("s9999", "backbone")


# --- money in ------------------------------------------------------------------------------


def test_money_in_is_idempotent_and_strict(env: Any) -> None:
    _, funds, _ = env
    args = dict(region=REGION, fund_code="370200", year=2024, kind="donation",
                payer="Alipay donors 2024-03-01", amount=1_234_500, on="2024-03-01")  # fmt: skip
    m, replay = funds.record_money_in("m-1", **args, principal="charity:cfpa")
    assert not replay and m.amount == 1_234_500 and m.recorded_by == "charity:cfpa"
    again, replay = funds.record_money_in("m-1", **args)
    assert replay and again == m
    with pytest.raises(Conflict, match="'m-1'"):
        funds.record_money_in("m-1", **{**args, "amount": 1})
    for field, bad in (("amount", 0), ("amount", -5), ("on", "2024-3-1"), ("kind", "gift"),
                       ("year", 1800), ("payer", "")):  # fmt: skip
        with pytest.raises(InputError, match=field):
            funds.record_money_in("m-2", **{**args, field: bad})
    with pytest.raises(NotFound, match="fund"):
        funds.record_money_in("m-3", **{**args, "fund_code": "123456"})
    f = funds.facts(REGION, "370200", 2024, "2024-06-30")
    assert f.money_in == (m,)


# --- views ---------------------------------------------------------------------------------


def test_facts_cover_and_cover_list(env: Any) -> None:
    svc, funds, _ = env
    rec, _ = svc.settle("r1", bill("b1", "p1", 1_500_000, c=300_000))
    svc.settle("r2", bill("b2", "p3", 420_000))
    LedgerService(svc._uow).seal()
    f = funds.facts(REGION, "370200", 2024, "2024-06-30")
    assert (f.fund_name, f.fund_name_zh, f.region_name) == (
        "Backbone charity pool", "顶梁柱", "Claims test county")  # fmt: skip
    assert f.enrolled == 2  # poor and 18-60: p1, p2 (p3 not poor, p4 is 74)
    assert [c.layer_id for c in f.claims] == ["backbone"] and f.window_pays == ()
    assert f.checkpoint is not None and f.checkpoint[0] == 0
    r = funds.facts(REGION, "610900", 2024, "2024-06-30")  # no declared eligibility: layer's
    assert r.enrolled == 4 and len(r.claims) == 2
    b = funds.facts(REGION, "390100", 2024, "2024-06-30")  # not declared: the layer's names
    assert b.fund_name == "Basic" and b.budget is None and b.budget_mode == "report"
    first = b.window_pays[0]
    assert (first.settlement_id, first.pay) == (rec.settlement_id, rec.settlement.layers[0].pay)
    assert all(not p.reversed for p in b.window_pays)
    svc.reverse(settlement_id=rec.settlement_id)
    assert funds.facts(REGION, "390100", 2024, "2024-06-30").window_pays[0].reversed
    with pytest.raises(NotFound):
        funds.facts(REGION, "999999", 2024, "2024-06-30")

    cover = funds.person_cover("p1", 2024, "2024-06-30")
    assert cover.person.township == "East" and cover.person.village == "Oak"
    by = {x.fund_code: x for x in cover.funds}
    assert by["370200"].covered and by["390100"].covered and by["610900"].covered
    assert [x.layer_id for x in by["370200"].layers] == ["backbone"]
    assert [s.settlement_id for s in cover.settlements] == [rec.settlement_id]
    assert {c.status for c in cover.claims} == {"rejected"}
    p4 = {x.fund_code: x.covered for x in funds.person_cover("p4", 2024, "2024-06-30").funds}
    assert p4 == {"390100": True, "370200": False, "610900": True}

    rows = funds.cover_list(REGION, as_of="2024-06-30")
    assert [(r.person_id, r.fund_codes) for r in rows] == [  # by township, village, id
        ("p2", ("390100", "370200", "610900")),
        ("p1", ("390100", "370200", "610900")),
        ("p3", ("390100", "610900")),
        ("p4", ("390100", "610900")),
    ]
    assert [r.person_id for r in funds.cover_list(REGION, "West", "Ash", "2024-06-30")] == [
        "p3", "p4"]  # fmt: skip
    assert [r.person_id for r in funds.cover_list(REGION, township="East")] == ["p2", "p1"]


def test_fund_cover_names_the_declared_operator(env: Any) -> None:
    _, funds, _ = env
    by = {x.fund_code: x for x in funds.person_cover("p1", 2024, "2024-06-30").funds}
    assert by["370200"].operator == "County charity federation"
    assert by["610900"].operator == ""  # declared without one
    assert by["390100"].operator == ""  # only on a layer: no declaration
    assert {x.region for x in by.values()} == {REGION}


def test_cover_list_pages_by_township_village_and_person(env: Any) -> None:
    _, funds, _ = env
    whole = funds.cover_list(REGION, as_of="2024-06-30")
    got, after = [], None
    while True:
        page = funds.cover_list(REGION, as_of="2024-06-30", after=after, limit=3)
        got += page
        if len(page) < 3:
            break
        after = cover_key_of(page[-1])
    assert got == whole and len(whole) == 4
    west = funds.cover_list(REGION, as_of="2024-06-30", keep=lambda p: p.township == "West")
    assert [r.person_id for r in west] == ["p3", "p4"]
    assert funds.cover_list(REGION, as_of="2024-06-30", after=("East", "Oak", "p1")) == whole[2:]
    # the store pages (Registry.page_in_region), read on while ``keep`` leaves persons out
    west_only = lambda p: p.township == "West"  # noqa: E731
    one = funds.cover_list(REGION, as_of="2024-06-30", keep=west_only, limit=1)
    assert [r.person_id for r in one] == ["p3"]
    rest = funds.cover_list(REGION, as_of="2024-06-30", keep=west_only, limit=5,
                            after=cover_key_of(one[0]))  # fmt: skip
    assert [r.person_id for r in rest] == ["p4"] and rest[0] == whole[3]
    assert funds.cover_list(REGION, "East", "Elm", "2024-06-30", limit=5) == whole[:1]


def cover_key_of(r: Any) -> tuple[str, str, str]:
    return (r.township, r.village, r.person_id)


def test_claims_page_is_the_store_keyset_page(env: Any) -> None:
    """``Claims.page`` (memory and SQL): the filters, the order (filed_at, claim_id), pages
    after a key that join up to the whole listing."""
    svc, funds, _ = env
    svc.settle("r1", bill("b1", "p1", 1_500_000, c=300_000))
    svc.settle("r2", bill("b2", "p3", 420_000))
    svc.settle("r3", bill("b3", "p3", 9_000_000, day=20))
    svc.settle("r4", bill("b4", "p2", 2_000_000, day=21))
    every = funds.claims_page(ClaimQuery(), None, 100)
    assert len(every) >= 4
    assert [(c.filed_at, c.claim_id) for c in every] == sorted(
        (c.filed_at, c.claim_id) for c in every
    )
    backbone = funds.claims_page(ClaimQuery(REGION, ("370200",), year=2024), None, 100)
    assert backbone and {c.fund_code for c in backbone} == {"370200"}
    both = funds.claims_page(ClaimQuery(REGION, ("370200", "610900"), year=2024), None, 100)
    assert {c.fund_code for c in both} == {"370200", "610900"}
    assert funds.claims_page(ClaimQuery(REGION, ("370200",), year=2023), None, 100) == []
    relief = funds.claims_page(ClaimQuery(kind="relief"), None, 100)
    assert relief and {c.kind for c in relief} == {"relief"}
    p3 = funds.claims_page(ClaimQuery(person_id="p3", year=2024), None, 100)
    assert p3 and {c.person_id for c in p3} == {"p3"}
    funds.reject(every[0].claim_id, "no")
    rejected = funds.claims_page(ClaimQuery(status="rejected"), None, 100)
    assert [c.claim_id for c in rejected] == [every[0].claim_id]
    pages, after = [], None
    while True:
        page = funds.claims_page(ClaimQuery(), after, 2)
        pages += page
        if len(page) < 2:
            break
        after = (page[-1].filed_at, page[-1].claim_id)
    assert [c.claim_id for c in pages] == [c.claim_id for c in every]


# --- ledger --------------------------------------------------------------------------------


def test_every_claim_step_is_a_ledger_event_and_the_ledger_verifies(env: Any) -> None:
    svc, funds, store = env
    rec, _ = svc.settle("r1", bill("b1", "p1", 1_500_000, c=300_000), principal="cashier:H1")
    sid = rec.settlement_id
    funds.approve(f"{sid}:backbone", principal="charity:a")
    funds.pay(f"{sid}:backbone", "2024-04-01", "REF-9", principal="charity:b")
    funds.reject(f"{sid}:relief", "duplicate", principal="civil:c")
    funds.record_money_in("m1", REGION, "370200", 2024, "premium", "county", 100, "2024-01-05")
    led = LedgerService(store.uow)
    led.seal()
    with store.uow() as u:
        head = u.ledger.head()
        evs = [e.event() for e in u.ledger.events(1, head.header.last_seq)]
    steps = [(e["method"], e.get("claim_id"), e["principal"]) for e in evs]
    assert steps[:3] == [("PutPolicy", None, "local"), ("PutFunds", None, "bureau:990010"),
                         ("ImportRegistry", None, "local")]  # fmt: skip
    assert steps[3:] == [
        ("Settle", None, "cashier:H1"),
        ("FileClaim", f"{sid}:backbone", "cashier:H1"),
        ("FileClaim", f"{sid}:relief", "cashier:H1"),
        ("ApproveClaim", f"{sid}:backbone", "charity:a"),
        ("PayClaim", f"{sid}:backbone", "charity:b"),
        ("RejectClaim", f"{sid}:relief", "civil:c"),
        ("RecordMoneyIn", None, "local"),
    ]
    with store.uow() as u:
        assert u.ledger.find("PayClaim", f"{sid}:backbone") is not None
    assert "duplicate" not in str(evs) and "REF-9" not in str(evs)  # free text as a digest
    report, pending = led.verify()
    assert report.ok and pending == 0 and report.events == len(evs)


@pytest.mark.postgres
def test_claim_steps_on_postgres(pg_url: str) -> None:  # noqa: F811
    from tests.pg import fresh_database

    store = SqlStore(fresh_database(pg_url))
    try:
        svc, funds, _ = make(store)
        rp = Replay()
        rec, _ = svc.settle("r1", bill("b1", "p1", 1_500_000, c=300_000))
        rp.settle(rec.settlement_id, bill("b1", "p1", 1_500_000, c=300_000))
        funds.reject(f"{rec.settlement_id}:backbone", "no")
        rp.reject(rec.settlement_id, "backbone", "claim")
        funds.approve(f"{rec.settlement_id}:relief", 1)
        rp.approve(rec.settlement_id, "relief", "relief", 1)
        rp.check(svc)
        svc.reverse(settlement_id=rec.settlement_id)
        rp.reverse(rec.settlement_id)
        rp.check(svc)
        report, _ = LedgerService(store.uow).verify()
        assert report.ok
        # the keyset pages (row-value comparisons) on PostgreSQL
        every = funds.claims_page(ClaimQuery(), None, 10)
        assert len(every) == 2
        first = funds.claims_page(ClaimQuery(region=REGION, year=2024), None, 1)
        after = (first[0].filed_at, first[0].claim_id)
        assert first + funds.claims_page(ClaimQuery(region=REGION, year=2024), after, 10) == every
        whole = funds.cover_list(REGION, as_of="2024-06-30")
        head = funds.cover_list(REGION, as_of="2024-06-30", limit=2)
        tail = funds.cover_list(REGION, as_of="2024-06-30", after=cover_key_of(head[-1]), limit=9)
        assert head + tail == whole and len(whole) == 4
    finally:
        store.dispose()


@pytest.mark.postgres
def test_a_settle_on_postgres_is_three_statements_in_two_trips_with_its_events_in_order(
    pg_url: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A Settle with claims on PostgreSQL: its reads before the locks one statement, the two
    locks and the accounts read under them one statement (``onestop_lock_read``, migration
    0011), then every write and the ledger events one statement (target 7: each statement is psycopg machinery); the events stored in their
    order (the settlement's, then its claims'), sealed and verified; a replay is answered.
    Two round trips, counted as the driver waits for the server (each pipeline Sync, each
    statement sent alone): the transaction's BEGIN goes with the first trip's statements and
    COMMIT with the writes (psycopg's own BEGIN and COMMIT in a pipeline each waited for an
    answer of their own: four trips)."""
    import psycopg
    from psycopg._pipeline_base import BasePipeline

    from adapters.store.sql import pipeline as pipeline_module
    from adapters.store.sql.uow import SqlUnitOfWork
    from tests.pg import fresh_database

    store = SqlStore(fresh_database(pg_url))
    try:
        svc, _, _ = make(store)
        svc.settle("r0", bill("b0", "p2", 200_000))  # the tables read and cached
        sent: list[str] = []
        execute = psycopg.RawCursor.execute
        trips = []
        pipeline = SqlUnitOfWork._pipeline
        waits: list[str] = []
        sync = BasePipeline._enqueue_sync
        alone = psycopg.Connection.execute
        queue = pipeline_module.command
        run_statement, run_query = pipeline_module.statement, pipeline_module.query

        def written(raw: Any, sql: bytes, args: Any) -> None:  # the writes, without a cursor
            sent.append(sql.decode().split()[0])
            run_statement(raw, sql, args)

        def read(raw: Any, sql: bytes, args: Any) -> Any:  # the reads, without a cursor
            text = sql.decode()
            sent.append(text.split()[0] + (" lock" if "onestop_lock_read" in text else ""))
            return run_query(raw, sql, args)

        def counted(cur: Any, query: Any, *a: Any, **k: Any) -> Any:
            sent.append(str(query).split()[0] + (" lock" if "onestop_lock_read" in query else ""))
            if cur.connection._pipeline is None:
                waits.append("alone")
            return execute(cur, query, *a, **k)

        def trip(u: Any, *a: Any, **k: Any) -> Any:
            trips.append(len(sent))
            return pipeline(u, *a, **k)

        def synced(p: Any) -> None:
            waits.append("sync")
            sync(p)

        def direct(c: Any, *a: Any, **k: Any) -> Any:
            waits.append("alone")
            return alone(c, *a, **k)

        def command(raw: Any, sql: bytes) -> None:  # BEGIN, COMMIT: queued without a cursor
            sent.append(sql.decode())
            queue(raw, sql)

        monkeypatch.setattr(psycopg.RawCursor, "execute", counted)
        monkeypatch.setattr(pipeline_module, "command", command)
        monkeypatch.setattr(pipeline_module, "statement", written)
        monkeypatch.setattr(pipeline_module, "query", read)
        monkeypatch.setattr(SqlUnitOfWork, "_pipeline", trip)
        monkeypatch.setattr(BasePipeline, "_enqueue_sync", synced)
        monkeypatch.setattr(psycopg.Connection, "execute", direct)
        rec, replay = svc.settle("r1", bill("b1", "p1", 1_500_000, c=300_000))
        # the account locks and their read with the reads (the person is registered, no
        # hard budget): two round trips, the writes and COMMIT the second
        assert not replay
        assert sent == ["BEGIN", "SELECT lock", "SELECT", "WITH", "COMMIT"] and trips == [0, 3]
        assert waits == ["sync", "sync"]
        monkeypatch.undo()
        assert svc.settle("r1", bill("b1", "p1", 1_500_000, c=300_000)) == (rec, True)
        led = LedgerService(store.uow)
        led.seal()
        with store.uow() as u:
            head = u.ledger.head()
            assert head is not None
            evs = [e.event() for e in u.ledger.events(1, head.header.last_seq)]
        sid = rec.settlement_id
        assert [(e["method"], e.get("claim_id")) for e in evs[-3:]] == [
            ("Settle", None),
            ("FileClaim", f"{sid}:backbone"),
            ("FileClaim", f"{sid}:relief"),
        ]
        assert led.verify()[0].ok
    finally:
        store.dispose()


@pytest.mark.parametrize("seed", range(12))
def test_random_steps_keep_the_accounts_equal_to_the_replay(seed: int) -> None:
    """Random bills of one household and one other person, random decisions on their claims
    and cases, random reversals (refused when something is paid): after every step the
    stored accounts equal the replay."""
    import random

    rnd = random.Random(seed)
    svc, funds, _ = make(MemoryStore())
    rp = Replay()
    live: list[str] = []
    for n in range(14):
        action = rnd.random()
        if action < 0.45 or not live:
            pid = rnd.choice(["p1", "p2", "p3"])
            req = bill(f"b{n}", pid, rnd.randrange(50_000, 2_500_000, 1000),
                       day=rnd.randrange(1, 20), month=rnd.randrange(1, 13),
                       c=rnd.choice([0, 0, 200_000]))  # fmt: skip
            rec, _ = svc.settle(f"r{n}", req)
            assert rp.settle(rec.settlement_id, req) == rec.settlement
            live.append(rec.settlement_id)
        elif action < 0.85:
            sid = rnd.choice(live)
            open_ = [c for c in funds.claims_of(sid) if c.status in ("filed", "approved")]
            if not open_:
                continue
            c = rnd.choice(open_)
            if c.status == "approved":
                funds.pay(c.claim_id, "2024-12-31", f"P{n}")
            elif rnd.random() < 0.4:
                funds.reject(c.claim_id, "random")
                rp.reject(sid, c.layer_id, c.kind)
            else:
                amount = rnd.choice([c.filed_amount, rnd.randrange(0, c.filed_amount + 1)])
                funds.approve(c.claim_id, amount)
                rp.approve(sid, c.layer_id, c.kind, amount)
        else:
            sid = rnd.choice(live)
            if any(c.status == "paid" for c in funds.claims_of(sid)):
                with pytest.raises(FailedPrecondition, match="is paid"):
                    svc.reverse(settlement_id=sid)
            else:
                svc.reverse(settlement_id=sid)
                rp.reverse(sid)
                live.remove(sid)
        rp.check(svc)


def test_claim_page_reads_more_while_the_scope_leaves_claims_out() -> None:
    """``claim_page`` over a fake page reader: pages are full but the last when ``visible``
    leaves claims out, the token resumes after the last claim shown, and a listing of no
    fund reads nothing."""
    from engine.service.claimviews import ClaimFilter, claim_page

    t0 = datetime(2024, 6, 1, tzinfo=UTC)
    stored = [
        replace(_a_claim(), claim_id=f"c{i:02d}", filed_at=t0 + timedelta(minutes=i // 2))
        for i in range(20)
    ]
    reads: list[int] = []

    def read(q: ClaimQuery, after: Any, limit: int) -> list[Any]:
        reads.append(limit)
        keep = [c for c in stored if not q.fund_codes or c.fund_code in q.fund_codes]
        return [c for c in keep if after is None or (c.filed_at, c.claim_id) > after][:limit]

    f = ClaimFilter(region=REGION, year=2024)
    seen, token, pages = [], "", 0
    while True:
        page, token = claim_page(
            read, f, 3, token, fund_codes=("370200",), visible=lambda c: c.claim_id[-1] in "05"
        )
        pages += 1
        seen += [c.claim_id for c in page]
        assert len(page) == 3 or not token
        if not token:
            break
    assert seen == ["c00", "c05", "c10", "c15"] and pages == 2
    assert claim_page(read, f, 3, "", fund_codes=()) == ([], "")
    with pytest.raises(InputError):
        claim_page(read, replace(f, year=2023), 3, claim_page(read, f, 1, "")[1])


def _a_claim() -> Any:
    from engine.claims import Claim

    return Claim(
        claim_id="c", kind="claim", settlement_id="s", layer_id="backbone", fund_code="370200",
        region=REGION, year=2024, person_id="p1", household="h1", hospital="H1", bill_id="b",
        discharge_date=date(2024, 5, 1), filed_amount=100, status="filed",
        filed_at=datetime(2024, 6, 1, tzinfo=UTC), filed_by="x", scope="person", scope_key="p1",
    )  # fmt: skip


def test_claim_row_is_asdict_of_every_claim_of_a_settlement(env: Any) -> None:
    """The store writes a claim as ``claim_row`` (a shallow asdict): equal to ``asdict`` for
    claims and relief cases as settlement files them, and after each step."""
    from dataclasses import asdict

    from adapters.store.sql.claims import claim_row

    svc, funds, _ = env
    rec, _ = svc.settle("r-row", bill("row-1", "p1", 1_500_000, c=300_000))
    claims = list(claims_by_layer(funds, rec.settlement_id).values())
    assert {c.kind for c in claims} == {"claim", "relief"}
    for c in claims:
        assert claim_row(c) == asdict(c)
        decided = replace(c, status="approved", approved_amount=0, decided_at=c.filed_at)
        assert claim_row(decided) == asdict(decided)
