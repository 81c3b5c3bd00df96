"""Issue 7 defect 2 through gRPC: a bill is (hospital, id). Two hospitals reusing an id both
settle; a bill already settled is ALREADY_EXISTS naming no other window's settlement or
request id; a bad hospital code is INVALID_ARGUMENT naming ``hospital`` in the message form,
the bill list of SettleStream and the packed columns (TRIAL and SETTLE)."""

from __future__ import annotations

from functools import partial
from typing import Any

import grpc
import pytest

from adapters.grpc.client import Client, pack_bills
from adapters.grpc.convert import bill_to_pb
from adapters.grpc.errors import bad_request
from adapters.grpc.gen.onestop.settlement.v1 import settlement_pb2 as pb
from adapters.grpc.testing import CHAIN, YUBEI, YUBEI_BILL, chain_bill, served
from tests.pg import db_url, pg_url  # noqa: F401  (fixtures)

# the module's tests on one xdist worker (--dist loadgroup): its module-scoped fixtures
# are made once, not once on each worker that runs one of its tests
pytestmark = pytest.mark.xdist_group("grpc_hospital")


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory):
    url = f"sqlite:///{tmp_path_factory.mktemp('grpc-hospital') / 'onestop.db'}"
    with served(url, (YUBEI, CHAIN)) as (app, server, client):
        yield app, server, client


def stream(c: Client, req: pb.SettleStreamRequest) -> list[pb.SettleStreamResponse]:
    return list(c.settlement.SettleStream(iter([req]), timeout=60))


def test_two_hospitals_reuse_one_bill_id(env: Any) -> None:
    _, _, c = env
    a = c.settle(dict(YUBEI_BILL, id="shared-1", hospital="HA1"), "hosp-a")
    b = c.settle(dict(YUBEI_BILL, id="shared-1", hospital="HB2"), "hosp-b")
    assert not a.replay and not b.replay
    assert a.settlement.settlement_id != b.settlement.settlement_id
    assert (a.settlement.result.hospital, b.settlement.result.hospital) == ("HA1", "HB2")
    assert c.get(request_id="hosp-b").result.hospital == "HB2"
    # the second hospital's bill again under another request id: refused, and the message
    # does not tell the sender the other window's settlement id or request id
    with pytest.raises(grpc.RpcError) as e:
        c.settle(dict(YUBEI_BILL, id="shared-1", hospital="HB2"), "hosp-b-again")
    assert e.value.code() == grpc.StatusCode.ALREADY_EXISTS
    msg = e.value.details()
    assert "'shared-1'" in msg and "'HB2'" in msg and "reverse" in msg
    for rec in (a.settlement, b.settlement):
        assert rec.settlement_id not in msg and rec.request_id not in msg
    # reversed, the bill settles again
    c.reverse(request_id="hosp-b")
    again = c.settle(dict(YUBEI_BILL, id="shared-1", hospital="HB2"), "hosp-b-again")
    assert not again.replay


@pytest.mark.parametrize("code", ["H-1", "", "H" * 31, "医院"])
def test_bad_hospital_is_invalid_argument_in_every_form(env: Any, code: str) -> None:
    _, _, c = env
    bill = chain_bill(40, "wang", seed=2) | {"hospital": code}
    before = len(c.list("wang"))
    for call in (lambda: c.settle(bill, f"bad-h-{code}"), lambda: c.pre_settle(bill)):
        with pytest.raises(grpc.RpcError) as e:
            call()
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        fields = dict(bad_request(e.value))
        assert "hospital" in fields and "fixmedins_code" in fields["hospital"], fields
    good = chain_bill(41, "wang", seed=2)
    listed = pb.SettleStreamRequest(
        mode=pb.STREAM_MODE_TRIAL,
        bills=pb.BillList(
            bills=[
                pb.SettleRequest(request_id="l0", bill=bill_to_pb(good)),
                pb.SettleRequest(request_id="l1", bill=bill_to_pb(bill)),
            ]
        ),
    )
    for req in (
        listed,
        pb.SettleStreamRequest(mode=pb.STREAM_MODE_TRIAL, packed=pack_bills([good, bill])),
        pb.SettleStreamRequest(
            mode=pb.STREAM_MODE_SETTLE, packed=pack_bills([bill], [f"bad-hp-{code}"])
        ),
    ):
        with pytest.raises(grpc.RpcError) as e:
            stream(c, req)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        fields = dict(bad_request(e.value))
        key = "bills[1].hospital" if len(fields) and "bills[1].hospital" in fields else None
        key = key or "bills[0].hospital"
        assert key in fields and "fixmedins_code" in fields[key], fields
    assert len(c.list("wang")) == before


def test_packed_bills_without_hospitals_are_refused(env: Any) -> None:
    _, _, c = env
    p = pack_bills([chain_bill(42, "wang", seed=2)])
    del p.hospitals[:]
    with pytest.raises(grpc.RpcError) as e:
        stream(c, pb.SettleStreamRequest(mode=pb.STREAM_MODE_TRIAL, packed=p))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "packed.hospitals" in dict(bad_request(e.value))


def test_packed_trial_keys_bills_by_hospital(env: Any) -> None:
    """One id at two hospitals in one packed message: two bills (chained for the person); the
    same (hospital, id) twice: refused."""
    _, _, c = env
    b0 = chain_bill(43, "wang", seed=2) | {"id": "same", "hospital": "HA1"}
    b1 = chain_bill(44, "wang", seed=2) | {"id": "same", "hospital": "HB2"}
    out = stream(c, pb.SettleStreamRequest(mode=pb.STREAM_MODE_TRIAL, packed=pack_bills([b0, b1])))
    assert list(out[0].packed.bill_ids) == ["same", "same"]
    with pytest.raises(grpc.RpcError) as e:
        stream(
            c,
            pb.SettleStreamRequest(
                mode=pb.STREAM_MODE_TRIAL, packed=pack_bills([b0, b1 | {"hospital": "HA1"}])
            ),
        )
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "bills[1].bill_id" in dict(bad_request(e.value))


def test_racing_settles_of_one_bill_through_grpc(db_url: str) -> None:  # noqa: F811
    """Defect 1 end to end: each round, three Settle calls of one (hospital, bill id) from
    two households, released together: one settles, the others are ALREADY_EXISTS naming no
    other settlement; the stored settlements equal a serial replay through the reference."""
    from adapters.grpc.convert import settlement_from_pb
    from adapters.grpc.testing import CHAIN_PERSONS
    from engine.accounts import Opening
    from engine.batch import reference_batch
    from engine.bill import Person, parse_bill_request
    from engine.policy.load import parse_table
    from engine.policy.policyset import PolicySet
    from tests.test_store_concurrency import all_at_once

    li = {"id": "li", "birth_date": "1966-01-01", "household": "h-li", "tags": []}
    persons = [*CHAIN_PERSONS, li]
    with served(db_url, (YUBEI, CHAIN), persons=persons, workers=6) as (_, _, c):
        won_ids = []
        for r in range(10):
            bills = [
                chain_bill(r, p, seed=4) | {"id": f"race-{r}", "hospital": "H990001001"}
                for p in ("wang", "wang-wife", "li")
            ]

            def go(k: int, r: int = r, bills: list = bills) -> Any:
                try:
                    return c.settle(bills[k], f"g{r}-{k}")
                except grpc.RpcError as e:
                    return e

            out = all_at_once([partial(go, k) for k in range(3)])
            won = [o for o in out if not isinstance(o, grpc.RpcError)]
            lost = [o for o in out if isinstance(o, grpc.RpcError)]
            assert len(won) == 1, f"round {r}: {len(won)} settled"
            for refused in lost:
                msg = refused.details()
                assert refused.code() == grpc.StatusCode.ALREADY_EXISTS, msg
                assert won[0].settlement.settlement_id not in msg
                assert won[0].settlement.request_id not in msg
            won_ids.append(won[0].settlement.request_id)
        recs = sorted(
            (x for p in persons for x in c.list(p["id"], 2024)), key=lambda x: x.created_at
        )
        assert sorted(x.request_id for x in recs) == sorted(won_ids)
        people = {p["id"]: Person.model_validate(p) for p in persons}
        policies, opening = PolicySet.of([parse_table(CHAIN, "chain")]), Opening()
        for x in recs:
            req = parse_bill_request(
                chain_bill(int(x.result.bill_id.split("-")[1]), x.result.person_id, seed=4)
                | {"id": x.result.bill_id, "hospital": "H990001001"}
            )
            res = reference_batch([req.with_person(people[req.person_id])], policies, opening)
            assert settlement_from_pb(x.result) == res.settlements[0]
            opening = res.closing
