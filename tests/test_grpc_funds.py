"""The FundsService (issue 10) through a real TLS server and real clients with certificates:
the claim lifecycle, every new rpc's role and scope refusals (table-driven), a person's own
cover, the cadre's cover list, and the CLI (``onestop fund|person|cadre``) with --json checked
against the rpc."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import grpc
import pytest
from typer.testing import CliRunner

from adapters.auth.certs import Client as CertClient
from adapters.auth.certs import clients_for, make_all
from adapters.auth.principals import PrincipalsFile, parse_principals
from adapters.bootstrap import build
from adapters.grpc.auth import Tls
from adapters.grpc.client import Client
from adapters.grpc.convert import bill_request, bill_to_pb
from adapters.grpc.server import running
from adapters.grpc.testing import CHAIN, CHAIN_PERSONS, JIANG, YUBEI, YUBEI_BILL, chain_bill
from engine.bill import Person

R1, R2 = "500112", "990001"
H1, H2 = "H500112001", "H500112002"
TILTED, MAJOR = "610200", "610100"  # tilted_assistance pays after discharge
PD, FP = grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.FAILED_PRECONDITION

#: Yubei with its tilted assistance paid after discharge (a claim per bill)
YUBEI_AD = YUBEI.replace(
    '    fund_code: "610200"\n    kind: reimburse\n',
    '    fund_code: "610200"\n    kind: reimburse\n    settle_at: after_discharge\n',
)
FUNDS_YAML = f"""\
region: "{R1}"
funds:
  - fund_code: "{TILTED}"
    name: Tilted assistance
    name_zh: 倾斜救助
    operator: Yubei civil affairs
    years:
      2023: {{budget: 50000000, budget_mode: hard}}
  - fund_code: "{MAJOR}"
    name: Major-expense medical assistance
    years:
      2023: {{budget: 90000000}}
"""
JIANG_P = dict(JIANG, region=R1, township="T1", village="V1")
LI_P = dict(JIANG, id="li", household="h-li", region=R1, township="T2", village="V2")

CLIENTS = clients_for(
    [H1, H2], [R1, R2], ["zhang"], [TILTED, MAJOR], ["jiang", "li"], [f"{R1}/T1", f"{R1}/新集镇"],
    [f"{R1}/V2"],
)  # fmt: skip
CASHIER1, CASHIER2 = f"cashier-{H1}", f"cashier-{H2}"
BUREAU1, BUREAU2, AUDITOR = f"bureau-{R1}", f"bureau-{R2}", "auditor-zhang"
FUND_T, FUND_M = f"fund-{TILTED}", f"fund-{MAJOR}"
JIANG_ID, LI_ID = "psn-jiang", "psn-li"
CADRE_T1, CADRE_V2 = f"cadre-{R1}-T1", f"cadre-{R1}-V2"
CADRE_ZH = f"cadre-{R1}-新集镇"  # a CN in UTF-8, no DNS SAN
#: the operator of the CHAIN table's household alert fund, in region R2 only
FUND_P = "fund-370200-r2"
CLIENTS.append(CertClient(FUND_P, "fund", ("370200",), regions=(R2,)))
EVERYONE = [c.identity for c in CLIENTS if c.identity not in (CADRE_ZH, FUND_P)]

runner = CliRunner()


class World:
    def __init__(self, d: Path, srv: Any, app: Any):
        self.dir, self.srv, self.app = d, srv, app
        self.target = f"127.0.0.1:{srv.port}"
        self._clients: dict[str, Client] = {}

    def c(self, identity: str) -> Client:
        if identity not in self._clients:
            self._clients[identity] = Client(
                self.target, 10, ca=self.dir / "ca.pem", cert=self.dir / f"{identity}.pem",
                key=self.dir / f"{identity}.key",
            )  # fmt: skip
        return self._clients[identity]

    def tls_args(self, identity: str) -> list[str]:
        d = self.dir
        return ["--server", self.target, "--ca", str(d / "ca.pem"),
                "--cert", str(d / f"{identity}.pem"), "--key", str(d / f"{identity}.key")]  # fmt: skip

    def settle(self, person: str = "jiang", hospital: str = H1) -> str:
        b = dict(YUBEI_BILL, id=f"b-{uuid.uuid4().hex[:10]}", person_id=person, hospital=hospital)
        rec, _ = self.app.service.settle(uuid.uuid4().hex, bill_request(bill_to_pb(b)))
        return rec.settlement_id

    def claim_of(self, settlement_id: str, filer: str = CASHIER1) -> Any:
        """The claim of the settlement's after-discharge layer (settlement files it; else it
        is filed now)."""
        got = [
            c for c in self.c(AUDITOR).list_claims(person_id="jiang")
            if c.settlement_id == settlement_id
        ]  # fmt: skip
        return got[0] if got else self.c(filer).file_claim(settlement_id, "tilted_assistance")


# the module's tests on one xdist worker (--dist loadgroup): its module-scoped fixtures
# are made once, not once on each worker that runs one of its tests
pytestmark = pytest.mark.xdist_group("grpc_funds")


@pytest.fixture(scope="module", params=["memory", "sqlite"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    """One server per store: every test of the module runs on the memory fake and on SQLite
    (the claim and cover pages are the store's queries)."""
    d = tmp_path_factory.mktemp("pki")
    make_all(d, CLIENTS)
    url = "memory://" if request.param == "memory" else f"sqlite:///{d / 'funds.db'}"
    app = build(url, policies=None, registry=None)
    app.service.put_policy(YUBEI_AD, "yubei.yaml")
    app.service.put_policy(CHAIN, "chain.yaml")
    wang = [dict(p, region=R2) for p in CHAIN_PERSONS]
    app.service.import_registry([Person.model_validate(p) for p in (JIANG_P, LI_P, *wang)])
    assert app.funds is not None
    app.funds.put_funds(FUNDS_YAML, "funds.yaml")
    principals = PrincipalsFile(d / "principals.yaml", recheck=0)
    tls = Tls(d / "server.pem", d / "server.key", d / "ca.pem")
    with running(app, tls=tls, principals=principals) as srv:  # serves app.funds
        w = World(d, srv, app)
        try:
            yield w
        finally:
            for c in w._clients.values():
                c.close()
            app.close()


def code_of(fn: Callable[[], Any]) -> grpc.StatusCode | None:
    try:
        fn()
    except grpc.RpcError as e:
        return e.code()
    return None


# --------------------------------------------------------------------------- lifecycle


def test_claim_lifecycle(world: World) -> None:
    sid = world.settle()
    claim = world.claim_of(sid)
    assert claim.status == "filed" and claim.kind == "claim"
    assert claim.fund_code == TILTED and claim.person_id == "jiang" and claim.hospital == H1
    assert claim.filed_amount == 93780 == claim.current_amount  # the golden tilted pay
    assert not claim.HasField("approved_amount")
    # filing again answers the claim as it is (idempotent)
    again = world.c(CASHIER1).file_claim(sid, "tilted_assistance")
    assert again.claim_id == claim.claim_id and again.status == "filed"
    # a layer that makes no claim: FAILED_PRECONDITION
    assert code_of(lambda: world.c(CASHIER1).file_claim(sid, "basic")) == FP
    # paying before approval is refused; the claim stays filed
    assert code_of(lambda: world.c(FUND_T).pay_claim(claim.claim_id, "2023-06-30", "TX1")) == FP
    # approval above the filed amount: INVALID_ARGUMENT naming amount
    with pytest.raises(grpc.RpcError) as e:
        world.c(FUND_T).approve_claim(claim.claim_id, claim.filed_amount + 1, "too much")
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    approved = world.c(FUND_T).approve_claim(claim.claim_id, 90000, "receipts for 900 yuan")
    assert (approved.status, approved.approved_amount, approved.current_amount) == (
        "approved", 90000, 90000,
    )  # fmt: skip
    assert approved.note == "receipts for 900 yuan" and approved.decided_by == FUND_T
    # the person sees the status of their claim
    seen = world.c(JIANG_ID).get_claim(claim.claim_id)
    assert seen.status == "approved" and seen.approved_amount == 90000
    paid = world.c(FUND_T).pay_claim(claim.claim_id, "2023-06-30", "TX-2023-0001")
    assert paid.status == "paid" and paid.paid_date == "2023-06-30"
    assert paid.payment_ref == "TX-2023-0001" and paid.paid_by == FUND_T
    assert paid.days_to_payment == 41  # discharged 2023-05-20
    # nothing after paid; a settlement with a paid claim is not reversed
    assert code_of(lambda: world.c(FUND_T).reject_claim(claim.claim_id, "late")) == FP
    assert code_of(lambda: world.c(CASHIER1).reverse(sid)) == FP
    # the statement counts it as paid; money in makes the loss ratio
    rid = uuid.uuid4().hex
    r = world.c(FUND_T).record_money_in(rid, R1, TILTED, 2023, "donation", "Tencent charity",
                                        9_000_000, "2023-03-01", "March platform total")  # fmt: skip
    assert not r.replay and r.record.amount == 9_000_000 and r.record.recorded_by == FUND_T
    again = world.c(FUND_T).record_money_in(rid, R1, TILTED, 2023, "donation", "Tencent charity",
                                            9_000_000, "2023-03-01", "March platform total")  # fmt: skip
    assert again.replay and again.record.record_id == r.record.record_id
    assert code_of(lambda: world.c(FUND_T).record_money_in(
        rid, R1, TILTED, 2023, "donation", "Tencent charity", 1, "2023-03-01")) == (
        grpc.StatusCode.ALREADY_EXISTS
    )  # fmt: skip
    st = world.c(FUND_T).fund_statement(R1, TILTED, 2023)
    assert st.claims_paid >= 90000 and st.money_in >= 9_000_000
    assert st.budget == 50000000 and st.budget_mode == "hard"
    assert st.budget_left == max(0, st.budget + st.carried_in - st.used)
    assert st.money_out == st.window_paid + st.claims_paid
    assert st.balance == st.money_in + st.carried_in - st.money_out
    assert st.loss_ratio_bp == (st.money_out * 20000 + st.money_in) // (2 * st.money_in)
    assert st.days_to_payment.count >= 1 and st.days_to_payment.HasField("median")
    # the figures are the published page's (engine.fundstats): one set of definitions
    from engine.fundstats import figures

    g = figures(world.app.funds.facts(R1, TILTED, 2023, st.as_of))
    assert (g.money_out, g.balance, g.loss_ratio_bp, g.budget_left) == (
        st.money_out,
        st.balance,
        st.loss_ratio_bp,
        st.budget_left,
    )
    pub = world.c(LI_ID).public_figures(R1, TILTED, 2023)
    assert (pub.money_out, pub.balance, pub.payable) == (g.money_out, g.balance, g.payable)
    assert {(t.kind, t.status) for t in st.claims} >= {("claim", "paid")}
    # the rejection path: a reason is required, then it is final
    claim2 = world.claim_of(world.settle())
    with pytest.raises(grpc.RpcError) as e:
        world.c(FUND_T).reject_claim(claim2.claim_id, "  ")
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    rejected = world.c(FUND_T).reject_claim(claim2.claim_id, "not an in-patient stay")
    assert (rejected.status, rejected.current_amount) == ("rejected", 0)
    assert rejected.reason == "not an in-patient stay"


def test_list_claims_filters_and_pages(world: World) -> None:
    ids = [world.claim_of(world.settle()).claim_id for _ in range(3)]
    fund = world.c(FUND_T)
    pages, token = [], ""
    while True:
        r = fund.list_claims_page(2, token, region=R1, fund_code=TILTED, year=2023)
        assert len(r.claims) <= 2
        pages.append([c.claim_id for c in r.claims])
        token = r.next_page_token
        if not token:
            break
    listed = [i for p in pages for i in p]
    assert set(ids) <= set(listed) and len(listed) == len(set(listed))
    assert all(len(p) == 2 for p in pages[:-1])  # full pages but the last
    filed = fund.list_claims(region=R1, fund_code=TILTED, year=2023, status="filed")
    assert {c.status for c in filed} == {"filed"} and set(ids) <= {c.claim_id for c in filed}
    # a fund operator of one fund: its fund is the default; region and year are needed
    assert {c.claim_id for c in fund.list_claims(region=R1, year=2023)} == set(listed)
    assert code_of(lambda: fund.list_claims(year=2023)) == grpc.StatusCode.INVALID_ARGUMENT
    # a bureau: every fund of its region (its region is the default); a cadre: its villagers
    every = world.c(BUREAU1).list_claims(year=2023)
    assert set(ids) <= {c.claim_id for c in every} and {c.region for c in every} == {R1}
    assert set(ids) <= {c.claim_id for c in world.c(CADRE_T1).list_claims(year=2023)}
    assert world.c(CADRE_V2).list_claims(year=2023) == []  # li has no claims
    # a token of another listing, a bad status: INVALID_ARGUMENT
    bad = fund.list_claims_page(1, "", region=R1, fund_code=TILTED, year=2023).next_page_token
    assert code_of(lambda: fund.list_claims_page(1, bad, region=R1, fund_code=TILTED,
                                                 year=2023, status="filed")) == (
        grpc.StatusCode.INVALID_ARGUMENT
    )  # fmt: skip
    assert code_of(lambda: fund.list_claims(region=R1, year=2023, status="open")) == (
        grpc.StatusCode.INVALID_ARGUMENT
    )
    # the other fund's operator lists nothing of TILTED (left out without a sign)
    assert world.c(FUND_M).list_claims(region=R1, fund_code=TILTED, year=2023) == []
    # a person lists only their own
    mine = world.c(JIANG_ID).list_claims()
    assert mine and {c.person_id for c in mine} == {"jiang"}


# --------------------------------------------------------------------------- denials


def _calls(w: World, claim_id: str, sid: str) -> dict[str, Callable[[Client], Any]]:
    return {
        "PutFunds": lambda c: c.put_funds(FUNDS_YAML, "funds.yaml", dry_run=True),
        "RecordMoneyIn": lambda c: c.record_money_in(
            uuid.uuid4().hex, R1, TILTED, 2023, "premium", "county", 100, "2023-01-02"),
        "FileClaim": lambda c: c.file_claim(sid, "tilted_assistance"),
        "GetClaim": lambda c: c.get_claim(claim_id),
        "ListClaimsPerson": lambda c: c.list_claims(person_id="jiang"),
        "ApproveClaim": lambda c: c.approve_claim(claim_id, None, "ok"),
        "RejectClaim": lambda c: c.reject_claim(claim_id, "no"),
        "PayClaim": lambda c: c.pay_claim(claim_id, "2023-07-01", "TX"),
        "FundStatement": lambda c: c.fund_statement(R1, TILTED, 2023),
        "PersonCover": lambda c: c.person_cover("jiang", 2023),
        "CoverList": lambda c: c.cover_list(R1, "T1"),
        "PublicFigures": lambda c: c.public_figures(R1, TILTED, 2023),
    }  # fmt: skip


#: method -> identities allowed on jiang's claim of fund TILTED at H1 (everyone else: denied)
ALLOWED: dict[str, set[str]] = {
    "PutFunds": {BUREAU1},  # a fund operator: the file declares both funds (see below)
    "RecordMoneyIn": {FUND_T},
    "FileClaim": {CASHIER1, JIANG_ID, CADRE_T1},  # its claim exists: answered as it is
    "GetClaim": {FUND_T, BUREAU1, AUDITOR, CASHIER1, JIANG_ID, CADRE_T1},
    # fund M and cashier 2 get an empty list (left out without a sign)
    "ListClaimsPerson": {FUND_T, FUND_M, BUREAU1, AUDITOR, CASHIER1, CASHIER2, JIANG_ID, CADRE_T1},
    "ApproveClaim": set(),  # checked separately (a decision changes the claim)
    "RejectClaim": set(),
    "PayClaim": set(),
    "FundStatement": {FUND_T, BUREAU1, AUDITOR},
    "PersonCover": {JIANG_ID, CADRE_T1, BUREAU1, AUDITOR},
    "CoverList": {CADRE_T1, BUREAU1, AUDITOR},
    "PublicFigures": set(EVERYONE),
}
DECIDE_IN_SCOPE = {FUND_T}  # may decide: answered per the claim's state


@pytest.mark.parametrize("method", sorted(ALLOWED))
def test_role_and_scope_table(world: World, method: str) -> None:
    sid = world.settle()
    claim = world.claim_of(sid)
    call = _calls(world, claim.claim_id, sid)[method]
    for who in EVERYONE:
        if method in ("ApproveClaim", "RejectClaim", "PayClaim") and who in DECIDE_IN_SCOPE:
            continue  # the lifecycle test decides; here only the refusals
        got = code_of(partial(call, world.c(who)))
        if who in ALLOWED[method]:
            assert got is None, (method, who, got)
        else:
            assert got == PD, (method, who, got)


def test_fund_operator_puts_only_its_own_funds(world: World) -> None:
    only_t = FUNDS_YAML.split(f'  - fund_code: "{MAJOR}"')[0]
    r = world.c(FUND_T).put_funds(only_t, "t.yaml", dry_run=True)
    assert (r.region, list(r.fund_codes), r.stored) == (R1, [TILTED], False)
    assert code_of(lambda: world.c(FUND_M).put_funds(only_t, "t.yaml", dry_run=True)) == PD
    assert code_of(lambda: world.c(BUREAU2).put_funds(only_t, "t.yaml", dry_run=True)) == PD
    with pytest.raises(grpc.RpcError) as e:  # a bad file: every problem, file:line
        world.c(FUND_T).put_funds(only_t.replace("hard}", "hard, budget: -1}"), "t.yaml")
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "t.yaml" in e.value.details()


def test_denial_never_tells_what_exists(world: World) -> None:
    sid = world.settle()
    claim = world.claim_of(sid)

    def message(fn: Callable[[], Any]) -> tuple[Any, str]:
        try:
            fn()
        except grpc.RpcError as e:
            return e.code(), e.details()
        return None, ""

    for who, real, unknown in [
        (FUND_M, lambda c: c.get_claim(claim.claim_id), lambda c: c.get_claim("no-such")),
        (FUND_M, lambda c: c.approve_claim(claim.claim_id), lambda c: c.approve_claim("nope")),
        (LI_ID, lambda c: c.get_claim(claim.claim_id), lambda c: c.get_claim("no-such")),
        (CASHIER2, lambda c: c.file_claim(sid, "tilted_assistance"),
         lambda c: c.file_claim("no-such-settlement", "tilted_assistance")),
        (CADRE_V2, lambda c: c.person_cover("jiang"), lambda c: c.person_cover("nobody")),
        (LI_ID, lambda c: c.person_cover("jiang"), lambda c: c.person_cover("nobody")),
    ]:  # fmt: skip
        a = message(partial(real, world.c(who)))
        b = message(partial(unknown, world.c(who)))
        assert a == b and a[0] == PD, (who, a, b)
    # an auditor (unscoped) is told NOT_FOUND
    assert code_of(lambda: world.c(AUDITOR).get_claim("no-such")) == grpc.StatusCode.NOT_FOUND


def test_access_log_line_for_funds(world: World, caplog: pytest.LogCaptureFixture) -> None:
    import logging
    import time

    with caplog.at_level(logging.INFO, logger="onestop.access"):
        code_of(lambda: world.c(LI_ID).person_cover("jiang"))
        deadline = time.monotonic() + 5  # the server logs after the answer has gone out
        while time.monotonic() < deadline:
            lines = [json.loads(r.getMessage()) for r in caplog.records
                     if r.name == "onestop.access"]  # fmt: skip
            mine = [
                x for x in lines if x["method"] == "/onestop.settlement.v1.FundsService/PersonCover"
            ]
            if mine:
                break
            time.sleep(0.02)
    assert mine
    assert mine[-1]["principal"] == LI_ID and mine[-1]["role"] == "person"
    assert mine[-1]["status"] == "PERMISSION_DENIED"
    assert "jiang" not in json.dumps(mine[-1])  # no request field in the log


# --------------------------------------------------------------------------- cover


def test_person_sees_only_their_own_cover(world: World) -> None:
    world.claim_of(world.settle())
    own = world.c(JIANG_ID).person_cover("jiang", 2023)
    assert own.person_id == "jiang" and own.township == "T1" and own.village == "V1"
    covered = {f.fund_code for f in own.funds if f.covered}
    assert covered >= {TILTED, MAJOR} and own.cover_date
    tilted = next(f for f in own.funds if f.fund_code == TILTED)
    assert tilted.budget_mode == "hard" and tilted.fund_name_zh == "倾斜救助"
    assert [(la.layer_id, la.settle_at) for la in tilted.layers] == [
        ("tilted_assistance", "after_discharge")
    ]
    assert own.settlements and {s.status for s in own.settlements} <= {"settled", "reversed"}
    assert own.claims and {c.person_id for c in own.claims} == {"jiang"}
    assert code_of(lambda: world.c(JIANG_ID).person_cover("li", 2023)) == PD
    assert code_of(lambda: world.c(JIANG_ID).list_claims(person_id="li")) == PD
    li = world.c(LI_ID).person_cover("li", 2023)
    assert li.person_id == "li" and all(c.person_id == "li" for c in li.claims)


def test_cadre_cover_list_is_their_villages(world: World) -> None:
    t1 = world.c(CADRE_T1).cover_list(R1, "T1", as_of="2023-06-01")
    assert [p.person_id for p in t1.persons] == ["jiang"]
    assert set(t1.persons[0].fund_codes) >= {TILTED, MAJOR}
    everyone_seen = world.c(CADRE_T1).cover_list(R1)  # no township: the ones it sees
    assert [p.person_id for p in everyone_seen.persons] == ["jiang"]
    v2 = world.c(CADRE_V2).cover_list(R1, village="V2")
    assert [p.person_id for p in v2.persons] == ["li"]
    for who, args in [(CADRE_T1, (R1, "T2", "")), (CADRE_V2, (R1, "", "V1")),
                      (CADRE_T1, (R2, "T1", ""))]:  # fmt: skip
        assert code_of(partial(world.c(who).cover_list, *args)) == PD
    bureau = world.c(BUREAU1).cover_list(R1)
    assert [p.person_id for p in bureau.persons] == ["jiang", "li"]
    first = world.c(BUREAU1).cover_list_page(R1, as_of="2023-06-01", page_size=1)
    assert [p.person_id for p in first.persons] == ["jiang"] and first.next_page_token
    second = world.c(BUREAU1).cover_list_page(
        R1, as_of="2023-06-01", page_size=1, page_token=first.next_page_token
    )
    assert [p.person_id for p in second.persons] == ["li"] and not second.next_page_token
    assert second.as_of == "2023-06-01"
    paged = world.c(BUREAU1).cover_list(R1, as_of="2023-06-01", page_size=1)
    assert [p.person_id for p in paged.persons] == ["jiang", "li"]
    other = lambda: world.c(BUREAU1).cover_list_page(  # noqa: E731
        R1, "T1", page_size=1, page_token=first.next_page_token
    )
    assert code_of(other) == grpc.StatusCode.INVALID_ARGUMENT  # a token of another listing
    assert code_of(lambda: world.c(BUREAU1).cover_list_page(R1, page_size=1001)) == (
        grpc.StatusCode.RESOURCE_EXHAUSTED
    )
    # a cadre files a claim for a villager, not for a person of another village
    assert code_of(lambda: world.c(CADRE_V2).file_claim(world.settle(), "tilted_assistance")) == PD
    filed = world.c(CADRE_T1).file_claim(world.settle(), "tilted_assistance")
    assert filed.person_id == "jiang" and filed.status == "filed"


def test_public_figures_hold_no_personal_data(world: World) -> None:
    world.claim_of(world.settle())
    r = world.c(LI_ID).public_figures(R1, TILTED, 2023)
    assert r.fund_code == TILTED and r.claims_filed >= 1 and r.enrolled == 2
    text = str(r)
    for personal in ("jiang", "li", "h-jiang", H1, "TX-"):
        assert personal not in text


def test_principals_person_and_cadre() -> None:
    ps = parse_principals(
        'principals:\n'
        '  - {identity: psn-1, role: person, person: "p1"}\n'
        '  - {identity: c-1, role: cadre, region: "500112", villages: [李家村]}\n'
        '  - {identity: f-1, role: fund, funds: ["610200"], regions: ["500112"]}\n'
    )  # fmt: skip
    assert ps["psn-1"].person == "p1" and ps["c-1"].villages == {"李家村"}
    assert ps["f-1"].regions == {"500112"}
    from adapters.auth.principals import PrincipalsError

    both = parse_principals(
        'principals:\n'
        '  - {identity: c-2, role: cadre, region: "500112",\n'
        '     villages: [{township: 新集镇, village: 李家村}, 王庄村]}\n'
    )["c-2"]  # fmt: skip
    assert both.township_villages == {("新集镇", "李家村")} and both.villages == {"王庄村"}
    assert both.lives_in_scope("新集镇", "李家村") and not both.lives_in_scope("东岳镇", "李家村")
    assert both.lives_in_scope("东岳镇", "王庄村")  # a plain name: that village in any township

    for bad, why in [
        ('{identity: c, role: cadre, region: "1"}', "needs townships or villages"),
        ('{identity: c, role: person}', "needs person"),
        ('{identity: c, role: bureau, region: "1", villages: [x]}', "villages is given"),
        ('{identity: c, role: person, person: "a\\nb"}', r"principals\[0\]\.person"),
        ('{identity: c, role: cadre, region: "1", villages: [{township: t}]}', "village"),
    ]:  # fmt: skip
        with pytest.raises(PrincipalsError, match=why):
            parse_principals(f"principals:\n  - {bad}\n")


# --------------------------------------------------------------------------- CLI


def cli(world: World, who: str, *args: str) -> Any:
    from adapters.cli.app import app

    return runner.invoke(app, [*args, *world.tls_args(who)])


def test_cli_json_is_the_rpc(world: World) -> None:
    from adapters.grpc.fundcommands import msg_json

    claim = world.claim_of(world.settle())
    got = cli(world, FUND_T, "fund", "claim", claim.claim_id, "--json")
    assert got.exit_code == 0, got.output
    assert json.loads(got.output) == msg_json(world.c(FUND_T).get_claim(claim.claim_id))
    assert json.loads(got.output)["approved_amount"] is None  # unset: null, not 0
    got = cli(world, FUND_T, "fund", "claims", "--region", R1, "--fund", TILTED, "--year",
              "2023", "--status", "filed", "--json")  # fmt: skip
    assert got.exit_code == 0, got.output
    claims = world.c(FUND_T).list_claims(region=R1, fund_code=TILTED, year=2023, status="filed")
    assert json.loads(got.output) == [msg_json(c) for c in claims]
    got = cli(world, FUND_T, "fund", "approve", claim.claim_id, "--amount", "50000",
              "--note", "half the receipts", "--json")  # fmt: skip
    assert got.exit_code == 0, got.output
    d = json.loads(got.output)
    assert (d["status"], d["approved_amount"], d["note"]) == (
        "approved",
        50000,
        "half the receipts",
    )
    got = cli(world, FUND_T, "fund", "pay", claim.claim_id, "--date", "2023-07-01", "--ref",
              "TX-77", "--json")  # fmt: skip
    assert got.exit_code == 0 and json.loads(got.output)["payment_ref"] == "TX-77"
    got = cli(world, FUND_T, "fund", "statement", "--region", R1, "--fund", TILTED, "--year",
              "2023", "--as-of", "2023-12-31", "--json")  # fmt: skip
    assert got.exit_code == 0, got.output
    # the server's sealer (every second) may seal a block between the two reads: the figures
    # are the same, the checkpoint they were read at may only have moved on, from none at all
    # ("not sealed": 0 and '', as the proto says) to the first block, whose height is 0 too
    seen, rpc = (
        json.loads(got.output),
        msg_json(world.c(FUND_T).fund_statement(R1, TILTED, 2023, "2023-12-31")),
    )
    checkpoint = ("checkpoint_height", "checkpoint_digest")
    assert {k: v for k, v in seen.items() if k not in checkpoint} == {
        k: v for k, v in rpc.items() if k not in checkpoint
    }
    assert int(seen["checkpoint_height"]) <= int(rpc["checkpoint_height"])
    if seen["checkpoint_digest"] and seen["checkpoint_height"] == rpc["checkpoint_height"]:
        assert seen["checkpoint_digest"] == rpc["checkpoint_digest"]
    elif not seen["checkpoint_digest"]:
        assert seen["checkpoint_height"] == 0
    assert isinstance(seen["used"], int)  # int64 as a number
    got = cli(world, JIANG_ID, "person", "cover", "jiang", "--year", "2023", "--json")
    assert got.exit_code == 0, got.output
    assert json.loads(got.output) == msg_json(world.c(JIANG_ID).person_cover("jiang", 2023))
    got = cli(world, CADRE_T1, "cadre", "cover-list", "--region", R1, "--township", "T1",
              "--as-of", "2023-06-01", "--json")  # fmt: skip
    assert got.exit_code == 0, got.output
    assert [p["person_id"] for p in json.loads(got.output)["persons"]] == ["jiang"]
    got = cli(world, FUND_T, "fund", "money-in", "--region", R1, "--fund", TILTED, "--year",
              "2023", "--amount", "123456", "--on", "2023-04-01", "--payer", "county finance",
              "--kind", "government", "--request-id", "mi-cli-1", "--json")  # fmt: skip
    assert got.exit_code == 0, got.output
    assert json.loads(got.output)["record"]["amount"] == 123456


def test_cli_text_is_whole_and_refusals_are_one_line(world: World) -> None:
    sid = world.settle()
    got = cli(world, CADRE_T1, "cadre", "file-claim", sid, "tilted_assistance")
    assert got.exit_code == 0, got.output
    assert "937.80" in got.output
    # the settlement filed the claim: the answer is the claim on file, not one filed now
    first = got.output.splitlines()[0]
    assert "on file, filed for 937.80 yuan at " in first and first.endswith("; status filed")
    assert f"by {CADRE_T1}" not in first
    got = cli(world, FUND_T, "fund", "statement", "--region", R1, "--fund", TILTED,
              "--year", "2023")  # fmt: skip
    assert got.exit_code == 0 and "500000.00" in got.output  # whole yuan, never shortened
    # refusals: denied 6, not found 3, bad input 1, usage 2
    got = cli(world, CADRE_V2, "cadre", "file-claim", sid, "tilted_assistance")
    assert got.exit_code == 6 and "PERMISSION_DENIED" in got.output
    assert "Traceback" not in got.output
    assert cli(world, AUDITOR, "fund", "claim", "no-such").exit_code == 3
    got = cli(world, FUND_T, "fund", "pay", "x", "--date", "30/06/2023", "--ref", "r")
    assert got.exit_code in (1, 6)  # unknown claim: denied before the date is looked at
    got = cli(world, FUND_T, "fund", "claims", "--region", R1, "--year", "2023",
              "--status", "open")  # fmt: skip
    assert got.exit_code == 1 and "status" in got.output
    assert cli(world, FUND_T, "fund", "reject", "x").exit_code == 2  # --reason missing
    got = cli(world, JIANG_ID, "person", "cover", "li")
    assert got.exit_code == 6


def test_undecodable_bytes_to_every_funds_method(world: World) -> None:
    from adapters.grpc.auth import METHOD_ROLES
    from adapters.grpc.gen.onestop.settlement.v1 import funds_pb2

    who = {"fund": FUND_T, "bureau": BUREAU1, "auditor": AUDITOR, "cashier": CASHIER1,
           "cadre": CADRE_T1, "person": JIANG_ID}  # fmt: skip
    for m in funds_pb2.DESCRIPTOR.services_by_name["FundsService"].methods:
        path = f"/onestop.settlement.v1.FundsService/{m.name}"
        c = world.c(who[sorted(METHOD_ROLES[path])[0]])
        call = c.channel.unary_unary(path, request_serializer=None, response_deserializer=None)
        with pytest.raises(grpc.RpcError) as e:
            call(b"\xff", timeout=10)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, m.name
        assert f"not a valid {m.input_type.full_name} message" in e.value.details()


def test_certs_for_persons_and_cadres(tmp_path: Path) -> None:
    from adapters.auth.principals import load_principals
    from adapters.cli.app import app

    out = tmp_path / "pki"
    got = runner.invoke(app, ["certs", "--out", str(out), "--person", "ha-p1",
                              "--cadre", "421122/新集镇", "--fund", "370200"])  # fmt: skip
    assert got.exit_code == 0, got.output
    got = runner.invoke(app, ["certs", "--out", str(out), "--cadre-village", "421122/李家村",
                              "--cadre-village", "421122/新集镇/王庄村"])  # fmt: skip
    assert got.exit_code == 0, got.output  # the CA is reused, earlier principals kept
    ps = load_principals(out / "principals.yaml")
    assert ps["psn-ha-p1"].role == "person" and ps["psn-ha-p1"].person == "ha-p1"
    assert ps["cadre-421122-新集镇"].townships == {"新集镇"}
    assert ps["cadre-421122-新集镇"].regions == {"421122"}
    assert ps["cadre-421122-李家村"].villages == {"李家村"}
    pair = ps["cadre-421122-新集镇-王庄村"]
    assert pair.township_villages == {("新集镇", "王庄村")} and not pair.villages
    assert ps["fund-370200"].funds == {"370200"}
    assert (out / "cadre-421122-李家村.pem").exists() and (out / "psn-ha-p1.key").exists()
    got = runner.invoke(app, ["certs", "--out", str(out), "--cadre", "421122"])
    assert got.exit_code == 2 and "REGION/TOWNSHIP" in got.output


def test_a_cadre_village_of_one_township_is_not_its_namesake() -> None:
    """Two townships of a region with a village of one name: a cadre given (township,
    village) sees that village's persons only; a cadre given the plain name sees both."""
    from adapters.auth.access import ScopedFunds
    from adapters.auth.principals import PermissionDenied, Principal

    app = build("memory://", policies=None, registry=None)
    try:
        app.service.put_policy(YUBEI_AD, "yubei.yaml")
        east = dict(JIANG, id="east", household="h-e", region=R1, township="T2", village="V2")
        west = dict(JIANG, id="west", household="h-w", region=R1, township="T9", village="V2")
        app.service.import_registry([Person.model_validate(p) for p in (east, west)])
        assert app.funds is not None
        funds = app.funds
        pair = Principal("c-pair", "cadre", regions=frozenset({R1}),
                         township_villages=frozenset({("T2", "V2")}))  # fmt: skip
        name = Principal("c-name", "cadre", regions=frozenset({R1}), villages=frozenset({"V2"}))

        def ids(p: Principal, township: str, village: str) -> list[str]:
            rows = ScopedFunds(funds, app.service, p).cover_list(
                R1, township, village, "2023-06-01"
            )
            return [r.person_id for r in rows]

        assert ids(pair, "", "") == ids(pair, "", "V2") == ids(pair, "T2", "V2") == ["east"]
        assert ids(name, "", "") == ids(name, "", "V2") == ["east", "west"]
        with pytest.raises(PermissionDenied):
            ids(pair, "T9", "V2")
        with pytest.raises(PermissionDenied):
            ids(pair, "T9", "")
        scoped = ScopedFunds(app.funds, app.service, pair)
        assert scoped.sees_person("east") and not scoped.sees_person("west")
        with pytest.raises(PermissionDenied):
            scoped.person_cover("west", 2023)
    finally:
        app.close()


def test_a_cadre_named_in_chinese_is_identified(world: World) -> None:
    r = world.c(CADRE_ZH).cover_list(R1, "新集镇", as_of="2023-06-01")
    # identified and admitted: only persons of that township (zhao, once imported)
    assert {x.township for x in r.persons} <= {"新集镇"}
    assert code_of(lambda: world.c(CADRE_ZH).cover_list(R1, "T1")) == PD


def test_relief_case_lifecycle(world: World) -> None:
    """An alert opens a relief case at settlement; the fund's operator (limited to region R2)
    verifies, approves a lower amount and pays; the bureau of R2 reads it, R1's does not."""
    b = chain_bill(0)  # the first bill of the year crosses the alert threshold
    b["id"] = f"wang-{uuid.uuid4().hex[:8]}"
    rec, _ = world.app.service.settle(uuid.uuid4().hex, bill_request(bill_to_pb(b)))
    fund = world.c(FUND_P)
    made = world.app.funds.claims_of(rec.settlement_id)
    assert [c.kind for c in made] == ["relief"], made
    cases = [c for c in fund.list_claims(region=R2, year=2024, kind="relief")
             if c.settlement_id == rec.settlement_id]  # fmt: skip
    assert len(cases) == 1
    case = cases[0]
    assert (case.kind, case.fund_code, case.layer_id, case.status) == (
        "relief", "370200", "prevention", "filed",
    )  # fmt: skip
    assert world.c(BUREAU2).get_claim(case.claim_id).claim_id == case.claim_id
    assert code_of(lambda: world.c(BUREAU1).get_claim(case.claim_id)) == PD
    assert code_of(lambda: fund.list_claims(region=R1, fund_code="370200", year=2024)) is None
    lower = case.filed_amount // 2
    approved = fund.approve_claim(case.claim_id, lower, "verified: half is covered elsewhere")
    assert (approved.status, approved.approved_amount) == ("approved", lower)
    paid = fund.pay_claim(case.claim_id, "2024-03-15", "RELIEF-001")
    assert paid.status == "paid" and paid.current_amount == lower
    st = fund.fund_statement(R2, "370200", 2024)
    assert ("relief", "paid") in {(t.kind, t.status) for t in st.claims}
    assert st.claims_paid >= lower
    assert code_of(lambda: world.c(FUND_T).approve_claim(case.claim_id)) == PD


def test_township_and_village_over_grpc_both_ways(world: World) -> None:
    from adapters.grpc.convert import person_dict, person_to_pb, persons

    d = dict(JIANG, id="zhao", household="h-zhao", region=R1, township="新集镇", village="李家村")
    m = person_to_pb(d)
    assert (m.township, m.village) == ("新集镇", "李家村")
    (p,) = persons([m])
    assert (p.township, p.village) == ("新集镇", "李家村")
    assert person_dict(m)["village"] == "李家村"
    assert world.c(BUREAU1).import_registry([d]) == 1  # stored as sent, read by the cadre
    r = world.c(CADRE_ZH).cover_list(R1, "新集镇", as_of="2023-06-01")
    assert [(x.person_id, x.village) for x in r.persons] == [("zhao", "李家村")]
