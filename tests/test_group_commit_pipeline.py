"""Group commit's cycle in one round trip (issue 13 target 7): the writer takes the next group
while it commits one, and on PostgreSQL that group's BEGIN, reads and early locks go in the
commit's pipeline after a Sync (``UnitOfWork.commit_then_reads``), run by the server after the
COMMIT on the same connection.

- Groups settled one after another that way answer and store as the same calls settled one
  by one on a second database (a retry of an earlier group's call is its replay, a second
  settlement of its bill BillSettled: the reads see the commit before them), on a SQLite file
  (each group reads in its own unit of work) and on PostgreSQL (the later groups' reads with
  the commits).
- A group whose COMMIT fails with the next group's reads already sent: the group is settled
  one by one, the next group's reads are made again, and both groups answer as one-by-one
  settles.
- A commit that stands with the next group's reads failing: the group is answered once (not
  as replays), the next group read again.
- The writer answers each group as its answers come, takes the next only while it has work,
  and answers every group it took if the run fails.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from functools import partial
from typing import Any

import pytest
import sqlalchemy as sa

from adapters.store.sql import uow as sql_uow
from engine.service import settlecols
from engine.service.digest import digest
from engine.service.groupcommit import GroupCommit, SettleCall, SettleWriter
from tests.pg import db_url, pg_url  # noqa: F401  (fixtures)
from tests.test_group_commit import answer_of, calls, same, second_url, two  # noqa: F401
from tests.test_group_commit_rows import CALLS, answer, columns, stored


def batches(cs: list[SettleCall], sizes: Sequence[int]) -> list[list[SettleCall]]:
    out, i = [], 0
    for n in sizes:
        out.append(cs[i : i + n])
        i += n
    assert i == len(cs)
    return out


def run_groups(service: Any, groups: list[list[SettleCall]]) -> list[Any]:
    """``settle_groups`` of the first group, ``more`` handing out the others in turn; every
    answer, in order (each group answered whole before the next is asked for)."""
    rest = iter(groups[1:])
    asked: list[int] = []

    def more() -> list[SettleCall]:
        asked.append(1)
        return next(rest, [])

    out: list[Any] = []
    for n, answers in enumerate(service.settle_groups(groups[0], more)):
        assert len(answers) == len(groups[n]) and len(asked) == n + 1
        out += answers
    return out


def is_pg(url: str) -> bool:
    return url.startswith("postgresql")


def test_groups_read_with_the_commit_before_answer_and_store_as_lone_settles(
    two: Any,  # noqa: F811
    db_url: str,  # noqa: F811
    second_url: str,  # noqa: F811
) -> None:
    (grouped, gu), (alone, _) = two
    reads: list[int] = []

    def counted(uow: Any, read: Any, cs: Any, years: Any = None) -> Any:
        reads.append(len(cs))
        return read(cs, years)

    gu.on_reads = counted
    cs = [SettleCall(rid, columns(i, p), "local", settlecols.digest_of(columns(i, p)))
          for rid, i, p in CALLS]  # fmt: skip
    # r0 r1 | r2 r3 | r4 and r1's retry: the retry in a later group than its settlement
    got = run_groups(grouped, batches(cs, (2, 2, 2)))
    assert gu.commits == 3
    if is_pg(db_url):  # the later groups read with the commit before them
        assert reads == [2] and gu.read_with_commit == 2
    else:
        assert reads == [2, 2, 2] and gu.read_with_commit == 0
    for (rid, i, p), g in zip(CALLS, got, strict=True):
        rec, replay, rows = alone.settle_rows(rid, columns(i, p))
        assert g == (rec, replay)
        if not replay:
            assert answer(g[0], g[0].rows) == answer(rec, rows)  # byte for byte
    assert [g[1] for g in got] == [False] * 5 + [True]
    assert stored(db_url) == stored(second_url) and len(stored(db_url)) == 5


def test_replays_conflicts_and_bills_settled_across_groups(two: Any) -> None:  # noqa: F811
    """``calls()`` (retries, a reused request id, an unknown person, a bill settled twice, a
    bill outside every table) in groups of 3, 3, 3, 2: each later group's reads see what the
    groups before committed."""
    (grouped, _gu), (serial, _) = two
    cs = calls()
    got = run_groups(grouped, batches([SettleCall(r, b, "local", digest(b)) for r, b in cs],
                                      (3, 3, 3, 2)))  # fmt: skip
    want = [answer_of(partial(serial.settle, rid, r)) for rid, r in cs]
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        assert same(g, w), (i, g, w)
    kinds = [type(a).__name__ if isinstance(a, Exception) else a[1] for a in got]
    assert kinds == [False, False, False, True, "Conflict", "InputError", "BillSettled",
                     False, False, "InputError", False]  # fmt: skip
    for pid in ("p1", "p2", "q1"):
        assert grouped.list(pid) == serial.list(pid)
        for y in (2024, 2025):
            assert grouped.accounts(pid, y) == serial.accounts(pid, y)


#: a COMMIT that fails once (a deferred constraint trigger on the settlements, raised at
#: COMMIT by the first one a sequence counts), then never again
_FAIL_ONE_COMMIT = [
    "CREATE SEQUENCE boom_seq",
    "CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "IF nextval('boom_seq') = 1 THEN RAISE EXCEPTION 'the commit fails once'; END IF; "
    "RETURN NULL; END $$",
    "CREATE CONSTRAINT TRIGGER boom AFTER INSERT ON settlements DEFERRABLE INITIALLY DEFERRED "
    "FOR EACH ROW EXECUTE FUNCTION boom()",
]


@pytest.mark.postgres
def test_pg_a_failed_commit_with_the_next_groups_reads_sent(two: Any, db_url: str) -> None:  # noqa: F811
    """Group 1's COMMIT fails (its writes went; the next group's BEGIN, locks and reads after
    the Sync in the same trip): group 1 is settled one by one, group 2 read again; every
    answer, settlement and account as one-by-one settles give."""
    if not is_pg(db_url):
        pytest.skip("PostgreSQL: a COMMIT that fails")
    (grouped, _gu), (serial, _) = two
    engine = sa.create_engine(db_url)
    with engine.begin() as c:
        for sql in _FAIL_ONE_COMMIT:
            c.exec_driver_sql(sql)
    engine.dispose()
    sent: list[Any] = []
    send = sql_uow.send_commit_then

    def spied(*args: Any) -> Any:
        try:
            got = send(*args)
        except Exception as exc:
            sent.append(exc)
            raise
        sent.append(got is not None)
        return got

    cs = calls()
    groups = batches([SettleCall(r, b, "local", digest(b)) for r, b in cs], (3, 3, 3, 2))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sql_uow, "send_commit_then", spied)
        got = run_groups(grouped, groups)
    # group 1's commit failed (nothing committed, its reads not used), then group 2 was read
    # again and its commit took group 3's reads, and group 3's group 4's
    assert isinstance(sent[0], sa.exc.DBAPIError) and "fails once" in str(sent[0])
    assert sent[1:] == [True, True]
    want = [answer_of(partial(serial.settle, rid, r)) for rid, r in cs]
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        assert same_figures(g, w), (i, g, w)  # (the failed group used up three ids)
    for pid in ("p1", "p2", "q1"):
        assert [figures(r) for r in grouped.list(pid)] == [figures(r) for r in serial.list(pid)]
        assert grouped.accounts(pid, 2024) == serial.accounts(pid, 2024)


def figures(rec: Any) -> Any:
    """A record without its settlement id and time (a failed group uses up ids)."""
    return rec.request_id, rec.bill_digest, rec.moves, rec.settlement.to_dict()


def same_figures(a: Any, b: Any) -> bool:
    if isinstance(a, tuple) and isinstance(b, tuple):
        return a[1] == b[1] and figures(a[0]) == figures(b[0])
    return same(a, b)


@pytest.mark.postgres
def test_pg_the_next_groups_reads_fail_after_a_commit_that_stands(two: Any, db_url: str) -> None:  # noqa: F811
    """The reads after the Sync fail (a statement that divides by zero sent with them, once):
    the group before is committed and answered as settled (not replays), the next group is
    read again in a new transaction and settled."""
    if not is_pg(db_url):
        pytest.skip("PostgreSQL: reads sent with a commit")
    (grouped, gu), (serial, _) = two
    send = sql_uow.send_commit_then
    failed: list[Any] = []

    def failing(x: Any, raw: Any, pending: Any, begin: Any, reads: Any, begin_reads: Any) -> Any:
        if failed:
            return send(x, raw, pending, begin, reads, begin_reads)
        failed.append(send(x, raw, pending, begin, [*reads, ("SELECT 1 / 0", {})], begin_reads))
        return failed[0]

    cs = calls()
    groups = batches([SettleCall(r, b, "local", digest(b)) for r, b in cs], (3, 3, 3, 2))
    reads: list[int] = []

    def counted(uow: Any, read: Any, calls_: Any, years: Any = None) -> Any:
        reads.append(len(calls_))
        return read(calls_, years)

    gu.on_reads = counted
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sql_uow, "send_commit_then", failing)
        got = run_groups(grouped, groups)
    assert failed == [None]  # the first commit stood, its next group's reads failed
    assert reads == [3, 3]  # group 1's, then group 2's again; groups 3 and 4 with commits
    assert gu.commits == 4 and gu.read_with_commit == 2
    want = [answer_of(partial(serial.settle, rid, r)) for rid, r in cs]
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        assert same(g, w), (i, g, w)
    assert [g[1] for g in got[:3]] == [False, False, False]


def until(cond: Any) -> None:
    for _ in range(500):
        if cond():
            return
        threading.Event().wait(0.01)
    raise AssertionError("timed out")


def test_the_writer_answers_each_group_and_takes_the_next_while_it_works() -> None:
    """A writer's ``run`` gets the next group from ``more`` (what is queued, without waiting,
    up to ``max_group``), and each caller is answered when its group's answers come, before
    ``run`` goes on."""
    started, go = threading.Event(), threading.Event()
    seen: list[list[str]] = []
    answered_before_next: list[bool] = []

    def run(cs: Sequence[SettleCall], more: Any) -> Iterator[list[Any]]:
        while cs:
            seen.append([c.request_id for c in cs])
            if len(seen) == 1:
                started.set()
                go.wait(5)  # the others queue meanwhile
            nxt = more()
            yield [(c.request_id, False) for c in cs]
            answered_before_next.append(w.groups == len(seen))  # counted, then answered
            cs = nxt

    w = SettleWriter(run, GroupCommit(max_group=2))
    results: dict[str, Any] = {}

    def call(rid: str) -> None:
        results[rid] = w.submit(SettleCall(rid, None, "local", ""))  # type: ignore[arg-type]

    threads = [threading.Thread(target=call, args=(r,)) for r in "abcde"]
    threads[0].start()
    assert started.wait(5)
    for t in threads[1:]:
        t.start()
    until(lambda: w._q.qsize() == 4)
    go.set()
    for t in threads:
        t.join(5)
    w.close()
    assert seen == [["a"], ["b", "c"], ["d", "e"]]  # two at most, taken while it works
    assert answered_before_next == [True, True, True]
    assert results == {r: (r, False) for r in "abcde"}
    assert (w.groups, w.calls) == (3, 5)


def test_the_writer_answers_every_group_it_took_when_the_run_fails() -> None:
    """``run`` took the next group (``more``) and then failed: both groups' callers hear of
    it, and the writer goes on."""
    in_run, go = threading.Event(), threading.Event()

    def run(cs: Sequence[SettleCall], more: Any) -> Iterator[list[Any]]:
        if cs[0].request_id == "c":
            yield [("c", False)]
            return
        in_run.set()
        go.wait(5)
        assert [c.request_id for c in more()] == ["b"]
        raise RuntimeError("the store is gone")
        yield []  # (a generator)

    w = SettleWriter(run, GroupCommit(max_group=8))
    out: dict[str, Any] = {}

    def call(rid: str) -> None:
        out[rid] = answer_of(lambda: w.submit(SettleCall(rid, None, "local", "")))  # type: ignore[arg-type]

    try:
        a = threading.Thread(target=call, args=("a",))
        a.start()
        assert in_run.wait(5)
        b = threading.Thread(target=call, args=("b",))
        b.start()
        until(lambda: not w._q.empty())
        go.set()
        a.join(5)
        b.join(5)
        assert [type(out[r]).__name__ for r in "ab"] == ["RuntimeError", "RuntimeError"]
        assert str(out["a"]) == str(out["b"]) == "the store is gone"
        assert w.submit(SettleCall("c", None, "local", "")) == ("c", False)  # type: ignore[arg-type]
    finally:
        w.close()
