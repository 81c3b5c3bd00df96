"""Fuzz test of the whole gRPC service (issue 7): mutated and random-byte requests to every
method of a real server (``onestop serve`` in its own process) through a real client.

Per method (PreSettle, Settle, Reverse, GetSettlement, ListSettlements, GetAccounts,
SettleStream as bill lists and as packed columns, PutPolicy, ListPolicies, GetPolicy,
ImportRegistry) ONESTOP_FUZZ_N requests (stream messages) are sent, 1,000 by default (CI;
12,000+ requests in all), 10,000 or more in the nightly size,
built from the sample data (policies/ tables, policies/samples/*.json bills, registry.json)
and mutated structurally or at the byte level (tests/fuzz.py lists the mutations). The test
asserts:

- no status other than OK or a refusal (INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS,
  RESOURCE_EXHAUSTED, FAILED_PRECONDITION, OUT_OF_RANGE): INTERNAL, UNKNOWN and
  DEADLINE_EXCEEDED (each call has a 5 s deadline) fail it; status message plus trailers
  stay under 8 KB;
- health SERVING and a normal PreSettle answered within 2 s after each phase;
- nothing written by a refused request: the store holds exactly what the acknowledged
  requests wrote (settlements, reversals, policy versions, persons; a refused SETTLE stream
  message keeps only the bills before the bad one, as the proto documents), and the tables a
  phase must not touch are unchanged row for row;
- every stored (and every acknowledged) settlement equals a serial replay through the
  reference (engine.settle with engine="reference", reversals undone) in commit order, and
  the stored accounts equal the replay's.

Phases: (1) SettlementService, all rpcs at once; (2) ListPolicies, GetPolicy and
ImportRegistry at once; (3) PutPolicy alone (PolicyAdminService last, so that new tables and persons
do not change what phase 1 settled; PutPolicy alone, since every version it stores makes the
others slower).

Runs:
    PYTHONPATH=. .venv/bin/python -m pytest -q tests/test_fuzz.py            # CI size, SQLite + PG
    ONESTOP_FUZZ_N=10000 PYTHONPATH=. .venv/bin/python -m pytest -q tests/test_fuzz.py  # nightly
    ONESTOP_FUZZ_N=1000000 ...  # a long run by hand
    ONESTOP_FUZZ_SEED=123 ...   # another seed (default 7; the report prints the one used)
PostgreSQL runs ONESTOP_FUZZ_PG_N requests per method (default N // 10, at least 300).

CI size: the issue asked for 10^4 requests per method in CI; at that size the fuzz test alone
took about 7 minutes of a 16-minute suite on the idle 2-core machine, which breaks the rule
that the whole suite stays well under 10 minutes. CI therefore sends 1,000 per method
(about 12,000 requests); 10,000 per method passes too (run 2026-12-01 on main) and is the
nightly size.

Runtime: the server process is the bottleneck (one core: gRPC per call, pydantic, and ~20 ms
of pure-Python YAML parsing per PutPolicy). Measured on the shared 2-core machine under load
(load average 7-9): CI size on SQLite 14.6 min (Settlement rpcs 80,000 requests in 342 s,
ListPolicies/GetPolicy/ImportRegistry 74 s, PutPolicy 400 s, reference replay of 9,420
settlements 11 s); the PostgreSQL round (1,000 per method) 2.6 min. Not measured on an idle
machine; the server had well under one core to itself here.

A failure lists each class (method, bad status or size, message with numbers and quoted values
blurred) with its count and up to three examples: request number, mutation labels, the
request bytes in hex, so that a fix can be checked against exactly those inputs.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from adapters.grpc.client import Client
from adapters.grpc.gen.onestop.settlement.v1 import settlement_pb2 as pb
from tests import fuzz as F
from tests.pg import fresh_database, pg_url  # noqa: F401  (fixture)

N = int(os.environ.get("ONESTOP_FUZZ_N", "1000"))
PG_N = int(os.environ.get("ONESTOP_FUZZ_PG_N", str(max(N // 10, 300))))
SEED = int(os.environ.get("ONESTOP_FUZZ_SEED", "7"))

SETTLEMENT_METHODS = [
    "PreSettle", "Settle", "Reverse", "GetSettlement", "ListSettlements", "GetAccounts",
    *F.STREAMS,
]  # fmt: skip
#: PutPolicy runs on its own, after the others: every version it stores makes ListPolicies
#: and GetPolicy slower (they read every version)
ADMIN_METHODS = ["ListPolicies", "GetPolicy", "ImportRegistry"]


def run_fuzz(url: str, n: int, seed: int, root: Path) -> tuple[F.Report, dict[str, float]]:
    corpus = F.Corpus.load()
    report = F.Report(seed)
    times: dict[str, float] = {}
    with F.server_process(url, root, corpus) as (target, log):
        view = F.StoreView(url)
        try:
            pools, acks = F.Pools(), F.Acks()
            with Client(target, timeout=30) as c:  # something to read, reverse and replay
                for i, b in enumerate(corpus.bills):
                    r = c.settle(dict(b, id=f"{b['id']}~seed"), f"seed-{i}")
                    sid = r.settlement.settlement_id
                    acks.settled.append((sid, f"seed-{i}", r.settlement.result))
                    pools.settlement_ids.append(sid)
                    pools.request_ids.append(f"seed-{i}")
                acks.reversed.add(c.reverse(request_id="seed-0").settlement.settlement_id)
                pools.versions = len(c.admin.ListPolicies(pb.ListPoliciesRequest()).versions)

            gen = F.Generator(corpus, pools, tag="s")
            before = view.snapshot()
            t0 = time.monotonic()
            F.run_in_thread(F.fuzz_phase(target, gen, SETTLEMENT_METHODS, n, report, acks))
            times["settlement phase"] = time.monotonic() - t0
            after = view.snapshot()
            for p in F.diff_tables(before, after, F.REGISTRY_TABLES | F.POLICY_TABLES):
                report.problem(f"settlement phase: {p}")
            t0 = time.monotonic()
            replayed = F.check_settlements(view, acks, set(), report)
            times["replay"] = time.monotonic() - t0
            times["settlements replayed"] = replayed
            F.probe(target, report, "after the settlement phase")

            gen = F.Generator(corpus, pools, tag="a")
            admin = F.Acks()
            before = view.snapshot()
            t0 = time.monotonic()
            F.run_in_thread(F.fuzz_phase(target, gen, ADMIN_METHODS, n, report, admin))
            times["admin phase"] = time.monotonic() - t0
            t0 = time.monotonic()
            F.run_in_thread(F.fuzz_phase(target, gen, ["PutPolicy"], n, report, admin, workers=4))
            times["PutPolicy phase"] = time.monotonic() - t0
            F.check_admin(view, before, admin, report)
            F.probe(target, report, "at the end")
        finally:
            view.close()
    report.causes(log.read_text(errors="replace"))
    for m in [*SETTLEMENT_METHODS, *ADMIN_METHODS, "PutPolicy"]:
        if report.calls[m] < n:
            report.problem(f"{m}: only {report.calls[m]} requests sent, {n} wanted")
    return report, times


def test_fuzz_every_method_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'var' / 'onestop.db'}?synchronous=normal"
    report, times = run_fuzz(url, N, SEED, tmp_path)
    print(report.text(), times)
    assert not report.failed, report.text()


@pytest.mark.postgres
def test_fuzz_every_method_postgres(pg_url: str, tmp_path: Path) -> None:  # noqa: F811
    url = fresh_database(pg_url)
    report, times = run_fuzz(url, PG_N, SEED, tmp_path)
    print(report.text(), times)
    assert not report.failed, report.text()


def test_the_store_checks_catch_what_they_must(tmp_path: Path) -> None:
    """The oracle is not vacuous: over a store settled directly through the service, a
    settlement nobody acknowledged, a stored figure that differs from the reference and a
    moved account are each reported; with the right acknowledgements, nothing is."""
    import sqlalchemy as sa

    from adapters.bootstrap import build
    from adapters.grpc import convert as cv
    from adapters.grpc.testing import CHAIN, CHAIN_PERSONS, chain_bill
    from engine.bill import Person, parse_bill_request

    url = f"sqlite:///{tmp_path / 'o.db'}"
    app = build(url, policies=None, registry=None)
    try:
        app.service.put_policy(CHAIN, "chain.yaml")
        app.service.import_registry([Person.model_validate(p) for p in CHAIN_PERSONS])
        recs = [app.service.settle(f"r{i}", parse_bill_request(chain_bill(i)))[0] for i in range(4)]
        app.service.reverse(request_id="r1")
    finally:
        app.close()
    view = F.StoreView(url)
    try:
        acks = F.Acks()
        for r in recs:
            acks.settled.append((r.settlement_id, r.request_id, cv.result_pb(r.settlement)))
        acks.reversed.add(recs[1].settlement_id)
        ok = F.Report(0)
        assert F.check_settlements(view, acks, set(), ok) == 4
        assert not ok.problems, ok.problems

        missing = F.Report(0)
        F.check_settlements(view, F.Acks(settled=acks.settled[1:]), set(), missing)
        assert any("never acknowledged" in p for p in missing.problems)
        assert any("reversed but never acknowledged" in p for p in missing.problems)

        with view.store.engine.begin() as conn:  # a figure off by one fen, an account moved
            row = conn.execute(
                sa.text("SELECT settlement FROM settlements WHERE settlement_id = :i"),
                {"i": recs[3].settlement_id},
            ).scalar_one()
            s = row if isinstance(row, dict) else json.loads(row)
            s["window_pay"] += 1
            conn.execute(
                sa.text("UPDATE settlements SET settlement = :s WHERE settlement_id = :i"),
                {"s": json.dumps(s), "i": recs[3].settlement_id},
            )
            conn.execute(sa.text("UPDATE person_year_layers SET paid = paid + 1"))
        wrong = F.Report(0)
        F.check_settlements(view, acks, set(), wrong)
        assert any("differs from the serial replay" in p for p in wrong.problems), wrong.problems
        assert any("person accounts" in p for p in wrong.problems), wrong.problems
    finally:
        view.close()
