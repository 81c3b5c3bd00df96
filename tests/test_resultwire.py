"""PreSettle's answer written from the kernel's rows (``adapters.grpc.resultwire``) is byte for
byte the protobuf serialization of the message ``cv.fill_result`` makes from the same figures as
a ``Settlement``: field order, zeros and '' left out, empty nested messages kept, negative
int32/int64 as ten-byte varints, alerts, the explanation; and through the servicer, the same
bytes as the model path's answer for the same bills."""

from __future__ import annotations

import inspect
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.grpc import convert as cv
from adapters.grpc import resultwire
from adapters.grpc.gen.onestop.settlement.v1 import settlement_pb2 as pb
from adapters.grpc.testing import CHAIN, chain_bill
from engine import kernel as K
from engine.bill import Person
from engine.policy.load import parse_table
from engine.result import CAPS, REASONS
from engine.service.settledrows import SettledRows

# the chain table, with a layer paid after discharge and Chinese names on some layers
_TABLE = parse_table(
    CHAIN.replace("    name: Critical illness\n", "    name: Critical illness\n    name_zh: 大病保险\n")
    .replace("    name: Backstop\n", "    name: Backstop\n    settle_at: after_discharge\n")
    .replace("    name: Basic\n", "    name: Basic\n    name_zh: 基本医保\n")
)  # fmt: skip
_PERSON = Person.model_validate(
    {"id": "p1", "birth_date": "1960-01-01", "household": "h1", "tags": []}
)
_INT = st.one_of(
    st.just(0), st.integers(-(2**60), 2**60), st.integers(-300, 300), st.integers(0, 10**9)
)


def _layer_row(n_variants: int) -> st.SearchStrategy[list[int]]:
    def row(t: tuple) -> list[int]:
        reason, variant, cap, alert, ints = t
        o = [0] * K.N_FIELDS
        o[K.F_REASON], o[K.F_VARIANT], o[K.F_CAP], o[K.F_ALERT] = reason, variant, cap, alert
        for f, v in zip((K.F_BASE, K.F_DED, K.F_ELIGIBLE, K.F_PAY, K.F_RELIEF), ints, strict=False):
            o[f] = v
        o[K.F_ACC : K.F_ACC + 4] = ints[5:]
        return o

    return st.tuples(
        st.integers(0, len(REASONS) - 1), st.integers(-1, n_variants - 1),
        st.integers(0, len(CAPS) - 1), st.integers(0, 1), st.lists(_INT, min_size=9, max_size=9),
    ).map(row)  # fmt: skip


def _expected(rows: SettledRows) -> bytes:
    resp = pb.PreSettleResponse()
    cv.fill_result(resp.result, rows.settlement())
    return resp.SerializeToString()


@settings(max_examples=150, deadline=None)
@given(
    bill=st.lists(_INT, min_size=K.N_BILL, max_size=K.N_BILL),
    layers=st.tuples(*(_layer_row(len(la.variants)) for la in _TABLE.layers)),
    year=st.one_of(st.just(2024), st.integers(-(2**31), 2**31 - 1)),
    admission_no=st.one_of(st.integers(0, 3), st.integers(-(2**31), 2**31 - 1)),
    bill_id=st.text(max_size=5),
    hospital=st.sampled_from(["", "H1", "医院"]),
)
def test_rows_bytes_equal_the_messages_serialization(
    bill: list[int],
    layers: tuple[list[int], ...],
    year: int,
    admission_no: int,
    bill_id: str,
    hospital: str,
) -> None:
    bill[K.B_ADMNO] = admission_no  # an int32 field
    rows = SettledRows(
        bill_id, hospital, _PERSON, _TABLE, year, "2024-05-06", np.array(bill, dtype=np.int64),
        np.array(layers, dtype=np.int64),
    )  # fmt: skip
    assert resultwire.pre_settle_response(rows) == _expected(rows)


def test_varint_is_protobufs() -> None:
    for v in (1, 127, 128, 300, 2**31 - 1, 2**63 - 1, -1, -2, -(2**31), -(2**63)):
        m = pb.Buckets(total=v)
        assert m.SerializeToString() == b"\x08" + resultwire.varint(v), v


def _chain_app(tmp_path: Path) -> Any:
    """The service on SQLite with the chain table and four persons (two households, two poor)."""
    from adapters.bootstrap import build

    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "chain.yaml").write_text(CHAIN)
    app = build(f"sqlite:///{tmp_path / 'onestop.db'}", tmp_path / "policies", None)
    try:
        app.service.import_registry([Person.model_validate(
            {"id": f"p{i}", "birth_date": f"1960-01-1{i % 9}", "household": f"h{i // 2}",
             "tags": [{"tag": "poor"}] if i % 2 else []}) for i in range(4)])  # fmt: skip
    except BaseException:
        app.close()
        raise
    return app


def test_servicer_answers_the_model_paths_bytes(tmp_path: Path) -> None:
    from adapters.auth.principals import LOCAL
    from adapters.grpc import auth, columns, server
    from adapters.grpc.errors import Undecodable

    app = _chain_app(tmp_path)
    try:
        servicer = server.SettlementServicer(app.service, ThreadPoolExecutor(1))
        body = inspect.unwrap(server.SettlementServicer.PreSettle)
        token = auth._current.set(LOCAL)
        try:
            for k in range(12):
                b = chain_bill(k, f"p{k % 4}", n_items=1 + 7 * k, seed=k)
                req = pb.PreSettleRequest(bill=cv.bill_to_pb(b))
                got = body(servicer, req)
                assert type(got) is bytes  # the rows' path took it
                want = pb.PreSettleResponse()
                cols = columns.bill_columns(req.bill)
                cv.fill_result(want.result, app.service.pre_settle(cols.request()))
                assert got == want.SerializeToString(), k
                # the request's bytes as received (server.RAW_BYTES), read without upb
                assert body(servicer, req.SerializeToString()) == got, k
            with pytest.raises(Undecodable):
                body(servicer, b"\x0a\x05\x3a")  # truncated: upb refuses it too
        finally:
            auth._current.reset(token)
    finally:
        app.close()


def test_settle_answers_the_model_paths_bytes(tmp_path: Path) -> None:
    """Settle's answer written from the kernel's rows is byte for byte ``record_pb`` of the
    record as stored and read back (and of its replay, which the model path answers), over
    varied bills; a refused request is refused as before (nothing settled, the same error)."""
    from adapters.auth.principals import LOCAL
    from adapters.grpc import auth, server
    from engine.errors import BillSettled, InputError

    app = _chain_app(tmp_path)
    try:
        servicer = server.SettlementServicer(app.service, ThreadPoolExecutor(1))
        body = inspect.unwrap(server.SettlementServicer.Settle)
        token = auth._current.set(LOCAL)
        try:
            for k in range(16):  # the same persons again: accounts carried, caps and alerts
                b = chain_bill(k, f"p{k % 4}", n_items=1 + 11 * k, seed=k)
                req = pb.SettleRequest(request_id=f"r{k}", bill=cv.bill_to_pb(b))
                data = req.SerializeToString()
                got = body(servicer, data if k % 2 else req)  # as bytes (RAW_BYTES) and parsed
                assert type(got) is bytes, k  # the rows' path took it
                rec = app.service.get(request_id=f"r{k}")
                want = pb.SettleResponse(settlement=cv.record_pb(rec))
                assert got == want.SerializeToString(), k
                again = body(servicer, data)  # the replay: the model path, from the store
                assert type(again) is not bytes, k
                assert again.replay and again.settlement.SerializeToString() == (
                    pb.SettleResponse.FromString(got).settlement.SerializeToString()
                ), k
                alloc = body(servicer, pb.SettleRequest(request_id=f"r{k}", bill=req.bill,
                                                        allocate=True))  # fmt: skip
                assert alloc.settlement.result.items, k  # asked for items: the model path
            n = len(app.service.list("p0"))
            refused = [
                (pb.SettleRequest(request_id="x1", bill=cv.bill_to_pb(chain_bill(99, "nobody"))),
                 InputError, "person_id: 'nobody'"),
                (pb.SettleRequest(request_id="x2", bill=cv.bill_to_pb(chain_bill(0, "p0"))),
                 BillSettled, None),  # bill 0 is settled
                (pb.SettleRequest(request_id="", bill=cv.bill_to_pb(chain_bill(98, "p0"))),
                 InputError, "request_id"),
            ]  # fmt: skip
            for r, err, says in refused:
                with pytest.raises(err, match=says):
                    body(servicer, r.SerializeToString())
            assert len(app.service.list("p0")) == n
        finally:
            auth._current.reset(token)
    finally:
        app.close()
