"""Issue 7, defects 1 and 2: a bill is (hospital, id), and a bill settled and not reversed
cannot be settled again, even when two windows send it at the same moment.

Race: in each of many rounds, several threads released together by a barrier settle the same
(hospital, bill id) with different request ids: the same person from two windows, or (a
mistyped person id) two persons of one household and a person of another household, whose
household locks do not serialize them. Exactly one settles; the others get the domain Conflict
(``BillSettled``) and write nothing; every stored settlement and the accounts equal a serial
replay through the reference. Only the partial unique index makes this hold on PostgreSQL
(without it 2 or 3 settle in most rounds); SQLite's single writer serializes the check anyway.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from functools import partial
from typing import Any

import pytest
import sqlalchemy as sa

from adapters.store.memory import MemoryStore
from adapters.store.sql import SqlStore, upgrade
from engine.accounts import Opening
from engine.batch import reference_batch
from engine.bill import BillRequest, Person
from engine.errors import BillSettled, Conflict, InputError
from engine.service.ports import account_locks
from engine.service.usecases import SettlementService
from tests.pg import db_url, pg_url  # noqa: F401  (fixtures)
from tests.test_store_concurrency import MATE, PERSON, POLICY, all_at_once, request
from tests.test_store_sql import Clock, ids

ROUNDS = 20
HOSPITAL = "H990001"
OTHER = Person(id="q1", birth_date=date(1970, 1, 1), household="h9")
PERSONS = {p.id: p for p in (PERSON, MATE, OTHER)}


def same_bill(r: int, person: str) -> BillRequest:
    """Bill ``race-r`` of HOSPITAL, as sent for ``person`` (the figures differ per person)."""
    return request(r, person).model_copy(update={"id": f"race-{r}", "hospital": HOSPITAL})


def service(store: Any) -> SettlementService:
    s = SettlementService(store.uow, clock=Clock(), new_id=ids())
    s.put_policy(POLICY, "concurrency.yaml")
    s.import_registry(list(PERSONS.values()))
    s.pre_settle(request(0))  # warm the kernel before the race
    return s


@pytest.fixture
def svc(db_url: str) -> Any:  # noqa: F811
    store = SqlStore(db_url)
    yield service(store)
    store.dispose()


def outcome(s: SettlementService, rid: str, req: BillRequest) -> Any:
    try:
        rec, replay = s.settle(rid, req)
        assert not replay
        return rec
    except Conflict as err:
        return err


def committed(s: SettlementService) -> list[Any]:
    recs = [r for pid in PERSONS for r in s.list(pid, 2024)]
    return sorted(recs, key=lambda r: r.created_at)


def assert_serial_replay(s: SettlementService) -> None:
    """Every settlement equals the reference replayed in commit order; so do the accounts."""
    opening, policies = Opening(), s.policies()
    events = [(r.created_at, "settle", r) for r in committed(s)]
    events += [(r.reversed_at, "reverse", r) for r in committed(s) if r.status == "reversed"]
    for _, what, rec in sorted(events, key=lambda e: e[0]):  # one clock stamps both
        if what == "reverse":  # its moves are taken back as they were made
            opening = undo_in_opening(rec, opening)
            continue
        bill = BillRequest.model_validate(rec.bill).with_person(PERSONS[rec.settlement.person_id])
        out = reference_batch([bill], policies, opening)
        assert out.settlements[0] == rec.settlement, rec.request_id
        opening = out.closing
    for pid, p in PERSONS.items():
        _, pa, ha = s.accounts(pid, 2024)
        assert pa.to_dict() == opening.person_year(pid, 2024).to_dict(), pid
        assert ha.to_dict() == opening.household_year(p.household, 2024).to_dict(), pid


def undo_in_opening(rec: Any, opening: Opening) -> Opening:
    from engine.settle import undo

    st = rec.settlement
    pm = {m.layer_id: m.delta for m in rec.moves if m.scope == "person"}
    hm = {m.layer_id: m.delta for m in rec.moves if m.scope == "household"}
    person = dict(opening.person)
    household = dict(opening.household)
    person[(st.person_id, st.year)] = undo(opening.person_year(st.person_id, st.year), pm, 1)
    household[(st.household, st.year)] = undo(opening.household_year(st.household, st.year), hm, 0)
    return Opening(person, household)


def race(s: SettlementService) -> None:
    for r in range(ROUNDS):
        # even rounds: one person at two windows (the same household lock); odd rounds: two
        # persons of one household and one of another (different locks)
        senders = ["p1", "p1"] if r % 2 == 0 else ["p1", "p2", "q1"]
        calls: list[Callable[[], Any]] = [
            partial(outcome, s, f"r{r}-w{k}", same_bill(r, pid)) for k, pid in enumerate(senders)
        ]
        results = all_at_once(calls)
        won = [x for x in results if not isinstance(x, Exception)]
        lost = [x for x in results if isinstance(x, Exception)]
        assert len(won) == 1, f"round {r}: {len(won)} settlements of one bill"
        assert len(lost) == len(senders) - 1
        for err in lost:
            assert isinstance(err, BillSettled), err
            msg = str(err)
            assert f"race-{r}" in msg and HOSPITAL in msg and "reverse" in msg
            assert won[0].settlement_id not in msg and won[0].request_id not in msg
    recs = committed(s)
    assert len(recs) == ROUNDS
    assert sorted(r.settlement.bill_id for r in recs) == sorted(f"race-{r}" for r in range(ROUNDS))
    assert_serial_replay(s)


def test_one_bill_settles_once_under_a_race(svc: SettlementService) -> None:
    race(svc)
    # reversing makes the bill settleable again (the index covers settled rows only)
    first = next(r for r in committed(svc) if r.settlement.bill_id == "race-0")
    svc.reverse(settlement_id=first.settlement_id)
    again, replay = svc.settle("race-0-again", same_bill(0, first.settlement.person_id))
    assert not replay and again.settlement_id != first.settlement_id
    with pytest.raises(BillSettled):
        svc.settle("race-0-third", same_bill(0, first.settlement.person_id))
    assert_serial_replay(svc)


def test_memory_store_enforces_the_same_rule() -> None:
    race(service(MemoryStore()))


def test_the_database_refuses_a_second_active_settlement(svc: SettlementService) -> None:
    """Past the use case's check (as a racing transaction is): the store itself refuses the
    insert with BillSettled, at ``add`` or at ``commit``, and nothing is written."""
    rec, _ = svc.settle("first", same_bill(1, "p1"))
    store_uow = svc._uow
    twin = type(rec)(**{**rec.__dict__, "settlement_id": "twin", "request_id": "second"})
    before = svc.accounts("p1", 2024)
    with pytest.raises(BillSettled) as err, store_uow() as u:
        u.lock(*account_locks("p1", "h1", 2024))
        u.accounts.save_person_year("p1", 2024, before[1].__class__({}, 99))
        u.settlements.add(twin)
        u.commit()
    assert (err.value.hospital, err.value.bill_id) == (HOSPITAL, "race-1")
    assert svc.accounts("p1", 2024) == before
    with pytest.raises(Exception):  # noqa: B017  (NotFound)
        svc.get(settlement_id="twin")


def test_same_bill_id_at_two_hospitals_is_two_bills(svc: SettlementService) -> None:
    a, _ = svc.settle("ha", request(3, "p1").model_copy(update={"id": "7", "hospital": "H1"}))
    b, _ = svc.settle("hb", request(3, "q1").model_copy(update={"id": "7", "hospital": "H2"}))
    assert a.settlement.bill_id == b.settlement.bill_id == "7"
    assert (a.settlement.hospital, b.settlement.hospital) == ("H1", "H2")
    same_id = request(5, "p1").model_copy(update={"hospital": "H1"})
    svc.settle("x1", same_id)
    svc.settle("x2", same_id.model_copy(update={"hospital": "H2"}))  # the other hospital's bill
    with pytest.raises(BillSettled) as err:
        svc.settle("x3", same_id.model_copy(update={"hospital": "H2"}))
    msg = str(err.value)
    assert "H2" in msg and "p1-bill-5" in msg
    for rec in committed(svc):  # names no other window's settlement or request
        assert rec.settlement_id not in msg and f"'{rec.request_id}'" not in msg
    stored = svc.get(request_id="x2")
    assert stored.settlement.hospital == "H2" and stored.bill["hospital"] == "H2"


def test_bad_hospital_code_is_refused_at_parsing() -> None:
    from engine.bill import parse_bill_request

    for code in ["H-1", "", "医院1", "H" * 31, " H1", "H1\n", None, 7]:
        data = request(1, "p1").model_dump(mode="json") | {"hospital": code}
        with pytest.raises(InputError) as err:
            parse_bill_request(data)
        (p,) = err.value.problems
        assert p.field == "hospital"
        assert "not a hospital code; use the NHSA fixmedins_code, 1 to 30 letters" in p.rule
    data = request(1, "p1").model_dump(mode="json")
    del data["hospital"]
    with pytest.raises(InputError) as err:
        parse_bill_request(data)
    assert err.value.problems[0].field == "hospital"
    assert str(InputError.one("hospital", "H-1", "x")).startswith("hospital: 'H-1'")
    for ok in ["H1", "H" * 30, "450100001", "abcXYZ09"]:
        assert parse_bill_request(request(1, "p1").model_dump(mode="json") | {"hospital": ok})


_COLS = ("settlement_id", "request_id", "bill_id", "bill_digest", "person_id", "household",
         "region", "year", "total", "funds_total", "window_pay", "net_selfpay", "status",
         "created_at", "bill", "settlement")  # fmt: skip


def old_store(url: str, rows: list[tuple[str, str, str, str]]) -> SqlStore:
    """A store at revision 0001 holding settlements (id, bill id, bill JSON, status)."""
    store = SqlStore(url, migrate=False)
    upgrade(store.engine, "0001")
    pg = store.dialect == "postgresql"
    values = ", ".join(
        f"CAST(:{c} AS json)" if pg and c in ("bill", "settlement") else f":{c}" for c in _COLS
    )
    with store.engine.begin() as conn:
        for sid, bid, bill, status in rows:
            conn.execute(
                sa.text(f"INSERT INTO settlements ({', '.join(_COLS)}) VALUES ({values})"),
                dict(
                    settlement_id=sid, request_id="r" + sid, bill_id=bid, bill_digest="d",
                    person_id="p", household="h", region="r", year=2024, total=1,
                    funds_total=0, window_pay=1, net_selfpay=1, status=status,
                    created_at=datetime(2024, 1, 1, tzinfo=UTC) if pg else "2024-01-01 00:00:00",
                    bill=bill, settlement="{}",
                ),
            )  # fmt: skip
    return store


def test_migration_from_0001_keeps_rows_and_adds_the_index(db_url: str) -> None:  # noqa: F811
    """A database at 0001 with settlements (bills without a hospital, one with) upgrades: the
    rows keep their data, take the hospital from their stored bill (else ''), and the
    partial unique index holds from then on."""
    store = old_store(
        db_url,
        [
            ("s1", "b1", '{"id": "b1"}', "settled"),
            ("s2", "b2", '{"id": "b2", "hospital": "H7"}', "settled"),
            ("s3", "b1", '{"id": "b1"}', "reversed"),
        ],
    )
    try:
        upgrade(store.engine)
        with store.engine.connect() as conn:
            got = conn.execute(
                sa.text("SELECT settlement_id, hospital FROM settlements ORDER BY 1")
            ).fetchall()
            assert [tuple(r) for r in got] == [("s1", ""), ("s2", "H7"), ("s3", "")]
            (idx,) = [
                i
                for i in sa.inspect(conn).get_indexes("settlements")
                if i["name"] == "uq_settlements_active_bill"
            ]
            assert idx["unique"] and idx["column_names"] == ["hospital", "bill_id"]
        with pytest.raises(sa.exc.IntegrityError), store.engine.begin() as conn:
            conn.execute(
                sa.text("UPDATE settlements SET status = 'settled' WHERE settlement_id = 's3'")
            )
        with store.engine.begin() as conn:  # another hospital's b1: fine
            conn.execute(
                sa.text("UPDATE settlements SET hospital = 'H8' WHERE settlement_id = 's3'")
            )
            conn.execute(
                sa.text("UPDATE settlements SET status = 'settled' WHERE settlement_id = 's3'")
            )
    finally:
        store.dispose()


def test_migration_refuses_two_active_settlements_of_one_bill(db_url: str) -> None:  # noqa: F811
    store = old_store(
        db_url, [("s1", "b1", '{"id": "b1"}', "settled"), ("s2", "b1", "{}", "settled")]
    )
    try:
        with pytest.raises(RuntimeError, match="reverse all but one"):
            upgrade(store.engine)
        with store.engine.connect() as conn:  # nothing changed: still at 0001
            assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == (
                "0001"
            )
            cols = [c["name"] for c in sa.inspect(conn).get_columns("settlements")]
            assert "hospital" not in cols
    finally:
        store.dispose()
