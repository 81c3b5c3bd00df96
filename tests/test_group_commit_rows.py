"""A grouped Settle of a request given as columns goes the lone Settle's rows path (issue 13
target 7): its record is written from the kernel's rows (``RowsRecord``; on PostgreSQL the
request's JSON written from the columns), and Settle's answer bytes are written from those
rows (``resultwire``). On a SQLite file and on a real PostgreSQL server, the same calls
settled as one group and one by one on a second database give the same answer bytes (to the
fen and byte), the same stored settlement rows (the stored request and result as text), and
``settle_rows`` through a running writer hands the rows back as a lone settle does; with no
other Settle in flight a grouped service settles the call alone, the writer not involved."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

import sqlalchemy as sa

from adapters.grpc import convert as cv
from adapters.grpc import resultwire
from adapters.grpc.columns import bill_columns
from engine.service import settlecols
from engine.service.groupcommit import GroupCommit, SettleCall
from engine.service.rowsrecord import RowsRecord
from tests.pg import db_url, pg_url  # noqa: F401  (fixtures)
from tests.test_group_commit import second_url, service, two  # noqa: F401  (fixtures)
from tests.test_store_concurrency import request


def columns(i: int, person: str) -> settlecols.Request:
    req = settlecols.request_of(
        bill_columns(cv.bill_to_pb(request(i, person).model_dump(mode="json")))
    )
    assert isinstance(req, settlecols.ColumnsRequest)  # the columns path, not the model's
    return req


#: one person three times (accounts carried from call to call in the group), the household
#: mate, another household, and a retry in the group (its replay)
CALLS = [("r0", 0, "p1"), ("r1", 0, "p2"), ("r2", 1, "p1"), ("r3", 2, "q1"), ("r4", 3, "p1"),
         ("r1", 0, "p2")]  # fmt: skip


def answer(rec: Any, rows: Any) -> bytes:
    """Settle's answer bytes as the servicer writes them from the rows."""
    return resultwire.settle_response(
        rows, rec.settlement_id, rec.request_id, rec.created_at.isoformat(), rec.bill_digest,
        rec.registry_version,
    )  # fmt: skip


def stored(url: str) -> list[Any]:
    """Every stored settlement row as text, in the order written."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as c:
            return [tuple(r) for r in c.exec_driver_sql(
                "SELECT settlement_id, request_id, bill_digest, bill, settlement, created_at, "
                "registry_version, policy_version FROM settlements ORDER BY settlement_id"
            )]  # fmt: skip
    finally:
        engine.dispose()


def test_a_grouped_columns_settle_answers_and_stores_as_a_lone_one(
    two: Any,  # noqa: F811
    db_url: str,  # noqa: F811
    second_url: str,  # noqa: F811
) -> None:
    (grouped, gu), (alone, _) = two
    got = grouped.settle_group(
        [SettleCall(rid, r, "local", settlecols.digest_of(r))
         for rid, r in ((rid, columns(i, p)) for rid, i, p in CALLS)]
    )  # fmt: skip
    assert gu.commits == 1
    for (rid, i, p), g in zip(CALLS, got, strict=True):
        assert isinstance(g, tuple), g
        rec, replay, rows = alone.settle_rows(rid, columns(i, p))
        assert g == (rec, replay)
        if replay:
            assert rows is None
            continue
        assert isinstance(g[0], RowsRecord) and isinstance(rec, RowsRecord)
        assert answer(g[0], g[0].rows) == answer(rec, rows)  # byte for byte
        assert cv.record_pb(g[0]) == cv.record_pb(rec)  # and the model's, read from it
    assert stored(db_url) == stored(second_url) and len(stored(db_url)) == 5


def test_settle_rows_through_the_writer_gives_the_rows(db_url: str, second_url: str) -> None:  # noqa: F811
    (grouped, gu), (alone, au) = service(db_url, GroupCommit(max_group=64)), service(second_url)
    writer = grouped.settle_writer
    assert writer is not None
    try:
        for n, (rid, i, p) in enumerate(CALLS):
            # the first half with no other Settle in flight: settled alone, in this thread;
            # the rest with one (held here): through the writer
            with writer.in_flight() if n >= 3 else nullcontext():
                rec, replay, rows = grouped.settle_rows(rid, columns(i, p))
            assert writer.calls == max(0, n - 2)
            want = alone.settle_rows(rid, columns(i, p))
            assert (rec, replay) == want[:2]
            assert (rows is None) == replay == (want[2] is None)
            if rows is not None:
                assert answer(rec, rows) == answer(*want[::2])
    finally:
        for s, u in ((grouped, gu), (alone, au)):
            s.close()
            u.store.dispose()
