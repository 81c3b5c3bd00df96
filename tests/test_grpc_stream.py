"""SettleStream: bills as messages and packed columns, TRIAL (writes nothing, chains a
person's bills like a batch) and SETTLE (durable, idempotent per request id)."""

from __future__ import annotations

import grpc
import pytest

from adapters.grpc.client import Client, pack_bills
from adapters.grpc.convert import bill_to_pb, settlement_from_pb
from adapters.grpc.errors import bad_request
from adapters.grpc.gen.onestop.settlement.v1 import settlement_pb2 as pb
from adapters.grpc.testing import CHAIN, CHAIN_PERSONS, YUBEI, chain_bill, served
from engine.accounts import Opening
from engine.batch import reference_batch
from engine.bill import Person, parse_bill_request
from engine.policy.load import parse_table
from engine.policy.policyset import PolicySet


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory):
    url = f"sqlite:///{tmp_path_factory.mktemp('grpc-stream') / 'onestop.db'}"
    with served(url, (YUBEI, CHAIN)) as (app, server, client):
        yield app, server, client


def stream(c: Client, *reqs: pb.SettleStreamRequest) -> list[pb.SettleStreamResponse]:
    return list(c.settlement.SettleStream(iter(reqs), timeout=60))


def bills_msg(mode: int, bills: list[dict], packed_results: bool = False, prefix: str = "s"):
    return pb.SettleStreamRequest(
        mode=mode,
        bills=pb.BillList(
            bills=[
                pb.SettleRequest(request_id=f"{prefix}-{b['id']}", bill=bill_to_pb(b))
                for b in bills
            ]
        ),
        packed_results=packed_results,
    )


def reference(bills: list[dict]) -> list:
    persons = {p["id"]: Person.model_validate(p) for p in CHAIN_PERSONS}
    full = [parse_bill_request(b).with_person(persons[b["person_id"]]) for b in bills]
    return reference_batch(full, PolicySet.of([parse_table(CHAIN)]), Opening()).settlements


def snapshot(c: Client) -> tuple:
    return tuple(
        (c.accounts(p, 2024).SerializeToString(), len(c.list(p))) for p in ("wang", "wang-wife")
    )


BILLS = [chain_bill(i, p, seed=21) for i in range(6) for p in ("wang", "wang-wife")]


def test_trial_bills_chain_like_a_batch_and_write_nothing(env) -> None:
    _, _, c = env
    before = snapshot(c)
    (r,) = stream(c, bills_msg(pb.STREAM_MODE_TRIAL, BILLS))
    assert r.n_bills == len(BILLS) and r.n_items == sum(len(b["items"]) for b in BILLS)
    got = [settlement_from_pb(s) for s in r.results]
    assert got == reference(BILLS)
    assert snapshot(c) == before


def test_trial_packed_equals_trial_bills(env) -> None:
    _, _, c = env
    before = snapshot(c)
    (full,) = stream(c, bills_msg(pb.STREAM_MODE_TRIAL, BILLS))
    (packed,) = stream(
        c, pb.SettleStreamRequest(mode=pb.STREAM_MODE_TRIAL, packed=pack_bills(BILLS))
    )
    p = packed.packed
    assert packed.n_bills == len(BILLS) and list(p.bill_ids) == [b["id"] for b in BILLS]
    for k, s in enumerate(full.results):
        assert p.total[k] == s.buckets.total and p.in_scope[k] == s.buckets.in_scope
        assert p.window_pay[k] == s.window_pay and p.net_selfpay[k] == s.net_selfpay
        assert p.funds_total[k] == s.funds_total
        rows = range(p.layer_offsets[k], p.layer_offsets[k + 1])
        assert [p.layer_ids[j] for j in rows] == [la.layer_id for la in s.layers]
        assert [p.layer_pay[j] for j in rows] == [la.pay for la in s.layers]
        assert [p.layer_relief[j] for j in rows] == [la.relief for la in s.layers]
    assert snapshot(c) == before


def test_settle_mode_is_durable_and_idempotent(env) -> None:
    _, _, c = env
    bills = [chain_bill(20 + i, "wang-wife", seed=4) for i in range(3)]
    (r,) = stream(c, bills_msg(pb.STREAM_MODE_SETTLE, bills, prefix="st"))
    assert len(r.settlement_ids) == 3 and not any(r.replay)
    for b, sid in zip(bills, r.settlement_ids, strict=True):
        assert c.get(request_id=f"st-{b['id']}").settlement_id == sid
    before = snapshot(c)
    (again,) = stream(c, bills_msg(pb.STREAM_MODE_SETTLE, bills, packed_results=True, prefix="st"))
    assert list(again.settlement_ids) == list(r.settlement_ids) and all(again.replay)
    assert list(again.packed.window_pay) == [s.window_pay for s in r.results]
    assert snapshot(c) == before
    # packed, SETTLE mode: request ids per bill
    more = [chain_bill(30 + i, "wang-wife", seed=4) for i in range(2)]
    (p,) = stream(
        c,
        pb.SettleStreamRequest(
            mode=pb.STREAM_MODE_SETTLE,
            packed=pack_bills(more, [f"pk-{b['id']}" for b in more]),
            packed_results=True,
        ),
    )
    assert len(p.settlement_ids) == 2
    assert c.get(request_id=f"pk-{more[1]['id']}").settlement_id == p.settlement_ids[1]


@pytest.mark.parametrize("form", ["bills", "packed"])
def test_bad_bill_in_stream_names_bill_and_field(env, form: str) -> None:
    _, _, c = env
    bad = [dict(b) for b in BILLS[:3]]
    bad[2] = dict(bad[2], items=[dict(bad[2]["items"][0], amount=-5)])
    before = snapshot(c)
    if form == "bills":
        req = bills_msg(pb.STREAM_MODE_TRIAL, bad)
        want = "bills[2].items[0].amount"
    else:
        req = pb.SettleStreamRequest(mode=pb.STREAM_MODE_TRIAL, packed=pack_bills(bad))
        n_before = sum(len(b["items"]) for b in bad[:2])
        want = f"items[{n_before}].amount"
    with pytest.raises(grpc.RpcError) as e:
        stream(c, req)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert any(f == want for f, _ in bad_request(e.value)), bad_request(e.value)
    assert snapshot(c) == before


def test_stream_mode_is_required(env) -> None:
    _, _, c = env
    with pytest.raises(grpc.RpcError) as e:
        stream(c, pb.SettleStreamRequest(bills=pb.BillList()))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request(e.value)[0][0] == "mode"


def test_many_messages_one_stream(env) -> None:
    _, _, c = env
    reqs = [
        pb.SettleStreamRequest(mode=pb.STREAM_MODE_TRIAL, packed=pack_bills(BILLS[k::3]))
        for k in range(3)
    ]
    out = stream(c, *reqs)
    assert [r.n_bills for r in out] == [len(BILLS[k::3]) for k in range(3)]


def test_packed_settle_with_a_malformed_bill_settles_none(env) -> None:
    _, _, c = env
    bills = [chain_bill(40 + i, "wang-wife", seed=8) for i in range(3)]
    bills[1]["items"][2]["amount"] = -1
    before = snapshot(c)
    req = pb.SettleStreamRequest(
        mode=pb.STREAM_MODE_SETTLE, packed=pack_bills(bills, [f"mal-{i}" for i in range(3)])
    )
    with pytest.raises(grpc.RpcError) as e:
        stream(c, req)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request(e.value)[0][0] == "bills[1].items[2].amount"
    assert snapshot(c) == before
