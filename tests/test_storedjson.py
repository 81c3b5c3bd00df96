"""``engine.service.storedjson``: a Settle's stored request written from its columns is the
same bytes as the compact JSON of ``Checked.stored()`` (PostgreSQL's ``compact_bytes``), or
None where a string needs escaping (the caller then dumps the dicts as before)."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest

from adapters.grpc import convert as cv
from adapters.grpc.columns import bill_columns
from adapters.grpc.testing import YUBEI_BILL, chain_bill
from adapters.store.sql.rows import compact_bytes
from engine.money import MAX_AMOUNT, MAX_QTY_E4, MAX_UNIT_PRICE
from engine.service import billcols, settlecols, storedjson
from tests.pg import pg_url  # noqa: F401  (a fixture)


def checked(bill: dict[str, Any]) -> billcols.Checked:
    ch = billcols.checked(bill_columns(cv.bill_to_pb(bill)))
    assert ch is not None
    return ch


def _bills() -> list[dict[str, Any]]:
    out = [chain_bill(i, "wang", n_items=n) for i, n in enumerate((1, 6, 100))] + [YUBEI_BILL]
    b = chain_bill(7, "wang", n_items=5)  # names in Chinese, emoji; no region
    for k, it in enumerate(b["items"]):
        it["name"] = ["阿莫西林胶囊", "CT 检查 😀", "a/b <c> & 'd'", "x" * 200, "é"][k]
    b.pop("region", None)
    out.append(b)
    b = chain_bill(8, "wang", n_items=3)  # the limits; caps and ratios given and not
    b["items"][0].update(qty_e4=MAX_QTY_E4, unit_price=MAX_UNIT_PRICE, amount=MAX_AMOUNT)
    b["items"][1].update(category="B", unit_price_cap=0, selfpay_ratio=10000, amount=0)
    b["items"][2].update(category="B", unit_price_cap=123456789, selfpay_ratio=0)
    b["items"][2].pop("qty_e4", None)
    out.append(b)
    return out


@pytest.mark.parametrize("bill", _bills(), ids=lambda b: str(b["id"]))
def test_the_stored_request_is_the_same_bytes(bill: dict[str, Any]) -> None:
    ch = checked(bill)
    got = storedjson.stored_json(ch)
    assert got is not None
    assert got == compact_bytes(ch.stored())
    assert settlecols.stored_json_of(settlecols.ColumnsRequest(ch)) == got


@pytest.mark.parametrize("text", ['say "hi"', "back\\slash"])
def test_a_string_json_escapes_is_left_to_the_dicts(text: str) -> None:
    bill = copy.deepcopy(chain_bill(1, "wang", n_items=4))
    bill["items"][2]["name"] = text
    ch = checked(bill)
    assert storedjson.stored_json(ch) is None
    assert text in compact_bytes(ch.stored()).decode().replace('\\"', '"').replace("\\\\", "\\")


def test_the_items_pass_writes_integers_as_python_does() -> None:
    """``_items`` on its own: every width of integer, a negative one, nulls, an unknown
    category (-1: not written) and a string array with too many or too few strings."""
    import orjson

    vals = np.array([0, 9, 10, 99, 100, 12345, -7, 2**53, 2**62], np.int64)
    n = vals.size
    strings = np.frombuffer(orjson.dumps([f"c{i}" for i in range(n)] * 2), np.uint8)
    cat = np.ones(n, np.int64)
    neg = np.full(n, -1, np.int64)
    out = np.empty(strings.size + n * storedjson._ITEM_MAX, np.uint8)
    got = storedjson._items(strings, cat, vals, vals, vals, neg, vals, out)
    items = orjson.loads(b"[" + out[:got].tobytes() + b"]")
    assert [it["qty_e4"] for it in items] == vals.tolist()
    assert {it["unit_price_cap"] for it in items} == {None}
    assert out[:got].tobytes() == orjson.dumps(items)[1:-1]
    bad = cat.copy()
    bad[3] = 9
    assert storedjson._items(strings, bad, vals, vals, vals, neg, vals, out) == -1
    short = np.frombuffer(orjson.dumps(["a"] * (2 * n - 1)), np.uint8)
    assert storedjson._items(short, cat, vals, vals, vals, neg, vals, out) == -1
    long = np.frombuffer(orjson.dumps(["a"] * (2 * n + 1)), np.uint8)
    assert storedjson._items(long, cat, vals, vals, vals, neg, vals, out) == -1


@pytest.mark.postgres
def test_pg_a_columns_settle_stores_the_same_text(pg_url: str) -> None:  # noqa: F811
    """PostgreSQL: a Settle of columns stores the request written from them (the record's
    ``stored_json``), the same text as the model's compact JSON; its ``bill`` read from it
    when asked equals the dicts, and the record reads back equal."""
    from adapters.grpc.testing import CHAIN, CHAIN_PERSONS
    from adapters.store.sql import SqlStore
    from engine.bill import Person, parse_bill_request
    from engine.service.rowsrecord import RowsRecord
    from engine.service.usecases import SettlementService
    from tests.pg import fresh_database

    store = SqlStore(fresh_database(pg_url))
    try:
        svc = SettlementService(store.uow)
        svc.put_policy(CHAIN, "chain.yaml")
        svc.import_registry([Person.model_validate(p) for p in CHAIN_PERSONS])
        bill = _bills()[-2]  # names in Chinese, an emoji, no region
        bill["person_id"] = "wang"
        rec, replay, rows = svc.settle_rows("sj-1", bill_columns(cv.bill_to_pb(bill)))
        assert not replay and rows is not None
        assert isinstance(rec, RowsRecord) and rec.stored_json is not None
        assert "bill" not in vars(rec)  # not read on the way
        model = parse_bill_request(bill).model_dump(mode="json")
        with store.engine.connect() as c:
            text = c.exec_driver_sql("SELECT bill FROM settlements").scalar_one()
        assert text == compact_bytes(model).decode() == rec.stored_json.decode()
        assert rec.bill == model
        with store.uow() as u:
            assert u.settlements.by_request("sj-1") == rec
    finally:
        store.dispose()


def test_a_copy_of_a_rows_record_has_its_bill_and_no_stored_json() -> None:
    """``dataclasses.replace`` of a record whose ``bill`` comes from ``stored_json`` (the
    memory store's reversal copies records so): the copy holds the dicts, and no bytes a
    store would write instead of them."""
    from dataclasses import replace

    from engine.service.rowsrecord import RowsRecord

    ch = checked(_bills()[1])
    text = storedjson.stored_json(ch)
    assert text is not None
    no_rows: Any = object()  # the model is not read here
    rec = RowsRecord.of(
        no_rows, stored_json=text, settlement_id="s", request_id="r", bill_digest="d",
        moves=(), created_at=None, status="settled", reversed_at=None,
        reversal_request_id=None, registry_version=None, policy_version=None,
    )  # fmt: skip
    assert "bill" not in vars(rec) and rec.bill == ch.stored()
    copy_ = replace(rec, status="reversed", settlement=no_rows)
    assert copy_.bill == ch.stored() and copy_.stored_json is None
