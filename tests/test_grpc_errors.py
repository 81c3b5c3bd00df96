"""Every bad input of domain.md section 9 is refused with INVALID_ARGUMENT whose BadRequest names
the field, and writes nothing; the error table's other rows (NOT_FOUND, ALREADY_EXISTS are in
test_grpc_service.py; INTERNAL here) leak no internals."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from adapters.grpc.client import Client
from adapters.grpc.errors import bad_request
from adapters.grpc.gen.onestop.settlement.v1 import settlement_pb2 as pb
from adapters.grpc.testing import CHAIN, YUBEI, YUBEI_BILL, chain_bill, served

# the module's tests on one xdist worker (--dist loadgroup): its module-scoped fixtures
# are made once, not once on each worker that runs one of its tests
pytestmark = pytest.mark.xdist_group("grpc_errors")


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory):
    url = f"sqlite:///{tmp_path_factory.mktemp('grpc-err') / 'onestop.db'}"
    with served(url, (YUBEI, CHAIN)) as (app, server, client):
        client.settle(YUBEI_BILL, "seed-1")  # some accounts to watch
        client.settle(chain_bill(1), "seed-2")
        yield app, server, client


def snapshot(c: Client) -> Any:
    out = []
    for person, year in (("jiang", 2023), ("wang", 2024)):
        a = c.accounts(person, year)
        out.append(a.SerializeToString())
        out.append(tuple(r.SerializeToString() for r in c.list(person)))
    out.append(
        tuple(
            v.SerializeToString() for v in c.admin.ListPolicies(pb.ListPoliciesRequest()).versions
        )
    )
    return out


def item(**kw: Any) -> dict[str, Any]:
    return {"code": "X", "name": "x", "category": "A", "amount": 10000, **kw}


BAD_BILLS = {
    "negative amount": (
        dict(YUBEI_BILL, id="bad-1", items=[item(), item(amount=-120)]),
        "items[1].amount",
        "-120",
    ),
    "B selfpay_ratio above 10000": (
        dict(YUBEI_BILL, id="bad-2", items=[item(category="B", selfpay_ratio=12000)]),
        "items[0].selfpay_ratio",
        "12000",
    ),
    "unknown category": (
        dict(YUBEI_BILL, id="bad-3", items=[item(category="D")]),
        "items[0].category",
        "'D'",
    ),
    "unknown hospital level": (
        dict(YUBEI_BILL, id="bad-4", hospital_level="level9"),
        "hospital_level",
        "'level9'",
    ),
    "unknown person": (
        dict(YUBEI_BILL, id="bad-5", person_id="nobody"),
        "person_id",
        "'nobody'",
    ),
    "discharge before admission": (
        dict(YUBEI_BILL, id="bad-6", admission_date="2023-05-20", discharge_date="2023-05-01"),
        "discharge_date",
        "2023-05-01",
    ),
    "no items": (dict(YUBEI_BILL, id="bad-7", items=[]), "items", ""),
    "date not a date": (
        dict(YUBEI_BILL, id="bad-8", admission_date="2023-02-30"),
        "admission_date",
        "",
    ),
    "unknown region": (dict(YUBEI_BILL, id="bad-9", region="000000"), "region", "'000000'"),
    "hospital not a code": (dict(YUBEI_BILL, id="bad-10", hospital="H-1"), "hospital", "'H-1'"),
    "hospital missing": (
        {k: v for k, v in YUBEI_BILL.items() if k != "hospital"} | {"id": "bad-11"},
        "hospital",
        "fixmedins_code",
    ),
    "hospital too long": (dict(YUBEI_BILL, id="bad-12", hospital="H" * 31), "hospital", "30"),
    # strict dates: ISO YYYY-MM-DD only, 1900-01-01..2199-12-31, not before the birth
    "unix timestamp as date": (
        dict(YUBEI_BILL, id="bad-30", admission_date="1552608000"),
        "admission_date",
        "'1552608000' is not a date; use YYYY-MM-DD",
    ),
    "datetime as date": (
        dict(YUBEI_BILL, id="bad-31", discharge_date="2023-05-20T00:00:00"),
        "discharge_date",
        "'2023-05-20T00:00:00' is not a date",
    ),
    "date before 1900": (
        dict(YUBEI_BILL, id="bad-32", admission_date="1899-12-31"),
        "admission_date",
        "'1899-12-31' is outside 1900-01-01 to 2199-12-31",
    ),
    "admission before birth": (  # jiang was born 1970-01-01
        dict(YUBEI_BILL, id="bad-13", admission_date="1969-12-31"),
        "admission_date",
        "1969-12-31 is before the patient's birth_date 1970-01-01",
    ),
    # exact category codes: A, B, C, 01, 02, 03 and nothing else
    **{
        f"category {c!r}": (
            dict(YUBEI_BILL, id=f"bad-cat-{k}", items=[item(), item(category=c)]),
            "items[1].category",
            f"{c!r} is not a category; use A, B or C (NHSA 01, 02, 03)",
        )
        for k, c in enumerate(["a", " b ", "1", "甲", "3", "c", "A "])
    },
    # NUL (PostgreSQL refuses it: INTERNAL before) and other control characters in ids
    "NUL in bill id": (dict(YUBEI_BILL, id="bad\x00-14"), "id", "contains a control character"),
    "NUL in person id": (
        dict(YUBEI_BILL, id="bad-15", person_id="ji\x00ang"),
        "person_id",
        "contains a control character",
    ),
    "newline in hospital level": (
        dict(YUBEI_BILL, id="bad-16", hospital_level="level2\n"),
        "hospital_level",
        "contains a control character",
    ),
    "NUL in region": (
        dict(YUBEI_BILL, id="bad-17", region="500112\x00"),
        "region",
        "contains a control character",
    ),
    "NUL in item code": (
        dict(YUBEI_BILL, id="bad-18", items=[item(code="X\x00")]),
        "items[0].code",
        "contains a control character",
    ),
    "NUL in item name": (
        dict(YUBEI_BILL, id="bad-19", items=[item(name="x\x00y")]),
        "items[0].name",
        "contains a NUL character",
    ),
}


@pytest.mark.parametrize("case", list(BAD_BILLS))
@pytest.mark.parametrize("rpc", ["settle", "pre_settle"])
def test_bad_bill_is_invalid_argument_naming_the_field(env, case: str, rpc: str) -> None:
    _, _, c = env
    bill, field, value = BAD_BILLS[case]
    before = snapshot(c)
    with pytest.raises(grpc.RpcError) as e:
        if rpc == "settle":
            c.settle(bill, f"req-{case}")
        else:
            c.pre_settle(bill)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    violations = bad_request(e.value)
    assert any(f == field for f, _ in violations), violations
    desc = next(d for f, d in violations if f == field)
    assert value in desc
    assert snapshot(c) == before
    if rpc == "settle":  # nothing stored under that request id
        with pytest.raises(grpc.RpcError) as nf:
            c.get(request_id=f"req-{case}")
        assert nf.value.code() == grpc.StatusCode.NOT_FOUND


def test_exact_codes_and_iso_dates_are_accepted(env) -> None:
    _, _, c = env
    bill = dict(YUBEI_BILL, items=[item(category=x) for x in ("A", "B", "C", "01", "02", "03")])
    c.pre_settle(bill)  # every code the contract lists
    c.pre_settle(dict(bill, admission_date="1970-01-01"))  # admitted on the day of birth


BAD_PERSONS: dict[str, tuple[dict[str, Any], str]] = {
    "unix timestamp birth date": ({"birth_date": "1552608000"}, "persons[0].birth_date"),
    "datetime birth date": ({"birth_date": "1970-01-01T00:00:00"}, "persons[0].birth_date"),
    "birth date after 2199": ({"birth_date": "2200-01-01"}, "persons[0].birth_date"),
    "datetime tag valid_from": (
        {"tags": [{"tag": "low_income_edge", "valid_from": "2023-01-01T08:00:00"}]},
        "persons[0].tags[0].valid_from",
    ),
    "unix timestamp tag valid_to": (
        {"tags": [{"tag": "low_income_edge", "valid_to": "1700000000"}]},
        "persons[0].tags[0].valid_to",
    ),
    "NUL in person id": ({"id": "new\x00"}, "persons[0].id"),
    "NUL in household": ({"household": "h\x00"}, "persons[0].household"),
    "NUL in tag": ({"tags": [{"tag": "low\x00"}]}, "persons[0].tags[0].tag"),
}


@pytest.mark.parametrize("case", list(BAD_PERSONS))
def test_bad_registry_person_is_invalid_argument_naming_the_field(env, case: str) -> None:
    _, _, c = env
    change, field = BAD_PERSONS[case]
    person = {"id": "newcomer", "birth_date": "1980-02-03", "household": "h-new", **change}
    before = snapshot(c)
    with pytest.raises(grpc.RpcError) as e:
        c.import_registry([person])
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in [f for f, _ in bad_request(e.value)], bad_request(e.value)
    assert snapshot(c) == before
    with pytest.raises(grpc.RpcError) as nf:
        c.accounts("newcomer", 2023)
    assert nf.value.code() == grpc.StatusCode.NOT_FOUND


LOOKUPS = {
    "GetSettlement by id": (lambda c: c.get(settlement_id="s\x00"), "settlement_id"),
    "GetSettlement by request id": (lambda c: c.get(request_id="seed-1\x00"), "request_id"),
    "ListSettlements": (lambda c: c.list("jiang\x00"), "person_id"),
    "GetAccounts": (lambda c: c.accounts("jiang\x00", 2023), "person_id"),
    "Reverse by id": (lambda c: c.reverse(settlement_id="s\x00"), "settlement_id"),
    "Reverse by request id": (lambda c: c.reverse(request_id="seed-1\x00"), "request_id"),
    "Reverse with a NUL reversal id": (
        lambda c: c.reverse(request_id="seed-1", reversal_request_id="rv\x00"),
        "reversal_request_id",
    ),
    "Settle with a NUL request id": (
        lambda c: c.settle(dict(YUBEI_BILL, id="nul-rid"), "req\x00"),
        "request_id",
    ),
    "Settle with a tab in the request id": (
        lambda c: c.settle(dict(YUBEI_BILL, id="tab-rid"), "req\t1"),
        "request_id",
    ),
}


@pytest.mark.parametrize("case", list(LOOKUPS))
def test_control_characters_in_keys_are_invalid_argument(env, case: str) -> None:
    """A NUL in a key is bad input, not INTERNAL (PostgreSQL) nor NOT_FOUND (SQLite)."""
    _, _, c = env
    call, field = LOOKUPS[case]
    before = snapshot(c)
    with pytest.raises(grpc.RpcError) as e:
        call(c)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, e.value.details()
    assert [f for f, _ in bad_request(e.value)] == [field]
    assert snapshot(c) == before
    assert c.get(request_id="seed-1").status == "settled"


def test_error_info_detail(env) -> None:
    _, _, c = env
    with pytest.raises(grpc.RpcError) as e:
        c.pre_settle(BAD_BILLS["negative amount"][0])
    status = rpc_status.from_call(e.value)
    info = [d for d in status.details if d.Is(error_details_pb2.ErrorInfo.DESCRIPTOR)]
    assert info
    ei = error_details_pb2.ErrorInfo()
    info[0].Unpack(ei)
    assert (ei.domain, ei.reason) == ("onestop", "INPUT_ERROR")


def test_empty_request_id_is_invalid(env) -> None:
    _, _, c = env
    with pytest.raises(grpc.RpcError) as e:
        c.settle(dict(YUBEI_BILL, id="rid"), "")
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request(e.value)[0][0] == "request_id"


BAD_TABLES = {
    "ratio above 10000": (
        YUBEI.replace("ratio: 7000}]\n  - id: major", "ratio: 12000}]\n  - id: major").replace(
            '"500112"', '"500199"'
        ),
        "layers[0].variants[0].segments",
    ),
    "undeclared tag": (
        YUBEI.replace(
            "tags_any: [low_income_edge]}\n    variants:\n      - segments",
            "tags_any: [poor]}\n    variants:\n      - segments",
        ).replace('"500112"', '"500199"'),
        "layers[1].eligibility.tags_any",
    ),
    "overlapping range": (
        YUBEI.replace("effective_from: 2023-01-01", "effective_from: 2023-06-01").replace(
            "effective_to: 2023-12-31", "effective_to: 2024-06-30"
        ),
        "effective_from",
    ),
    "not YAML": ("region: [unclosed", ""),
}


@pytest.mark.parametrize("case", list(BAD_TABLES))
def test_bad_policy_table_is_invalid_argument_naming_the_path(env, case: str) -> None:
    _, _, c = env
    text, path = BAD_TABLES[case]
    assert text != YUBEI
    before = snapshot(c)
    with pytest.raises(grpc.RpcError) as e:
        c.put_policy(text, f"{case}.yaml")
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    violations = bad_request(e.value)
    assert violations
    assert any(f.startswith(path) for f, _ in violations), violations
    assert all(f"{case}.yaml" in d for _, d in violations), violations
    assert snapshot(c) == before


def test_unexpected_error_is_internal_without_details(env, monkeypatch: pytest.MonkeyPatch) -> None:
    app, _, c = env

    def boom(*a: Any, **k: Any) -> Any:
        raise RuntimeError("secret connection string postgres://admin:hunter2@db")

    for use_case in ("pre_settle", "pre_settle_rows"):  # PreSettle's (rows: no allocation)
        monkeypatch.setattr(app.service, use_case, boom)
    with pytest.raises(grpc.RpcError) as e:
        c.pre_settle(YUBEI_BILL)
    assert e.value.code() == grpc.StatusCode.INTERNAL
    text = e.value.details() + str(e.value.debug_error_string())
    assert "hunter2" not in text and "Traceback" not in text and "incident" in text
