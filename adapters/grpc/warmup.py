"""Warming a server before it says SERVING: the kernels compiled and run by a trial
settlement of a sample bill (of the sample tables, or of a built-in table)."""

from __future__ import annotations

import logging
import os
from datetime import date
from pathlib import Path
from typing import Any

from adapters.grpc import convert as cv
from adapters.grpc import requestwire, resultwire
from adapters.grpc.billwire import warm_bill_wire
from adapters.grpc.errors import log_incident
from adapters.grpc.isodays import warm_iso_days
from engine.accounts import YearAccounts
from engine.bill import Bill, Category, Item, Person, TagSpan
from engine.errors import NotFound, OnestopError
from engine.policy.load import parse_table
from engine.policy.policyset import PolicySet
from engine.service.usecases import SettlementService
from engine.settle import settle_one

log = logging.getLogger("onestop.grpc")

_WARM_TABLE = """
region: {code: "warmup", name: "warm-up table (never stored)"}
effective_from: 2000-01-01
hospital_levels: [l1, l2]
tags: [poor]
b_selfpay_ratio: 1000
layers:
  - {id: basic, name: basic, fund_code: "390100", kind: reimburse,
     variants: [{deductible: {basis: admission, amount: 30000}, segments: [{ratio: 7000}]}]}
  - {id: ci, name: ci, fund_code: "390200", kind: reimburse,
     variants: [{deductible: {basis: year, amount: 1000000},
                 segments: [{up_to: 5000000, ratio: 6000}, {ratio: 7000}]}]}
  - {id: backstop, name: backstop, fund_code: "640100", kind: backstop,
     covers: [in_scope, pre_selfpay], eligibility: {tags_any: [poor]},
     variants: [{max_share: 1000, annual_ceiling: 500000}]}
  - {id: alert, name: alert, fund_code: "370200", kind: alert, scope: household,
     covers: [in_scope, pre_selfpay, over_limit, out_of_catalogue],
     variants: [{threshold: 1000000, segments: [{ratio: 5000}]}]}
"""


def _sample_bill(table: Any) -> Bill:
    day = table.effective_from
    return Bill(
        id="__warmup__",
        hospital="WARMUP",
        region=table.region.code,
        person=Person(
            id="__warmup__",
            birth_date=date(1970, 1, 1),
            household="__warmup__",
            tags=tuple(TagSpan(tag=t) for t in table.tags),
        ),
        hospital_level=table.hospital_levels[0],
        admission_date=day,
        discharge_date=day,
        items=(
            Item(category=Category.A, amount=5_000_000),
            Item(category=Category.B, qty_e4=20000, unit_price=150_000, amount=300_000,
                 unit_price_cap=120_000),
            Item(category=Category.C, amount=200_000),
        ),
    )  # fmt: skip


def warm_up(service: SettlementService, samples: Path | None = None) -> int:
    """Compile (or load from the numba cache) and run the kernels: a trial settlement of a
    sample bill for every table in force, from zero accounts; nothing is stored. Then trial
    settlements of the sample bills in ``samples`` (``*.json``) whose persons are registered.
    Returns the number of trial settlements run.

    A warm-up that had to compile (numba's cache missing, out of date or not writable) says so
    in a warning: the start took seconds a variant, the first packed stream messages compile the
    stream's own, and the process runs the stream ~1.1x slower for as long as it runs (its heap
    after compiling; benchmarks/README.md, branch numbacache)."""
    from numba.core import event

    with event.install_recorder("numba:compile") as compiles:
        n = _warm_up(service, samples)
    compiled = sum(1 for _, ev in compiles.buffer if ev.is_start)
    if compiled:
        log.warning(
            "warm-up compiled %d kernel variant(s) in this process: numba's cache (%s) was "
            "missing, out of date or not writable; run `onestop warm --for server` once",
            compiled,
            os.environ.get("NUMBA_CACHE_DIR") or "engine/__pycache__",
        )
    return n


def _warm_up(service: SettlementService, samples: Path | None) -> int:
    warm_bill_wire()  # the compiled reader of a bill's items (PreSettle, Settle)
    resultwire.warm_result_wire()  # the compiled writer of PreSettle's answer
    requestwire.warm_request_wire()  # the compiled reader of PreSettle's (and Settle's) request
    warm_iso_days()  # the compiled reader of the packed stream's dates
    try:
        policies = service.policies()
    except NotFound:
        policies = PolicySet.of([parse_table(_WARM_TABLE, "<warm-up>")])
    n = 0
    for table in policies.tables:
        settle_one(_sample_bill(table), policies, YearAccounts(), YearAccounts())
        n += 1
    if samples is not None and samples.is_dir():
        import json

        for f in sorted(samples.glob("*.json")):
            if f.name == "registry.json":
                continue
            try:
                data = json.loads(f.read_text(encoding="utf-8"))
                for b in data if isinstance(data, list) else [data]:
                    service.pre_settle(cv.bill_request(cv.bill_to_pb(b)))
                    n += 1
            except OnestopError as exc:  # a sample that does not fit is not fatal
                log.warning("warm-up: sample %s not settled: %s", f.name, exc)
            except Exception as exc:
                log_incident(exc, f"warm-up: sample {f.name} not settled")
    return n


# --------------------------------------------------------------------------- server
