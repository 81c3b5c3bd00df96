"""The SQL store (adapters/store/sql/) on SQLite and on a real PostgreSQL server.

Repositories round-trip, the whole service flow through ``SettlementService(store.uow)``
(compared step by step with the in-memory store), all-or-nothing commits, durability across a
restart, and migrations that match ``schema.py``.
"""

from __future__ import annotations

import importlib
import itertools
import threading
import time
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import pytest
import sqlalchemy as sa
import yaml

from adapters.store import schema
from adapters.store.memory import MemoryStore
from adapters.store.sql import SqlStore, alembic_config, upgrade
from engine.accounts import LayerAccount, YearAccounts
from engine.bill import BillRequest, Person, TagSpan, parse_bill_request
from engine.errors import Conflict, DuplicateRequest, InputError, NotFound
from engine.policy.load import parse_table
from engine.service.ports import AccountMove, LockKey, account_locks
from engine.service.usecases import SettlementService
from tests.pg import db_url, pg_url  # noqa: F401  (fixtures)

GOLDEN = Path(__file__).parent / "golden" / "yubei_2023_chain.yaml"


class Clock:
    """Deterministic, thread-safe, strictly increasing UTC clock."""

    def __init__(self, start: datetime = datetime(2023, 6, 1, 8, tzinfo=UTC)):
        self.t = start
        self.mu = threading.Lock()

    def __call__(self) -> datetime:
        with self.mu:
            self.t += timedelta(milliseconds=1)
            return self.t


def ids() -> Any:
    n = itertools.count(1)
    return lambda: f"s{next(n):05d}"


def golden() -> tuple[str, Person, BillRequest]:
    doc = yaml.safe_load(GOLDEN.read_text(encoding="utf-8"))
    text = yaml.safe_dump(doc["policy"], allow_unicode=True, sort_keys=False)
    b = doc["bills"][0]
    person = Person.model_validate(b["person"])
    req = parse_bill_request(
        {**{k: v for k, v in b.items() if k != "person"}, "person_id": "jiang"}
    )
    return text, person, req


def bill(req: BillRequest, bill_id: str, amount: int) -> BillRequest:
    items = [replace_item(req.items[0], amount), *req.items[1:]]
    return req.model_copy(update={"id": bill_id, "items": tuple(items)})


def replace_item(item: Any, amount: int) -> Any:
    return item.model_copy(update={"amount": amount})


@pytest.fixture
def store(db_url: str) -> Any:  # noqa: F811
    s = SqlStore(db_url)
    yield s
    s.dispose()


def service(uow: Any) -> SettlementService:
    return SettlementService(uow, clock=Clock(), new_id=ids())


# --- repositories ----------------------------------------------------------------------------


def test_accounts_round_trip(store: SqlStore) -> None:
    p = YearAccounts(
        {"basic": LayerAccount(1, 2, 3, 4), "ci": LayerAccount(0, 9_000_000_000_000, 7, 0)}, 3
    )
    h = YearAccounts({"alert": LayerAccount(0, 0, 5, 123_456_789_012)}, 0)
    with store.uow() as u:
        assert u.accounts.person_year("p", 2023) == YearAccounts()
        u.accounts.save_person_year("p", 2023, p)
        u.accounts.save_household_year("h", 2023, h)
        u.commit()
    with store.uow() as u:
        assert u.accounts.person_year("p", 2023) == p
        assert u.accounts.household_year("h", 2023) == h
        assert u.accounts.person_year("p", 2024) == YearAccounts()
        assert u.accounts.person_year("h", 2023) == YearAccounts()  # scopes are separate
        # a save replaces the year's accounts: changed, added and dropped layers, admissions
        p2 = YearAccounts({"basic": LayerAccount(1, 2, 3, 5), "new": LayerAccount(1, 0, 0, 0)}, 4)
        u.accounts.save_person_year("p", 2023, p2)
        assert u.accounts.person_year("p", 2023) == p2
        u.commit()
    with store.uow() as u:
        assert u.accounts.person_year("p", 2023) == p2


@pytest.mark.parametrize("kind", ["sql", "memory"])
def test_accounts_read_many_reads_as_each_read(
    store: SqlStore, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``read_many`` returns each (scope, key, year) as ``person_year`` / ``household_year``
    reads it: layers, admissions alone, nothing stored, the same key in the other scope or
    another year, several years and keys at once (SQLite: in statements of ``_MANY`` keys)."""
    from adapters.store.sql import accounts as sql_accounts

    monkeypatch.setattr(sql_accounts, "_MANY", 3)
    st: Any = store if kind == "sql" else MemoryStore()
    saved = {
        ("person", "p1", 2023): YearAccounts({"basic": LayerAccount(1, 2, 3, 4)}, 2),
        ("person", "p1", 2024): YearAccounts({"ci": LayerAccount(0, 9_000_000_000_000, 7, 0)}, 1),
        ("person", "p2", 2023): YearAccounts({}, 5),  # admissions only
        ("person", "p3", 2023): YearAccounts(
            {"a": LayerAccount(1, 0, 0, 0), "b": LayerAccount(0, 2, 0, 0)}, 0
        ),
        ("household", "h1", 2023): YearAccounts({"alert": LayerAccount(0, 0, 5, 12)}, 0),
        ("household", "p1", 2024): YearAccounts({"basic": LayerAccount(9, 9, 9, 9)}, 0),
    }
    with st.uow() as u:
        for (scope, key, year), acc in saved.items():
            getattr(u.accounts, f"save_{scope}_year")(key, year, acc)
        u.commit()
    keys = [
        *saved,
        ("person", "p1", 2022),  # nothing stored
        ("person", "nobody", 2023),
        ("person", "h1", 2023),  # scopes are separate
        ("household", "p1", 2023),
        ("person", "p1", 2023),  # asked again
    ]
    with st.uow() as u:
        got = u.accounts.read_many(keys)
        want = {k: getattr(u.accounts, f"{k[0]}_year")(k[1], k[2]) for k in keys}
    assert got == want
    assert list(got) == list(dict.fromkeys(keys))
    assert all(got[k] == acc for k, acc in saved.items())
    assert got[("person", "p1", 2022)] == YearAccounts()


def test_registry_round_trip(store: SqlStore) -> None:
    a = Person(
        id="a",
        birth_date=date(1960, 2, 29),
        household="h1",
        tags=(
            TagSpan(tag="registered_poor", valid_from=date(2020, 1, 1), valid_to=date(2023, 6, 30)),
            TagSpan(tag="subsistence"),
            TagSpan(tag="monitored", valid_from=date(2023, 7, 1)),
        ),
    )
    b = Person(id="b", birth_date=date(2001, 1, 1), household="h1")
    with store.uow() as u:
        assert u.registry.upsert([a, b]) == 2
        u.commit()
    with store.uow() as u:
        assert u.registry.get("a") == a
        assert u.registry.get("b") == b
        assert u.registry.get("nobody") is None
    a2 = a.model_copy(update={"household": "h2", "tags": (TagSpan(tag="low_income"),)})
    with store.uow() as u:
        assert u.registry.upsert([a2]) == 1
        u.commit()
    with store.uow() as u:
        assert u.registry.get("a") == a2
        assert u.registry.get("b") == b


def test_registry_import_again_adds_a_version_only_for_a_change(store: SqlStore) -> None:
    """Importing the same persons again (every server start imports its registry file) adds
    no version; a person changed in any stored field (a tag's dates only) gets a new one."""
    a = Person(id="a", birth_date=date(1960, 2, 29), household="h1", tags=(
        TagSpan(tag="registered_poor", valid_from=date(2020, 1, 1)), TagSpan(tag="subsistence"),
    ), township="t1", village="v1")  # fmt: skip
    b = Person(id="b", birth_date=date(2001, 1, 1), household="h1")
    for _ in range(2):
        with store.uow() as u:
            u.registry.upsert([a, b])
            u.commit()
    with store.uow() as u:
        assert [len(u.registry.history(x)) for x in "ab"] == [1, 1]
    later = (TagSpan(tag="registered_poor", valid_from=date(2020, 2, 1)), a.tags[1])
    with store.uow() as u:
        u.registry.upsert([a.model_copy(update={"tags": later}), b])
        u.commit()
    with store.uow() as u:
        assert [len(u.registry.history(x)) for x in "ab"] == [2, 1]
        assert u.registry.get_many(["a", "b", "nobody"]) == {
            "a": a.model_copy(update={"tags": later}), "b": b,
        }  # fmt: skip


def test_registry_person_kept_by_its_rows(store: SqlStore, monkeypatch: Any) -> None:
    """A person read again from the same rows is the one already built (``registry._READ``:
    no pydantic validation per PreSettle); any change of the stored person (a tag's dates
    only) reads as the new person, never the kept one; the keep is bounded."""
    from adapters.store.sql import registry

    monkeypatch.setattr(registry, "_READ", {})
    a = Person(id="a", birth_date=date(1960, 2, 29), household="h1",
               tags=(TagSpan(tag="poor", valid_to=date(2023, 6, 30)),))  # fmt: skip
    with store.uow() as u:
        u.registry.upsert([a])
        u.commit()
    with store.uow() as u:
        first = u.registry.get_versioned("a")
    with store.trial_uow() as u:
        again = u.registry.get_versioned("a")
    assert first is not None and first == (a, 1) and again is first
    a2 = a.model_copy(update={"tags": (TagSpan(tag="poor", valid_to=date(2023, 7, 1)),)})
    with store.uow() as u:
        u.registry.upsert([a2])
        u.commit()
    with store.trial_uow() as u:
        assert u.registry.get_versioned("a") == (a2, 2)
        assert u.registry.get_versioned("nobody") is None
    b = Person(id="b", birth_date=date(2001, 1, 1), household="h2")
    with store.uow() as u:
        u.registry.upsert([b])
        u.commit()
    monkeypatch.setattr(registry, "_READ_MAX", 1)
    with store.uow() as u:
        assert u.registry.get("b") == b and len(registry._READ) == 1
        assert u.registry.get("a") == a2 and len(registry._READ) == 1


def test_registry_get_many_keeps_persons_by_their_rows(store: SqlStore, monkeypatch: Any) -> None:
    """``get_many`` builds a person once for the same rows (the packed stream reads the same
    persons every message) and reads any change of a stored person (a tag's dates only, a
    household) as the new person, never the kept one; the keep is bounded."""
    from adapters.store.sql import registry

    monkeypatch.setattr(registry, "_READ", {})
    a = Person(id="a", birth_date=date(1960, 2, 29), household="h1",
               tags=(TagSpan(tag="poor", valid_to=date(2023, 6, 30)),
                     TagSpan(tag="subsistence", valid_from=date(2020, 1, 1))))  # fmt: skip
    b = Person(id="b", birth_date=date(2001, 1, 1), household="h2", region="450900")
    with store.uow() as u:
        u.registry.upsert([a, b])
        u.commit()
    with store.trial_uow() as u:
        first = u.registry.get_many(["a", "b"])
    with store.trial_uow() as u:
        again = u.registry.get_many(["b", "a", "nobody"])
    assert first == {"a": a, "b": b} and again == first
    assert again["a"] is first["a"] and again["b"] is first["b"]
    a2 = a.model_copy(update={"tags": (TagSpan(tag="poor", valid_to=date(2023, 7, 1)),
                                       a.tags[1])})  # fmt: skip
    b2 = b.model_copy(update={"household": "h9"})
    with store.uow() as u:
        u.registry.upsert([a2, b2])
        u.commit()
    with store.trial_uow() as u:
        assert u.registry.get_many(["a", "b"]) == {"a": a2, "b": b2}
        assert u.registry.get("a") == a2  # get's keep and get_many's do not mix
    monkeypatch.setattr(registry, "_READ", {})
    monkeypatch.setattr(registry, "_READ_MAX", 1)
    with store.trial_uow() as u:
        assert u.registry.get_many(["a", "b"]) == {"a": a2, "b": b2}
        assert len(registry._READ) == 1


@pytest.mark.parametrize("kind", ["sql", "memory"])
def test_registry_get_many_reads_as_get(store: SqlStore, kind: str) -> None:
    """``get_many`` (the packed stream's one read of a message's persons) gives what ``get``
    gives, tags in order and every field, and leaves out unknown ids."""
    from adapters.store.memory import MemoryStore

    st: Any = store if kind == "sql" else MemoryStore()
    a = Person(id="a", birth_date=date(1960, 2, 29), household="h1",
               tags=(TagSpan(tag="registered_poor", valid_to=date(2023, 6, 30)),
                     TagSpan(tag="subsistence", valid_from=date(2020, 1, 1))))  # fmt: skip
    b = Person(id="b", birth_date=date(2001, 1, 1), household="h2", region="450900",
               township="Town", village="Village")  # fmt: skip
    many = [Person(id=f"m{i}", birth_date=date(1990, 1, 1), household="h3") for i in range(600)]
    with st.uow() as u:
        u.registry.upsert([a, b, *many])
        u.commit()
    with st.uow() as u:
        got = u.registry.get_many(["b", "nobody", "a", "a", *(p.id for p in many)])
        assert got == {"a": a, "b": b} | {p.id: p for p in many}  # more than one chunk of 500
        assert got["a"].tags == a.tags and got["b"].village == "Village"
        assert u.registry.get_many([]) == {}


def test_policy_versions_round_trip(store: SqlStore) -> None:
    text, _, _ = golden()
    table = parse_table(text, "yubei.yaml")
    at = datetime(2023, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    with store.uow() as u:
        v1 = u.policies.add(text, "yubei.yaml", table, at)
        v2 = u.policies.add(text, "again.yaml", table, at + timedelta(days=1))
        u.commit()
    assert (v1.version, v2.version) == (1, 2)
    with store.uow() as u:
        got = u.policies.all()
    assert got == [v1, v2]
    assert got[0].table == table and got[1].table == table
    assert got[0].effective_to == date(2023, 12, 31)


def test_settlement_record_round_trip(store: SqlStore) -> None:
    text, person, req = golden()
    svc = service(store.uow)
    svc.put_policy(text, "yubei.yaml")
    svc.import_registry([person])
    rec, replay = svc.settle("req-1", req)
    assert not replay
    assert rec.moves and all(isinstance(m, AccountMove) for m in rec.moves)
    assert rec.policy_version == svc.policy_versions()[0].version  # stored (0009), read back
    with store.uow() as u:
        assert u.settlements.by_id(rec.settlement_id) == rec
        assert u.settlements.by_request("req-1") == rec
        assert u.settlements.active_for_bill(req.hospital, req.id) == rec
        assert u.settlements.for_person("jiang", 2023) == [rec]
        assert u.settlements.for_person("jiang", None) == [rec]
        assert u.settlements.for_person("jiang", 2024) == []
        assert u.settlements.by_id("nope") is None
        assert u.settlements.by_request("nope") is None
        # the per-layer rows, queryable by fund
        assert u.settlements.by_fund("390100", 2023) == [(rec.settlement_id, "basic", 3479000)]
        assert u.settlements.by_fund("610100") == [(rec.settlement_id, "major_assistance", 1064700)]
    rev, _ = svc.reverse(settlement_id=rec.settlement_id, reversal_request_id="undo-1")
    with store.uow() as u:
        assert u.settlements.by_id(rec.settlement_id) == rev
        assert u.settlements.active_for_bill(req.hospital, req.id) is None
        assert u.settlements.by_fund("390100") == []
        with pytest.raises(NotFound):
            u.settlements.mark_reversed("nope", "x", datetime.now(UTC))


def test_duplicate_request_id_at_insert(store: SqlStore) -> None:
    """Two transactions adding the same request id: the later one gets DuplicateRequest (a
    Conflict) from ``add`` or at the latest from ``commit``, and writes nothing."""
    text, person, req = golden()
    svc = service(store.uow)
    svc.put_policy(text, "yubei.yaml")
    svc.import_registry([person])
    rec, _ = svc.settle("req-1", req)
    twin = replace(rec, settlement_id="other")
    dropped: list[object] = []
    sa.event.listen(store.engine, "invalidate", lambda *a: dropped.append(a))
    with pytest.raises(DuplicateRequest) as err, store.uow() as u:
        u.lock(*account_locks("jiang", "h-jiang", 2023))
        u.accounts.save_person_year("jiang", 2023, YearAccounts({"basic": LayerAccount(7)}, 7))
        u.settlements.add(twin)
        u.commit()
    assert isinstance(err.value, Conflict) and err.value.request_id == "req-1"
    assert dropped == []  # the failed transaction rolled back, its connection pooled again
    with store.uow() as u:
        assert u.settlements.by_id("other") is None
        assert u.settlements.by_request("req-1") == rec
        assert u.accounts.person_year("jiang", 2023).admissions == 1


# --- the service flow ------------------------------------------------------------------------


def test_service_flow_matches_memory_store(store: SqlStore) -> None:
    """Every use case through the SQL store gives exactly what the in-memory store gives."""
    text, person, req = golden()
    sql, mem = service(store.uow), service(MemoryStore().uow)

    def both(f: Any) -> Any:
        a, b = f(sql), f(mem)
        assert a == b
        return a

    v = both(lambda s: s.put_policy(text, "yubei.yaml"))
    assert v.version == 1
    both(lambda s: s.policy_versions())
    assert both(lambda s: s.import_registry([person])) == 1

    # the same person again changes nothing: none inserted or replaced, no ledger event (a
    # server start importing its registry again had appended an ImportRegistry event each time)
    def pending(s: Any) -> int:
        with s._uow() as u:
            return int(u.ledger.pending())

    events = both(pending)
    assert both(lambda s: s.import_registry([person])) == 0
    assert both(pending) == events
    both(lambda s: s.person("jiang"))
    before = both(lambda s: s.accounts("jiang", 2023))
    trial = both(lambda s: s.pre_settle(req))
    assert trial.net_selfpay == 562520
    rec, replay = both(lambda s: s.settle("req-1", req))
    assert not replay and rec.settlement == trial
    assert [r.pay for r in rec.settlement.layers] == [3479000, 1064700, 93780]
    # replay: same request id and bill -> the same settlement, nothing moves again
    again, replay = both(lambda s: s.settle("req-1", req))
    assert replay and again.settlement_id == rec.settlement_id and again == rec
    # the same request id with another bill is refused
    other = bill(req, "yubei-2", 4_000_000)
    for s in (sql, mem):
        with pytest.raises(Conflict):
            s.settle("req-1", other)
    # the same bill under a new request id is refused while it is settled
    for s in (sql, mem):
        with pytest.raises(Conflict):
            s.settle("req-x", req)
    after1 = both(lambda s: s.accounts("jiang", 2023))
    assert after1[1].admissions == 1
    # a second admission: the admission deductible and counts move on
    rec2, _ = both(lambda s: s.settle("req-2", other))
    assert rec2.settlement.admission_no == 2
    both(lambda s: s.list("jiang", 2023))
    both(lambda s: s.get(request_id="req-2"))
    # reverse the first: its moves come back out exactly, the second stays
    rev, replay = both(lambda s: s.reverse(request_id="req-1"))
    assert not replay and rev.status == "reversed"
    rev2, replay = both(lambda s: s.reverse(settlement_id=rec.settlement_id))
    assert replay and rev2 == rev  # idempotent
    # reverse the second too: back to the opening accounts, to the fen
    both(lambda s: s.reverse(settlement_id=rec2.settlement_id))
    end = both(lambda s: s.accounts("jiang", 2023))
    assert end[1].to_dict() == before[1].to_dict() and end[2].to_dict() == before[2].to_dict()
    assert end[1].admissions == 0
    # a reversed bill can be settled again
    rec3, replay = both(lambda s: s.settle("req-3", req))
    assert not replay and rec3.settlement == trial
    with pytest.raises(NotFound):
        sql.reverse(settlement_id="nope")
    with pytest.raises(NotFound):
        sql.get(request_id="nope")


def test_policy_supersede_and_overlap(store: SqlStore) -> None:
    text, _, _ = golden()
    svc = service(store.uow)
    svc.put_policy(text, "a.yaml")
    assert svc.put_policy(text, "a-again.yaml").unchanged  # the same text: nothing stored
    svc.put_policy(text + "\n# revised\n", "b.yaml")  # same region and start: supersedes
    shifted = text.replace("2023-01-01", "2023-03-01")
    assert shifted != text
    from engine.errors import PolicyError

    with pytest.raises(PolicyError):
        svc.put_policy(shifted, "c.yaml")  # overlaps the version in force
    assert [v.source_name for v in svc.policy_versions()] == ["a.yaml", "b.yaml"]
    # a fresh service over the same store sees the same table
    assert service(store.uow).policies().tables == svc.policies().tables


# --- all or nothing --------------------------------------------------------------------------


class FailAtCommit:
    """A unit of work that dies just before committing (power cut, crash)."""

    def __init__(self, uow: Any):
        self.u = uow
        self.accounts, self.settlements = uow.accounts, uow.settlements
        self.registry, self.policies = uow.registry, uow.policies
        self.ledger = uow.ledger
        self.funds, self.claims = uow.funds, uow.claims
        self.reconciliation = uow.reconciliation

    def __enter__(self) -> FailAtCommit:
        return self

    def __exit__(self, *exc: object) -> None:
        self.u.__exit__(*exc)

    def lock(self, *keys: LockKey, **kw: Any) -> None:
        self.u.lock(*keys, **kw)

    def together(self) -> Any:
        return self.u.together()

    def settle_reads(
        self, request_id: str, person_id: str, hospital: str, bill_id: str, year: Any = None
    ) -> Any:
        return self.u.settle_reads(request_id, person_id, hospital, bill_id, year)

    def settle_reads_many(self, calls: Any, years: Any = None) -> Any:
        return self.u.settle_reads_many(calls, years)

    def kept(self) -> dict[Any, Any] | None:
        return self.u.kept()

    def rollback(self) -> None:
        self.u.rollback()

    def commit(self) -> None:
        raise RuntimeError("crash before commit")


def test_nothing_written_without_commit(store: SqlStore) -> None:
    text, person, req = golden()
    svc = service(store.uow)
    svc.put_policy(text, "yubei.yaml")
    svc.import_registry([person])
    before = svc.accounts("jiang", 2023)
    failing = SettlementService(lambda: FailAtCommit(store.uow()), clock=Clock(), new_id=ids())
    with pytest.raises(RuntimeError, match="crash"):
        failing.settle("req-1", req)
    assert svc.list("jiang") == []
    assert svc.accounts("jiang", 2023) == before
    with store.uow() as u:
        assert u.settlements.by_request("req-1") is None
    # the real thing still works afterwards, and a failing reversal changes nothing
    rec, _ = svc.settle("req-1", req)
    settled = svc.accounts("jiang", 2023)
    with pytest.raises(RuntimeError, match="crash"):
        failing.reverse(settlement_id=rec.settlement_id)
    assert svc.get(rec.settlement_id).status == "settled"
    assert svc.accounts("jiang", 2023) == settled


def test_failure_inside_a_transaction_rolls_back_everything(store: SqlStore) -> None:
    """A database error half-way (a bad move row after the settlement row and the accounts
    were written) leaves nothing behind."""
    text, person, req = golden()
    svc = service(store.uow)
    svc.put_policy(text, "yubei.yaml")
    svc.import_registry([person])
    rec, _ = svc.settle("req-1", req)
    bad = replace(
        rec,
        settlement_id="bad",
        request_id="req-bad",
        settlement=replace(rec.settlement, bill_id="other-bill"),
        # a scope the schema refuses, on purpose: the failure half-way
        moves=(*rec.moves, AccountMove("nonsense", "x", 2023, "basic", LayerAccount(1, 0, 0, 0))),  # type: ignore[arg-type]
    )
    with pytest.raises(sa.exc.IntegrityError), store.uow() as u:
        u.lock(*account_locks("jiang", "h-jiang", 2023))
        u.accounts.save_person_year("jiang", 2023, YearAccounts({"basic": LayerAccount(9)}, 9))
        u.registry.upsert([person.model_copy(update={"household": "elsewhere"})])
        u.settlements.add(bad)
        u.commit()
    with store.uow() as u:
        assert u.settlements.by_id("bad") is None
        assert u.accounts.person_year("jiang", 2023).admissions == 1
        assert u.registry.get("jiang") == person
    # an exception in the caller before commit: likewise
    with pytest.raises(KeyError), store.uow() as u:
        u.accounts.save_person_year("jiang", 2023, YearAccounts())
        raise KeyError("boom")
    assert svc.accounts("jiang", 2023)[1].admissions == 1


# --- durability and migrations ---------------------------------------------------------------


def test_restart_loses_no_committed_settlement(db_url: str) -> None:  # noqa: F811
    text, person, req = golden()
    s1 = SqlStore(db_url)
    svc = service(s1.uow)
    svc.put_policy(text, "yubei.yaml")
    svc.import_registry([person])
    recs = [svc.settle(f"req-{i}", bill(req, f"b{i}", 1_000_000 * (i + 1)))[0] for i in range(3)]
    svc.reverse(request_id="req-1")
    listed = svc.list("jiang", 2023)
    accounts = svc.accounts("jiang", 2023)
    # a writer that dies mid-transaction: its connection goes away without a commit
    dying = s1.uow()
    dying.accounts.save_person_year("jiang", 2023, YearAccounts())
    dying.conn().invalidate()
    dying.rollback()
    s1.dispose()
    s2 = SqlStore(db_url)  # migrating again is a no-op
    try:
        svc2 = service(s2.uow)
        assert svc2.list("jiang", 2023) == listed
        assert [r.settlement_id for r in listed] == [r.settlement_id for r in recs]
        assert svc2.accounts("jiang", 2023) == accounts
        assert [v.version for v in svc2.policy_versions()] == [1]
        again, replay = svc2.settle("req-2", bill(req, "b2", 3_000_000))
        assert replay and again == recs[2]
    finally:
        s2.dispose()


def test_migrations_match_schema(store: SqlStore) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from alembic.script import ScriptDirectory

    with store.engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), schema.metadata
        )
        rev = MigrationContext.configure(conn).get_current_revision()
    assert diff == []
    assert rev == ScriptDirectory.from_config(alembic_config()).get_current_head()
    upgrade(store.engine)  # idempotent


def test_sqlite_settings(tmp_path: Path) -> None:
    s = SqlStore(f"sqlite:///{tmp_path / 'a' / 'b.db'}")
    try:
        with s.engine.connect() as c:
            assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert c.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            busy_timeout = c.exec_driver_sql("PRAGMA busy_timeout").scalar()
            assert busy_timeout is not None and busy_timeout >= 1000
            assert c.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    finally:
        s.dispose()
    assert (tmp_path / "a" / "b.db").exists()
    s2 = SqlStore(f"sqlite:///{tmp_path / 'c.db'}?synchronous=normal")
    with s2, s2.engine.connect() as c:
        assert c.exec_driver_sql("PRAGMA synchronous").scalar() == 1


def test_in_memory_sqlite_flow() -> None:
    text, person, req = golden()
    with SqlStore("sqlite://") as store:
        svc = service(store.uow)
        svc.put_policy(text, "yubei.yaml")
        svc.import_registry([person])
        rec, _ = svc.settle("r", req)
        assert svc.get(request_id="r") == rec


def test_url_forms() -> None:
    from adapters.store.sql import make_engine, normalize_url

    assert normalize_url("postgresql://u:p@h/db").drivername == "postgresql+psycopg"
    assert normalize_url("postgres://u@h:5433/db").drivername == "postgresql+psycopg"
    assert normalize_url("postgresql+psycopg://u@h/db").drivername == "postgresql+psycopg"
    assert normalize_url(normalize_url("postgres://u:s3cret@h/db")).password == "s3cret"
    assert make_engine(normalize_url("postgresql://u:s3cret@h/db")).url.password == "s3cret"
    with pytest.raises(ValueError, match="only sqlite"):
        SqlStore("mysql://u@h/db", migrate=False)


def test_postgres_missing_skips_locally_but_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests import pg

    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="cannot run in CI"):
        pg.unavailable("no binaries")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception):
        pg.unavailable("no binaries")


# --- strings that PostgreSQL cannot hold ------------------------------------------------------


def _every_row(store: SqlStore) -> dict[str, list[str]]:
    with store.engine.connect() as c:
        return {
            t.name: sorted(repr(tuple(r)) for r in c.execute(sa.select(t)))
            for t in schema.metadata.sorted_tables
        }


#: field -> change to a bill (as plain data) that puts a NUL (or a control character) in it
NUL_IN_BILL = {
    "id": lambda d: d.update(id="yubei\x00-2"),
    "person_id": lambda d: d.update(person_id="jiang\x00"),
    "hospital_level": lambda d: d.update(hospital_level="level2\x00"),
    "region": lambda d: d.update(region="500112\x00"),
    "items[0].code": lambda d: d["items"][0].update(code="A\x00"),
    "items[1].name": lambda d: d["items"][1].update(name="out\x00"),
}
NUL_IN_PERSON: dict[str, dict[str, Any]] = {
    "persons[0].id": {"id": "li\x00"},
    "persons[0].household": {"household": "h-li\x00"},
    "persons[0].tags[0].tag": {"tags": ["low_income_edge\x00"]},
}


def test_nul_is_bad_input_on_every_store_and_writes_nothing(store: SqlStore) -> None:
    """A NUL in any string that reaches SQL is an InputError naming the field, on SQLite and on
    PostgreSQL (which gave INTERNAL: text fields cannot contain NUL), before anything is
    written; lookups by such a key are input errors too, not database errors."""
    from adapters.grpc import convert as cv

    text, person, req = golden()
    svc = service(store.uow)
    svc.put_policy(text, "yubei.yaml")
    svc.import_registry([person])
    rec, _ = svc.settle("req-1", req)
    before = _every_row(store)
    for field, change in NUL_IN_BILL.items():
        data = req.model_dump()
        data["id"] = "yubei-2"
        change(data)
        with pytest.raises(InputError) as e:
            svc.settle("req-2", parse_bill_request(data))
        assert [p.field for p in e.value.problems] == [field]
    other = bill(req, "yubei-3", 100)
    calls = {
        "settle request_id": (lambda: svc.settle("req\x00-3", other), "request_id"),
        "settle request_id with a tab": (lambda: svc.settle("req\t3", other), "request_id"),
        "pre_settle person": (
            lambda: svc.pre_settle(parse_bill_request({**other.model_dump(), "person_id": "j\x00"})),
            "person_id",
        ),
        "reverse by id": (lambda: svc.reverse(settlement_id=rec.settlement_id + "\x00"),
                          "settlement_id"),
        "reverse by request": (lambda: svc.reverse(request_id="req-1\x00"), "request_id"),
        "reversal request id": (
            lambda: svc.reverse(request_id="req-1", reversal_request_id="rv\x00"),
            "reversal_request_id",
        ),
        "get by id": (lambda: svc.get(settlement_id="\x00"), "settlement_id"),
        "get by request": (lambda: svc.get(request_id="req-1\x00"), "request_id"),
        "list": (lambda: svc.list("jiang\x00", 2023), "person_id"),
        "accounts": (lambda: svc.accounts("jiang\x00", 2023), "person_id"),
        "person": (lambda: svc.person("jiang\x00"), "person_id"),
    }  # fmt: skip
    for name, (call, field) in calls.items():
        with pytest.raises(InputError) as e:
            call()
        assert [p.field for p in e.value.problems] == [field], name
    for field, values in NUL_IN_PERSON.items():
        msg = cv.person_to_pb({"id": "li", "birth_date": "1980-01-01", "household": "h-li",
                               **values})  # fmt: skip
        with pytest.raises(InputError) as e:
            svc.import_registry(cv.persons([msg]))
        assert [p.field for p in e.value.problems] == [field]
    assert _every_row(store) == before
    assert svc.get(rec.settlement_id).status == "settled"


@pytest.mark.postgres
def test_pg_array_literals_round_trip(pg_url: str) -> None:  # noqa: F811
    """The arrays the PostgreSQL hot path sends as literals (``rows.pg_array``) come back as
    they went in: text with quotes, backslashes, braces, commas, blanks, the word NULL and
    non-ASCII; NULL elements; int64 extremes; an empty array."""
    import numpy as np

    from adapters.store.sql.rows import pg_array
    from tests.pg import fresh_database

    texts = ['a"b', "back\\slash", "{br,ace}", " spaced ", "NULL", "", "医保", None, "x'y"]
    ints: list[int | np.int64 | None] = [0, -1, 2**63 - 1, -(2**63), np.int64(7), None]
    eng = sa.create_engine(fresh_database(pg_url))
    try:
        with eng.connect() as c:
            got = c.execute(
                sa.text("SELECT CAST(:t AS text[]), CAST(:i AS bigint[]), CAST(:e AS integer[])"),
                {"t": pg_array(texts), "i": pg_array(ints), "e": pg_array([])},
            ).one()
    finally:
        eng.dispose()
    assert list(got) == [texts, [int(v) if v is not None else None for v in ints], []]
    with pytest.raises(TypeError):
        pg_array([1.5])


def test_layer_ids_with_awkward_text_round_trip(store: SqlStore) -> None:
    """Account rows keyed by layer ids that need quoting in an array literal, on both stores."""
    odd = YearAccounts(
        layers={'q"uote': LayerAccount(1, 2, 3, 4), "b\\s,{x}": LayerAccount(5, 6, 7, 8)},
        admissions=2,
    )
    with store.uow() as u:
        u.lock(*account_locks("p-odd", "h-odd", 2024))
        u.accounts.save_person_year("p-odd", 2024, odd)
        u.commit()
    with store.uow() as u:
        assert u.accounts.person_year("p-odd", 2024) == odd


def _pg_settle_schema(c: sa.Connection) -> tuple[bool, list[str], list[str]]:
    """(onestop_lock_read exists, the compression of settlements.bill/.settlement, the
    reversal indexes' definitions)."""
    fn = c.exec_driver_sql("SELECT count(*) FROM pg_proc WHERE proname = 'onestop_lock_read'")
    comp = c.exec_driver_sql(
        "SELECT attcompression FROM pg_attribute WHERE attrelid = 'settlements'::regclass "
        "AND attname IN ('bill', 'settlement') ORDER BY attname"
    )
    idx = c.exec_driver_sql(
        "SELECT indexdef FROM pg_indexes WHERE indexname IN "
        "('ix_settlements_reversal_request', 'ix_settlements_hospital_reversed') ORDER BY 1"
    )
    return fn.scalar() == 1, [r[0] for r in comp], [r[0] for r in idx]


@pytest.mark.postgres
def test_pg_migrations_0010_to_0012_downgrade_and_upgrade_again(pg_url: str) -> None:  # noqa: F811
    """The settle migrations on a real PostgreSQL: at head the lock-and-read function, lz4
    for the settlement's JSON and the partial reversal indexes; downgraded to 0009 none of
    them (pglz, whole indexes); upgraded again all of them."""
    from alembic import command

    from adapters.store.sql.connect import migration_transaction
    from tests.pg import fresh_database

    eng = sa.create_engine(fresh_database(pg_url))

    def down(rev: str) -> None:
        cfg = alembic_config()
        with migration_transaction(eng) as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, rev)

    try:
        upgrade(eng)
        with eng.connect() as c:
            fn, comp, idx = _pg_settle_schema(c)
        assert fn and comp == ["l", "l"] and len(idx) == 2
        assert all(d.endswith(" IS NOT NULL)") for d in idx), idx
        down("0009")
        with eng.connect() as c:
            fn, comp, idx = _pg_settle_schema(c)
        assert not fn and comp == ["p", "p"] and len(idx) == 2
        assert not any("WHERE" in d for d in idx), idx
        upgrade(eng)
        with eng.connect() as c:
            assert _pg_settle_schema(c)[:2] == (True, ["l", "l"])
            assert all(d.endswith(" IS NOT NULL)") for d in _pg_settle_schema(c)[2])
    finally:
        eng.dispose()


@pytest.mark.postgres
def test_pg_migration_0013_drops_the_bill_id_index_and_builds_it_again(
    pg_url: str,  # noqa: F811
) -> None:
    """0013 on a real PostgreSQL: at head ``settlements`` has no index on ``bill_id`` alone
    (a Settle's insert writes one index fewer; the bill is read by the active bill's unique
    index); downgraded to 0012 the index is back, upgraded again it is gone."""
    from alembic import command

    from adapters.store.sql.connect import migration_transaction
    from tests.pg import fresh_database

    eng = sa.create_engine(fresh_database(pg_url))

    def indexes() -> list[str]:
        with eng.connect() as c:
            q = "SELECT indexname FROM pg_indexes WHERE tablename = 'settlements' ORDER BY 1"
            return [r[0] for r in c.exec_driver_sql(q)]

    try:
        upgrade(eng)
        at_head = indexes()
        assert "ix_settlements_bill_id" not in at_head and "uq_settlements_active_bill" in at_head
        with migration_transaction(eng) as conn:
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0012")
        assert indexes() == sorted([*at_head, "ix_settlements_bill_id"])
        upgrade(eng)
        assert indexes() == at_head
    finally:
        eng.dispose()


@pytest.mark.postgres
def test_pg_migration_0015_stores_the_request_and_result_as_text(pg_url: str) -> None:  # noqa: F811
    """0015 on a real PostgreSQL: at head ``settlements.bill`` and ``.settlement`` are ``text``
    (lz4 kept), holding the compact JSON the store writes, and a settlement reads back whole
    (by id, by request id: an idempotent retry); downgraded to 0014 they are ``json`` again
    with the stored values intact (the record reads back the same), and a Settle stores into
    them; upgraded again, both settlements read back the same."""
    from alembic import command

    from adapters.store.sql.connect import migration_transaction
    from adapters.store.sql.rows import compact_bytes
    from tests.pg import fresh_database

    store = SqlStore(fresh_database(pg_url))

    def columns() -> list[tuple[str, str, str]]:
        with store.engine.connect() as c:
            q = ("SELECT attname::text, format_type(atttypid, atttypmod), attcompression::text "
                 "FROM pg_attribute WHERE attrelid = 'settlements'::regclass "
                 "AND attname IN ('bill', 'settlement') ORDER BY attname")  # fmt: skip
            return [tuple(r) for r in c.exec_driver_sql(q)]

    def down(rev: str) -> None:
        cfg = alembic_config()
        with migration_transaction(store.engine) as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, rev)

    try:
        text, person, req = golden()
        svc = service(store.uow)
        svc.put_policy(text, "yubei.yaml")
        svc.import_registry([person])
        rec, _ = svc.settle("req-1", req)
        assert columns() == [("bill", "text", "l"), ("settlement", "text", "l")]
        with store.engine.connect() as c:
            stored = c.exec_driver_sql("SELECT bill, settlement FROM settlements").one()
        assert stored[0] == compact_bytes(rec.bill).decode()
        assert stored[1] == compact_bytes(rec.settlement.to_dict()).decode()
        down("0014")
        assert columns() == [("bill", "json", "l"), ("settlement", "json", "l")]
        with store.uow() as u:
            assert u.settlements.by_id(rec.settlement_id) == rec
        # the lock function this code's Settle calls (0016) for the one Settle at 0014
        lock_person = importlib.import_module(
            "adapters.store.migrations.versions.0016_lock_read_person"
        )
        with store.engine.begin() as c:
            c.exec_driver_sql(lock_person.CREATE)
        rec2, _ = svc.settle("req-2", bill(req, "b-0014", 2_000_000))
        with store.engine.begin() as c:
            c.exec_driver_sql("DROP FUNCTION onestop_lock_read_person(text, integer)")
        upgrade(store.engine)
        assert columns() == [("bill", "text", "l"), ("settlement", "text", "l")]
        again, replay = svc.settle("req-1", req)
        assert replay and again == rec
        with store.uow() as u:
            assert u.settlements.by_request("req-2") == rec2
            assert u.settlements.for_person("jiang", None) == [rec, rec2]
    finally:
        store.dispose()


@pytest.mark.postgres
def test_pg_lock_read_equals_the_plain_read(
    pg_url: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``onestop_lock_read`` (a Settle's account locks and their read in one statement) reads
    what ``read_many`` reads: layers with awkward ids, admissions, missing rows (created at
    0 by the lock, read as empty); with a fund lock before it, in one round trip."""
    from tests.pg import fresh_database

    store = SqlStore(fresh_database(pg_url))
    try:
        full = YearAccounts(
            layers={'q"uote': LayerAccount(1, 2, 3, 4), "b\\s,{x}": LayerAccount(5, 6, 7, -8)},
            admissions=3,
        )
        with store.uow() as u:
            u.lock(*account_locks("p1", "h1", 2024))
            u.accounts.save_person_year("p1", 2024, full)
            u.accounts.save_household_year("h1", 2024, replace(full, admissions=1))
            u.commit()
        keys: list[tuple[Literal["person", "household"], str, int]] = [
            ("person", "p1", 2024), ("household", "h1", 2024), ("person", "p2", 2024),
            ("household", "h 2", 2023)]  # fmt: skip
        with store.uow() as u:
            want = u.accounts.read_many(keys)
        assert want[("person", "p1", 2024)] == full
        lock_sets: list[list[LockKey]] = [
            [("person", k, y) if s == "person" else ("household", k, y) for s, k, y in keys],
            [("fund", "R/F1", 2024), *account_locks("p1", "h1", 2024)],
        ]
        for locks in lock_sets:
            read = [k for k in keys if (k[0], k[1], k[2]) in set(locks)]
            with store.uow() as u:
                # the lock's own read, not read_many's
                monkeypatch.setattr(u.accounts, "read_many", None)
                u.lock(*locks, read=read)
                assert not u._pending
                got = {k: u.accounts.person_year(k[1], k[2]) if k[0] == "person"
                       else u.accounts.household_year(k[1], k[2]) for k in read}  # fmt: skip
                assert got == {k: want[k] for k in read}
                assert all(u.holds(*k) for k in read)
                u.commit()
    finally:
        store.dispose()


@pytest.mark.postgres
def test_pg_lock_read_locks_a_row_without_writing_it(pg_url: str) -> None:  # noqa: F811
    """``onestop_lock_read`` (migration 0014) holds the lock of an account-year that exists
    without writing a new version of its row (0011's ``ON CONFLICT DO UPDATE`` wrote one on
    every Settle): the row stays where it was, another transaction cannot lock it (by the
    function's lock nor by ``lock``'s INSERT) until the holder ends, and a missing row is
    created at 0 and locked. Downgraded to 0013 the function writes the row again (0011's
    body); upgraded again it does not."""
    from alembic import command

    from adapters.store.sql.connect import migration_transaction
    from tests.pg import fresh_database

    url = fresh_database(pg_url)
    store = SqlStore(url)
    other = sa.create_engine(url)
    where = "FROM person_years WHERE person_id = 'p1' AND year = 2024"

    def version() -> tuple[str, str]:
        with other.connect() as c:
            return tuple(c.exec_driver_sql(f"SELECT ctid::text, xmin::text {where}").one())

    def locked_elsewhere() -> list[bool]:
        got = []
        for sql in (f"SELECT 1 {where} FOR NO KEY UPDATE",
                    "INSERT INTO person_years (person_id, year, admissions) VALUES ('p1', 2024, 0) "
                    "ON CONFLICT (person_id, year) DO UPDATE SET admissions = person_years.admissions"):  # fmt: skip
            with other.connect() as c:
                c.exec_driver_sql("SET lock_timeout = '200ms'")
                try:
                    c.exec_driver_sql(sql)
                    got.append(False)
                except sa.exc.OperationalError as err:
                    assert "lock timeout" in str(err), err
                    got.append(True)
                c.rollback()
        return got

    def lock_and_read(y: int = 2024) -> None:
        with store.uow() as u:
            keys = account_locks("p1", "h1", y)
            u.lock(*keys, read=[(k[0], k[1], k[2]) for k in keys])
            assert u.holds("person", "p1", y) and u.holds("household", "h1", y)
            if y == 2024:
                assert u.accounts.person_year("p1", y) == acc
                assert locked_elsewhere() == [True, True]
            u.commit()

    try:
        acc = YearAccounts(layers={"L1": LayerAccount(1, 2, 3, 4)}, admissions=2)
        with store.uow() as u:
            u.lock(*account_locks("p1", "h1", 2024))
            u.accounts.save_person_year("p1", 2024, acc)
            u.commit()
        before = version()
        lock_and_read()
        assert version() == before  # locked and read, not written
        assert locked_elsewhere() == [False, False]  # released at commit
        lock_and_read(2031)  # missing rows: created at 0 under the lock
        with store.uow() as u:
            assert u.accounts.read_many([("person", "p1", 2031)]) == {
                ("person", "p1", 2031): YearAccounts()
            }
        cfg = alembic_config()
        with migration_transaction(store.engine) as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0013")
        before = version()
        lock_and_read()
        assert version() != before  # 0011: a new version of the row on every lock
        upgrade(store.engine)
        before = version()
        lock_and_read()
        assert version() == before
    finally:
        other.dispose()
        store.dispose()


@pytest.mark.postgres
def test_pg_units_of_work_one_after_another_reuse_the_last_connection(
    pg_url: str,  # noqa: F811
) -> None:
    """The PostgreSQL pool hands out the connection returned last (LIFO): units of work one
    after another run on one backend, its caches and prepared statements warm, instead of
    going round every pooled connection in turn (FIFO: thread CPU a Settle in process -6 to
    -17 %, PostgreSQL's -4 to -8 %, benchmarks/README.md, settlepg6)."""
    from tests.pg import fresh_database

    store = SqlStore(fresh_database(pg_url))

    def backend(u: Any) -> int:
        return int(u.run("SELECT pg_backend_pid()").fetchone()[0])

    try:
        with store.uow() as a, store.uow() as b:  # two connections in the pool
            assert backend(a) != backend(b)
        pids = []
        for _ in range(4):
            with store.uow() as u:
                pids.append(backend(u))
        assert len(set(pids)) == 1, pids
    finally:
        store.dispose()


@pytest.mark.postgres
def test_pg_a_thread_keeps_its_connection_across_units_of_work(pg_url: str) -> None:  # noqa: F811
    """A thread's units of work one after another run on the connection it checked out first
    (in autocommit: no checkout, return or flips a Settle, settlepg8), a unit of work inside
    another on one from the pool; one that made a ``Connection`` returns it to the pool, out of
    autocommit; at most ``HELD_MAX`` live threads keep one, those of ended threads go back to
    the pool when another thread takes a place; ``dispose`` closes them all."""
    from adapters.store.sql.store import HELD_MAX
    from tests.pg import fresh_database

    url = fresh_database(pg_url)
    store = SqlStore(url)
    pool = store.engine.pool
    assert isinstance(pool, sa.QueuePool)  # make_engine's pool for PostgreSQL

    def backend(u: Any) -> int:
        return int(u.run("SELECT pg_backend_pid()").fetchone()[0])

    def backends() -> int:
        eng = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
        try:
            with eng.connect() as c:
                n = c.execute(sa.text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = :d "
                    "AND pid <> pg_backend_pid()"), {"d": sa.make_url(url).database}).scalar()  # fmt: skip
                assert n is not None
                return int(n)
        finally:
            eng.dispose()

    try:
        pids = []
        for _ in range(3):
            with store.uow() as u:
                pids.append(backend(u))
                with store.uow() as inner:  # the held one is busy: one from the pool
                    assert backend(inner) != pids[-1]
                u.commit()
        assert len(set(pids)) == 1 and pool.checkedout() == 1
        with store.uow() as u:
            u.conn().exec_driver_sql("SELECT 1")  # a Connection on the held one: pooled after
        assert pool.checkedout() == 0
        with store.engine.connect() as c:  # the pool's connections out of autocommit
            dbapi = c.connection.dbapi_connection
            assert dbapi is not None and dbapi.autocommit is False
        with store.uow() as u:
            assert backend(u) > 0
        assert pool.checkedout() == 1

        gate, done = threading.Barrier(HELD_MAX + 2), threading.Event()

        def work() -> None:
            with store.uow() as u:
                backend(u)
            gate.wait(30)
            done.wait(30)

        threads = [threading.Thread(target=work) for _ in range(HELD_MAX + 1)]
        for t in threads:
            t.start()
        gate.wait(30)  # every thread past its unit of work, alive: this one and HELD_MAX - 1
        assert pool.checkedout() == HELD_MAX  # of them hold one
        done.set()
        for t in threads:
            t.join(30)

        def one() -> None:
            with store.uow() as u:
                backend(u)

        other = threading.Thread(target=one)
        other.start()
        other.join(30)  # the ended threads' connections back to the pool
        assert pool.checkedout() == 2  # this thread's, other's
        assert backends() >= 1
    finally:
        store.dispose()
    # A backend leaves pg_stat_activity when its process exits, after the client has closed
    # the socket: on a loaded machine that can come after the count's own connection is up.
    deadline = time.monotonic() + 10
    while (left := backends()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert left == 0


@pytest.mark.postgres
def test_pg_settle_reads_lock_early_and_start_over(pg_url: str) -> None:  # noqa: F811
    """``settle_reads`` with a year (PostgreSQL) holds the registered person's account locks
    and their accounts as read under them; a ``lock`` then asking for a lock that sorts
    before them (a fund-year, another household) starts the transaction over and takes every
    lock in the global order, instead of LockOrderError; nothing is locked early for a
    person not registered, nor once something is written."""
    from tests.pg import fresh_database

    store = SqlStore(fresh_database(pg_url))
    try:
        svc = SettlementService(store.uow)
        svc.import_registry(
            [Person.model_validate({"id": "p1", "birth_date": "1960-01-01", "household": "h1"})]
        )
        acc = YearAccounts(layers={"L1": LayerAccount(1, 2, 3, 4)}, admissions=2)
        with store.uow() as u:
            u.lock(*account_locks("p1", "h1", 2024))
            u.accounts.save_person_year("p1", 2024, acc)
            u.commit()
        befores: list[list[LockKey]] = [[], [("fund", "R/F1", 2024)], [("household", "h0", 2024)]]
        for before in befores:
            with store.uow() as u:
                pre = u.settle_reads("r1", "p1", "H", "b1", 2024)
                assert pre.person is not None and pre.found is None and pre.active_id is None
                assert u.holds("person", "p1", 2024) and u.holds("household", "h1", 2024)
                keys = [*before, *account_locks("p1", "h1", 2024)]
                u.lock(*keys, read=[("person", "p1", 2024), ("household", "h1", 2024)])
                assert all(u.holds(*k) for k in keys)
                assert u.accounts.person_year("p1", 2024) == acc
                u.accounts.save_person_year("p1", 2024, acc)  # written: kept from here on
                u.commit()
        with store.uow() as u:
            u.settle_reads("r1", "nobody", "H", "b1", 2024)
            assert not u._locked
    finally:
        store.dispose()


@pytest.mark.postgres
def test_pg_settlement_rows_equal_sqlites(pg_url: str, tmp_path: Path) -> None:  # noqa: F811
    """The moves and per-layer rows PostgreSQL stores from one JSON text each
    (``json_to_recordset``) equal, column by column, what SQLite stores row by row for the
    same settlement (the golden bill)."""
    from tests.pg import fresh_database

    got = []
    for url in (f"sqlite:///{tmp_path / 'ref.db'}", fresh_database(pg_url)):
        store = SqlStore(url)
        try:
            text, person, req = golden()
            svc = SettlementService(store.uow, clock=Clock(), new_id=ids())
            svc.put_policy(text, "yubei.yaml")
            svc.import_registry([person])
            svc.settle("req-1", req)
            with store.engine.connect() as c:
                got.append(
                    [
                        [tuple(r) for r in c.execute(sa.text(f"SELECT * FROM {t} ORDER BY 2"))]
                        for t in ("settlement_moves", "settlement_layers")
                    ]
                )
        finally:
            store.dispose()
    assert got[0] == got[1] and len(got[0][0]) > 1 and len(got[0][1]) > 1


@pytest.mark.postgres
@pytest.mark.parametrize(
    "held, steps", [(True, True), (False, True), (False, False)],
    ids=["one_write", "psycopg_pipeline", "one_write_without_the_steps"],
)  # fmt: skip
def test_pg_one_write_sends_a_pipeline_when_it_ends(
    pg_url: str,  # noqa: F811
    held: bool,
    steps: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``onewrite.one_write``: nothing of the pipeline reaches the server before it ends (a
    sequence's ``nextval``, which no transaction hides, has not moved; psycopg's own pipeline,
    the control, has sent and run it by then); at its end every statement runs in order, with
    the rows psycopg's pipeline gives, and an error is raised as psycopg raises it, the
    connection usable after. A psycopg without the private steps it overrides
    (``HELD_BACK`` false) gets psycopg's own pipeline from ``one_write``: the same results."""
    import time

    import psycopg

    from adapters.store.sql import onewrite
    from tests.pg import fresh_database

    monkeypatch.setattr(onewrite, "HELD_BACK", steps)
    one_write = onewrite.one_write
    control = not held and steps  # psycopg's own pipeline, called as itself

    engine = sa.create_engine(fresh_database(pg_url))
    try:
        a, b = engine.raw_connection(), engine.raw_connection()
        ra, rb = a.dbapi_connection, b.dbapi_connection
        assert isinstance(ra, psycopg.Connection) and isinstance(rb, psycopg.Connection)
        ra.autocommit = rb.autocommit = True
        ra.execute("CREATE SEQUENCE ow_seq")

        def seq() -> Any:
            return rb.execute("SELECT last_value, is_called FROM ow_seq").fetchone()

        with ra.pipeline() if control else one_write(ra):
            c1, c2 = psycopg.RawCursor(ra), psycopg.RawCursor(ra)
            c1.execute("SELECT nextval('ow_seq')")
            c2.execute("SELECT $1::int + 1, $2::text", [41, "x"])
            until = time.monotonic() + (0.5 if held else 10.0)
            while seq() == (1, False) and time.monotonic() < until:
                time.sleep(0.02)
            assert (seq() == (1, False)) is held
        assert c1.fetchall() == [(1,)] and c2.fetchall() == [(42, "x")]
        assert seq() == (1, True)
        with pytest.raises(psycopg.errors.DivisionByZero), one_write(ra):
            psycopg.RawCursor(ra).execute("SELECT nextval('ow_seq')")
            psycopg.RawCursor(ra).execute("SELECT 1 / $1::int", [0])
            psycopg.RawCursor(ra).execute("SELECT nextval('ow_seq')")  # aborted: not run
        assert seq() == (2, True)
        assert ra.execute("SELECT 7").fetchall() == [(7,)]
        # ``command``: BEGIN and COMMIT queued without a cursor, in order with the statements
        idle = psycopg.pq.TransactionStatus.IDLE
        with one_write(ra):
            onewrite.command(ra, b"BEGIN")
            c3 = psycopg.RawCursor(ra)
            c3.execute("SELECT nextval('ow_seq')")
            c4 = psycopg.RawCursor(ra)
            c4.execute("SELECT $1::int", [9])
            onewrite.command(ra, b"COMMIT")
        assert c3.fetchall() == [(3,)] and c4.fetchall() == [(9,)]
        assert ra.info.transaction_status == idle  # COMMIT ran (else: in the transaction)
        with pytest.raises(psycopg.errors.DivisionByZero), one_write(ra):
            onewrite.command(ra, b"BEGIN")
            psycopg.RawCursor(ra).execute("SELECT 1 / $1::int", [0])
            onewrite.command(ra, b"COMMIT")  # aborted after the error: not run
        # BEGIN ran (a pipeline's implicit transaction would have ended at its Sync)
        assert ra.info.transaction_status == psycopg.pq.TransactionStatus.INERROR
        ra.rollback()
        with pytest.raises(psycopg.errors.SyntaxError), one_write(ra):
            onewrite.command(ra, b"NOT A COMMAND")
        assert ra.execute("SELECT 8").fetchall() == [(8,)]
        # an error of the block's own: the pipeline still ends (what it queued runs, as in
        # psycopg's), the block's error is raised, the connection usable after
        kept = getattr(ra, onewrite._PIPE, None)
        with pytest.raises(KeyError), one_write(ra):
            psycopg.RawCursor(ra).execute("SELECT nextval('ow_seq')")
            raise KeyError("the block's")
        assert seq() == (4, True)
        with one_write(ra):
            c5 = psycopg.RawCursor(ra)
            c5.execute("SELECT $1::int", [10])
        assert c5.fetchall() == [(10,)]
        # the connection's one pipeline serves every trip (psycopg's: a new one each)
        assert (getattr(ra, onewrite._PIPE, None) is kept) and ((kept is not None) is steps)
        a.close()
        b.close()
    finally:
        engine.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("steps", [True, False])
def test_pg_one_write_statement_and_query(
    pg_url: str,  # noqa: F811
    steps: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``onewrite.statement`` and ``query`` in a ``one_write`` pipeline: the rows a
    ``RawCursor`` reads (NULLs, dates, big and small integers, text), the writes run in order;
    a statement runs unnamed its first ``prepare_threshold`` runs on a connection, then by a
    name of ours prepared there (``pg_prepared_statements``) with the same results; a
    prepare in a failed pipeline is forgotten (its runs counted again, then prepared under a
    new name); a rollback deallocates ours with psycopg's (psycopg's ``DEALLOCATE ALL``); after
    a ``DEALLOCATE ALL`` behind psycopg's back the first run fails as the server says and the
    next runs unnamed (counted anew). Without the private
    steps (``HELD_BACK`` false): psycopg's cursors, the same rows."""
    from datetime import date

    import psycopg

    from adapters.store.sql import onewrite
    from tests.pg import fresh_database

    monkeypatch.setattr(onewrite, "HELD_BACK", steps)
    engine = sa.create_engine(fresh_database(pg_url))
    try:
        conn = engine.raw_connection()
        raw = conn.dbapi_connection
        assert isinstance(raw, psycopg.Connection)
        raw.autocommit = True
        raw.execute("CREATE TABLE ow_t (k integer, v bigint, s text, d date)")
        ins = b"INSERT INTO ow_t (k, v, s, d) VALUES ($1, $2, $3, $4)"
        sel = b"SELECT k, v, s, d FROM ow_t WHERE k >= $1 ORDER BY k"

        def ours() -> set[str]:
            rows = raw.execute("SELECT name FROM pg_prepared_statements").fetchall()
            return {r[0] for r in rows if r[0].startswith("onestop_")}

        want: list[tuple[Any, ...]] = []
        after = raw.prepare_threshold
        assert after is not None
        for i in range(after + 2):
            v = (2**40 if i % 2 else -(2**40)) + i  # (one parameter type: one statement)
            row = (i, v, None if i == 3 else f"é{i}", date(2026, 1, 1 + i))
            want.append(row)
            with onewrite.one_write(raw):
                onewrite.command(raw, b"BEGIN")
                onewrite.statement(raw, ins, list(row))
                got = onewrite.query(raw, sel, [0])
                onewrite.command(raw, b"COMMIT")
            assert got.fetchall() == want
            assert len(ours()) == (0 if not steps or i < after else 2)
        cur = psycopg.RawCursor(raw)
        assert cur.execute(sel, [0]).fetchall() == want  # as a cursor reads them
        if not steps:
            return
        bad = b"SELECT 1 / $1::int"
        for _ in range(after):
            with onewrite.one_write(raw):
                onewrite.query(raw, bad, [1])
        with pytest.raises(psycopg.errors.DivisionByZero), onewrite.one_write(raw):
            onewrite.statement(raw, ins, [99, 2**40, "x", date(2026, 2, 1)])  # prepared: runs
            onewrite.query(raw, bad, [0])  # prepared now; the run fails
        names = ours()
        for _ in range(after + 1):  # its prepare forgotten: counted again
            with onewrite.one_write(raw):
                rows = onewrite.query(raw, bad, [1])
            assert rows.fetchall() == [(1,)]
        assert len(ours()) == len(names) + 1  # prepared again, by a new name
        # a rollback: psycopg deallocates its statements, and forgets ours with them
        with onewrite.one_write(raw):
            onewrite.command(raw, b"BEGIN")
            onewrite.statement(raw, ins, [98, 2**40, "x", date(2026, 2, 1)])
        assert ours()
        raw.rollback()
        assert not ours()
        for _ in range(after + 1):
            with onewrite.one_write(raw):
                onewrite.statement(raw, ins, [97, 2**40, "x", date(2026, 2, 1)])
        assert len(ours()) == 1
        raw.pgconn.exec_(b"DEALLOCATE ALL")  # behind psycopg's back
        with pytest.raises(psycopg.errors.InvalidSqlStatementName), onewrite.one_write(raw):
            onewrite.statement(raw, ins, [100, 2**40, "x", date(2026, 2, 1)])
        with onewrite.one_write(raw):
            onewrite.statement(raw, ins, [100, 2**40, "x", date(2026, 2, 1)])
            got = onewrite.query(raw, b"SELECT count(*) FROM ow_t WHERE k >= $1", [97])
        # (99, 98 and the first 100 went with their failed pipelines; 100 runs unnamed)
        assert got.fetchall() == [(after + 2,)] and not ours()
        conn.close()
    finally:
        engine.dispose()


def test_the_locked_psycopg_has_the_private_steps_onewrite_uses() -> None:
    """``onewrite`` sends a Settle's statements through psycopg's private pipeline steps and
    PrepareManager members; a psycopg without them takes the public (slower) path at once,
    correct but silently: this names the change when the lock moves to such a psycopg."""
    from adapters.store.sql import onewrite as ow

    assert ow._prepare_manager_kept(), "psycopg's PrepareManager lacks _names/_counts/_to_flush"
    assert ow.HELD_BACK, "psycopg.Pipeline lacks a private step onewrite relies on"
