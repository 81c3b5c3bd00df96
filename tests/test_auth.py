"""Identities and roles over mTLS (issue 8 section 1): a real TLS server, real clients with
certificates made by ``adapters.auth.certs`` in a temporary directory.

Every role boundary has a test here that fails without its check: the role table
(``test_role_table``) and each scope check (cashier hospital, bureau region, fund codes)."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import grpc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from adapters.auth.certs import Authority, clients_for, make_all, principals_yaml
from adapters.auth.principals import (
    PermissionDenied,
    PrincipalsError,
    PrincipalsFile,
    parse_principals,
)
from adapters.bootstrap import build
from adapters.grpc.auth import Tls
from adapters.grpc.client import Client, pack_bills
from adapters.grpc.commands import app as grpc_app
from adapters.grpc.convert import bill_request
from adapters.grpc.gen.onestop.settlement.v1 import settlement_pb2 as pb
from adapters.grpc.server import Server, running
from adapters.grpc.testing import CHAIN, CHAIN_PERSONS, JIANG, YUBEI, YUBEI_BILL, chain_bill
from engine.bill import Person
from engine.service.ports import UnitOfWork
from tests.pg import db_url, pg_url  # noqa: F401  (fixtures)

H1, H2, H3 = "H500112001", "H500112002", "H990001001"  # H3 is in region R2
R1, R2 = "500112", "990001"
JIANG_R = dict(JIANG, region=R1)
WANG_R = dict(CHAIN_PERSONS[0], region=R2)
WIFE_R = dict(CHAIN_PERSONS[1], region=R2)
PD, UNAUTH = grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED

runner = CliRunner()


def bill(hospital: str = H1, bid: str | None = None) -> dict[str, Any]:
    return dict(YUBEI_BILL, hospital=hospital, id=bid or f"b-{uuid.uuid4().hex[:10]}")


class World:
    """The server, its store, the certificates and a client per identity."""

    def __init__(self, d: Path, srv: Server, app: Any, principals: PrincipalsFile, other: Path):
        self.dir, self.srv, self.app, self.principals = d, srv, app, principals
        #: certificates of the same identities signed by another CA
        self.other = other
        self.target = f"127.0.0.1:{srv.port}"
        self._clients: dict[str, Client] = {}

    def client(self, identity: str, certs: Path | None = None) -> Client:
        d = certs or self.dir
        key = f"{d}/{identity}"
        if key not in self._clients:
            self._clients[key] = Client(
                self.target, 10, ca=self.dir / "ca.pem", cert=d / f"{identity}.pem",
                key=d / f"{identity}.key",
            )  # fmt: skip
        return self._clients[key]

    def settle(self, b: dict[str, Any]) -> str:
        """Settle directly through the use case (set-up, no auth involved)."""
        rid = uuid.uuid4().hex
        rec, _ = self.app.service.settle(rid, bill_request(_pb_bill(b)))
        return rec.settlement_id

    def close(self) -> None:
        for c in self._clients.values():
            c.close()


def _pb_bill(b: dict[str, Any]) -> pb.Bill:
    from adapters.grpc.convert import bill_to_pb

    return bill_to_pb(b)


CLIENTS = clients_for([H1, H2, H3], [R1, R2], ["zhang"], ["610100", "640100"])
CASHIER1, CASHIER2, CASHIER3 = (f"cashier-{h}" for h in (H1, H2, H3))
BUREAU1, BUREAU2 = f"bureau-{R1}", f"bureau-{R2}"
AUDITOR, FUND_MAJOR, FUND_BACKSTOP = "auditor-zhang", "fund-610100", "fund-640100"


# the module's tests on one xdist worker (--dist loadgroup): its module-scoped fixtures
# are made once, not once on each worker that runs one of its tests
pytestmark = pytest.mark.xdist_group("auth")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    d = tmp_path_factory.mktemp("pki")
    ca = make_all(d, CLIENTS)
    stranger = ca.issue("stranger", dns=("stranger",))  # signed by our CA, not a principal
    (d / "stranger.pem").write_bytes(stranger.cert_pem)
    (d / "stranger.key").write_bytes(stranger.key_pem)
    # CN of one principal, SAN of another: which one it is cannot be told
    twofaced = ca.issue(AUDITOR, dns=(CASHIER1,))
    (d / "twofaced.pem").write_bytes(twofaced.cert_pem)
    (d / "twofaced.key").write_bytes(twofaced.key_pem)
    other = tmp_path_factory.mktemp("other-pki")
    make_all(other, clients_for([H1], [], [], []))  # another CA, same identity names
    app = build("memory://", policies=None, registry=None)
    app.service.put_policy(YUBEI, "yubei.yaml")
    app.service.put_policy(CHAIN, "chain.yaml")
    app.service.import_registry([Person.model_validate(p) for p in (JIANG_R, WANG_R, WIFE_R)])
    principals = PrincipalsFile(d / "principals.yaml", recheck=0)
    tls = Tls(d / "server.pem", d / "server.key", d / "ca.pem")
    with running(app, tls=tls, principals=principals) as srv:
        w = World(d, srv, app, principals, other)
        try:
            yield w
        finally:
            w.close()
            app.close()


def code_of(fn: Callable[[], Any]) -> grpc.StatusCode | None:
    try:
        fn()
    except grpc.RpcError as e:
        return e.code()
    return None


def details_of(fn: Callable[[], Any]) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as ei:
        fn()
    return ei.value.code(), ei.value.details()


# --------------------------------------------------------------------------- role table

ROLE_OF = {"cashier": CASHIER1, "bureau": BUREAU1, "auditor": AUDITOR, "fund": FUND_MAJOR}

#: written out here, independently of adapters.grpc.auth.METHOD_ROLES
ALLOWED = {
    "PreSettle": {"cashier"},
    "Settle": {"cashier"},
    "Reverse": {"cashier"},
    "SettleStream": {"cashier"},
    "GetSettlement": {"cashier", "bureau", "auditor", "fund"},
    "ListSettlements": {"cashier", "bureau", "auditor", "fund"},
    "GetAccounts": {"cashier", "bureau", "auditor"},
    "PutPolicy": {"bureau"},
    "ImportRegistry": {"bureau"},
    "ListPolicies": {"bureau", "auditor"},
    "GetPolicy": {"bureau", "auditor"},
    "Reconcile": {"cashier", "bureau", "auditor"},
    "DailyTotals": {"cashier", "bureau", "auditor"},
}


def _calls(w: World, seen: str) -> dict[str, Callable[[Client], Any]]:
    """Each method called within the scope of every role (H1, R1, fund 610100)."""

    def stream(c: Client) -> Any:
        req = pb.SettleStreamRequest(mode=pb.STREAM_MODE_TRIAL)
        req.bills.bills.add(bill=_pb_bill(bill()))
        return list(c.settlement.SettleStream(iter([req]), timeout=10))

    return {
        "PreSettle": lambda c: c.pre_settle(bill()),
        "Settle": lambda c: c.settle(bill(), uuid.uuid4().hex),
        "Reverse": lambda c: c.reverse(settlement_id=w.settle(bill())),
        "SettleStream": stream,
        "GetSettlement": lambda c: c.get(seen),
        "ListSettlements": lambda c: c.list("jiang", 2023),
        "GetAccounts": lambda c: c.accounts("jiang", 2023),
        "PutPolicy": lambda c: c.put_policy(YUBEI, "yubei-again.yaml"),
        "ImportRegistry": lambda c: c.import_registry([JIANG_R]),
        "ListPolicies": lambda c: c.admin.ListPolicies(pb.ListPoliciesRequest(), timeout=10),
        "GetPolicy": lambda c: c.admin.GetPolicy(pb.GetPolicyRequest(version=1), timeout=10),
        "Reconcile": lambda c: c.reconcile(H1, "2023-01-01", "2023-12-31"),
        "DailyTotals": lambda c: c.daily_totals(R1, "2023-01-01", "2023-12-31", H1),
    }


@pytest.mark.parametrize("role", sorted(ROLE_OF))
def test_role_table(world: World, role: str) -> None:
    seen = world.settle(bill())  # H1, region R1, fund 610100 pays: in every role's scope
    c = world.client(ROLE_OF[role])
    calls = _calls(world, seen)
    assert set(calls) == set(ALLOWED)
    got = {m: code_of(partial(f, c)) for m, f in calls.items()}
    want = {m: (None if role in roles else PD) for m, roles in ALLOWED.items()}
    assert got == want


def test_every_served_method_is_in_the_role_table() -> None:
    from adapters.grpc.auth import METHOD_ROLES
    from adapters.grpc.gen.onestop.settlement.v1 import funds_pb2
    from adapters.grpc.server import FUNDS_SERVICE, SERVICE_NAMES

    served = {
        f"/{s}/{m.name}"
        for s in SERVICE_NAMES
        for m in pb.DESCRIPTOR.services_by_name[s.rsplit(".", 1)[1]].methods
    }
    served |= {
        f"/{FUNDS_SERVICE}/{m.name}"
        for m in funds_pb2.DESCRIPTOR.services_by_name["FundsService"].methods
    }
    assert served == set(METHOD_ROLES)


# --------------------------------------------------------------------------- cashier scope


def test_cashier_settles_only_bills_of_its_hospital(world: World) -> None:
    c = world.client(CASHIER1)
    rid = uuid.uuid4().hex
    code, msg = details_of(lambda: c.settle(bill(H2), rid))
    assert code == PD and H2 in msg
    assert code_of(lambda: world.client(AUDITOR).get(request_id=rid)) == grpc.StatusCode.NOT_FOUND
    assert code_of(lambda: c.pre_settle(bill(H2))) == PD
    assert code_of(lambda: c.settle(bill(H1), uuid.uuid4().hex)) is None


def test_cashier_stream_only_bills_of_its_hospital(world: World) -> None:
    c = world.client(CASHIER1)

    def stream(r: pb.SettleStreamRequest) -> list[pb.SettleStreamResponse]:
        return list(c.settlement.SettleStream(iter([r])))

    for mode in (pb.STREAM_MODE_TRIAL, pb.STREAM_MODE_SETTLE):
        req = pb.SettleStreamRequest(mode=mode)
        req.bills.bills.add(bill=_pb_bill(bill(H1)), request_id=uuid.uuid4().hex)
        req.bills.bills.add(bill=_pb_bill(bill(H2)), request_id=uuid.uuid4().hex)
        assert code_of(partial(stream, req)) == PD
        for joined in (False, True):  # hospitals as strings, or indexes into hospital_table
            packed = pb.SettleStreamRequest(mode=mode)
            packed.packed.CopyFrom(
                pack_bills(
                    [bill(H1), bill(H2)], [uuid.uuid4().hex, uuid.uuid4().hex], joined=joined
                )
            )
            assert bool(packed.packed.hospital_table) == joined
            assert code_of(partial(stream, packed)) == PD
    ok = pb.SettleStreamRequest(mode=pb.STREAM_MODE_SETTLE)
    ok.bills.bills.add(bill=_pb_bill(bill(H1)), request_id=uuid.uuid4().hex)
    (r,) = list(c.settlement.SettleStream(iter([ok])))
    assert r.n_bills == 1 and len(r.settlement_ids) == 1


def test_cashier_cannot_reverse_or_read_another_hospitals_settlement(world: World) -> None:
    other = world.settle(bill(H2))
    c = world.client(CASHIER1)
    # same answer as for a settlement that does not exist: nothing says it exists
    assert details_of(lambda: c.reverse(settlement_id=other)) == details_of(
        lambda: c.reverse(settlement_id="no-such-settlement")
    )
    assert details_of(lambda: c.get(other)) == details_of(lambda: c.get("no-such-settlement"))
    assert code_of(lambda: c.reverse(settlement_id=other)) == PD
    rec = world.app.service.get(other)
    assert rec.status == "settled"  # not reversed
    assert code_of(lambda: c.get(request_id=rec.request_id)) == PD
    assert code_of(lambda: c.reverse(request_id=rec.request_id)) == PD
    assert world.client(CASHIER2).get(other).settlement_id == other
    assert world.client(CASHIER2).reverse(settlement_id=other).settlement.status == "reversed"


def test_cashier_lists_only_its_hospitals_settlements_in_full_pages(world: World) -> None:
    mine = {world.settle(bill(H1)) for _ in range(3)}
    for _ in range(3):
        world.settle(bill(H2))
    c = world.client(CASHIER1)
    listed = {r.settlement_id for r in c.list("jiang", 2023, page_size=1)}
    assert mine <= listed
    assert all(world.app.service.get(s).settlement.hospital == H1 for s in listed)
    # every page but the last is full: a page never hints at settlements left out
    token, sizes = "", []
    while True:
        page = c.list_page("jiang", 2023, page_size=2, page_token=token)
        sizes.append(len(page.settlements))
        token = page.next_page_token
        if not token:
            break
    assert all(n == 2 for n in sizes[:-1]) and sum(sizes) == len(listed)


def test_cashier_reads_accounts_only_of_its_patients_that_year(world: World) -> None:
    world.settle(chain_bill(0))  # wang at H3
    assert code_of(lambda: world.client(CASHIER1).accounts("wang", 2024)) == PD
    assert code_of(lambda: world.client(CASHIER3).accounts("wang", 2024)) is None
    world.settle(bill(H1))
    assert code_of(lambda: world.client(CASHIER1).accounts("jiang", 2023)) is None
    assert code_of(lambda: world.client(CASHIER1).accounts("jiang", 2022)) == PD
    # an unknown person: the same refusal, no NOT_FOUND
    assert details_of(lambda: world.client(CASHIER1).accounts("nobody", 2023)) == details_of(
        lambda: world.client(CASHIER1).accounts("wang", 2024)
    )


def test_a_request_id_of_another_hospital_is_not_revealed(world: World) -> None:
    rid = uuid.uuid4().hex
    world.client(CASHIER2).settle(bill(H2), rid)
    code, msg = details_of(lambda: world.client(CASHIER1).settle(bill(H1), rid))
    assert code == PD and H2 not in msg and "yubei" not in msg


# --------------------------------------------------------------------------- bureau scope


def test_bureau_puts_tables_of_its_region_only(world: World) -> None:
    b1 = world.client(BUREAU1)
    code, msg = details_of(lambda: b1.put_policy(CHAIN, "chain.yaml"))
    assert code == PD and R2 in msg
    assert world.client(BUREAU2).put_policy(CHAIN, "chain.yaml").region == R2
    assert b1.put_policy(YUBEI, "yubei.yaml").region == R1


def test_bureau_imports_persons_of_its_region_only(world: World) -> None:
    b1 = world.client(BUREAU1)
    assert code_of(lambda: b1.import_registry([WANG_R])) == PD
    assert code_of(lambda: b1.import_registry([JIANG])) == PD  # no region: not its own
    poor_wang = dict(WANG_R, region=R1, tags=[{"tag": "poor"}])
    assert code_of(lambda: b1.import_registry([JIANG_R, poor_wang])) == PD  # a takeover
    assert world.app.service.person("wang").region == R2
    assert world.app.service.person("wang").tags == Person.model_validate(WANG_R).tags
    # accepted: 1 inserted or replaced, or 0 when the shared world already stores them so
    assert b1.import_registry([dict(JIANG_R, household="h-jiang")]) in (0, 1)
    assert world.client(BUREAU2).import_registry([WANG_R]) in (0, 1)
    assert world.app.service.person("jiang").household == "h-jiang"


def test_bureau_reads_settlements_and_accounts_of_its_region(world: World) -> None:
    r1, r2 = world.settle(bill(H1)), world.settle(chain_bill(1))
    b1 = world.client(BUREAU1)
    assert b1.get(r1).settlement_id == r1
    assert code_of(lambda: b1.get(r2)) == PD
    assert code_of(lambda: b1.accounts("wang", 2024)) == PD
    assert code_of(lambda: b1.accounts("jiang", 2023)) is None
    assert b1.list("wang") == []
    assert world.client(BUREAU2).get(r2).settlement_id == r2


def test_reconciliation_within_scope_only(world: World) -> None:
    c1, c2, b1, b2 = (world.client(i) for i in (CASHIER1, CASHIER2, BUREAU1, BUREAU2))
    from datetime import UTC, datetime, timedelta

    today = (datetime.now(UTC) + timedelta(hours=8)).date()  # Asia/Shanghai
    day = str(today - timedelta(days=2)), str(today + timedelta(days=1))
    assert code_of(lambda: c1.reconcile(H1, *day)) is None
    assert code_of(lambda: c2.reconcile(H1, *day)) == PD  # another hospital's figures
    assert code_of(lambda: c1.daily_totals(R1, *day)) == PD  # a whole region: bureaus only
    assert code_of(lambda: c1.daily_totals(R1, *day, H2)) == PD
    assert code_of(lambda: b2.daily_totals(R1, *day)) == PD
    assert code_of(lambda: b1.daily_totals(R1, *day)) is None
    # a bureau reconciles a hospital over its own region's settlements only
    world.settle(bill(H1))
    mine = b1.reconcile(H1, *day)
    assert mine.totals.fixmedins_setl_cnt > 0
    assert b2.reconcile(H1, *day).totals.fixmedins_setl_cnt == 0


# --------------------------------------------------------------------------- fund scope


def test_fund_operator_sees_only_settlements_its_fund_paid(world: World) -> None:
    yubei, chain = world.settle(bill(H1)), world.settle(chain_bill(2))
    assert any(la.fund_code == "640100" for la in world.app.service.get(chain).settlement.layers)
    f = world.client(FUND_MAJOR)
    assert f.get(yubei).settlement_id == yubei  # major assistance (610100) paid
    assert code_of(lambda: f.get(chain)) == PD
    assert f.list("wang") == []
    backstop = world.client(FUND_BACKSTOP)  # a backstop layer that paid 0 is not involvement
    assert code_of(lambda: backstop.get(chain)) == PD
    assert world.client(AUDITOR).get(chain).settlement_id == chain


# --------------------------------------------------------------------------- authentication


def test_unknown_callers(world: World) -> None:
    # a certificate of our CA whose names are no principal: UNAUTHENTICATED
    s = world.client("stranger")
    code, msg = details_of(lambda: s.get("x"))
    assert code == UNAUTH and "principal" in msg
    assert s.status() == "SERVING"  # health is open to any certificate of the client CA
    code, msg = details_of(lambda: world.client("twofaced").get("x"))
    assert code == UNAUTH and "more than one principal" in msg
    # no certificate, or one of another CA: refused in the TLS handshake (see adapters.grpc.auth)
    for c in (
        Client(world.target, 5, ca=world.dir / "ca.pem"),
        world.client(CASHIER1, certs=world.other),
    ):
        assert code_of(partial(c.get, "x")) == grpc.StatusCode.UNAVAILABLE
        assert code_of(c.status) == grpc.StatusCode.UNAVAILABLE
    # plaintext to a TLS port: refused too
    with Client(world.target, 5) as plain:
        assert code_of(lambda: plain.get("x")) == grpc.StatusCode.UNAVAILABLE


def test_principals_file_reloads_and_a_bad_reload_keeps_the_old(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    path = world.dir / "principals.yaml"
    original = path.read_text()
    s = world.client("stranger")
    try:
        path.write_text(original + '  - {identity: "stranger", role: auditor}\n')
        assert code_of(lambda: s.list("jiang")) is None  # in force without a restart
        with caplog.at_level(logging.ERROR, logger="onestop.auth"):
            path.write_text(original + '  - {identity: "stranger", role: janitor}\n')
            assert code_of(lambda: s.list("jiang")) is None  # the old file stays in force
        assert "refused" in caplog.text and "principals[" in caplog.text
        assert "janitor" in caplog.text
        path.write_text(original)
        assert code_of(lambda: s.list("jiang")) == UNAUTH
    finally:
        path.write_text(original)
        time.sleep(0.01)


def test_bad_principals_files_name_file_line_path_and_value() -> None:
    text = """principals:
  - {identity: a, role: cashier, hospital: H1}
  - identity: b
    role: janitor
  - {identity: c, role: cashier}
  - {identity: d, role: cashier, hospital: "H-1!"}
  - {identity: e, role: auditor, region: "500112"}
"""
    with pytest.raises(PrincipalsError) as ei:
        parse_principals(text, "p.yaml")
    msg = str(ei.value)
    assert "p.yaml:4: principals[1].role: 'janitor'" in msg
    assert "p.yaml:5: principals[2]" in msg and "needs hospital" in msg
    assert "p.yaml:6: principals[3]" in msg and "H-1!" in msg
    assert "p.yaml:7: principals[4]" in msg and "region is given for role auditor" in msg
    with pytest.raises(PrincipalsError, match=r"p.yaml:3: principals\[1\].identity.*twice"):
        parse_principals(
            "principals:\n  - {identity: a, role: auditor}\n  - {identity: a, role: auditor}\n",
            "p.yaml",
        )
    with pytest.raises(PrincipalsError, match=r"p\.yaml:3: .*not valid YAML"):
        parse_principals("principals:\n  - {identity: a\n", "p.yaml")
    with pytest.raises(PrincipalsError, match="is not a known field"):
        parse_principals("principals: []\nroles: []\n", "p.yaml")


def test_principals_written_by_certs_parse() -> None:
    got = parse_principals(principals_yaml(CLIENTS))
    assert got[CASHIER1].hospitals == {H1} and got[BUREAU2].regions == {R2}
    assert got[FUND_MAJOR].funds == {"610100"} and got[AUDITOR].role == "auditor"


def test_permission_denied_is_a_domain_error_in_the_one_table() -> None:
    from adapters.grpc.errors import to_status

    assert to_status(PermissionDenied()).code == grpc.StatusCode.PERMISSION_DENIED.value[0]


# --------------------------------------------------------------------------- plaintext, CLIs


def test_plaintext_only_on_loopback_unless_insecure(tmp_path: Path) -> None:
    r = runner.invoke(grpc_app, ["serve", "--host", "0.0.0.0", "--db", "memory://"])
    assert r.exit_code == 2 and "--insecure" in r.output and len(r.output.splitlines()) <= 2
    r = runner.invoke(grpc_app, ["serve", "--tls-cert", "x.pem", "--db", "memory://"])
    assert r.exit_code == 2 and "--tls-key" in r.output and "--principals" in r.output
    bad = tmp_path / "p.yaml"
    bad.write_text("principals:\n  - {identity: a, role: janitor}\n")
    for f in ("c.pem", "k.pem", "ca.pem"):
        (tmp_path / f).write_text("x")
    r = runner.invoke(
        grpc_app,
        ["serve", "--tls-cert", str(tmp_path / "c.pem"), "--tls-key", str(tmp_path / "k.pem"),
         "--client-ca", str(tmp_path / "ca.pem"), "--principals", str(bad)],
    )  # fmt: skip
    assert r.exit_code == 2 and f"{bad}:2: principals[0].role: 'janitor'" in r.output
    app = build("memory://", policies=None, registry=None)
    with pytest.raises(ValueError, match="--insecure"):
        Server(app, "0.0.0.0", 0)
    Server(app, "0.0.0.0", 0, insecure=True)  # allowed when asked for
    Server(app, "::1", 0)
    app.close()


def test_plaintext_loopback_caller_is_local_with_every_role() -> None:
    from adapters.grpc.testing import served

    with served("memory://", (YUBEI, CHAIN), [JIANG_R, WANG_R]) as (_, _, c):
        r = c.settle(bill(H2), "local-1")
        assert c.reverse(settlement_id=r.settlement.settlement_id).settlement.status == "reversed"
        assert c.accounts("wang", 2024).person_id == "wang"


def test_window_and_bureau_cli_against_the_tls_server(world: World, tmp_path: Path) -> None:
    f = tmp_path / "bill.json"
    f.write_text(json.dumps(bill(H1)))
    d = world.dir
    tls = ["--ca", str(d / "ca.pem"), "--cert", str(d / f"{CASHIER1}.pem"),
           "--key", str(d / f"{CASHIER1}.key")]  # fmt: skip
    r = runner.invoke(grpc_app, ["window", "settle", str(f), "--server", world.target, *tls])
    assert r.exit_code == 0, r.output
    assert "settlement" in r.output and "5,625.20" in r.output
    # the same through the environment variables
    env = {"ONESTOP_CA": str(d / "ca.pem"), "ONESTOP_CERT": str(d / f"{CASHIER2}.pem"),
           "ONESTOP_KEY": str(d / f"{CASHIER2}.key")}  # fmt: skip
    r = runner.invoke(
        grpc_app, ["window", "settle", str(f), "--server", world.target, "--json"], env=env
    )
    assert r.exit_code == 6 and "PERMISSION_DENIED" in r.output  # a bill of H1 at H2's window
    r = runner.invoke(grpc_app, ["window", "settle", str(f), "--server", world.target])
    assert r.exit_code == 5 and "--cert" in r.output  # no certificate: handshake refused
    t = tmp_path / "chain.yaml"
    t.write_text(CHAIN)
    b = ["--ca", str(d / "ca.pem"), "--cert", str(d / f"{BUREAU1}.pem"),
         "--key", str(d / f"{BUREAU1}.key")]  # fmt: skip
    r = runner.invoke(grpc_app, ["bureau", "put-policy", str(t), "--server", world.target, *b])
    assert r.exit_code == 6 and "PERMISSION_DENIED" in r.output


def test_python_client_from_env(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    d = world.dir
    monkeypatch.setenv("ONESTOP_CA", str(d / "ca.pem"))
    monkeypatch.setenv("ONESTOP_CERT", str(d / f"{AUDITOR}.pem"))
    monkeypatch.setenv("ONESTOP_KEY", str(d / f"{AUDITOR}.key"))
    with Client.from_env(world.target) as c:
        assert c.status() == "SERVING"
        assert code_of(lambda: c.list("jiang")) is None


def test_certs_command_writes_a_working_set(tmp_path: Path) -> None:
    from adapters.cli.app import app as cli

    out = tmp_path / "pki"
    r = runner.invoke(cli, ["certs", "--out", str(out), "--hospital", H1, "--bureau", R1,
                            "--auditor", "zhang", "--fund", "610100"])  # fmt: skip
    assert r.exit_code == 0, r.output
    got = parse_principals((out / "principals.yaml").read_text())
    assert set(got) == {CASHIER1, BUREAU1, AUDITOR, FUND_MAJOR}
    ca_before = (out / "ca.pem").read_bytes()
    r = runner.invoke(cli, ["certs", "--out", str(out), "--hospital", H2])
    assert r.exit_code == 0 and "reused CA" in r.output
    cashier1 = (out / f"{CASHIER1}.pem").read_bytes()
    got = parse_principals((out / "principals.yaml").read_text())
    assert set(got) == {CASHIER1, BUREAU1, AUDITOR, FUND_MAJOR, CASHIER2}  # kept and added
    assert got[FUND_MAJOR].funds == {"610100"} and got[BUREAU1].regions == {R1}
    runner.invoke(cli, ["certs", "--out", str(out), "--auditor", "li"])
    assert (out / f"{CASHIER1}.pem").read_bytes() == cashier1  # issued once
    assert (out / "ca.pem").read_bytes() == ca_before
    assert Authority.load(ca_before, (out / "ca.key").read_bytes()).cert.subject
    r = runner.invoke(cli, ["certs", "--out", str(tmp_path / "x"), "--hospital", "H 1!"])
    assert r.exit_code == 2 and "hospital" in r.output


def test_scope_layer_reverse_needs_a_cashier_of_the_hospital_not_only_sight(
    world: World,
) -> None:
    """Independently of the role table: a principal that sees a settlement (bureau, auditor)
    still cannot reverse it through the scope layer."""
    from adapters.auth.access import ScopedService

    sid = world.settle(bill(H1))
    for who in (BUREAU1, AUDITOR, FUND_MAJOR):
        principal = world.principals.get(who)
        assert principal is not None
        scoped = ScopedService(world.app.service, principal)
        assert scoped.get(sid).settlement_id == sid
        with pytest.raises(PermissionDenied):
            scoped.reverse(settlement_id=sid)
    assert world.app.service.get(sid).status == "settled"


# --------------------------------------------------------------------------- person region


def _person(u: UnitOfWork, person_id: str) -> Person:
    found = u.registry.get(person_id)
    assert found is not None, person_id
    return found


def test_person_region_round_trips_and_migration_0004(tmp_path: Path) -> None:
    import sqlalchemy as sa

    from adapters.store.memory import MemoryStore
    from adapters.store.sql import SqlStore, upgrade

    url = f"sqlite:///{tmp_path / 'o.db'}"
    engine = sa.create_engine(url)
    upgrade(engine, "0002")  # a store from before regions, with a person in it
    with engine.begin() as c:
        c.execute(sa.text("INSERT INTO persons VALUES ('old', '1950-01-01', 'h-old')"))
    engine.dispose()
    store = SqlStore(url, migrate=True)
    try:
        for s in (store, MemoryStore()):
            with s.uow() as u:
                if s is store:
                    assert _person(u, "old").region is None
                u.registry.upsert(
                    [Person.model_validate(p) for p in (JIANG_R, JIANG | {"id": "x"})]
                )
                u.commit()
            with s.uow() as u:
                assert _person(u, "jiang").region == R1
                assert _person(u, "x").region is None
    finally:
        store.dispose()
    from adapters.grpc.convert import person_dict, person_to_pb

    assert person_dict(person_to_pb(JIANG_R))["region"] == R1
    assert person_dict(person_to_pb(JIANG))["region"] is None


# --------------------------------------------------------------------------- registry history


def test_registry_history_on_sqlite_and_postgres(db_url: str) -> None:  # noqa: F811
    registry_history(db_url)


def test_registry_history_in_memory() -> None:
    registry_history("memory://")


def registry_history(any_url: str) -> None:
    """The registry keeps every import, and settlements name the version they used."""
    from datetime import UTC, datetime, timedelta

    from engine.service.usecases import SettlementService

    app = build(any_url, policies=None, registry=None)
    t = [datetime(2024, 1, 1, tzinfo=UTC)]

    def clock() -> datetime:
        t[0] += timedelta(minutes=1)
        return t[0]

    svc = SettlementService(app.store.uow, clock=clock)
    try:
        svc.put_policy(YUBEI, "yubei.yaml")
        first = Person.model_validate(JIANG_R)
        svc.import_registry([first], principal=BUREAU1)
        svc.import_registry([first], principal="again")  # unchanged: no new version
        rec1, _ = svc.settle("r1", bill_request(_pb_bill(bill(H1, "b1"))))
        second = first.model_copy(update={"tags": (), "household": "h-new"})
        svc.import_registry([second], principal="bureau-other")
        rec2, _ = svc.settle("r2", bill_request(_pb_bill(bill(H1, "b2"))))
        history = svc.person_history("jiang")
        assert [(v.version, v.person, v.imported_by) for v in history] == [
            (1, first, BUREAU1),
            (2, second, "bureau-other"),
        ]
        assert history[0].valid_from < history[1].valid_from
        assert svc.person("jiang") == second  # the one in force
        assert (rec1.registry_version, rec2.registry_version) == (1, 2)
        assert svc.get(rec1.settlement_id).registry_version == 1  # stored, not recomputed
        assert svc.get(rec2.settlement_id).registry_version == 2
        assert svc.person_history("nobody") == []
    finally:
        app.close()


def test_imports_through_tls_record_who_imported(world: World) -> None:
    world.client(BUREAU2).import_registry([dict(WIFE_R, birth_date="1961-07-10")])
    assert world.app.service.person_history("wang-wife")[-1].imported_by == BUREAU2
    r = world.client(CASHIER1).settle(bill(H1), uuid.uuid4().hex)
    versions = world.app.service.person_history("jiang")
    assert r.settlement.registry_version == versions[-1].version > 0


# --------------------------------------------------------------------------- the README set-up


def test_readme_secure_setup_end_to_end(tmp_path: Path) -> None:
    """`onestop certs`, `onestop serve` with the TLS options (a real process), then the window
    and bureau commands with the certificates, as the README shows."""
    import os
    import signal
    import subprocess
    import sys

    from tests.ports import start_server

    root = Path(__file__).resolve().parents[1]
    pki = tmp_path / "pki"
    onestop = [sys.executable, "-m", "adapters.cli.main"]
    env = {**os.environ, "PYTHONPATH": str(root)}
    subprocess.run(
        [*onestop, "certs", "--out", str(pki), "--hospital", "H451423001", "--bureau", "451423"],
        check=True, cwd=root, env=env, capture_output=True,
    )  # fmt: skip
    log = tmp_path / "serve.log"

    def popen(port: int) -> subprocess.Popen:
        with log.open("ab") as out:
            return subprocess.Popen(
                [*onestop, "serve", "--port", str(port), "--db", f"sqlite:///{tmp_path / 'o.db'}",
                 "--tls-cert", str(pki / "server.pem"), "--tls-key", str(pki / "server.key"),
                 "--client-ca", str(pki / "ca.pem"), "--principals", str(pki / "principals.yaml")],
                cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip

    server, port = start_server(popen, log)
    cashier = {"ONESTOP_CA": str(pki / "ca.pem"), "ONESTOP_CERT": str(pki / "cashier-H451423001.pem"),
               "ONESTOP_KEY": str(pki / "cashier-H451423001.key")}  # fmt: skip
    target = f"127.0.0.1:{port}"
    try:
        with Client(target, ca=pki / "ca.pem", cert=pki / "bureau-451423.pem",
                    key=pki / "bureau-451423.key") as c:  # fmt: skip
            c.wait_serving(120)
        sample = root / "policies" / "samples"
        r = runner.invoke(
            grpc_app, ["window", "settle", str(sample / "longzhou-1.json"), "--server", target,
                       "--json"], env=cashier,
        )  # fmt: skip
        assert r.exit_code == 0, r.output
        r = runner.invoke(
            grpc_app,
            ["window", "settle", str(sample / "hongan-1.json"), "--server", target],
            env=cashier,
        )
        assert r.exit_code == 6 and "PERMISSION_DENIED" in r.output
        bureau = ["--cert", str(pki / "bureau-451423.pem"), "--key", str(pki / "bureau-451423.key")]
        hongan = sorted((root / "policies" / "hongan").glob("*.yaml"))[0]
        r = runner.invoke(
            grpc_app,
            ["bureau", "put-policy", str(hongan), "--server", target, *bureau],
            env=cashier,
        )
        assert r.exit_code == 6 and "PERMISSION_DENIED" in r.output
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
    assert "TLS, client certificates required" in log.read_text()


# --------------------------------------------------------------------------- access log


def test_one_access_line_per_call_without_personal_fields(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    import json as _json
    import logging as _logging

    c1, c2 = world.client(CASHIER1), world.client(CASHIER2)
    with caplog.at_level(_logging.INFO, logger="onestop.access"):
        c1.pre_settle(bill())
        assert code_of(lambda: c2.get(world.settle(bill(H1)))) == PD
        assert code_of(lambda: c1.get("no-such")) == PD
        deadline = time.monotonic() + 5  # the server logs after the answer has gone out
        while time.monotonic() < deadline:
            lines = [
                _json.loads(r.getMessage()) for r in caplog.records if r.name == "onestop.access"
            ]
            if len(lines) >= 3:
                break
            time.sleep(0.02)
    assert [(x["principal"], x["method"].rsplit("/", 1)[1], x["status"]) for x in lines] == [
        (CASHIER1, "PreSettle", "OK"),
        (CASHIER2, "GetSettlement", "PERMISSION_DENIED"),
        (CASHIER1, "GetSettlement", "PERMISSION_DENIED"),
    ]
    assert all(x["role"] == "cashier" and x["ms"] >= 0 and x["incident"] is None for x in lines)
    text = caplog.text
    for personal in ("jiang", JIANG["birth_date"], JIANG["household"]):
        assert personal not in text


def test_access_line_only_when_its_logger_is_on(caplog: pytest.LogCaptureFixture) -> None:
    """``log_call`` builds and writes the line only if ``onestop.access`` takes INFO: an
    operator who sets that logger to WARNING gets no line (and pays for none)."""
    from adapters.auth.principals import LOCAL
    from adapters.grpc.auth import log_call

    class Done:
        def code(self) -> Any:
            return None

    m = "/onestop.settlement.v1.SettlementService/PreSettle"
    with caplog.at_level(logging.WARNING, logger="onestop.access"):
        log_call(LOCAL, m, Done(), time.perf_counter())
    assert [r for r in caplog.records if r.name == "onestop.access"] == []
    with caplog.at_level(logging.INFO, logger="onestop.access"):
        log_call(LOCAL, m, Done(), time.perf_counter(), ValueError("x"))
    (r,) = [r for r in caplog.records if r.name == "onestop.access"]
    line = json.loads(r.getMessage())
    assert (line["principal"], line["method"], line["status"]) == ("local", m, "UNKNOWN")
    assert r.getMessage() == json.dumps(line, separators=(",", ":"))


@settings(max_examples=300, deadline=None)
@given(
    who=st.none() | st.tuples(st.text(), st.text()),
    method=st.text(),
    status=st.sampled_from(list(grpc.StatusCode)),
    incident=st.none() | st.text(),
    ms=st.floats(0, 1e7),
)
def test_access_line_is_what_json_dumps_writes(
    who: Any, method: str, status: Any, incident: Any, ms: float
) -> None:
    """The access line, written without ``json.dumps``, is byte for byte what ``json.dumps``
    (separators ``,`` ``:``) gives for its six keys: any Unicode, quotes, control characters
    in a principal's name, role, method or incident id; every status; any duration."""
    from types import SimpleNamespace

    from adapters.grpc import auth as _auth
    from adapters.grpc.errors import last_incident

    class Done:
        def code(self) -> Any:
            return status

    got: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            got.append(record.getMessage())

    handler = Collect()
    log = logging.getLogger("onestop.access")
    level, log.level = log.level, logging.INFO
    log.addHandler(handler)
    token = last_incident.set(incident)
    try:
        p = SimpleNamespace(name=who[0], role=who[1]) if who else None
        t0 = time.perf_counter() - ms / 1000
        # duck-typed principal (any text for its role) and context: what log_call reads
        _auth.log_call(p, method, Done(), t0)  # type: ignore[arg-type]
        took = (time.perf_counter() - t0) * 1000  # ms plus the call itself, however slow
    finally:
        last_incident.reset(token)
        log.removeHandler(handler)
        log.level = level
    (text,) = got
    line = json.loads(text)
    assert text == json.dumps(
        {"principal": who[0] if who else None, "role": who[1] if who else None,
         "method": method, "status": status.name, "ms": line["ms"], "incident": incident},
        separators=(",", ":"),
    )  # fmt: skip
    # at least the ``ms`` that had passed, at most what had passed when the call returned (a
    # loaded machine can take more than a millisecond between the two), to the microsecond
    assert isinstance(line["ms"], float) and ms - 0.001 <= line["ms"] <= took + 0.001
