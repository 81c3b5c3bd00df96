"""Group commit for Settle (README "How a call is served"): a group of settle calls in one
transaction answers every caller exactly as one-by-one settles would, on a SQLite file and on
a real PostgreSQL server.

- The same calls (several persons, two of one household, one person several times, a retry in
  the group, a request id reused for another bill, an unknown person, a bill settled twice,
  a bill outside every table) settled as one group and one by one on a second database give
  the same answers, records, accounts and ledger, the group in one commit.
- A twin committed by another process while the group waits for its locks fails the group's
  commit: the group is rolled back and its calls settled one by one, so only the twin's
  caller hears of it (as a replay). A twin committed between a call's own prepare reads (its
  request id, then its bill) makes that call the twin's replay too, never BillSettled.
- Nothing is answered before the commit that holds it; a commit that fails answers no one
  with a settlement.
- Through a real server: concurrent Settle calls land as a serial replay in commit order.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from adapters.store.sql import SqlStore
from engine.accounts import Opening
from engine.batch import reference_batch
from engine.bill import BillRequest, Person, parse_bill_request
from engine.errors import BillSettled, Conflict, InputError
from engine.service.digest import digest
from engine.service.groupcommit import GroupCommit, SettleCall
from engine.service.ledger import LedgerService
from engine.service.ports import SettleReads
from engine.service.usecases import SettlementService
from tests.pg import db_url, fresh_database, pg_url  # noqa: F401  (fixtures)
from tests.test_store_concurrency import MATE, PERSON, POLICY, request
from tests.test_store_sql import Clock, ids

OTHER = Person(id="q1", birth_date=date(1970, 1, 1), household="h9")


@pytest.fixture
def second_url(db_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:  # noqa: F811
    """A second empty database of the same kind as ``db_url`` (for the one-by-one run)."""
    if db_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'serial' / 'onestop.db'}"
    return fresh_database(request.getfixturevalue("pg_url"))


class Counting:
    """A store's unit-of-work factory that counts commits and can hook ``lock`` and
    ``commit`` (to let another process act, to hold or fail a commit)."""

    def __init__(self, store: SqlStore):
        self.store = store
        self.commits = 0
        self.on_lock: Callable[[], None] | None = None
        self.on_commit: Callable[[], None] | None = None
        #: replaces ``settle_reads_many`` (called with the unit of work and the original)
        self.on_reads: Callable[..., Any] | None = None

    def __call__(self) -> Any:
        uow = self.store.uow()
        outer = self
        lock, commit = uow.lock, uow.commit

        def hooked_lock(*keys: Any, **kw: Any) -> None:
            if outer.on_lock is not None:
                outer.on_lock()
            lock(*keys, **kw)

        def hooked_commit() -> None:
            if outer.on_commit is not None:
                outer.on_commit()
            commit()
            outer.commits += 1

        # the hooks replace this instance's methods (what a test hook is for)
        uow.lock, uow.commit = hooked_lock, hooked_commit  # type: ignore[method-assign]
        if self.on_reads is not None:
            reads, hook = uow.settle_reads_many, self.on_reads
            # a test hook, as above
            uow.settle_reads_many = partial(hook, uow, reads)  # type: ignore[method-assign]
        return uow


def service(url: str, group: GroupCommit | None = None) -> tuple[SettlementService, Counting]:
    uow = Counting(SqlStore(url))
    s = SettlementService(uow, clock=Clock(), new_id=ids(), group_commit=group)
    s.put_policy(POLICY, "concurrency.yaml")
    s.import_registry([PERSON, MATE, OTHER])
    s.pre_settle(request(0))  # warm the kernel
    uow.commits = 0
    return s, uow


@pytest.fixture
def two(db_url: str, second_url: str) -> Iterator[tuple[Any, Any]]:  # noqa: F811
    a, b = service(db_url), service(second_url)
    yield a, b
    for s, u in (a, b):
        s.close()
        u.store.dispose()


def calls() -> list[tuple[str, BillRequest]]:
    outside = request(4).model_copy(
        update={"admission_date": date(2025, 3, 1), "discharge_date": date(2025, 3, 9)}
    )
    return [
        ("r0", request(0, "p1")),
        ("r1", request(0, "p2")),  # the same household as p1
        ("r2", request(1, "p1")),
        ("r0", request(0, "p1")),  # a retry in the same group: the same settlement
        ("r0", request(5, "p1")),  # the request id of another bill: Conflict
        ("r5", request(2, "nobody")),  # not in the registry: InputError
        ("r6", request(1, "p1")),  # the bill of r2 again: BillSettled
        ("r7", request(2, "q1")),  # another household
        ("r8", request(3, "p1")),  # p1 again: sees r0 and r2's moves
        ("r9", outside),  # no table in force on its dates: InputError
        ("r10", request(4, "p2")),
    ]


def answer_of(f: Callable[[], Any]) -> Any:
    try:
        return f()
    except Exception as exc:
        return exc


def same(a: Any, b: Any) -> bool:
    if isinstance(a, Exception) or isinstance(b, Exception):
        return type(a) is type(b) and str(a) == str(b)
    return bool(a == b)


def test_a_group_answers_as_one_by_one_settles(two: Any) -> None:
    (grouped, gu), (serial, su) = two
    cs = calls()
    group = grouped.settle_group(
        [SettleCall(rid, r, "local", digest(r)) for rid, r in cs]
    )  # one transaction
    one_by_one = [answer_of(partial(serial.settle, rid, r)) for rid, r in cs]
    for i, (g, s) in enumerate(zip(group, one_by_one, strict=True)):
        assert same(g, s), (i, g, s)
    assert gu.commits == 1 and su.commits == 6  # six new settlements, one commit
    kinds = [type(a).__name__ if isinstance(a, Exception) else a[1] for a in group]
    assert kinds == [False, False, False, True, "Conflict", "InputError", "BillSettled",
                     False, False, "InputError", False]  # fmt: skip
    assert group[3][0].settlement_id == group[0][0].settlement_id
    for pid in ("p1", "p2", "q1"):
        assert grouped.list(pid) == serial.list(pid)
        for y in (2024, 2025):
            assert grouped.accounts(pid, y) == serial.accounts(pid, y)
    # and the figures are those of the reference, one bill at a time in commit order
    committed = sorted(grouped.list("p1") + grouped.list("p2") + grouped.list("q1"),
                       key=lambda r: r.created_at)  # fmt: skip
    persons, opening = {"p1": PERSON, "p2": MATE, "q1": OTHER}, Opening()
    for rec in committed:
        bill = BillRequest.model_validate(rec.bill).with_person(persons[rec.bill["person_id"]])
        out = reference_batch([bill], grouped.policies(), opening)
        assert out.settlements[0] == rec.settlement
        opening = out.closing
    # the ledger: the group's events, sealed, verify, and are the one-by-one run's
    for u in (gu, su):
        led = LedgerService(u.store.uow)
        led.seal()
        report, pending = led.verify()
        assert report.ok and pending == 0, report.problems
    ev = []
    for u in (gu, su):
        with u.store.uow() as x:
            ev.append([(e.method, e.subject) for e in x.ledger.events(1, 999)])
    assert ev[0] == ev[1] and len(ev[0]) >= 6


def test_a_twin_committed_meanwhile_fails_only_its_own_call(two: Any, db_url: str) -> None:  # noqa: F811
    """Another process commits a twin of one call (same request id and bill) that the group's
    reads miss (made here to read as before its commit; on PostgreSQL the reads take the
    group's locks, which the twin would wait for): the group's commit fails on the request
    id's unique index, the group is rolled back and settled one by one, and only that call's
    answer changes (a replay of the other process's settlement)."""
    (grouped, gu), _ = two
    other_store = SqlStore(db_url)
    other = SettlementService(other_store.uow, clock=Clock(), new_id=lambda: "other-1")
    twin: list[Any] = []

    def meanwhile(uow: Any, reads: Any, calls: Any, years: Any = None) -> Any:
        if not twin:  # once, before the group's reads (and the locks they may take)
            twin.append(other.settle("t1", request(6, "p2")))
        got = reads(calls, years)
        return [
            SettleReads(None, pre.person, None) if rid == "t1" else pre
            for pre, (rid, *_) in zip(got, calls, strict=True)
        ]

    gu.on_reads = meanwhile
    cs = [("t0", request(0, "p1")), ("t1", request(6, "p2")), ("t2", request(1, "p1"))]
    try:
        got = grouped.settle_group([SettleCall(rid, r, "local", digest(r)) for rid, r in cs])
    finally:
        other_store.dispose()
    assert twin and not twin[0][1]
    assert [type(a) for a in got] == [tuple, tuple, tuple], got
    assert got[1] == (twin[0][0], True)  # the twin: a replay of the other's settlement
    assert not got[0][1] and not got[2][1]
    assert gu.commits == 2  # the group's commit failed; t0 and t2 each committed alone
    assert [r.request_id for r in grouped.list("p1")] == ["t0", "t2"]
    assert [r.settlement_id for r in grouped.list("p2")] == ["other-1"]


def test_a_twin_committed_between_the_prepare_reads_is_answered_as_its_replay(
    two: Any,
    db_url: str,  # noqa: F811
) -> None:
    """Another process commits a twin of a call after the group's reads have looked up its
    request id and before they look for the bill's active settlement (each read its own
    snapshot on PostgreSQL). The call is the twin's retry, so it is answered as the replay of
    the twin's settlement, never BillSettled: the request id is read again."""
    (grouped, gu), _ = two
    other_store = SqlStore(db_url)
    other = SettlementService(other_store.uow, clock=Clock(), new_id=lambda: "other-1")
    twin: list[Any] = []

    def then_the_twin(uow: Any, reads: Any, calls: Any, years: Any = None) -> Any:
        # the twin commits before the group's reads (which may take the group's locks), and
        # t1's request id is read as if before that commit, its bill after it
        if not twin:
            twin.append(other.settle("t1", request(6, "p2")))
        got = reads(calls, years)
        return [
            SettleReads(None, pre.person, pre.active_id) if bid == request(6, "p2").id else pre
            for pre, (_rid, _pid, _hospital, bid) in zip(got, calls, strict=True)
        ]

    gu.on_reads = then_the_twin
    cs = [("t0", request(0, "p1")), ("t1", request(6, "p2"))]
    try:
        got = grouped.settle_group([SettleCall(rid, r, "local", digest(r)) for rid, r in cs])
    finally:
        other_store.dispose()
    assert twin and not twin[0][1]
    assert [type(a) for a in got] == [tuple, tuple], got
    assert got[1] == (twin[0][0], True)  # the twin's retry: a replay, not BillSettled
    assert not got[0][1]
    assert [r.settlement_id for r in grouped.list("p2")] == ["other-1"]
    assert [r.request_id for r in grouped.list("p1")] == ["t0"]


def test_one_bad_call_fails_alone_and_a_conflict_in_the_group_is_its_own(two: Any) -> None:
    (grouped, gu), _ = two
    cs = [("a", request(0, "p1")), ("b", request(0, "nobody")), ("a", request(1, "p1")),
          ("c", request(1, "p1"))]  # fmt: skip
    got = grouped.settle_group([SettleCall(rid, r, "local", digest(r)) for rid, r in cs])
    assert isinstance(got[1], InputError) and "person_id" in str(got[1])
    assert isinstance(got[2], Conflict) and not isinstance(got[2], BillSettled)
    assert not got[0][1] and not got[3][1]
    assert gu.commits == 1
    assert [r.request_id for r in grouped.list("p1")] == ["a", "c"]


def run_concurrently(fs: list[Callable[[], Any]]) -> list[Any]:
    with ThreadPoolExecutor(len(fs)) as pool:
        return [f.result(timeout=120) for f in [pool.submit(answer_of, f) for f in fs]]


def test_nothing_is_answered_before_the_commit(db_url: str) -> None:  # noqa: F811
    # the group seals at its 4th call: the four are one group however slowly their threads
    # start (with max_group 16 and 0.3 s, a loaded machine once split them into two commits)
    s, u = service(db_url, GroupCommit(max_group=4, max_wait=1.0))
    reader = SqlStore(db_url)
    entered, gate = threading.Event(), threading.Event()

    def hold() -> None:
        entered.set()
        assert gate.wait(60)

    u.on_commit = hold
    assert s.settle_writer is not None
    try:
        # another Settle in flight throughout: no call settles alone, all go to the writer
        with s.settle_writer.in_flight(), ThreadPoolExecutor(4) as pool:
            futures = [
                pool.submit(s.settle, f"w{i}", request(i, ("p1", "p2", "q1", "p1")[i]))
                for i in range(4)
            ]
            assert entered.wait(60)
            assert not any(f.done() for f in futures)  # in the commit: nobody answered yet
            with reader.uow() as look:
                assert all(look.settlements.by_request(f"w{i}") is None for i in range(4))
            gate.set()
            got = [f.result(timeout=60) for f in futures]
        assert u.commits == 1  # one group
        with reader.uow() as look:
            for i, (rec, replay) in enumerate(got):
                assert not replay and look.settlements.by_request(f"w{i}") == rec
    finally:
        gate.set()
        s.close()
        reader.dispose()
        u.store.dispose()


def test_a_failed_commit_answers_no_one_with_a_settlement(db_url: str) -> None:  # noqa: F811
    s, u = service(db_url, GroupCommit(max_group=16, max_wait=0.3))

    def fail() -> None:
        raise sa.exc.OperationalError("COMMIT", None, Exception("the server went away"))

    u.on_commit = fail
    try:
        got = run_concurrently(
            [partial(s.settle, f"f{i}", request(i, ("p1", "q1")[i % 2])) for i in range(4)]
        )
        assert all(isinstance(g, sa.exc.OperationalError) for g in got), got
        assert s.list("p1") == [] and s.list("q1") == []
        assert s.accounts("p1", 2024)[1].admissions == 0
        u.on_commit = None  # the database is back: the same requests settle, once
        again = run_concurrently(
            [partial(s.settle, f"f{i}", request(i, ("p1", "q1")[i % 2])) for i in range(4)]
        )
        assert all(not replay for _, replay in again)
        assert len(s.list("p1")) == 2 and len(s.list("q1")) == 2
    finally:
        s.close()
        u.store.dispose()


@pytest.mark.parametrize("writers", [1, 2])
def test_windows_of_one_household_at_once_land_as_a_serial_replay(
    db_url: str,  # noqa: F811
    writers: int,
) -> None:
    """Twelve windows at once for two members of one household, through the writer(s): with
    two writers two groups run at once and wait for each other's locks. The settlements and
    accounts are the reference's, one bill at a time in commit order."""
    s, u = service(db_url, GroupCommit(max_group=4, max_wait=0.01, writers=writers))
    try:
        jobs = [(f"h{i}", request(i, ("p1", "p2")[i % 2])) for i in range(12)]
        got = run_concurrently([partial(s.settle, rid, r) for rid, r in jobs])
        assert all(not isinstance(g, Exception) and not g[1] for g in got), got
        assert u.commits < len(jobs)  # grouped
        committed = sorted(s.list("p1") + s.list("p2"), key=lambda r: r.created_at)
        assert len(committed) == len(jobs)
        persons, opening = {"p1": PERSON, "p2": MATE}, Opening()
        for rec in committed:
            bill = BillRequest.model_validate(rec.bill).with_person(persons[rec.bill["person_id"]])
            out = reference_batch([bill], s.policies(), opening)
            assert out.settlements[0] == rec.settlement, rec.request_id
            opening = out.closing
        for pid in ("p1", "p2"):
            _, pa, ha = s.accounts(pid, 2024)
            assert pa.to_dict() == opening.person_year(pid, 2024).to_dict()
            assert ha.to_dict() == opening.household_year("h1", 2024).to_dict()
    finally:
        s.close()
        u.store.dispose()


# --- through a real server ------------------------------------------------------------------


def test_concurrent_settles_through_a_server_land_as_a_serial_replay(db_url: str) -> None:  # noqa: F811
    """16 windows at once (one person 8 times, her household's other member, a retry of one
    request, an unknown person) through the gRPC server with group commit: every call gets its
    own answer, the groups hold several calls, and the stored settlements and accounts are
    those of the reference settling the bills one at a time in commit order."""
    import grpc

    from adapters.grpc.convert import settlement_from_pb, year_accounts_from_pb
    from adapters.grpc.testing import CHAIN, CHAIN_PERSONS, chain_bill, served
    from engine.policy.load import parse_table
    from engine.policy.policyset import PolicySet

    group = GroupCommit(max_group=64, max_wait=0.02)
    with served(db_url, (CHAIN,), workers=16, group_commit=group) as (app, _, c):
        bills = [chain_bill(i, "wang", seed=4) for i in range(8)]
        bills += [chain_bill(i, "wang-wife", seed=6) for i in range(4)]
        jobs = [(b, f"g-{b['id']}") for b in bills]
        jobs += [(bills[0], f"g-{bills[0]['id']}")] * 2  # retries of the first
        jobs += [({**chain_bill(9, "wang"), "person_id": "nobody"}, "g-nobody")]
        jobs += [(chain_bill(20, "wang-wife", seed=6), "g-last")]
        got = run_concurrently([partial(c.settle, b, rid) for b, rid in jobs])
        bad = got[-2]
        assert isinstance(bad, grpc.RpcError)
        assert bad.code() == grpc.StatusCode.INVALID_ARGUMENT and "person_id" in bad.details()
        ok = [g for g in got if not isinstance(g, Exception)]
        assert len(ok) == len(jobs) - 1, [g for g in got if isinstance(g, Exception)]
        first = [g for g, (_, rid) in zip(got, jobs, strict=True) if rid == jobs[0][1]]
        assert len({g.settlement.settlement_id for g in first}) == 1
        assert sum(not g.replay for g in first) == 1
        writer = app.service.settle_writer
        # a call that found no other in flight settled alone; the others went to the writer,
        # which reads for its group (the unknown person and a retry after its twin's commit
        # are answered from those reads)
        assert writer is not None and 0 < writer.calls <= len(jobs)
        assert writer.groups < writer.calls  # grouped
        recs = sorted(c.list("wang", 2024) + c.list("wang-wife", 2024),
                      key=lambda r: r.created_at)  # fmt: skip
        assert len(recs) == 13
        by_id = {b["id"]: b for b, _ in jobs}
        persons = {p["id"]: Person.model_validate(p) for p in CHAIN_PERSONS}
        policies, opening = PolicySet.of([parse_table(CHAIN, "chain")]), Opening()
        for rec in recs:
            req = parse_bill_request(by_id[rec.result.bill_id])
            out = reference_batch([req.with_person(persons[req.person_id])], policies, opening)
            assert settlement_from_pb(rec.result) == out.settlements[0], rec.result.bill_id
            opening = out.closing
        for pid in ("wang", "wang-wife"):
            a = c.accounts(pid, 2024)
            assert (
                year_accounts_from_pb(a.person).to_dict()
                == opening.person_year(pid, 2024).to_dict()
            )
        a = c.accounts("wang", 2024)
        assert (
            year_accounts_from_pb(a.household_accounts).to_dict()
            == opening.household_year("h-wang", 2024).to_dict()
        )
        assert app.ledger is not None
        app.ledger.seal()
        report, pending = app.ledger.verify()
        assert report.ok and pending == 0, report.problems


def test_a_killed_server_has_every_settlement_it_answered(db_url: str, tmp_path: Path) -> None:  # noqa: F811
    """``onestop serve`` (group commit on: as shipped for SQLite, ``--group-max 64`` for
    PostgreSQL) killed with SIGKILL while 8 windows settle: started again over the same store,
    it has every settlement it answered."""
    import json
    import signal
    import subprocess
    import sys
    import time

    import grpc

    from adapters.grpc.client import Client
    from adapters.grpc.testing import CHAIN, CHAIN_PERSONS, chain_bill
    from tests.ports import start_server

    root = Path(__file__).resolve().parents[1]
    pol = tmp_path / "policies"
    pol.mkdir()
    (pol / "chain.yaml").write_text(CHAIN)
    reg = tmp_path / "registry.json"
    reg.write_text(json.dumps(CHAIN_PERSONS))
    log = tmp_path / "server.log"

    def popen(port: int) -> subprocess.Popen:
        cmd = [sys.executable, "-m", "adapters.grpc.commands", "serve", "--db", db_url,
               "--port", str(port), "--policies", str(pol), "--registry", str(reg),
               "--processes", "1", "--group-max", "64"]  # fmt: skip
        with log.open("ab") as out:
            return subprocess.Popen(cmd, cwd=root, stdout=out, stderr=subprocess.STDOUT)

    proc, port = start_server(popen, log)
    acked: list[tuple[str, str]] = []
    try:
        with Client(f"127.0.0.1:{port}", timeout=20) as c:
            c.wait_serving(180)
            stop = threading.Event()

            def window(k: int) -> None:
                i = 0
                while not stop.is_set():
                    rid = f"k{k}-{i}"
                    person = ("wang", "wang-wife")[k % 2]
                    try:
                        r = c.settle(chain_bill(100 * k + i, person, seed=k), rid)
                    except grpc.RpcError:
                        return  # the server is gone
                    acked.append((rid, r.settlement.settlement_id))
                    i += 1

            threads = [threading.Thread(target=window, args=(k,)) for k in range(8)]
            for t in threads:
                t.start()
            deadline = time.monotonic() + 60
            while len(acked) < 24 and time.monotonic() < deadline:
                time.sleep(0.05)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            stop.set()
            for t in threads:
                t.join(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert len(acked) >= 24, log.read_text()
    assert "group commit up to 64 Settle calls" in log.read_text()
    proc, port = start_server(popen, log)
    try:
        with Client(f"127.0.0.1:{port}", timeout=20) as c:
            c.wait_serving(180)
            for rid, sid in acked:
                assert c.get(request_id=rid).settlement_id == sid
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.mark.parametrize(
    ("option", "value", "words"),
    [
        ("--group-max", "0", ("--group-max 0", "at least 1")),
        ("--group-wait-ms", "5000", ("--group-wait-ms 5000", "0 to 1000 ms")),
        ("--group-writers", "-1", ("--group-writers -1", "0 (automatic)")),
    ],
)
def test_serve_refuses_a_bad_group_option_in_one_line(option: str, value: str, words: Any) -> None:
    from tests.test_cli_errors import USAGE, one_line, onestop

    one_line(onestop("serve", "--port", "0", option, value), USAGE, *words)


def test_group_commit_is_on_by_default_for_sqlite_and_postgresql() -> None:
    """As shipped (``onestop serve``, ``serve-http``): SQLite groups (its one write lock
    serializes commits) and so does PostgreSQL with one writer (since 2026-12-04: its group
    path measured faster than lone Settles, benchmarks/README.md, target 7); ``--group-max
    1`` settles each call alone."""
    from adapters.bootstrap import server_group_commit

    pg = "postgresql+psycopg://u@/db?host=/tmp"
    assert server_group_commit(pg) == GroupCommit(max_group=64, writers=1)
    assert server_group_commit(pg, 1) is None
    assert server_group_commit(pg, 64, writers=4) == GroupCommit(max_group=64, writers=4)
    assert server_group_commit("sqlite:///x.db") == GroupCommit(max_group=64, writers=1)
    assert server_group_commit("sqlite:///x.db", 1) is None
    assert server_group_commit("memory://") is None
