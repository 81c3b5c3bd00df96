"""Where PostgreSQL's CPU a durable Settle goes (issue 13 target 7; not a test): one throwaway
durable cluster (fsync, synchronous_commit, full_page_writes on) with ``pg_stat_statements``
loaded, this tree's Settle handler in process as ``trial_ab --rpc Settle`` runs it (100-item
bills of 8 persons, a new request and bill id each call), warmed, then N Settles measured:

- the backends' and the whole cluster's CPU a Settle (/proc), the handler thread's CPU;
- WAL bytes a Settle (``pg_current_wal_lsn`` before and after) and ``pg_stat_wal``;
- ``pg_stat_statements``: each statement's execution time a Settle (nested statements, such
  as those inside ``onestop_lock_read``, listed too, and counted in their caller's time),
  its WAL records and bytes, blocks hit and dirtied;
- ``--perf F``: ``perf record -g`` of the backends during the N Settles into F (then
  ``perf report -i F --no-children --sort symbol``).

    .venv/bin/python -m benchmarks.pg_settle_probe [--settles 1000] [--perf /tmp/pg.data]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import harness as H
from benchmarks.grpc_bench import postgres_durable, postgres_settings, proc_cpu

_STATEMENTS = """
SELECT calls, total_exec_time, plans, wal_records, wal_bytes, shared_blks_hit,
       shared_blks_dirtied, regexp_replace(query, '\\s+', ' ', 'g')
FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT {limit}
"""


def _thread_cpu(pid: int) -> float:
    """User + system CPU seconds of one process (a backend), from /proc."""
    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


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
    body = server.SettlementServicer.Settle.__wrapped__  # type: ignore[attr-defined]
    seq = iter(range(10**9))

    def call(i: int) -> Any:
        n = next(seq)
        req = pb.SettleRequest(request_id=f"r{n}", bill=bills[i % 8])
        req.bill.id = f"b{n}"
        return body(servicer, pb.SettleRequest.FromString(req.SerializeToString()))

    return app, call


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--settles", type=int, default=1000)
    ap.add_argument("--warm", type=int, default=300)
    ap.add_argument("--statements", type=int, default=12, help="how many statements to list")
    ap.add_argument("--perf", type=Path, help="perf record the backends into FILE")
    ns = ap.parse_args(argv)
    print(H.machine_line(H.machine()), flush=True)
    import sqlalchemy as sa

    from tests import pg

    pg._SETTINGS.update(
        shared_preload_libraries="pg_stat_statements", **{"pg_stat_statements.track": "all"}
    )
    cluster, create_database = postgres_durable()
    if cluster is None:
        raise SystemExit("no PostgreSQL server binaries")
    cluster.start()
    tmp = Path(tempfile.mkdtemp(prefix="onestop-pg-probe-"))
    try:
        url = create_database(cluster.url(), "probe")
        print(postgres_settings(url), flush=True)
        adm = sa.create_engine(url, isolation_level="AUTOCOMMIT")
        with adm.connect() as c:
            c.exec_driver_sql("CREATE EXTENSION pg_stat_statements")
        app, call = _settler(url, tmp)
        for i in range(ns.warm):
            call(i)
        with adm.connect() as c:
            backends = [r[0] for r in c.exec_driver_sql(
                "SELECT pid FROM pg_stat_activity WHERE datname = 'probe' "
                "AND pid <> pg_backend_pid()")]  # fmt: skip
            c.exec_driver_sql("SELECT pg_stat_statements_reset()")
            c.exec_driver_sql("SELECT pg_stat_reset_shared('wal')")
            lsn0 = c.exec_driver_sql("SELECT pg_current_wal_lsn()").scalar()
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
            print("\n| exec us a Settle | calls a Settle | plans | WAL records / bytes a Settle "
                  "| blocks hit / dirtied a Settle | statement |")  # fmt: skip
            print("|---|---|---|---|---|---|")
            for calls, ms, plans, wr, wb, hit, dirt, q in c.exec_driver_sql(
                _STATEMENTS.format(limit=ns.statements)
            ):
                print(f"| {ms * 1000 / n:.0f} | {calls / n:.2f} | {plans} | {wr / n:.1f} / "
                      f"{float(wb) / n:.0f} | {hit / n:.1f} / {dirt / n:.2f} | {q[:110]} |")  # fmt: skip
        app.close()
        adm.dispose()
    finally:
        cluster.stop()
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
