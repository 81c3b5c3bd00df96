"""Where PostgreSQL's CPU a durable Settle goes (issue 13 target 7; not a test): one throwaway
durable cluster (fsync, synchronous_commit, full_page_writes on) with ``pg_stat_statements``
loaded, this tree's Settle handler in process as ``trial_ab --rpc Settle`` runs it (100-item
bills of 8 persons, a new request and bill id each call), warmed, then N Settles measured:

- the backends' and the whole cluster's CPU a Settle (/proc), the handler thread's CPU;
- WAL bytes a Settle (``pg_current_wal_lsn`` before and after) and ``pg_stat_wal``;
- ``pg_stat_statements``: each statement's execution time a Settle (nested statements, such
  as those inside ``onestop_lock_read``, listed too, and counted in their caller's time),
  its WAL records and bytes, blocks hit and dirtied; with ``--track-planning``
  (``pg_stat_statements.track_planning`` on) its plans and their time too (without it the
  plans count 0);
- ``--by-relation``: the WAL records of the N Settles by relation and record type
  (``pg_walinspect``: heap inserts, index entries, row locks, updates, bytes a Settle) and
  each table's counters a Settle (``pg_stat_user_tables``: inserts, updates, scans);
- ``--perf F``: ``perf record -g`` of the backends during the N Settles into F (then
  ``perf report -i F --no-children --sort symbol``);
- ``--b-sql SQL`` (repeatable): what a schema change does to a Settle instead (an index
  dropped, a storage setting): two databases of the cluster, the second ("b") changed by
  these statements after its migrations, interleaved rounds of N Settles each (``--rounds``),
  the backends' CPU (``/proc/PID/schedstat``) and the WAL a Settle of each, minimum and
  median; ``--rows K``: K settled rows copied into each database first (K / 4 persons, 40
  hospitals, two years, a year of commit times; then ANALYZE), so that the indexes have a
  realistic size.

    .venv/bin/python -m benchmarks.pg_settle_probe [--settles 1000] [--perf /tmp/pg.data]
        [--track-planning]
    .venv/bin/python -m benchmarks.pg_settle_probe --rows 200000 --settles 300 --rounds 7 \\
        --b-sql "DROP INDEX ix_settlements_person_year"
"""

from __future__ import annotations

import argparse
import inspect
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import harness as H
from benchmarks.grpc_bench import proc_cpu
from benchmarks.pgdurable import postgres_durable, postgres_settings

_STATEMENTS = """
SELECT calls, total_exec_time, plans, total_plan_time, wal_records, wal_bytes, shared_blks_hit,
       shared_blks_dirtied, regexp_replace(query, '\\s+', ' ', 'g')
FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT {limit}
"""


def _thread_cpu(pid: int) -> float:
    """CPU seconds of one process (a backend), from /proc: the scheduler's nanoseconds on a
    CPU (``schedstat``), else user + system in clock ticks (10 ms: 33 us a Settle in 300)."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        return sum(H.stat_cpu(f"/proc/{pid}/stat"))


def _backends(c: Any) -> list[int]:
    """The pids of the other backends of ``c``'s database: the settler's pool, whose CPU is
    the figure (``c``: an AUTOCOMMIT connection of the probe's admin engine)."""
    return [r[0] for r in c.exec_driver_sql(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid()")]  # fmt: skip


#: the WAL records between two LSNs by the relation of their first block and by type
_WAL_BY_RELATION = """
SELECT coalesce(pg_filenode_relation(0, (regexp_match(block_ref, 'rel \\d+/\\d+/(\\d+)'))[1]::oid)::text,
                '-') AS rel,
       resource_manager || '/' || split_part(record_type, ' ', 1) AS kind,
       count(*), sum(record_length), sum(fpi_length)
FROM pg_get_wal_records_info('{lsn0}', '{lsn1}')
GROUP BY 1, 2 ORDER BY 4 DESC
"""

_TABLE_STATS = """
SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd, n_tup_del, coalesce(idx_scan, 0), seq_scan
FROM pg_stat_user_tables
"""


def _table_stats(c: Any) -> dict[str, tuple[int, ...]]:
    """Each user table's counters (inserts, updates, HOT updates, deletes, index and
    sequential scans), as of now (the statistics of this transaction cleared first)."""
    c.exec_driver_sql("SELECT pg_stat_clear_snapshot()")
    return {r[0]: tuple(r[1:]) for r in c.exec_driver_sql(_TABLE_STATS)}


def _print_by_relation(c: Any, lsn0: Any, lsn1: Any, n: int, tabs0: dict[str, Any]) -> None:
    """``--by-relation``: the WAL records a Settle by relation and record type, then each
    table's counters a Settle (``pg_stat_user_tables`` deltas)."""
    time.sleep(0.6)  # the backends report their table counters at most every 0.5 s idle
    print("\n| relation | WAL record | records a Settle | bytes a Settle | of which full pages |")
    print("|---|---|---|---|---|")
    for rel, kind, cnt, size, fpi in c.exec_driver_sql(
        _WAL_BY_RELATION.format(lsn0=lsn0, lsn1=lsn1)
    ):
        if cnt / n >= 0.05:
            print(f"| {rel} | {kind} | {cnt / n:.2f} | {float(size) / n:,.0f} | "
                  f"{float(fpi) / n:,.0f} |")  # fmt: skip
    tabs1 = _table_stats(c)
    print("\n| table | inserts | updates (HOT) | deletes | index scans | seq scans |  (a Settle)")
    print("|---|---|---|---|---|---|")
    for t, v1 in sorted(tabs1.items()):
        d = [(a - b) / n for a, b in zip(v1, tabs0.get(t, (0,) * len(v1)), strict=True)]
        if any(d):
            print(f"| {t} | {d[0]:.2f} | {d[1]:.2f} ({d[2]:.2f}) | {d[3]:.2f} | {d[4]:.2f} "
                  f"| {d[5]:.2f} |")  # fmt: skip


def _settler(url: str, tmp: Path) -> tuple[Any, Any]:
    """(the app, a function settling call i) as ``trial_ab``'s Settle worker."""
    from concurrent.futures import ThreadPoolExecutor

    from adapters.auth.principals import LOCAL
    from adapters.bootstrap import build
    from adapters.grpc import auth, server
    from adapters.grpc.convert import bill_to_pb
    from adapters.grpc.gen.onestop.settlement.v1 import settlement_pb2 as pb
    from adapters.grpc.testing import CHAIN, chain_bill
    from engine.bill import Person

    (tmp / "policies").mkdir()
    (tmp / "policies" / "chain.yaml").write_text(CHAIN)
    app = build(url, tmp / "policies", None)
    app.service.import_registry([Person.model_validate(
        {"id": f"p{i}", "birth_date": f"1960-01-1{i % 9}", "household": f"h{i // 2}",
         "tags": [{"tag": "poor"}] if i % 2 else []}) for i in range(8)])  # fmt: skip
    servicer = server.SettlementServicer(app.service, ThreadPoolExecutor(1))
    auth._current.set(LOCAL)
    bills = []
    for k in range(8):
        b = chain_bill(0, f"p{k}", n_items=100, seed=1)
        b["id"] = f"b0-p{k}"
        bills.append(bill_to_pb(b))
    body = inspect.unwrap(server.SettlementServicer.Settle)  # the body inside _unary
    seq = iter(range(10**9))
    raw = any(m.endswith(".Settle") for m in server.RAW_BYTES)  # its bytes, as served

    def call(i: int) -> Any:
        n = next(seq)
        req = pb.SettleRequest(request_id=f"r{n}", bill=bills[i % 8])
        req.bill.id = f"b{n}"
        data = req.SerializeToString()
        return body(servicer, data if raw else pb.SettleRequest.FromString(data))

    return app, call


#: K settled rows, each a copy of the newest one (its stored request and result) under new ids,
#: spread over K / 4 persons, 40 hospitals, two years and a year of commit times
_COPY_ROWS = """
INSERT INTO settlements (settlement_id, request_id, bill_id, hospital, bill_digest, person_id,
  household, region, year, total, funds_total, window_pay, net_selfpay, status, created_at,
  bill, settlement, registry_version, policy_version)
SELECT 'c' || g, 'cr' || g, 'cb' || g, 'H' || mod(g, 40), s.bill_digest, 'cp' || mod(g, {persons}),
  'ch' || mod(g, {persons}), s.region, 2025 + mod(g, 2), s.total, s.funds_total, s.window_pay,
  s.net_selfpay, 'settled', s.created_at - make_interval(secs => g * 31536000.0 / {k}), s.bill,
  s.settlement, s.registry_version, s.policy_version
FROM generate_series(1, {k}) AS g,
  (SELECT * FROM settlements ORDER BY created_at DESC LIMIT 1) AS s
"""


def _schema_ab(ns: argparse.Namespace, cluster: Any, create_database: Any, tmp: Path) -> None:
    """Interleaved rounds of Settles on two databases, the second changed by ``ns.b_sql``."""
    import statistics

    import sqlalchemy as sa

    sides: dict[str, dict[str, Any]] = {}
    for name in ("a", "b"):
        url = create_database(cluster.url(), f"probe_{name}")
        (tmp / name).mkdir()
        app, call = _settler(url, tmp / name)
        adm = sa.create_engine(url, isolation_level="AUTOCOMMIT")
        call(0)
        with adm.connect() as c:
            if ns.rows:
                c.exec_driver_sql(_COPY_ROWS.format(k=ns.rows, persons=max(1, ns.rows // 4)))
            if name == "b":
                for sql in ns.b_sql:
                    c.exec_driver_sql(sql)
            c.exec_driver_sql("VACUUM ANALYZE settlements")
            c.exec_driver_sql("CHECKPOINT")
        for i in range(ns.warm):
            call(i)
        with adm.connect() as c:
            pids = _backends(c)
            ixs = [r[0] for r in c.exec_driver_sql(
                "SELECT indexname FROM pg_indexes WHERE tablename = 'settlements' "
                "ORDER BY indexname")]  # fmt: skip
        print(f"{name}: settlements' indexes {', '.join(ixs)}", flush=True)
        sides[name] = {"app": app, "call": call, "adm": adm, "pids": pids, "cpu": [], "wal": []}
    n = ns.settles
    for r in range(ns.rounds):
        for d in H.in_turn(sides.values(), r):
            with d["adm"].connect() as c:
                lsn0 = c.exec_driver_sql("SELECT pg_current_wal_lsn()").scalar()
            b0 = sum(_thread_cpu(p) for p in d["pids"])
            for i in range(n):
                d["call"](i)
            b1 = sum(_thread_cpu(p) for p in d["pids"])
            with d["adm"].connect() as c:
                wal = c.exec_driver_sql(
                    f"SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '{lsn0}')").scalar()  # fmt: skip
            d["cpu"].append((b1 - b0) / n * 1e6)
            d["wal"].append(float(wal or 0) / n)
        print(f"round {r + 1}/{ns.rounds} (load {H.load1():.2f}): " + ", ".join(
            f"{k} {d['cpu'][-1]:,.0f} us {d['wal'][-1]:,.0f} B" for k, d in sides.items()),
            flush=True)  # fmt: skip
    print(
        f"\n{ns.rounds} x {n} durable Settles, {ns.rows} rows copied first; b: "
        f"{'; '.join(ns.b_sql)}"
    )
    print("| database | backends CPU us a Settle min / median | WAL bytes a Settle min / median |")
    print("|---|---|---|")
    for name, d in sides.items():
        print(
            f"| {name} | {min(d['cpu']):,.0f} / {statistics.median(d['cpu']):,.0f} | "
            f"{min(d['wal']):,.0f} / {statistics.median(d['wal']):,.0f} |"
        )
    lower = sum(
        round(b) < round(a) for a, b in zip(sides["a"]["cpu"], sides["b"]["cpu"], strict=True)
    )
    print(f"b lower in {lower} of {ns.rounds} rounds")
    for d in sides.values():
        d["app"].close()
        d["adm"].dispose()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--settles", type=int, default=1000)
    ap.add_argument("--warm", type=int, default=300)
    ap.add_argument("--statements", type=int, default=12, help="how many statements to list")
    ap.add_argument("--perf", type=Path, help="perf record the backends into FILE")
    ap.add_argument("--b-sql", action="append", default=[], help="A/B: B's schema change")
    ap.add_argument("--track-planning", action="store_true", help="plans' time too")
    ap.add_argument("--rounds", type=int, default=7, help="--b-sql: interleaved rounds")
    ap.add_argument("--rows", type=int, default=0, help="--b-sql: rows copied in first")
    ap.add_argument(
        "--by-relation",
        action="store_true",
        help="WAL records a Settle by relation and type (pg_walinspect)",
    )
    ns = ap.parse_args(argv)
    print(H.machine_line(H.machine()), flush=True)
    import sqlalchemy as sa

    from tests import pg

    pg._SETTINGS.update(
        shared_preload_libraries="pg_stat_statements", **{"pg_stat_statements.track": "all"}
    )
    if ns.track_planning:
        pg._SETTINGS["pg_stat_statements.track_planning"] = "on"
    cluster, create_database = postgres_durable()
    if cluster is None:
        raise SystemExit("no PostgreSQL server binaries")
    cluster.start()
    tmp = Path(tempfile.mkdtemp(prefix="onestop-pg-probe-"))
    try:
        if ns.b_sql:
            _schema_ab(ns, cluster, create_database, tmp)
            return 0
        url = create_database(cluster.url(), "probe")
        print(postgres_settings(url), flush=True)
        adm = sa.create_engine(url, isolation_level="AUTOCOMMIT")
        with adm.connect() as c:
            c.exec_driver_sql("CREATE EXTENSION pg_stat_statements")
            if ns.by_relation:
                c.exec_driver_sql("CREATE EXTENSION pg_walinspect")
        app, call = _settler(url, tmp)
        for i in range(ns.warm):
            call(i)
        with adm.connect() as c:
            backends = _backends(c)
            c.exec_driver_sql("SELECT pg_stat_statements_reset()")
            c.exec_driver_sql("SELECT pg_stat_reset_shared('wal')")
            lsn0 = c.exec_driver_sql("SELECT pg_current_wal_lsn()").scalar()
            tabs0 = _table_stats(c) if ns.by_relation else {}
        perf = None
        if ns.perf:
            perf = subprocess.Popen(
                ["perf", "record", "-F", "2000", "-g", "-o", str(ns.perf),
                 "-p", ",".join(map(str, backends))], stderr=subprocess.DEVNULL,
            )  # fmt: skip
            time.sleep(1)
        pm = int((cluster.data / "postmaster.pid").read_text().split()[0])
        load0 = H.load1()
        b0, pg0 = sum(_thread_cpu(p) for p in backends), proc_cpu(pm)
        c0, w0 = time.thread_time(), time.perf_counter()
        for i in range(ns.settles):
            call(i)
        c1, w1 = time.thread_time(), time.perf_counter()
        b1, pg1 = sum(_thread_cpu(p) for p in backends), proc_cpu(pm)
        if perf is not None:
            perf.send_signal(signal.SIGINT)
            perf.wait(60)
        n = ns.settles
        print(f"\n{n} durable Settles (load {load0:.2f} -> {H.load1():.2f}), us a Settle: "
              f"wall {(w1 - w0) / n * 1e6:.0f}, handler CPU {(c1 - c0) / n * 1e6:.0f}, "
              f"backends CPU {(b1 - b0) / n * 1e6:.0f}, cluster CPU {(pg1 - pg0) / n * 1e6:.0f}")  # fmt: skip
        with adm.connect() as c:
            lsn1 = c.exec_driver_sql("SELECT pg_current_wal_lsn()").scalar()
            wal = c.exec_driver_sql(f"SELECT pg_wal_lsn_diff('{lsn1}', '{lsn0}')").scalar()
            w = c.exec_driver_sql("SELECT wal_records, wal_fpi, wal_sync FROM pg_stat_wal").one()
            print(
                f"WAL a Settle: {float(wal or 0) / n:.0f} bytes, {w[0] / n:.1f} records, "
                f"{w[1] / n:.2f} full-page images, {w[2] / n:.2f} syncs"
            )
            print("\n| exec us a Settle | calls a Settle | plans (plan us a Settle) | WAL records "
                  "/ bytes a Settle | blocks hit / dirtied a Settle | statement |")  # fmt: skip
            print("|---|---|---|---|---|---|")
            for calls, ms, plans, pms, wr, wb, hit, dirt, q in c.exec_driver_sql(
                _STATEMENTS.format(limit=ns.statements)
            ):
                print(f"| {ms * 1000 / n:.0f} | {calls / n:.2f} | {plans} ({pms * 1000 / n:.0f}) "
                      f"| {wr / n:.1f} / "
                      f"{float(wb) / n:.0f} | {hit / n:.1f} / {dirt / n:.2f} | {q[:110]} |")  # fmt: skip
            if ns.by_relation:
                _print_by_relation(c, lsn0, lsn1, n, tabs0)
        app.close()
        adm.dispose()
    finally:
        cluster.stop()
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
