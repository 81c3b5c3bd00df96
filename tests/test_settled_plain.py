"""A Settle made now by the columns path writes its stored result, its columns, claims, used
budgets and ledger event from the kernel's rows (``SettledRows.plain``), not from the
``Settlement`` model: for varied rows (every reason and cap, alerts with relief, zero-pay and
after-discharge layers, negative and large figures) ``plain()`` is ``settlement().to_dict()``
key for key in the same order (the stored JSON the same bytes, the ledger's content digest the
same), and what each write reads of it is what it read of the model. ``RowsRecord`` builds the
model only when read, and is equal to the plain record of the same fields."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.store.sql.rows import compact_bytes
from engine import kernel as K
from engine.ledger import sorted_json
from engine.result import Settlement
from engine.service import claimmoves, ledger
from engine.service.claimmoves import claim_of
from engine.service.ports import SettlementRecord
from engine.service.rowsrecord import RowsRecord
from engine.service.settledrows import SettledRows
from tests.test_resultwire import _INT, _PERSON, _TABLE, _layer_row

_AT = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)


def _values() -> dict[str, Any]:  # the record fields: values of several types
    return dict(
        settlement_id="s-1", request_id="r-1", bill_digest="d" * 64, bill={"id": "b"},
        moves=(), created_at=_AT, status="settled", reversed_at=None, reversal_request_id=None,
        registry_version=3, policy_version=1,
    )  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(
    bill=st.lists(_INT, min_size=K.N_BILL, max_size=K.N_BILL),
    layers=st.tuples(*(_layer_row(len(la.variants)) for la in _TABLE.layers)),
    year=st.one_of(st.just(2024), st.integers(-(2**31), 2**31 - 1)),
    bill_id=st.text(max_size=5),
    hospital=st.sampled_from(["", "H1", "医院"]),
    discharge=st.dates().map(lambda d: d.isoformat()),
)
def test_plain_is_the_models_dict_and_every_write_reads_the_same(
    bill: list[int],
    layers: tuple[list[int], ...],
    year: int,
    bill_id: str,
    hospital: str,
    discharge: str,
) -> None:
    rows = SettledRows(
        bill_id, hospital, _PERSON, _TABLE, year, discharge, np.array(bill, dtype=np.int64),
        np.array(layers, dtype=np.int64),
    )  # fmt: skip
    s = rows.settlement()
    want = s.to_dict()
    got = rows.plain()
    assert got == want
    assert json.dumps(got, ensure_ascii=False) == json.dumps(want, ensure_ascii=False)  # order
    assert compact_bytes(got) == compact_bytes(want)  # the stored result
    assert sorted_json(got) == sorted_json(want)  # the ledger's content digest
    assert Settlement.from_dict(json.loads(compact_bytes(got))) == s  # read back as before

    rec = RowsRecord.of(rows, **_values())
    model = SettlementRecord(settlement=s, **_values())
    # the ledger event and the claims from the rows, as from the model
    assert ledger.settle_event(rec, "p", got) == ledger.settle_event(model, "p")
    assert "settlement" not in vars(rec)  # nothing above read the model
    made = claimmoves.new_claims(rec, _AT, "p", got)
    assert made == claimmoves.new_claims(model, _AT, "p")
    assert made == [
        claim_of(model, r.layer_id, _AT, "p")
        for r in s.layers
        if r.alert or (r.settle_at == "after_discharge" and r.pay > 0)
    ]
    # a hard fund's use: pay + relief of its layers
    for code in {la.fund_code for la in _TABLE.layers}:
        assert sum(r["pay"] + r["relief"] for r in got["layers"] if r["fund_code"] == code) == sum(
            r.pay + r.relief for r in s.layers if r.fund_code == code
        )
    assert "settlement" not in vars(rec)
    # the record: equal to the plain record (both ways), its model built when read
    assert rec == model and model == rec
    assert rec.settlement == s
    # a reversal's copy (the memory store's mark_reversed) is the model record's copy
    fresh = RowsRecord.of(rows, **_values())  # its model not built yet
    assert replace(fresh, status="reversed") == replace(model, status="reversed")


def test_a_rows_record_needs_every_field_but_the_settlement() -> None:
    rows = SettledRows("b", "H1", _PERSON, _TABLE, 2024, "2024-05-06",
                       np.zeros(K.N_BILL, dtype=np.int64),
                       np.zeros((len(_TABLE.layers), K.N_FIELDS), dtype=np.int64))  # fmt: skip
    v = _values()
    del v["moves"]
    try:
        RowsRecord.of(rows, **v)
    except TypeError as exc:
        assert "every field but settlement" in str(exc)
    else:
        raise AssertionError("a record without its moves was made")
