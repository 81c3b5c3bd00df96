"""Issue 7 below the gRPC layer, on SQLite, on PostgreSQL and in memory: ``list_page`` keyset
pages, the use cases' limits, policy tables refused before YAML composes them, and store
errors that never carry parameters into a log."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from adapters.grpc.errors import to_status
from adapters.store.memory import MemoryStore
from adapters.store.sql import SqlStore
from engine.errors import InputError, LimitExceeded, PolicyError
from engine.policy.load import MAX_TABLE_DEPTH, parse_table
from engine.service import inputs
from engine.service.usecases import SettlementService
from tests.pg import db_url, fresh_database, pg_url  # noqa: F401  (fixtures)
from tests.test_store_sql import Clock, bill, golden, ids

SECRET = "PERSON-SECRET-0012"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres), "memory"])
def svc(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[SettlementService]:
    if request.param == "memory":
        store: Any = MemoryStore()
    elif request.param == "sqlite":
        store = SqlStore(f"sqlite:///{tmp_path / 'onestop.db'}")
    else:
        store = SqlStore(fresh_database(request.getfixturevalue("pg_url")))
    text, person, _ = golden()
    s = SettlementService(store.uow, clock=Clock(), new_id=ids())
    s.put_policy(text, "yubei.yaml")
    s.import_registry([person])
    yield s
    if isinstance(store, SqlStore):
        store.dispose()


def test_pages_cover_every_settlement_once_in_order(svc: SettlementService) -> None:
    _, _, req = golden()
    made = [svc.settle(f"r{i}", bill(req, f"b{i}", 100_000 + i))[0] for i in range(250)]
    everything = svc.list("jiang", 2023)
    assert [r.settlement_id for r in everything] == [r.settlement_id for r in made]
    got, token, sizes = [], "", []
    while True:
        page, token = svc.list_page("jiang", 2023, 100, token)
        sizes.append(len(page))
        got += page
        if not token:
            break
    assert sizes == [100, 100, 50]
    assert got == everything
    assert svc.list_page("jiang", None, 0)[0] == everything[:100]
    assert svc.list_page("jiang", 2023, 10**6)[0] == everything  # read as MAX_PAGE_SIZE
    assert svc.list_page("jiang", 2024, 10) == ([], "")
    # a settlement made after a page was read comes on a later page, none is repeated
    first, token = svc.list_page("jiang", 2023, 200)
    late = svc.settle("late", bill(req, "b-late", 7))[0]
    rest, end = svc.list_page("jiang", 2023, 100, token)
    assert [r.settlement_id for r in first + rest] == [
        r.settlement_id for r in [*made, late]
    ] and end == ""


def test_bad_page_arguments(svc: SettlementService) -> None:
    with pytest.raises(InputError) as e:
        svc.list_page("jiang", 2023, 10, "not-a-token")
    assert e.value.problems[0].field == "page_token"
    with pytest.raises(InputError) as e:
        svc.list_page("jiang", 2023, -5)
    assert e.value.problems[0].field == "page_size"


def test_use_case_limits(svc: SettlementService, monkeypatch: pytest.MonkeyPatch) -> None:
    text, person, _ = golden()
    monkeypatch.setattr(inputs, "MAX_PERSONS_PER_IMPORT", 3)
    with pytest.raises(LimitExceeded) as e:
        svc.import_registry([person] * 4)
    assert e.value.limit == "MAX_PERSONS_PER_IMPORT" and e.value.maximum == 3
    monkeypatch.setattr(inputs, "MAX_VERSIONS_PER_REGION", 2)
    svc.put_policy(text + "\n# v2\n", "v2.yaml")
    with pytest.raises(LimitExceeded) as e:
        svc.put_policy(text + "\n# v3\n", "v3.yaml")
    assert e.value.limit == "MAX_VERSIONS_PER_REGION"
    assert len(svc.policy_versions()) == 2


@pytest.mark.parametrize("name", ["a\x00b.yaml", "", "x" * 201, "line\nbreak"])
def test_source_name_is_refused_before_sql(svc: SettlementService, name: str) -> None:
    text, _, _ = golden()
    with pytest.raises(InputError) as e:
        svc.put_policy(text + "\n# other\n", name)
    assert e.value.problems[0].field == "source_name"
    assert len(svc.policy_versions()) == 1


def test_policy_text_with_nul_is_refused(svc: SettlementService) -> None:
    text, _, _ = golden()
    with pytest.raises(PolicyError) as e:
        svc.put_policy(text + "\n# \x00\n", "nul.yaml")
    assert "NUL" in str(e.value)
    assert len(svc.policy_versions()) == 1


def test_failed_statement_is_logged_without_parameters(
    db_url: str,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = SqlStore(db_url)
    try:
        with store.uow() as uow, pytest.raises(sa.exc.DBAPIError) as e:
            uow.run(
                "INSERT INTO persons (person_id, household) VALUES (:id, :h)",
                {"id": SECRET, "h": "h-" + SECRET},
                write=True,
            )
        if store.sqlite:  # PostgreSQL's own message quotes the failing row: never logged
            assert SECRET not in str(e.value)
        with caplog.at_level(logging.DEBUG):
            st = to_status(e.value)
        assert "incident" in st.message and SECRET not in st.message
        assert "INSERT INTO persons" in caplog.text
        assert SECRET not in caplog.text
        for r in caplog.records:
            assert r.exc_info is None or SECRET not in str(r.exc_info[1])
    finally:
        store.dispose()


# --- policy tables refused before YAML composes them (engine only, no store) -------------------


def test_nesting_deeper_than_the_limit() -> None:
    with pytest.raises(PolicyError) as e:
        parse_table("x: " + "[" * 500 + "]" * 500, "deep.yaml")
    assert f"MAX_TABLE_DEPTH = {MAX_TABLE_DEPTH}" in str(e.value) and "deep.yaml:1" in str(e.value)
    ok = "x: " + "[" * (MAX_TABLE_DEPTH - 1) + "]" * (MAX_TABLE_DEPTH - 1)  # with the mapping
    with pytest.raises(PolicyError) as e:
        parse_table(ok, "ok.yaml")  # deep but within the limit: refused as a table, not depth
    assert "MAX_TABLE_DEPTH" not in str(e.value)


def test_alias_bomb_is_refused_before_expansion() -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, k in zip("abcdefghi", "bcdefghij", strict=True):
        lines.append(f"{k}: &{k} [{','.join(['*' + prev] * 9)}]")
    t0 = time.perf_counter()
    with pytest.raises(PolicyError) as e:
        parse_table("\n".join(lines), "bomb.yaml")
    assert time.perf_counter() - t0 < 0.5
    assert "anchor or alias" in str(e.value) and "bomb.yaml:1" in str(e.value)


def test_merge_keys_need_aliases_and_are_refused() -> None:
    text, _, _ = golden()
    with pytest.raises(PolicyError) as e:
        parse_table("base: &b {x: 1}\nother:\n  <<: *b\n" + text, "merge.yaml")
    assert "merge.yaml:1" in str(e.value)


# --- items per bill: the same limit for the server, the CLI and the batch runs -----------------


def test_items_per_bill_in_the_engine() -> None:
    from engine.bill import MAX_ITEMS_PER_BILL, parse_bill_request

    _, _, req = golden()
    data = req.model_dump(mode="json")
    data["items"] = [data["items"][0]] * (MAX_ITEMS_PER_BILL + 1)
    with pytest.raises(LimitExceeded) as e:
        parse_bill_request(data)
    assert (e.value.limit, e.value.maximum) == ("MAX_ITEMS_PER_BILL", MAX_ITEMS_PER_BILL)
    data["items"] = data["items"][:MAX_ITEMS_PER_BILL]
    assert len(parse_bill_request(data).items) == MAX_ITEMS_PER_BILL


def test_items_per_bill_in_columnar_batches() -> None:
    import numpy as np

    from engine import columnar as C
    from engine.bill import MAX_ITEMS_PER_BILL
    from tests.test_batch_columnar import small_set

    bills, _, persons, policies = small_set()
    n = MAX_ITEMS_PER_BILL + 1
    many = C.ItemCols(
        bill_start=np.array([0, n]), category=np.ones(n, dtype=np.int8),
        amount=np.full(n, 100, dtype=np.int64), file="items.parquet",
    )  # fmt: skip
    first: dict[str, Any] = {k: (v[:1] if isinstance(v, np.ndarray) else v)
                             for k, v in vars(bills).items()}  # fmt: skip
    one = C.BillCols(**first)
    prep = C.prepare_columns(one, many, persons, policies)
    (r,) = prep.rejects
    assert (r.row, r.field, r.value) == (0, "items", n)
    assert f"MAX_ITEMS_PER_BILL = {MAX_ITEMS_PER_BILL}" in r.rule
