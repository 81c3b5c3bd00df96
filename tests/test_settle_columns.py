"""Settle of a request given as columns (``engine.service.settlecols``: no per-item model)
against the model path: the same calls on two services, one sent as columns and one as
models, give the same records (settlement, account moves, stored request, digest), accounts
and ledger events; a grouped call as columns is settled as one alone; a bill that does not
fit, or whose person is unknown, gets exactly the model path's error; a retry as columns of a
request settled as a model (and the other way round) is its replay."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.grpc import convert as cv
from adapters.grpc.columns import bill_columns
from adapters.grpc.testing import CHAIN, CHAIN_PERSONS, JIANG, YUBEI, YUBEI_BILL, chain_bill
from adapters.store.memory import MemoryStore
from engine.bill import Person, parse_bill_request
from engine.errors import OnestopError
from engine.service import settlecols
from engine.service.groupcommit import SettleCall
from engine.service.rowsrecord import RowsRecord
from engine.service.settlecols import ColumnsRequest
from engine.service.usecases import SettlementService
from tests.test_store_sql import Clock, ids

NEWBORN = {"id": "baby", "birth_date": "2024-05-01", "household": "h-wang", "tags": []}


def service() -> tuple[SettlementService, MemoryStore]:
    store = MemoryStore()
    s = SettlementService(store.uow, clock=Clock(), new_id=ids())
    s.put_policy(CHAIN, "chain.yaml")
    s.put_policy(YUBEI, "yubei.yaml")
    s.import_registry([Person.model_validate(p) for p in (*CHAIN_PERSONS, JIANG, NEWBORN)])
    return s, store


def cols(bill: dict[str, Any]) -> Any:
    return bill_columns(cv.bill_to_pb(bill))


# one person several times (accounts carried from bill to bill), the household mate, bills of
# 1 to 100 items, another region's table
CALLS = [(f"r{i}", chain_bill(i, p, n_items=n, seed=3)) for i, (p, n) in enumerate(
    [("wang", 6), ("wang-wife", 40), ("wang", 1), ("wang", 100), ("wang-wife", 7),
     ("wang", 30), ("wang", 12)])] + [("r-yubei", YUBEI_BILL)]  # fmt: skip


def state(s: SettlementService, store: MemoryStore) -> Any:
    return (
        [s.list(p["id"]) for p in (*CHAIN_PERSONS, JIANG)],
        [s.accounts(p["id"], y) for p in (*CHAIN_PERSONS, JIANG) for y in (2023, 2024)],
        [(e.method, e.subject, e.content) for e in store.events.values()],
    )


def test_columns_settle_as_the_model_does() -> None:
    (a, sa), (b, sb) = service(), service()
    for rid, bill in CALLS:
        assert settlecols.request_of(cols(bill)).__class__ is ColumnsRequest  # the fast path
        got = a.settle(rid, cols(bill))
        want = b.settle(rid, parse_bill_request(bill))
        assert got == want, rid
        assert isinstance(got[0], RowsRecord), rid  # written from the kernel's rows
        assert got[0].bill == parse_bill_request(bill).model_dump(mode="json")
    assert state(a, sa) == state(b, sb)
    assert any(e.method == "FileClaim" for e in sa.events.values())  # claims written alike too


def test_a_group_of_columns_settles_as_the_model_does() -> None:
    (a, sa), (b, sb) = service(), service()
    calls = [*CALLS, CALLS[1]]  # a retry in the group: its replay

    def call(rid: str, req: Any) -> SettleCall:
        return SettleCall(rid, req, "local", settlecols.digest_of(req))

    got = a.settle_group([call(r, settlecols.request_of(cols(x))) for r, x in calls])
    want = b.settle_group([call(r, parse_bill_request(x)) for r, x in calls])
    assert got == want
    last, first = got[-1], got[0]
    assert isinstance(last, tuple) and isinstance(first, tuple)  # answers, not errors
    assert last[1] is True and not first[1]
    assert state(a, sa) == state(b, sb)


@pytest.mark.parametrize(
    "bill",
    [
        {**chain_bill(1), "person_id": "nobody"},  # not in the registry
        {**chain_bill(1), "person_id": "baby"},  # admitted before the birth
        {**chain_bill(1), "hospital_level": "moon"},  # no level of the table
        {**chain_bill(1), "discharge_date": "2031-01-02", "admission_date": "2031-01-01"},
        {**chain_bill(1), "items": [{"category": "Z", "amount": 1}]},  # a bad item
    ],
    ids=["unknown-person", "before-birth", "level", "no-table", "bad-item"],
)
def test_a_bill_that_does_not_fit_gets_the_model_paths_error(bill: dict[str, Any]) -> None:
    (a, sa), (b, _) = service(), service()
    with pytest.raises(OnestopError) as fast:
        a.settle("r1", cols(bill))
    with pytest.raises(OnestopError) as model:
        b.settle("r1", parse_bill_request(bill))
    assert type(fast.value) is type(model.value)
    assert str(fast.value) == str(model.value)
    assert sa.settlements == {}
    assert not any(e.method == "Settle" for e in sa.events.values())


def test_a_retry_in_the_other_form_is_a_replay() -> None:
    s, _ = service()
    first, again = s.settle("r1", parse_bill_request(chain_bill(5)))
    assert not again
    assert s.settle("r1", cols(chain_bill(5))) == (first, True)
    second, again = s.settle("r2", cols(chain_bill(6)))
    assert not again
    assert s.settle("r2", parse_bill_request(chain_bill(6))) == (second, True)
