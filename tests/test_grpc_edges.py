"""Hostile and oversized input through a real server and a real client (issue 7, defects 5-11
and "Limits, stated and enforced"): each is refused with INVALID_ARGUMENT or
RESOURCE_EXHAUSTED naming the field or the limit, fast, with small trailers, writing nothing;
the log of an internal error names an incident and never a value. And ListSettlements pages."""

from __future__ import annotations

import base64
import logging
import time
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from adapters.grpc.client import Client
from adapters.grpc.errors import bad_request
from adapters.grpc.gen.onestop.settlement.v1 import settlement_pb2 as pb
from adapters.grpc.limits import DEFAULT, Limits
from adapters.grpc.testing import CHAIN, YUBEI, YUBEI_BILL, chain_bill, served
from engine.bill import MAX_ITEMS_PER_BILL
from engine.policy.load import MAX_TABLE_BYTES, MAX_TABLE_DEPTH
from engine.service.inputs import MAX_PERSONS_PER_IMPORT

TRAILER_BUDGET = 8 * 1024  # what C-core clients accept in all trailers together


# the module's tests on one xdist worker (--dist loadgroup): its module-scoped fixtures
# are made once, not once on each worker that runs one of its tests
pytestmark = pytest.mark.xdist_group("grpc_edges")


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory):
    url = f"sqlite:///{tmp_path_factory.mktemp('grpc-edges') / 'onestop.db'}"
    with served(url, (YUBEI, CHAIN)) as (app, server, client):
        client.settle(YUBEI_BILL, "seed-1")
        client.settle(chain_bill(1), "seed-2")
        yield app, server, client


def snapshot(c: Client) -> Any:
    out = []
    for person, year in (("jiang", 2023), ("wang", 2024)):
        out.append(c.accounts(person, year).SerializeToString())
        out.append(tuple(r.SerializeToString() for r in c.list(person)))
    versions = c.admin.ListPolicies(pb.ListPoliciesRequest()).versions
    out.append(tuple(v.SerializeToString() for v in versions))
    return out


def trailer_bytes(err: grpc.RpcError) -> int:
    md = err.trailing_metadata() or ()
    size = sum(len(k) + len(v) for k, v in md)
    return size + len((err.details() or "").encode())


def error_info(err: grpc.RpcError) -> error_details_pb2.ErrorInfo:
    status = rpc_status.from_call(err)
    assert status is not None
    for d in status.details:
        if d.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            d.Unpack(info)
            return info
    raise AssertionError("no ErrorInfo")


def raw_unary(c: Client, path: str, data: bytes, timeout: float = 30) -> bytes:
    call = c.channel.unary_unary(path, request_serializer=None, response_deserializer=None)
    return call(data, timeout=timeout)


UNARY = [
    (svc.full_name, m.name, m.input_type.full_name)
    for svc in pb.DESCRIPTOR.services_by_name.values()
    for m in svc.methods
    if not m.client_streaming
]


# --------------------------------------------------------------------------- 5: undecodable


@pytest.mark.parametrize(("service", "method", "type_name"), UNARY, ids=[m for _, m, _ in UNARY])
def test_undecodable_bytes_to_every_unary_method(env, service: str, method: str, type_name: str):
    _, _, c = env
    before = snapshot(c)
    with pytest.raises(grpc.RpcError) as e:
        raw_unary(c, f"/{service}/{method}", b"\xff")
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    msg = e.value.details()
    assert f"not a valid {type_name} message" in msg
    assert "proto version" in msg
    assert "class" not in msg and "Error" not in msg
    assert error_info(e.value).reason == "UNDECODABLE"
    assert snapshot(c) == before
    assert c.status() == "SERVING"


def test_undecodable_stream_message(env) -> None:
    _, _, c = env
    call = c.channel.stream_stream(
        "/onestop.settlement.v1.SettlementService/SettleStream",
        request_serializer=None,
        response_deserializer=None,
    )
    with pytest.raises(grpc.RpcError) as e:
        list(call(iter([b"\xff"]), timeout=30))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "not a valid onestop.settlement.v1.SettleStreamRequest message" in e.value.details()


def test_undecodable_after_a_good_stream_message(env) -> None:
    _, _, c = env
    good = pb.SettleStreamRequest(
        mode=pb.STREAM_MODE_TRIAL,
        bills=pb.BillList(bills=[pb.SettleRequest(bill=as_pb(YUBEI_BILL))]),
    ).SerializeToString()
    call = c.channel.stream_stream(
        "/onestop.settlement.v1.SettlementService/SettleStream",
        request_serializer=None,
        response_deserializer=None,
    )
    got = []
    with pytest.raises(grpc.RpcError) as e:
        for r in call(iter([good, b"\xff\xff"]), timeout=30):
            got.append(r)
    assert len(got) == 1
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def as_pb(d: dict[str, Any]) -> pb.Bill:
    from adapters.grpc.convert import bill_to_pb

    return bill_to_pb(d)


# --------------------------------------------------------------------------- 6: packed indexes


def packed_one(levels: list[str], level_index: list[int], **kw: Any) -> pb.PackedBills:
    return pb.PackedBills(
        bill_ids=["p-1"],
        hospitals=["H500112001"],
        person_ids=["jiang"],
        level_index=level_index,
        levels=levels,
        admission_dates=["2023-05-01"],
        discharge_dates=["2023-05-20"],
        regions=["500112"],
        item_offsets=[0, 1],
        category=[1],
        amount=[10000],
        **kw,
    )


@pytest.mark.parametrize("mode", [pb.STREAM_MODE_TRIAL, pb.STREAM_MODE_SETTLE])
@pytest.mark.parametrize(("levels", "index"), [([], [0]), (["level2"], [1]), (["level2"], [-1])])
def test_packed_level_index_out_of_levels(
    env, mode: pb.StreamMode, levels: list[str], index: list[int]
):
    _, _, c = env
    before = snapshot(c)
    msg = pb.SettleStreamRequest(
        mode=mode, packed=packed_one(levels, index, request_ids=["r-packed-1"])
    )
    with pytest.raises(grpc.RpcError) as e:
        list(c.settlement.SettleStream(iter([msg]), timeout=30))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in bad_request(e.value)] == ["packed.level_index[0]"]
    assert snapshot(c) == before


@pytest.mark.parametrize("mode", [pb.STREAM_MODE_TRIAL, pb.STREAM_MODE_SETTLE])
def test_packed_lengths_that_do_not_match(env, mode: pb.StreamMode) -> None:
    _, _, c = env
    bad = packed_one(["level2"], [0], request_ids=["a", "b"])
    bad.item_offsets[:] = [0, 5]  # points past the item columns
    bad.regions.append("500112")  # two regions for one bill
    with pytest.raises(grpc.RpcError) as e:
        list(c.settlement.SettleStream(iter([pb.SettleStreamRequest(mode=mode, packed=bad)])))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    fields = {f for f, _ in bad_request(e.value)}
    assert {"packed.regions", "packed.category", "packed.amount"} <= fields


# --------------------------------------------------------------------------- 7, 8, 9: tables


def alias_bomb(levels: int = 9) -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    prev = "a"
    for k in "bcdefghijklmnop"[: levels - 1]:
        lines.append(f"{k}: &{k} [{','.join(['*' + prev] * 9)}]")
        prev = k
    return "\n".join(lines) + "\n"


def refused_table(c: Client, text: str, name: str = "t.yaml") -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as e:
        c.put_policy(text, name)
    return e.value


def test_deeply_nested_yaml_is_refused(env) -> None:
    _, _, c = env
    before = snapshot(c)
    err = refused_table(c, "x: " + "[" * 500 + "]" * 500, "deep.yaml")
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    (_, desc), *_ = bad_request(err)
    assert "deep.yaml:1" in desc and f"MAX_TABLE_DEPTH = {MAX_TABLE_DEPTH}" in desc
    assert snapshot(c) == before


def test_alias_bomb_is_refused_fast(env) -> None:
    _, _, c = env
    text = alias_bomb()
    assert len(text) < 700
    t0 = time.perf_counter()
    err = refused_table(c, text, "bomb.yaml")
    assert time.perf_counter() - t0 < 0.5
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    (_, desc), *_ = bad_request(err)
    assert "bomb.yaml:1" in desc and "anchor or alias" in desc


def test_alias_in_a_real_table_is_refused(env) -> None:
    _, _, c = env
    text = YUBEI.replace('"500112"', '"500198"').replace(
        "segments: [{ratio: 7000}]\n  - id: major", "segments: &s [{ratio: 7000}]\n  - id: major"
    )
    assert "&s" in text
    err = refused_table(c, text, "anchor.yaml")
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert any("anchor.yaml:14" in d for _, d in bad_request(err)), bad_request(err)


def test_table_over_the_size_limit(env) -> None:
    _, _, c = env
    text = YUBEI + "# " + "x" * MAX_TABLE_BYTES + "\n"
    err = refused_table(c, text, "big.yaml")
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert any(f"MAX_TABLE_BYTES = {MAX_TABLE_BYTES}" in d for _, d in bad_request(err))


@pytest.mark.parametrize(
    ("text", "name", "field"),
    [
        (YUBEI.replace('"500112"', '"500197"'), "nul\x00name.yaml", "source_name"),
        (YUBEI.replace('"500112"', '"500197"'), "x" * 201, "source_name"),
        (YUBEI.replace("Yubei district", "Yubei\x00district"), "nul-text.yaml", "(table)"),
    ],
    ids=["nul-in-source-name", "long-source-name", "nul-in-text"],
)
def test_nul_and_oversized_policy_strings(env, text: str, name: str, field: str) -> None:
    _, _, c = env
    before = snapshot(c)
    err = refused_table(c, text, name)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in bad_request(err)] == [field]
    assert snapshot(c) == before


# --------------------------------------------------------------------------- 10: small errors


def test_a_6000_character_item_name_gives_small_trailers(env) -> None:
    _, _, c = env
    bill = dict(YUBEI_BILL, id="long-name")
    bill["items"] = [dict(YUBEI_BILL["items"][0], name="名" * 6000)]
    with pytest.raises(grpc.RpcError) as e:
        c.pre_settle(bill)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert trailer_bytes(e.value) < TRAILER_BUDGET
    ((field, desc),) = bad_request(e.value)
    assert field == "items[0].name"
    assert "(6000 characters)" in desc


def test_ten_thousand_bad_persons_give_small_trailers(env) -> None:
    _, _, c = env
    persons = [
        {"id": f"bad-{i}", "birth_date": "19x0-01-01", "household": "h"} for i in range(10_000)
    ]
    before = snapshot(c)
    with pytest.raises(grpc.RpcError) as e:
        c.import_registry(persons)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert trailer_bytes(e.value) < TRAILER_BUDGET
    v = bad_request(e.value)
    assert v[0][0] == "persons[0].birth_date"
    assert v[-1] == ("(more)", f"and {10_000 - (len(v) - 1)} more problems")
    assert "more problems" in e.value.details()
    assert snapshot(c) == before


def test_long_fields_and_reasons_still_fit(env) -> None:
    _, _, c = env
    items = [dict(YUBEI_BILL["items"][0], code="c" * 3000, name="n" * 3000)] * 40
    bill = dict(YUBEI_BILL, id="x" * 3000, hospital_level="y" * 3000, items=items)
    with pytest.raises(grpc.RpcError) as e:
        c.pre_settle(bill)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert trailer_bytes(e.value) < TRAILER_BUDGET


def test_region_lists_are_short(tmp_path) -> None:
    tables = [YUBEI.replace('"500112"', f'"5{i:05d}"') for i in range(14)]
    with served("memory://", tables) as (_, _, c):
        with pytest.raises(grpc.RpcError) as e:
            c.pre_settle(dict(YUBEI_BILL, region=""))
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        ((field, desc),) = bad_request(e.value)
        assert field == "region"
        assert "and 4 more" in desc and desc.count(", ") <= 10


# --------------------------------------------------------------------------- limits


def test_a_full_stream_message_is_answered_within_the_response_limit(env) -> None:
    _, _, c = env
    bills = [
        pb.SettleRequest(bill=as_pb(chain_bill(i, n_items=1)))
        for i in range(DEFAULT.max_bills_per_message)
    ]
    msg = pb.SettleStreamRequest(mode=pb.STREAM_MODE_TRIAL, bills=pb.BillList(bills=bills))
    assert msg.ByteSize() < DEFAULT.max_message_bytes
    (r,) = list(c.settlement.SettleStream(iter([msg]), timeout=120))
    assert r.n_bills == DEFAULT.max_bills_per_message
    assert r.ByteSize() > DEFAULT.max_message_bytes  # hence the larger response limit


def test_limits_have_defaults_and_reach_grpc() -> None:
    opts = dict(DEFAULT.options())
    assert opts["grpc.max_receive_message_length"] == 16 * 1024 * 1024
    assert opts["grpc.max_send_message_length"] == 64 * 1024 * 1024
    assert opts["grpc.max_concurrent_streams"] == 64
    assert (DEFAULT.max_bills_per_message, DEFAULT.max_items_per_message) == (10_000, 1_000_000)


def test_message_over_the_size_limit(env) -> None:
    _, _, c = env
    big = pb.PreSettleRequest(bill=pb.Bill(id="big", items=[pb.Item(name="n" * 200)] * 90_000))
    data = big.SerializeToString()
    assert len(data) > DEFAULT.max_message_bytes
    ch = grpc.insecure_channel(
        f"127.0.0.1:{env[1].port}", options=[("grpc.max_send_message_length", 64 << 20)]
    )
    with ch, pytest.raises(grpc.RpcError) as e:
        ch.unary_unary("/onestop.settlement.v1.SettlementService/PreSettle")(data, timeout=30)
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert c.status() == "SERVING"


def assert_limit(err: grpc.RpcError, name: str, maximum: int) -> None:
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, err.details()
    info = error_info(err)
    assert (info.reason, info.metadata["limit"], info.metadata["maximum"]) == (
        "LIMIT_EXCEEDED",
        name,
        str(maximum),
    )
    assert name in err.details() and str(maximum) in err.details()


@pytest.mark.parametrize("rpc", ["pre_settle", "settle"])
def test_items_per_bill(env, rpc: str) -> None:
    _, _, c = env
    before = snapshot(c)
    item = {"code": "A1", "name": "x", "category": "A", "amount": 1}
    bill = dict(YUBEI_BILL, id="many-items", items=[item] * (MAX_ITEMS_PER_BILL + 1))
    with pytest.raises(grpc.RpcError) as e:
        c.pre_settle(bill) if rpc == "pre_settle" else c.settle(bill, "many-items")
    assert_limit(e.value, "MAX_ITEMS_PER_BILL", MAX_ITEMS_PER_BILL)
    assert snapshot(c) == before


def packed(n_bills: int, items_per_bill: int, mode: pb.StreamMode = pb.STREAM_MODE_TRIAL) -> Any:
    n = n_bills * items_per_bill
    p = pb.PackedBills(
        bill_ids=[f"b{i}" for i in range(n_bills)],
        hospitals=["H500112001"] * n_bills,
        person_ids=["jiang"] * n_bills,
        level_index=[0] * n_bills,
        levels=["level2"],
        admission_dates=["2023-05-01"] * n_bills,
        discharge_dates=["2023-05-20"] * n_bills,
        request_ids=[f"r{i}" for i in range(n_bills)],
        item_offsets=range(0, n + 1, items_per_bill),
        category=[1] * n,
        amount=[100] * n,
    )
    return pb.SettleStreamRequest(mode=mode, packed=p)


@pytest.mark.parametrize(
    ("n_bills", "per_bill", "name", "maximum"),
    [
        (DEFAULT.max_bills_per_message + 1, 1, "max_bills_per_message", 10_000),
        (101, 9_901, "max_items_per_message", 1_000_000),
        (1, MAX_ITEMS_PER_BILL + 1, "MAX_ITEMS_PER_BILL", MAX_ITEMS_PER_BILL),
    ],
    ids=["bills", "items", "items-per-bill"],
)
@pytest.mark.parametrize("mode", [pb.STREAM_MODE_TRIAL, pb.STREAM_MODE_SETTLE])
def test_stream_message_limits(env, n_bills, per_bill, name, maximum, mode) -> None:
    _, _, c = env
    before = snapshot(c)
    with pytest.raises(grpc.RpcError) as e:
        list(c.settlement.SettleStream(iter([packed(n_bills, per_bill, mode)]), timeout=60))
    assert_limit(e.value, name, maximum)
    assert snapshot(c) == before


def test_bills_per_message_as_messages(env) -> None:
    _, _, c = env
    b = as_pb(dict(YUBEI_BILL, items=YUBEI_BILL["items"][:1]))
    msg = pb.SettleStreamRequest(
        mode=pb.STREAM_MODE_TRIAL,
        bills=pb.BillList(bills=[pb.SettleRequest(bill=b)] * (DEFAULT.max_bills_per_message + 1)),
    )
    with pytest.raises(grpc.RpcError) as e:
        list(c.settlement.SettleStream(iter([msg]), timeout=60))
    assert_limit(e.value, "max_bills_per_message", DEFAULT.max_bills_per_message)


def test_persons_per_import(env) -> None:
    _, _, c = env
    p = pb.Person(id="p", birth_date="1970-01-01", household="h")
    req = pb.ImportRegistryRequest(persons=[p] * (MAX_PERSONS_PER_IMPORT + 1))
    t0 = time.perf_counter()
    with pytest.raises(grpc.RpcError) as e:
        c.admin.ImportRegistry(req, timeout=60)
    assert_limit(e.value, "MAX_PERSONS_PER_IMPORT", MAX_PERSONS_PER_IMPORT)
    assert time.perf_counter() - t0 < 5  # refused before 100,001 persons are parsed


def test_versions_per_region(monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.service import inputs

    monkeypatch.setattr(inputs, "MAX_VERSIONS_PER_REGION", 3)
    with served("memory://", (YUBEI,)) as (_, _, c):
        c.put_policy(YUBEI.replace("Yubei district", "Yubei district v2"), "v2.yaml")
        c.put_policy(YUBEI.replace("Yubei district", "Yubei district v3"), "v3.yaml")
        with pytest.raises(grpc.RpcError) as e:
            c.put_policy(YUBEI.replace("Yubei district", "Yubei district v4"), "v4.yaml")
        assert_limit(e.value, "MAX_VERSIONS_PER_REGION", 3)
        assert len(c.admin.ListPolicies(pb.ListPoliciesRequest()).versions) == 3
        c.put_policy(CHAIN, "chain.yaml")  # another region has room


def test_a_server_with_smaller_limits() -> None:
    from adapters.bootstrap import build
    from adapters.grpc.server import running

    app = build("memory://", policies=None, registry=None)
    small = Limits(max_message_bytes=64 * 1024, max_bills_per_message=2)
    try:
        with running(app, limits=small) as server, Client(f"127.0.0.1:{server.port}") as c:
            c.put_policy(YUBEI, "y.yaml")
            with pytest.raises(grpc.RpcError) as e:
                c.put_policy(YUBEI + "#" * 70_000, "y2.yaml")
            assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            with pytest.raises(grpc.RpcError) as e:
                list(c.settlement.SettleStream(iter([packed(3, 1)]), timeout=30))
            assert_limit(e.value, "max_bills_per_message", 2)
    finally:
        app.close()


# --------------------------------------------------------------------------- 11: logs


SECRET = "PERSON-SECRET-4401"


def test_failed_statement_logs_an_incident_without_parameters(
    env, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    app, _, c = env

    def failing(*a: Any, **k: Any) -> Any:
        with app.store.uow() as uow:  # birth_date and household are NOT NULL
            uow.run(
                "INSERT INTO persons (person_id) VALUES (:id)",
                {"id": SECRET},
                write=True,
            )

    for use_case in ("pre_settle", "pre_settle_rows"):  # PreSettle's (rows: no allocation)
        monkeypatch.setattr(app.service, use_case, failing)
    with caplog.at_level(logging.DEBUG), pytest.raises(grpc.RpcError) as e:
        c.pre_settle(YUBEI_BILL)
    assert e.value.code() == grpc.StatusCode.INTERNAL
    details = e.value.details()
    assert "incident" in details and SECRET not in details and "INSERT" not in details
    incident = details.split("incident ")[1].split(")")[0]
    logged = "\n".join(
        r.getMessage() + (str(r.exc_info[1]) if r.exc_info else "") for r in caplog.records
    )
    logged += caplog.text
    assert incident in logged
    assert "INSERT INTO persons" in logged  # the statement's first words
    assert SECRET not in logged


def test_store_errors_hide_parameters(env) -> None:
    import sqlalchemy as sa

    app, _, _ = env
    with app.store.uow() as uow, pytest.raises(sa.exc.DBAPIError) as e:
        uow.run("INSERT INTO persons (person_id) VALUES (:id)", {"id": SECRET}, write=True)
    assert SECRET not in str(e.value)
    with app.store.engine.connect() as conn, pytest.raises(sa.exc.DBAPIError) as e2:
        conn.execute(sa.text("INSERT INTO persons (person_id) VALUES (:id)"), {"id": SECRET})
    assert SECRET not in str(e2.value)


# --------------------------------------------------------------------------- paging


@pytest.fixture(scope="module")
def many(tmp_path_factory: pytest.TempPathFactory):
    url = f"sqlite:///{tmp_path_factory.mktemp('grpc-pages') / 'onestop.db'}"
    with served(url, (CHAIN,)) as (_, _, c):
        bills = [
            pb.SettleRequest(request_id=f"page-{i}", bill=as_pb(chain_bill(i, n_items=1)))
            for i in range(250)
        ]
        msg = pb.SettleStreamRequest(mode=pb.STREAM_MODE_SETTLE, bills=pb.BillList(bills=bills))
        (r,) = list(c.settlement.SettleStream(iter([msg]), timeout=120))
        yield c, list(r.settlement_ids)


def test_pages_return_every_settlement_once_in_order(many) -> None:
    c, ids = many
    seen, token, sizes = [], "", []
    while True:
        r = c.list_page("wang", 2024, 100, token)
        sizes.append(len(r.settlements))
        seen += [s.settlement_id for s in r.settlements]
        token = r.next_page_token
        if not token:
            break
    assert sizes == [100, 100, 50]
    assert seen == ids
    stamps = [s.created_at for s in c.list("wang", 2024)]
    assert stamps == sorted(stamps)
    assert [s.settlement_id for s in c.list("wang")] == ids  # the client follows pages


def test_default_and_maximum_page_size(many) -> None:
    c, ids = many
    first = c.list_page("wang", None)
    assert len(first.settlements) == 100 and first.next_page_token
    assert len(c.list_page("wang", None, 5000).settlements) == 250  # read as 1000
    assert [s.settlement_id for s in c.list("wang", 2024, page_size=7)] == ids


def test_a_new_settlement_does_not_shift_pages(many) -> None:
    c, ids = many
    first = c.list_page("wang", 2024, 249)
    assert [s.settlement_id for s in first.settlements] == ids[:249]
    rest = c.list_page("wang", 2024, 249, first.next_page_token)
    assert [s.settlement_id for s in rest.settlements] == ids[249:]
    assert rest.next_page_token == ""


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        "%%%",
        base64.urlsafe_b64encode(b'[1,"wang",2024,"x","y"]').decode(),
        "x" * 5000,
    ],
)
def test_bad_page_token(many, token: str) -> None:
    c, _ = many
    with pytest.raises(grpc.RpcError) as e:
        c.list_page("wang", 2024, 10, token)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in bad_request(e.value)] == ["page_token"]
    assert trailer_bytes(e.value) < TRAILER_BUDGET


def test_page_token_of_another_listing(many) -> None:
    c, _ = many
    token = c.list_page("wang", 2024, 10).next_page_token
    for person, year in (("wang-wife", 2024), ("wang", None), ("wang", 2023)):
        with pytest.raises(grpc.RpcError) as e:
            c.list_page(person, year, 10, token)
        assert [f for f, _ in bad_request(e.value)] == ["page_token"]
    with pytest.raises(grpc.RpcError) as e:
        c.list_page("wang", 2024, -1)
    assert [f for f, _ in bad_request(e.value)] == ["page_size"]


def test_window_settlements_follows_every_page(many) -> None:
    import json

    from typer.testing import CliRunner

    from adapters.grpc.commands import app

    c, ids = many
    r = CliRunner().invoke(app, ["window", "settlements", "wang", "--server", c.target, "--json"])
    assert r.exit_code == 0, r.output
    assert [d["settlement_id"] for d in json.loads(r.output)] == ids
