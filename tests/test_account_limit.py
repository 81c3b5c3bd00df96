"""The account limit (README, Limits): no year-to-date account field above MAX_ACCOUNT.

Issue 7, defect 4: 103 maximum-size bills for one person took the critical illness tiers past
int64 (R(x) multiplies x by a ratio in bp); the kernel wrapped and a settlement was stored
with critical illness pay 0 and a wrong window pay, with no error. Now the bill that would take
an account field above 10^15 fen is refused with an InputError naming the account and the
limit, before anything is written, in the service (settle, pre_settle), the stream and the
batch (a rejected row, like any other bad row).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest

from adapters.grpc.client import pack_bills
from adapters.grpc.convert import bill_to_pb
from adapters.grpc.errors import bad_request
from adapters.grpc.gen.onestop.settlement.v1 import settlement_pb2 as pb
from adapters.grpc.testing import served
from adapters.store.memory import MemoryStore
from adapters.store.sql import SqlStore
from engine import columnar as C
from engine.accounts import LayerAccount, Opening, YearAccounts
from engine.batch import reference_batch, settle_batch
from engine.bill import Person, parse_bill, parse_bill_request
from engine.errors import InputError
from engine.money import MAX_ACCOUNT, MAX_AMOUNT, MAX_BILL_TOTAL
from engine.policy.load import parse_table
from engine.policy.policyset import PolicySet
from engine.service.usecases import SettlementService
from engine.settle import settle_one

#: A critical illness layer as in the issue: tiers over the year, no cap, 90% at the top.
POLICY = """\
region: {code: "990002", name: "Account limit test county"}
effective_from: 2019-01-01
effective_to: 2019-12-31
hospital_levels: [county]
tags: []
b_selfpay_ratio: 1000
layers:
  - id: basic
    name: Basic medical insurance
    fund_code: "390100"
    kind: reimburse
    variants:
      - segments: [{ratio: 7000}]
        annual_cap: 2000000
  - id: critical
    name: Critical illness insurance
    fund_code: "390200"
    kind: reimburse
    variants:
      - deductible: {basis: year, amount: 1200000}
        segments: [{up_to: 1800000, ratio: 6000}, {up_to: 8800000, ratio: 6500}, {ratio: 9000}]
        tiers_basis: year
"""

PERSON = {"id": "P1", "birth_date": "1960-02-03", "household": "H1"}


def max_bill(i: int) -> dict[str, Any]:
    """A bill of MAX_BILL_TOTAL fen, all category A (10 items of MAX_AMOUNT)."""
    n = MAX_BILL_TOTAL // MAX_AMOUNT
    return {
        "id": f"max-{i:03d}", "region": "990002", "person_id": "P1", "hospital": "H1", "hospital_level": "county",
        "admission_date": "2019-03-01", "discharge_date": "2019-03-02",
        "items": [{"code": f"A{k}", "name": "care", "category": "A", "amount": MAX_AMOUNT}
                  for k in range(n)],
    }  # fmt: skip


@pytest.fixture(params=["memory", "sqlite"])
def svc(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[SettlementService, Any]]:
    if request.param == "memory":
        store: Any = MemoryStore()
    else:
        store = SqlStore(f"sqlite:///{tmp_path / 'onestop.db'}")
    s = SettlementService(store.uow)
    s.POLICY_RECHECK = 0.0
    s.put_policy(POLICY, "limit.yaml")
    s.import_registry([Person.model_validate(PERSON)])
    yield s, store
    if request.param == "sqlite":
        store.dispose()


def test_103_maximum_bills_settle_exactly_until_the_limit_then_are_refused(
    svc: tuple[SettlementService, Any],
) -> None:
    service, _ = svc
    settled = 0
    for i in range(103):
        req = parse_bill_request(max_bill(i))
        _, before, before_h = service.accounts("P1", 2019)
        bill = req.with_person(service.person("P1"))
        refused: InputError | None
        try:
            ref = settle_one(bill, service.policies(), before, before_h, engine="reference")
        except InputError as err:
            refused = err
        else:
            refused = None
        if refused is None:
            rec, replay = service.settle(f"r-{i}", req)
            assert not replay
            # every settlement before the limit is exactly the reference's
            assert rec.settlement == ref.settlement
            assert service.accounts("P1", 2019)[1] == ref.person_after
            assert rec.settlement.layers[1].pay > 0
            settled += 1
            continue
        # the refusal: named account, value and limit; the same from the kernel
        for settle in (True, False):
            with pytest.raises(InputError) as raised:
                service.settle(f"r-{i}", req) if settle else service.pre_settle(req)
            assert str(raised.value) == str(refused)
            (p,) = raised.value.problems
            assert p.field == "accounts.critical.eligible_cum"
            assert "for person 'P1' in 2019 (Critical illness insurance)" in p.rule
            assert "above the limit 1,000,000,000,000,000 fen (10^15)" in p.rule
        # nothing written: accounts unchanged, no settlement stored
        assert service.accounts("P1", 2019)[1] == before
        assert len(service.list("P1", 2019)) == settled
    # 100 bills of 10^13 fen fit (eligible_cum just under 10^15 after the deductible and the
    # basic layer's pay); the 101st to 103rd would pass the limit
    assert settled == 100
    acc = service.accounts("P1", 2019)[1]
    assert acc.admissions == 100
    assert MAX_ACCOUNT - MAX_BILL_TOTAL < acc.get("critical").eligible_cum <= MAX_ACCOUNT


# --------------------------------------------------------------------------- batch


def test_the_batch_rejects_the_bill_with_its_row_and_settles_the_others() -> None:
    """Columns (the batch files' path): the refused bill is a reject of its bills row naming
    the account and the limit; the bills before and after it are settled as the reference
    settles them without it, and it moves no account."""
    policies = PolicySet.of([parse_table(POLICY)])
    person = {**PERSON, "tags": []}
    opening = Opening(person={("P1", 2019): YearAccounts(
        {"critical": LayerAccount(1200000, MAX_ACCOUNT - 3 * MAX_AMOUNT, 0, 0)}, 4)})  # fmt: skip

    def bill(bid: str, day: int, n: int) -> Any:
        return parse_bill({
            "id": bid, "hospital": "H1", "person": person, "hospital_level": "county",
            "admission_date": f"2019-04-{day:02d}", "discharge_date": f"2019-04-{day:02d}",
            "items": [{"category": "A", "amount": MAX_AMOUNT}] * n,
        })  # fmt: skip

    bills = [bill("b1", 1, 1), bill("b2", 2, 5), bill("b3", 3, 1)]
    bc, ic, pc, oc = C.columns_from_bills(bills, opening)
    bc.row = np.array([10, 11, 12])
    prep = C.settle_columns(bc, ic, pc, policies, oc)
    (r,) = prep.rejects
    assert (r.file, r.row, r.field, r.bill_id) == ("bills", 11, "accounts.critical.eligible_cum",
                                                   "b2")  # fmt: skip
    assert r.value > MAX_ACCOUNT
    assert r.rule.startswith(f"would reach {r.value:,} fen for person 'P1' in 2019 (Critical")
    assert "above the limit 1,000,000,000,000,000 fen (10^15)" in r.rule
    cols = C.bill_columns(prep)
    assert list(cols["bill_id"]) == ["b1", "b3"]
    assert list(cols["row"]) == [10, 12]
    ref = reference_batch([bills[0], bills[2]], policies, opening)
    assert list(cols["admission_no"]) == [5, 6]
    assert list(cols["pay_critical"]) == [s.layers[1].pay for s in ref.settlements]
    assert list(cols["window_pay"]) == [s.window_pay for s in ref.settlements]
    layers = C.layer_columns(prep)
    assert len(layers["pay"]) == 4
    closing = C.closing_columns(prep)
    crit = np.flatnonzero(C.plain(closing["layer_id"]) == "critical")
    want = ref.closing.person[("P1", 2019)].get("critical").eligible_cum
    assert list(closing["eligible_cum"][crit]) == [want]
    # the Bill-object batch refuses the whole batch, naming the bill
    with pytest.raises(InputError, match=r"^bills\[1\]\.accounts\.critical\.eligible_cum: "):
        settle_batch(bills, policies, opening)


# --------------------------------------------------------------------------- gRPC


def test_grpc_refuses_past_the_limit_in_every_form_and_writes_nothing() -> None:
    """Stored accounts 5 * 10^12 fen under the limit, a maximum bill: PreSettle, Settle and
    SettleStream (TRIAL and SETTLE, bills and packed) answer INVALID_ARGUMENT naming the
    account; the stored accounts and settlements do not change."""
    with served("memory://", (POLICY,), [PERSON]) as (app, _server, c):
        app.store.person_acc[("P1", 2019)] = YearAccounts(
            {"critical": LayerAccount(1200000, MAX_ACCOUNT - 5 * 10**12, 0, 0)}, 3
        )
        before = c.accounts("P1", 2019).SerializeToString()
        bill = max_bill(0)
        one = [pb.SettleRequest(request_id="s-1", bill=bill_to_pb(bill))]
        calls: dict[str, tuple[Callable[[], Any], str]] = {
            "PreSettle": (lambda: c.pre_settle(bill), "accounts"),
            "Settle": (lambda: c.settle(bill, "s-1"), "accounts"),
        }

        def stream(req: pb.SettleStreamRequest) -> list[pb.SettleStreamResponse]:
            return list(c.settlement.SettleStream(iter([req]), timeout=60))

        for mode in (pb.STREAM_MODE_TRIAL, pb.STREAM_MODE_SETTLE):
            for form, req in (
                ("bills", pb.SettleStreamRequest(mode=mode, bills=pb.BillList(bills=one))),
                ("packed", pb.SettleStreamRequest(mode=mode, packed=pack_bills([bill], ["s-1"]))),
            ):
                calls[f"SettleStream {mode} {form}"] = (partial(stream, req), "bills[0].accounts")
        for name, (call, prefix) in calls.items():
            with pytest.raises(grpc.RpcError) as e:
                call()
            assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, name
            (field, text), *_ = bad_request(e.value)
            assert field == f"{prefix}.critical.eligible_cum", (name, field)
            assert "above the limit 1,000,000,000,000,000 fen (10^15)" in text, (name, text)
        assert c.accounts("P1", 2019).SerializeToString() == before
        assert len(c.list("P1")) == 0
