"""End to end through a real gRPC server (in-process, free port) and the generated stub, over
the SQL store on a SQLite file (and the in-memory store for the quick checks)."""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from adapters.bootstrap import build
from adapters.defaults import DEFAULT_POLICIES, DEFAULT_REGISTRY
from adapters.grpc.client import Client
from adapters.grpc.errors import bad_request
from adapters.grpc.gen.onestop.settlement.v1 import settlement_pb2 as pb
from adapters.grpc.server import running
from adapters.grpc.testing import (
    CHAIN,
    JIANG,
    YUBEI,
    YUBEI_BILL,
    YUBEI_PAYS,
    YUBEI_WINDOW,
    chain_bill,
    served,
)

# the module's tests on one xdist worker (--dist loadgroup): its module-scoped fixtures
# are made once, not once on each worker that runs one of its tests
pytestmark = pytest.mark.xdist_group("grpc_service")


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory):
    url = f"sqlite:///{tmp_path_factory.mktemp('grpc') / 'var' / 'onestop.db'}"
    with served(url, (YUBEI, CHAIN)) as (app, server, client):
        yield app, server, client


def accounts(c: Client, person: str, year: int) -> tuple[bytes, bytes]:
    a = c.accounts(person, year)
    return a.person.SerializeToString(), a.household_accounts.SerializeToString()


def pays(result: pb.SettlementResult) -> dict[str, int]:
    return {r.layer_id: r.pay for r in result.layers}


def test_sql_store_is_used(env) -> None:
    app, _, _ = env
    assert app.durable and type(app.store).__name__ == "SqlStore"


def test_health_serving_after_warm_up_and_reflection(env) -> None:
    _, _, c = env
    assert c.status() == "SERVING"
    for name in (
        "onestop.settlement.v1.SettlementService",
        "onestop.settlement.v1.PolicyAdminService",
        "onestop.settlement.v1.ReconciliationService",
    ):
        r = health_pb2_grpc.HealthStub(c.channel).Check(health_pb2.HealthCheckRequest(service=name))
        assert r.status == health_pb2.HealthCheckResponse.SERVING
    stub = reflection_pb2_grpc.ServerReflectionStub(c.channel)
    resp = next(
        iter(
            stub.ServerReflectionInfo(
                iter([reflection_pb2.ServerReflectionRequest(list_services="")])
            )
        )
    )
    names = {s.name for s in resp.list_services_response.service}
    assert {
        "onestop.settlement.v1.SettlementService",
        "onestop.settlement.v1.PolicyAdminService",
        "onestop.settlement.v1.ReconciliationService",
        "grpc.health.v1.Health",
    } <= names
    # the names before the rename (protos/breaking-accepted.md, 2026-12-02) are gone
    old = {f"onestop.settlement.v1.{s}" for s in ("Settlement", "PolicyAdmin", "Reconciliation")}
    assert not names & old


def test_old_method_paths_answer_unimplemented(env) -> None:
    """A client generated before the rename calls /onestop.settlement.v1.Settlement/...: it is
    told UNIMPLEMENTED (the method does not exist), not a permission or decoding error."""
    _, _, c = env
    for path in (
        "/onestop.settlement.v1.Settlement/GetSettlement",
        "/onestop.settlement.v1.PolicyAdmin/ListPolicies",
        "/onestop.settlement.v1.Reconciliation/DailyTotals",
        "/onestop.settlement.v1.Funds/GetClaim",
    ):
        call = c.channel.unary_unary(path, request_serializer=None, response_deserializer=None)
        with pytest.raises(grpc.RpcError) as e:
            call(b"", timeout=10)
        assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED, path


def test_get_settlement_answers_its_own_response(env) -> None:
    """GetSettlement answers GetSettlementResponse{settlement}: the record Settle stored."""
    _, _, c = env
    done = c.settle(chain_bill(11, "wang-wife", seed=9), request_id="getresp-1")
    raw = c.settlement.GetSettlement(
        pb.GetSettlementRequest(settlement_id=done.settlement.settlement_id)
    )
    assert isinstance(raw, pb.GetSettlementResponse)
    assert raw.settlement == done.settlement
    assert c.get(request_id="getresp-1") == done.settlement
    c.reverse(request_id="getresp-1")


def test_health_not_serving_before_warm_up(tmp_path: Path) -> None:
    app = build("memory://", policies=None, registry=None)
    with running(app, warm=False) as server, Client(f"127.0.0.1:{server.port}") as c:
        assert c.status() == "NOT_SERVING"


def test_pre_settle_pays_golden_figures_and_changes_nothing(env) -> None:
    _, _, c = env
    before = accounts(c, "jiang", 2023), c.list("jiang")
    r = c.pre_settle(YUBEI_BILL).result
    assert pays(r) == YUBEI_PAYS
    assert r.window_pay == r.net_selfpay == YUBEI_WINDOW
    assert r.buckets.total == 5200000 and r.buckets.in_scope == 5000000
    assert r.buckets.out_of_catalogue == 200000
    assert r.funds_total + r.net_selfpay == r.buckets.total
    assert (accounts(c, "jiang", 2023), c.list("jiang")) == before
    # the result names each layer and explains itself in both languages
    assert r.layers[0].name == "Basic medical insurance"
    words = [(x.en, x.zh) for x in r.explanation]
    assert len(words) == len(r.layers) + 2
    assert "pays 34,790.00" in words[1][0] and "支付 34,790.00 元" in words[1][1]
    assert words[-1][0].endswith("The patient pays 5,625.20 at the window.")


def test_settle_pays_golden_once_and_reverse_restores(env) -> None:
    _, _, c = env
    before = accounts(c, "jiang", 2023)
    first = c.settle(YUBEI_BILL, "yubei-req-1")
    assert not first.replay
    rec = first.settlement
    assert pays(rec.result) == YUBEI_PAYS and rec.result.window_pay == YUBEI_WINDOW
    after = accounts(c, "jiang", 2023)
    assert after != before
    # a retry pays once: same settlement, accounts unchanged
    again = c.settle(YUBEI_BILL, "yubei-req-1")
    assert again.replay and again.settlement.settlement_id == rec.settlement_id
    assert accounts(c, "jiang", 2023) == after
    assert [s.settlement_id for s in c.list("jiang", 2023)] == [rec.settlement_id]
    # the same request id with another bill is refused, nothing written
    other = dict(YUBEI_BILL, items=[{"category": "A", "amount": 100}])
    with pytest.raises(grpc.RpcError) as e:
        c.settle(other, "yubei-req-1")
    assert e.value.code() == grpc.StatusCode.ALREADY_EXISTS
    # the same bill under another request id is refused too (already settled)
    with pytest.raises(grpc.RpcError) as e:
        c.settle(YUBEI_BILL, "yubei-req-2")
    assert e.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert accounts(c, "jiang", 2023) == after
    # get by either id
    assert c.get(settlement_id=rec.settlement_id).request_id == "yubei-req-1"
    assert c.get(request_id="yubei-req-1").settlement_id == rec.settlement_id
    # reverse restores the accounts to the fen, and is idempotent
    rv = c.reverse(request_id="yubei-req-1")
    assert not rv.replay and rv.settlement.status == "reversed"
    assert accounts(c, "jiang", 2023) == before
    rv2 = c.reverse(settlement_id=rec.settlement_id)
    assert rv2.replay and rv2.settlement.status == "reversed"
    assert accounts(c, "jiang", 2023) == before
    assert c.get(settlement_id=rec.settlement_id).status == "reversed"
    # once reversed, the bill may be settled again (new request id): same figures
    third = c.settle(YUBEI_BILL, "yubei-req-3")
    assert pays(third.settlement.result) == YUBEI_PAYS
    assert accounts(c, "jiang", 2023) == after
    c.reverse(request_id="yubei-req-3")


def test_not_found(env) -> None:
    _, _, c = env
    for call in (
        lambda: c.get(settlement_id="nope"),
        lambda: c.reverse(request_id="nope"),
        lambda: c.accounts("nobody", 2023),
        lambda: c.admin.GetPolicy(pb.GetPolicyRequest(version=999)),
    ):
        with pytest.raises(grpc.RpcError) as e:
            call()
        assert e.value.code() == grpc.StatusCode.NOT_FOUND


def test_policy_admin_versions(env) -> None:
    _, _, c = env
    vs = c.admin.ListPolicies(pb.ListPoliciesRequest()).versions
    assert {v.region for v in vs} >= {"500112", "990001"}
    assert all(v.yaml == "" for v in vs)
    v = c.admin.GetPolicy(pb.GetPolicyRequest(version=vs[0].version)).policy
    assert v.version == vs[0].version and v.yaml and v.in_force and v.layer_ids
    assert c.get_policy(vs[0].version) == v
    only = c.admin.ListPolicies(pb.ListPoliciesRequest(region="500112")).versions
    assert {v.region for v in only} == {"500112"}


def test_import_registry_refuses_bad_person_and_writes_nothing(env) -> None:
    _, _, c = env
    with pytest.raises(grpc.RpcError) as e:
        c.import_registry(
            [
                dict(JIANG, id="new-person"),
                {"id": "x", "birth_date": "1990-13-01", "household": "h"},
            ]
        )
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert any(f.startswith("persons[1].birth_date") for f, _ in bad_request(e.value))
    with pytest.raises(grpc.RpcError) as e:
        c.accounts("new-person", 2023)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND


def test_list_settlements_by_year_and_order(env) -> None:
    _, _, c = env
    ids = [
        c.settle(chain_bill(i, "wang-wife", seed=7), f"ww-{i}").settlement.settlement_id
        for i in range(3)
    ]
    assert [s.settlement_id for s in c.list("wang-wife", 2024)][-3:] == ids
    assert c.list("wang-wife", 2019) == []


def test_bootstrap_loads_policies_dir_and_registry_once(tmp_path: Path) -> None:
    """``onestop serve`` defaults: every table of policies/ and the sample registry; a second
    start over the same database stores nothing new. Every sample bill trial-settles."""
    if not DEFAULT_REGISTRY.exists():
        pytest.skip("no sample registry")
    url = f"sqlite:///{tmp_path / 'var' / 'onestop.db'}"
    app = build(url)
    try:
        assert app.policies_loaded and app.persons_imported
    finally:
        app.close()
    app = build(url)
    try:
        assert app.policies_loaded == [] and len(app.policies_skipped) >= 1
        with (
            running(app, samples=DEFAULT_REGISTRY.parent) as server,
            Client(f"127.0.0.1:{server.port}") as c,
        ):
            for f in sorted((DEFAULT_POLICIES / "samples").glob("*.json")):
                if f.name == "registry.json":
                    continue
                r = c.pre_settle(json.loads(f.read_text())).result
                assert r.funds_total + r.net_selfpay == r.buckets.total
    finally:
        app.close()
