"""The one-bill columnar path (``engine.service.billcols``) and the request digest: a good bill
settles to the same figures as the model path; a bad bill gets exactly the model path's
errors; the digest is one function of the normalized request, and rows digested before it
(the sorted JSON of the stored request) are still recognized on a retry."""

from __future__ import annotations

import copy
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from adapters.grpc import convert as cv
from adapters.grpc.columns import bill_columns
from adapters.grpc.testing import CHAIN, CHAIN_PERSONS, JIANG, YUBEI, YUBEI_BILL, chain_bill
from adapters.store.memory import MemoryStore
from adapters.store.sql import SqlStore
from engine.bill import Person, parse_bill_request
from engine.errors import Conflict, OnestopError
from engine.money import MAX_AMOUNT, MAX_QTY_E4, MAX_UNIT_PRICE
from engine.service import billcols, settlecols
from engine.service.digest import digest, legacy_digest
from engine.service.usecases import SettlementService


@pytest.fixture
def svc() -> SettlementService:
    s = SettlementService(MemoryStore().uow)
    s.put_policy(CHAIN, "chain.yaml")
    s.put_policy(YUBEI, "yubei.yaml")
    s.import_registry([Person.model_validate(p) for p in (*CHAIN_PERSONS, JIANG)])
    return s


def cols(bill: dict[str, Any]) -> billcols.BillColumns:
    return bill_columns(cv.bill_to_pb(bill))


GOOD = [chain_bill(i, p, n_items=n) for i, (p, n) in
        enumerate([("wang", 6), ("wang-wife", 40), ("wang", 1), ("wang", 100)])] + [YUBEI_BILL]  # fmt: skip


@pytest.mark.parametrize("bill", GOOD, ids=[b["id"] for b in GOOD])
def test_a_good_bill_settles_as_the_model_path_does(svc: SettlementService, bill: dict) -> None:
    assert billcols.checked(cols(bill)) is not None  # the fast path is taken
    assert svc.pre_settle(cols(bill)) == svc.pre_settle(parse_bill_request(bill))


def test_the_columns_store_and_digest_as_the_request(svc: SettlementService) -> None:
    for bill in GOOD:
        ch = billcols.checked(cols(bill))
        req = parse_bill_request(bill)
        assert ch is not None
        assert ch.stored() == req.model_dump(mode="json")
        assert ch.digest() == digest(req)
    base = chain_bill(3)
    d0 = digest(parse_bill_request(base))
    changes = [("id", "other"), ("hospital_level", "city"), ("discharge_date", "2024-04-26")]
    for k, v in changes:
        assert digest(parse_bill_request({**base, k: v})) != d0, k
    for field, value in [("amount", 1), ("qty_e4", 10001), ("unit_price_cap", 1), ("name", "x"),
                         ("code", "Y"), ("category", "A")]:  # fmt: skip
        other = copy.deepcopy(base)
        other["items"][2][field] = value
        assert digest(parse_bill_request(other)) != d0, field
    # the same request written differently (NHSA category code, default quantity) is the same
    same = copy.deepcopy(base)
    same["items"][0]["category"] = "01"
    assert digest(parse_bill_request(same)) == d0


def test_the_digest_is_its_definitions_bytes_for_any_strings() -> None:
    """The strings' JSON (written by orjson, falling back to the json module) is the
    definition's, ``json.dumps(ensure_ascii=False, separators=(",", ":"))``, so the digests
    of stored settlements stay what they were: quotes, backslashes, control characters,
    non-ASCII, U+2028 and a lone surrogate (which orjson refuses)."""
    import hashlib
    import json

    odd = ['a"b', "c\\d", "\x00\x01\x1f\x7f\n\t", "医保 é", "\u2028\u2029", "</script>", "\ud800x"]
    ints = tuple(np.arange(i, i + len(odd), dtype=np.int64) for i in range(6))
    head = ["b1", "H1", "", "p1", "county", "2024-01-01", "2024-01-02"]
    with pytest.raises(UnicodeEncodeError):  # as before: a lone surrogate has no UTF-8
        billcols._digest(head, odd, odd[::-1], ints)
    fine = odd[:-1]
    ints = tuple(a[:-1] for a in ints)
    h = hashlib.sha256(b"onestop.bill.v2\n")
    h.update(
        json.dumps([head, fine, fine[::-1]], ensure_ascii=False, separators=(",", ":")).encode()
    )
    h.update(b"\n")
    h.update(np.stack(ints).astype("<i8").tobytes())
    assert billcols._digest(head, fine, fine[::-1], ints) == h.hexdigest()


def _bad(bill: dict, path: str, value: Any) -> dict:
    b = copy.deepcopy(bill)
    where: Any = b
    keys = path.split(".")
    for k in keys[:-1]:
        where = where[int(k)] if k.isdigit() else where[k]
    where[keys[-1]] = value
    return b


B = chain_bill(5)
BAD = {
    "negative amount": _bad(B, "items.2.amount", -1),
    "amount above limit": _bad(B, "items.0.amount", MAX_AMOUNT + 1),
    "negative qty": _bad(B, "items.1.qty_e4", -5),
    "negative cap": _bad(B, "items.1.unit_price_cap", -2),
    # each int column against its own highest value (checked as one matrix)
    "qty above limit": _bad(B, "items.1.qty_e4", MAX_QTY_E4 + 1),
    "cap above limit": _bad(B, "items.1.unit_price_cap", MAX_UNIT_PRICE + 1),
    "unit price above limit": _bad(B, "items.2.unit_price", MAX_UNIT_PRICE + 1),
    "negative unit price": _bad(B, "items.2.unit_price", -1),
    "negative ratio": _bad(B, "items.4.selfpay_ratio", -1),
    "ratio on A": _bad(B, "items.0.selfpay_ratio", 1000),
    "ratio above BP": _bad(B, "items.4.selfpay_ratio", 10001),
    "category": _bad(B, "items.3.category", "X"),
    "code control": _bad(B, "items.3.code", "X\n1"),
    "name NUL": _bad(B, "items.3.name", "a\x00b"),
    "long code": _bad(B, "items.3.code", "c" * 65),
    "dates backwards": _bad(B, "admission_date", "2024-07-01"),
    "loose date": _bad(B, "discharge_date", "2024-6-01"),
    "implausible date": _bad(B, "discharge_date", "2299-06-01"),
    "hospital": _bad(B, "hospital", "H-1"),
    "empty id": _bad(B, "id", ""),
    "unknown person": _bad(B, "person_id", "nobody"),
    "unknown level": _bad(B, "hospital_level", "palace"),
    "no items": _bad(B, "items", []),
    "unknown region": _bad(B, "region", "nowhere"),
    "no table that year": _bad(_bad(B, "admission_date", "2031-06-01"), "discharge_date",
                               "2031-06-02"),
    "before birth": _bad(B, "admission_date", "1950-01-01"),
    "total above limit": _bad(B, "items", [{"category": "A", "amount": MAX_AMOUNT}] * 2000),
}  # fmt: skip


@pytest.mark.parametrize("name", list(BAD))
def test_a_bad_bill_gets_the_model_paths_errors(svc: SettlementService, name: str) -> None:
    bill = BAD[name]
    with pytest.raises(OnestopError) as model:
        svc.pre_settle(cv.bill_request(cv.bill_to_pb(bill)))
    with pytest.raises(OnestopError) as fast:
        svc.pre_settle(cols(bill))
    assert type(fast.value) is type(model.value)
    assert str(fast.value) == str(model.value)
    assert getattr(fast.value, "problems", None) == getattr(model.value, "problems", None)


def test_a_retry_across_the_digest_upgrade_is_a_replay(
    svc: SettlementService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A row settled before the new digest (sorted JSON of the request) is recognized: the same
    request again is a replay, another bill under its id is still a Conflict."""
    req = parse_bill_request(chain_bill(2))
    with monkeypatch.context() as m:
        m.setattr(settlecols, "digest_of", lambda r: legacy_digest(settlecols.stored_of(r)))
        old, again = svc.settle("rid-old", req)
    assert not again and old.bill_digest == legacy_digest(req.model_dump(mode="json"))
    rec, again = svc.settle("rid-old", req)
    assert again and rec.settlement_id == old.settlement_id
    rec, again = svc.settle("rid-old", cols(chain_bill(2)))  # the same request as columns
    assert again and rec.settlement_id == old.settlement_id
    with pytest.raises(Conflict):
        svc.settle("rid-old", cols(chain_bill(3)))
    with pytest.raises(Conflict):
        svc.settle("rid-old", parse_bill_request(chain_bill(3)))
    new, _ = svc.settle("rid-new", parse_bill_request(chain_bill(4)))
    assert new.bill_digest == digest(parse_bill_request(chain_bill(4)))
    assert len(new.bill_digest) == 64 and int(new.bill_digest, 16) >= 0


def test_unset_optional_fields_are_not_zero() -> None:
    """A cap or ratio of 0 given is not the same as none given (proto3 optional)."""
    b = copy.deepcopy(B)
    b["items"][1]["unit_price_cap"] = 0
    c = cols(b)
    assert c.unit_price_cap[1] == 0 and c.unit_price_cap[0] == billcols.NULL
    ch = billcols.checked(c)
    assert ch is not None and ch.price_cap[1] == 0 and np.all(ch.price_cap[[0, 2]] == -1)
    # each optional field: a 0 given reads as 0, a field not given as NULL (the bill reader
    # tests HasField only when the value reads 0)
    for field in ("qty_e4", "unit_price_cap", "selfpay_ratio"):
        b = copy.deepcopy(B)
        for it in b["items"]:
            it.pop(field, None)
        b["items"][2][field] = 0
        b["items"][3][field] = 7
        got = getattr(cols(b), field).tolist()
        assert got[2:4] == [0, 7] and got[:2] == [billcols.NULL] * 2, field


def test_a_day_read_again_is_the_day_read_first(monkeypatch: pytest.MonkeyPatch) -> None:
    """``_day`` keeps the days it read (a bounded memo): a second reading answers as the
    first, a text that is no day is not kept, and the memo is emptied when full."""
    monkeypatch.setattr(billcols, "_DAYS", {})
    monkeypatch.setattr(billcols, "_DAYS_MAX", 3)
    texts = ["2024-02-29", "2023-02-29", "2024-1-01", "１９９９-01-01", "2024-03-01",
             "2024-03-02", "2024-03-03", "1800-01-01"]  # fmt: skip
    first = [billcols._day(t) for t in texts]
    assert first == [billcols._read_day(t) for t in texts]
    assert first[0] == date(2024, 2, 29) and first[1:4] == [None, None, None]
    assert len(billcols._DAYS) <= 3 and "2023-02-29" not in billcols._DAYS
    assert [billcols._day(t) for t in texts] == first


def test_a_one_bill_run_keeps_its_persons_inputs_only_for_the_same_objects(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``run_one`` keeps what it takes from the person, table, accounts and admission day
    (``_fixed``) for the next bill of the very same objects (SQLite's trial reads return them
    while nothing is committed): the figures are the model path's, a settlement in between
    (new account objects) is seen, as is another admission day (the age and tags on it) and
    another person."""
    store = SqlStore(f"sqlite:///{tmp_path / 'onestop.db'}")
    svc = SettlementService(store.uow)
    svc.use_trial_reads(store.trial_uow)
    svc.put_policy(CHAIN, "chain.yaml")
    svc.import_registry([Person.model_validate(p) for p in CHAIN_PERSONS])
    first = [chain_bill(i, "wang", n_items=5, seed=31) for i in range(3)]
    for b in first:
        assert svc.pre_settle(cols(b)) == svc.pre_settle(parse_bill_request(b))
    assert svc.pre_settle(cols(first[1])) == svc.pre_settle(parse_bill_request(first[1]))
    kept = dict(billcols._KEPT.fixed)  # (the model path runs no run_one)
    assert svc.pre_settle(cols(first[1])) == svc.pre_settle(parse_bill_request(first[1]))
    assert all(billcols._KEPT.fixed[k] is v for k, v in kept.items())  # taken as they were
    before = svc.pre_settle(cols(first[1]))
    svc.settle("kept-1", parse_bill_request(first[0]))  # the accounts move
    after = svc.pre_settle(cols(first[1]))
    assert after == svc.pre_settle(parse_bill_request(first[1])) and after != before
    key = ("wang", date(2024, 2, 3))  # first[1]'s entry: built again from the new accounts
    assert billcols._KEPT.fixed[key] is not kept[key]
    for b in (
        first[1],  # (kept again)
        # another day of the same person-year: the tags on it (wang is poor from June 1)
        {**first[1], "admission_date": "2024-06-03", "discharge_date": "2024-06-10"},
        chain_bill(7, "wang-wife", n_items=5, seed=31),  # another person
    ):
        assert svc.pre_settle(cols(b)) == svc.pre_settle(parse_bill_request(b))
    # a kept entry's accounts are read-only: the kernel writes a copy
    assert not any(got[1].flags.writeable for *_, got in billcols._KEPT.fixed.values())
    monkeypatch.setattr(billcols, "FIXED_MAX", 2)  # bounded: emptied when full
    for i in range(3):
        b = chain_bill(20 + i, "wang", n_items=3, seed=31)
        assert svc.pre_settle(cols(b)) == svc.pre_settle(parse_bill_request(b))
    assert len(billcols._KEPT.fixed) <= 2
    store.dispose()
