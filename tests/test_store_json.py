"""The JSON the SQL store writes (a settlement's stored request and result, on PostgreSQL):
orjson's bytes are exactly the json module's compact UTF-8 (``rows._compact``), for any
JSON-like value of strings (any text but lone surrogates), integers within +-(2^53-1),
booleans, None, lists and objects, and for the stored request and result of real
settlements (Chinese names included)."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from adapters.grpc.testing import CHAIN, CHAIN_PERSONS, chain_bill
from adapters.store.memory import MemoryStore
from adapters.store.sql.rows import _compact, compact_bytes
from engine.bill import Person, parse_bill_request
from engine.service.usecases import SettlementService

TEXT = st.text(st.characters(exclude_categories=["Cs"]))
VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=20,
)


@given(VALUES)
def test_orjson_writes_the_json_modules_bytes(v: Any) -> None:
    assert compact_bytes(v) == _compact(v).encode()


def test_a_settlements_stored_json_is_the_same() -> None:
    s = SettlementService(MemoryStore().uow)
    s.put_policy(CHAIN, "chain.yaml")
    s.import_registry([Person.model_validate(p) for p in CHAIN_PERSONS])
    for i in range(3):
        bill = chain_bill(i, n_items=20)
        bill["items"][0]["name"] = '住院费 "甲类" \\ 乙\t'
        rec, _ = s.settle(f"r{i}", parse_bill_request(bill))
        for v in (rec.bill, rec.settlement.to_dict(), {1: "int key", "k": [1, None]}):
            assert compact_bytes(v) == _compact(v).encode()
