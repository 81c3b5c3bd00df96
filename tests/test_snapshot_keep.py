"""PostgreSQL's kept answers (``adapters/store/sql/snapshotkeep.py``): the packed stream's
``accounts_many`` answers again from what it kept while the snapshot's figure stands, and a
commit by any connection (the pool's, another store's, one that was in progress at the check)
is seen by the next call and by the next stream message."""

from __future__ import annotations

from datetime import date
from typing import Any, cast

import pytest
import sqlalchemy as sa

from adapters.bootstrap import build
from adapters.grpc import stream as S
from adapters.grpc.client import pack_bills
from adapters.grpc.gen.onestop.settlement.v1 import settlement_pb2 as pb
from adapters.grpc.testing import CHAIN, CHAIN_PERSONS, chain_bill
from adapters.store.sql import SqlStore
from adapters.store.sql.snapshotkeep import SnapshotTrial
from adapters.store.sql.uow import SqlUnitOfWork
from engine.accounts import Opening
from engine.batch import reference_batch
from engine.bill import Person, parse_bill_request
from engine.policy.load import parse_table
from engine.policy.policyset import PolicySet
from engine.service.usecases import SettlementService
from tests.pg import fresh_database, pg_url  # noqa: F401  (fixtures)
from tests.test_store_sql import Clock, bill, golden, service

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_store(pg_url: str) -> Any:  # noqa: F811
    s = SqlStore(fresh_database(pg_url))
    yield s
    s.dispose()


def test_accounts_many_kept_on_postgres_until_a_commit(pg_store: SqlStore) -> None:
    """The same keys again, nothing committed since, give the same objects (one statement: the
    snapshot's figure); a Settle through the pool, one by another store (another connection),
    a registry change by it, and a transaction that was in progress at a check and commits
    after it are each seen by the next call (the figures of a pooled read); other keys and an
    unknown person are answered as without."""
    text, person, req = golden()
    pooled = service(pg_store.uow)
    kept: Any = service(pg_store.uow)  # (its answers indexed as found: a known person)
    kept.use_trial_reads(pg_store.trial_uow)
    pooled.put_policy(text, "yubei.yaml")
    pooled.import_registry([person])
    year = pooled.pre_settle(req).year
    keys = [(person.id, year), ("nobody", year)]

    def stored() -> dict[Any, Any]:  # what a pooled read gives now
        return {(person.id, year): pooled.accounts(person.id, year), ("nobody", year): None}

    first = kept.accounts_many(keys)
    assert first == stored() and first[("nobody", year)] is None
    again = kept.accounts_many(keys)
    assert again == first and again is not first  # a dict of its own ...
    assert all(again[k] is first[k] for k in keys)  # ... of the same objects
    assert kept.accounts_many(keys[:1]) == {keys[0]: first[keys[0]]}  # other keys: read
    other = SqlStore(pg_store.url.render_as_string(hide_password=False))
    try:
        more = iter(f"other-{i}" for i in range(99))
        elsewhere = SettlementService(other.uow, clock=Clock(), new_id=more.__next__)
        admissions = [first[keys[0]][1].admissions]
        for i, change in enumerate(
            (
                lambda: pooled.settle("req-pool", bill(req, "yubei-pool", 4_000_000)),
                lambda: elsewhere.settle("req-conn", bill(req, "yubei-conn", 3_000_000)),
            )
        ):
            kept.accounts_many(keys)  # kept again
            change()
            now = kept.accounts_many(keys)
            assert now == stored() and now[keys[0]][1].admissions == admissions[-1] + 1, i
            admissions.append(now[keys[0]][1].admissions)
        kept.accounts_many(keys)
        elsewhere.import_registry([person.model_copy(update={"birth_date": date(1961, 1, 2)})])
        assert kept.accounts_many(keys)[keys[0]][0].birth_date == date(1961, 1, 2)
        # a write in progress at a check (not yet seen, rightly) and committed after it
        before = kept.accounts_many(keys)
        with other.engine.connect() as c:
            c.execute(
                sa.text("UPDATE person_years SET admissions = admissions + 7 "
                        "WHERE person_id = :p AND year = :y"),
                {"p": person.id, "y": year},
            )  # fmt: skip
            during = kept.accounts_many(keys)
            assert during[keys[0]] is before[keys[0]] and during == stored()
            c.commit()
        after = kept.accounts_many(keys)
        assert after == stored() and after[keys[0]][1].admissions == admissions[-1] + 7
    finally:
        other.dispose()


def test_a_settle_between_two_stream_messages_is_seen_on_postgres(pg_url: str) -> None:  # noqa: F811
    """Two alike packed trials on PostgreSQL: the second of a pair answers from the kept
    person-years; a Settle of the same person-year between two messages (through the service,
    then by another store) is seen by the next message, whose figures are the reference's from
    the accounts stored now."""
    app = build(fresh_database(pg_url), policies=None, registry=None)
    try:
        svc = app.service
        svc.put_policy(CHAIN, "chain.yaml")
        persons = {p["id"]: Person.model_validate(p) for p in CHAIN_PERSONS}
        svc.import_registry(list(persons.values()))
        trial = [chain_bill(60 + i, "wang", seed=13) for i in range(3)]
        policies = PolicySet.of([parse_table(CHAIN)])
        msg = pb.SettleStreamRequest(
            mode=pb.STREAM_MODE_TRIAL, packed=pack_bills(trial, raw=True, narrow=True)
        )

        def expected() -> list[tuple[int, int, int]]:  # from the accounts stored now
            person, pa, ha = svc.accounts("wang", 2024)
            opening = Opening({("wang", 2024): pa}, {(person.household, 2024): ha})
            full = [parse_bill_request(b).with_person(persons["wang"]) for b in trial]
            got = reference_batch(full, policies, opening).settlements
            return [(s.window_pay, s.net_selfpay, s.funds_total) for s in got]

        def packed_trial() -> list[tuple[int, int, int]]:
            S.handle(svc, msg)
            p = S.handle(svc, msg).packed  # the second of two alike: its reads were kept
            return list(zip(p.window_pay, p.net_selfpay, p.funds_total, strict=True))

        first = packed_trial()
        assert first == expected()
        svc.settle("kept-1", parse_bill_request(chain_bill(70, "wang", seed=13)))
        again = packed_trial()
        assert again == expected() and again != first
        other = SqlStore(app.url)
        try:
            n = iter(f"elsewhere-{i}" for i in range(9))
            SettlementService(other.uow, new_id=n.__next__).settle(
                "kept-2", parse_bill_request(chain_bill(71, "wang", seed=13))
            )
        finally:
            other.dispose()
        third = packed_trial()
        assert third == expected() and third != again
    finally:
        app.close()


def test_a_settle_by_another_process_between_two_presettles_is_seen_on_postgres(
    pg_store: SqlStore, monkeypatch: Any
) -> None:
    """A PreSettle repeating the last one's reads sends the snapshot's check only (no read
    reaches the driver) and answers the same; a Settle committed by another process between
    two PreSettles, then one through the pool, is seen by the next PreSettle (the model path
    and the columns path, PreSettle's own), whose figures are a pooled trial's."""
    from adapters.grpc import columns
    from adapters.grpc.convert import bill_to_pb
    from tests.test_trial_reads import _pooled_and_kept, _settle_elsewhere

    pooled, kept, _, req = _pooled_and_kept(pg_store)
    first = kept.pre_settle(req)
    assert first == pooled.pre_settle(req) and first.admission_no == 1
    sent: list[str] = []
    read = SqlUnitOfWork.run

    def run(self: SqlUnitOfWork, sql: str, params: Any = (), write: bool = False) -> Any:
        sent.append(sql)
        return read(self, sql, params, write)

    monkeypatch.setattr(SqlUnitOfWork, "run", run)
    cols = columns.bill_columns(bill_to_pb(req.model_dump(mode="json")))
    assert kept.pre_settle(req) == first and kept.pre_settle(cols) == first
    assert sent == []  # every read kept: the check alone went to the server
    _settle_elsewhere(pg_store)
    second = kept.pre_settle(cols)
    assert second.admission_no == 2 and second == pooled.pre_settle(req) and second != first
    assert sent != [] and kept.pre_settle(req) == second
    pooled.settle("req-pool", bill(req, "yubei-pool", 4_000_000))
    third = kept.pre_settle(req)
    assert third.admission_no == 3 and third == pooled.pre_settle(req)
    assert kept.pre_settle(cols) == third


def test_a_trial_unit_of_work_on_postgres_writes_nothing(pg_store: SqlStore) -> None:
    """Every way to write through a PostgreSQL trial is refused before anything is sent."""
    with pg_store.trial_uow() as u:
        assert isinstance(u, SnapshotTrial)
        assert u.registry.get("nobody") is None
        with pytest.raises(RuntimeError, match="a trial's unit of work writes nothing"):
            u.accounts.save_person_year("p", 2023, u.accounts.person_year("p", 2023))
        with pytest.raises(RuntimeError, match="a trial's unit of work writes nothing"):
            u.lock(("person", "p", 2023))


def test_a_trial_open_under_an_old_figure_keeps_nothing_for_a_newer_one(
    pg_store: SqlStore,
) -> None:
    """A trial inside a trial: the inner one, checked after a commit, keeps its reads under
    the new figure; what the outer one reads afterwards goes with the old figure's reads,
    not the new ones (it was keyed by a snapshot from before that commit)."""
    text, person, req = golden()
    pooled = service(pg_store.uow)
    pooled.put_policy(text, "yubei.yaml")
    pooled.import_registry([person])
    year = pooled.pre_settle(req).year
    outer = cast(SnapshotTrial, pg_store.trial_uow())
    with outer:
        assert outer.registry.get(person.id) == person
        old = outer._reads
        pooled.settle("req-1", req)
        inner = cast(SnapshotTrial, pg_store.trial_uow())
        with inner:
            assert inner.accounts.person_year(person.id, year).admissions == 1
            new = inner._reads
        assert old is not None and new is not None and new is not old
        assert outer.accounts.person_year(person.id, year).admissions == 1  # read now
    assert len(new.rows) == 1 and len(old.rows) == 2  # the outer's reads kept with the old
