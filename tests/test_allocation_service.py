"""The per-item allocation (domain.md section 11) through the service and gRPC: computed only
when asked, the same on PreSettle, Settle, a replay and GetSettlement."""

from __future__ import annotations

import pytest

from adapters.grpc.gen.onestop.settlement.v1 import settlement_pb2 as pb
from adapters.grpc.testing import YUBEI, YUBEI_BILL, YUBEI_PAYS, served


@pytest.fixture(scope="module")
def client():
    with served("memory://", (YUBEI,)) as (_, _, c):
        yield c


def shares(items: list[pb.ItemAllocation]) -> list[dict[str, int]]:
    return [{x.layer_id: x.amount for x in it.shares} for it in items]


def check(r: pb.SettlementResult) -> None:
    assert len(r.items) == 2
    for it in r.items:
        assert sum(x.amount for x in it.shares) + it.selfpay == it.amount
        assert it.window_pay == it.amount - sum(
            x.amount for x in it.shares if x.settle_at == "window"
        )
    per_layer = {k: sum(s.get(k, 0) for s in shares(list(r.items))) for k in YUBEI_PAYS}
    assert per_layer == YUBEI_PAYS
    # the out-of-catalogue item is not covered by these layers: the patient pays it all
    c1 = r.items[1]
    assert (c1.index, c1.code, c1.amount, c1.selfpay) == (1, "C1", 200000, 200000)
    assert r.items[0].shares[0].fund_code == "390100"
    assert sum(it.selfpay for it in r.items) == r.net_selfpay


def test_items_only_when_asked(client) -> None:
    assert not client.pre_settle(YUBEI_BILL).result.items
    r = client.pre_settle(YUBEI_BILL, allocate=True).result
    check(r)
    first = client.settle(YUBEI_BILL, "alloc-1", allocate=True).settlement
    check(first.result)
    assert shares(list(first.result.items)) == shares(list(r.items))
    replay = client.settle(YUBEI_BILL, "alloc-1", allocate=True)
    assert replay.replay and replay.settlement.result.items == first.result.items
    assert not client.get(request_id="alloc-1").result.items
    got = client.get(request_id="alloc-1", allocate=True)
    assert got.result.items == first.result.items
    client.reverse(request_id="alloc-1")
