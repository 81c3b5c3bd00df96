"""SettleStream: one request message (a list of bills or packed columns) -> one response.

TRIAL mode settles the message as one batch from the stored accounts and writes nothing:
bills as messages go through ``engine.batch.settle_batch``; packed columns go straight into
``engine.columnar`` (``packedtrial``: no per-item Python objects, the fast path). SETTLE mode
calls the ``settle`` use case bill by bill (each its own transaction), exactly as the Settle
rpc does; packed bills are first read as bill requests (``packedbills``).

Only public use cases are used (``policies``, ``person``, ``accounts``, ``settle``); a batch
trial use case in the service would read the registry and the accounts in one unit of work
(see the report in benchmarks/README.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from adapters.auth.access import ScopedService
from adapters.grpc import convert as cv
from adapters.grpc.gen.onestop.settlement.v1 import settlement_pb2 as pb
from adapters.grpc.limits import DEFAULT, Limits
from adapters.grpc.packedbills import packed_requests
from adapters.grpc.packeditems import packed_items
from adapters.grpc.packedresults import fill
from adapters.grpc.packedtext import (
    hospitals_for_scope,
    n_bills,
)
from adapters.grpc.packedtrial import trial_packed
from engine.accounts import Opening
from engine.batch import settle_batch
from engine.bill import BillRequest, Person
from engine.errors import InputError, NotFound, Problem
from engine.service.inputs import key_problems
from engine.service.usecases import SettlementService


def handle(
    service: SettlementService,
    req: pb.SettleStreamRequest,
    limits: Limits = DEFAULT,
    scoped: ScopedService | None = None,
    cut: Mapping[str, Any] | None = None,
) -> pb.SettleStreamResponse:
    """One message. With ``scoped`` (the caller's scope), every bill's hospital is checked
    before anything is tried or settled, and SETTLE goes through its ``settle``. ``cut``: the
    packed item columns read as views of the received bytes (``packedwire``), by field name."""
    if req.mode not in (pb.STREAM_MODE_TRIAL, pb.STREAM_MODE_SETTLE):
        raise InputError.one("mode", req.mode, "is not TRIAL (1) or SETTLE (2)")
    which = req.WhichOneof("payload")
    if which == "packed":
        items = packed_items(req.packed, cut)
        limits.check_message(n_bills(req.packed), len(items.amount))
    elif which == "bills":
        limits.check_message(len(req.bills.bills), sum(len(r.bill.items) for r in req.bills.bills))
    if scoped is not None:
        if which == "packed":
            scoped.check_hospitals(*hospitals_for_scope(req.packed))
        elif which == "bills":
            scoped.check_hospitals(
                (r.bill.hospital for r in req.bills.bills), "bills[{i}].hospital"
            )
    if which == "packed" and req.mode == pb.STREAM_MODE_TRIAL:
        return trial_packed(service, req.packed, items, le=req.packed_results_le)
    if which == "packed":
        reqs = packed_requests(req.packed, items)
    elif which == "bills":
        reqs = list_requests(req.bills)
    else:
        raise InputError.one("payload", None, "is missing; send bills or packed")
    n_items = sum(len(r.items) for _, r in reqs)
    if req.mode == pb.STREAM_MODE_TRIAL:
        results = trial_many(service, [r for _, r in reqs])
        return _respond(results, [], [], req, n_items)
    return settle_many(scoped or service, reqs, req, n_items)


def _respond(
    results: list[Any],
    ids: list[str],
    replay: list[bool],
    req: pb.SettleStreamRequest,
    n_items: int,
) -> pb.SettleStreamResponse:
    out = pb.SettleStreamResponse(
        n_bills=len(results), n_items=n_items, settlement_ids=ids, replay=replay
    )
    if req.packed_results:
        out.packed.CopyFrom(pack_results(results, ids, le=req.packed_results_le))
    else:
        out.results.extend(cv.result_pb(s) for s in results)
    return out


def pack_results(results: list[Any], ids: list[str], le: bool = False) -> pb.PackedResults:
    """Settlements as packed columns (``le``: the bytes form, ``packedresults.fill``)."""
    p = pb.PackedResults(bill_ids=[s.bill_id for s in results], settlement_ids=ids)
    ints = {
        name: np.array([getattr(s.buckets, name) for s in results], dtype=np.int64)
        for name in ("total", "in_scope", "pre_selfpay", "over_limit", "out_of_catalogue")
    }
    for name in ("window_pay", "net_selfpay", "funds_total"):
        ints[name] = np.array([getattr(s, name) for s in results], dtype=np.int64)
    ints["layer_offsets"] = np.cumsum([0] + [len(s.layers) for s in results], dtype=np.int64)
    rows = [r for s in results for r in s.layers]
    ints["layer_pay"] = np.array([r.pay for r in rows], dtype=np.int64)
    ints["layer_relief"] = np.array([r.relief for r in rows], dtype=np.int64)
    pairs: dict[tuple[str, str], int] = {}
    key = [pairs.setdefault((r.layer_id, r.fund_code), len(pairs)) for r in rows]
    fill(p, ints, np.array(key, dtype=np.int64), [i for i, _ in pairs], [f for _, f in pairs], le)
    return p


# --------------------------------------------------------------------------- bills as messages


def list_requests(bills: pb.BillList) -> list[tuple[str, BillRequest]]:
    out, problems = [], []
    for i, r in enumerate(bills.bills):
        try:
            out.append((r.request_id, cv.bill_request(r.bill, prefix=f"bills[{i}]")))
        except InputError as err:
            problems += err.problems
        problems += key_problems(f"bills[{i}].request_id", r.request_id)
    if problems:
        raise InputError(problems)
    return out


def trial_many(service: SettlementService, reqs: list[BillRequest]) -> list[Any]:
    """Trial of many bills as one batch from the stored accounts (chained per person)."""
    persons = _persons(service, [r.person_id for r in reqs])
    bills, problems = [], []
    for i, r in enumerate(reqs):
        try:
            bills.append(r.with_person(persons[r.person_id]))
        except InputError as err:  # e.g. admitted before the person's birth
            problems += [Problem(f"bills[{i}].{q.field}", q.value, q.rule) for q in err.problems]
        except Exception as err:  # the person is valid; a bill that fails here is bad input
            problems.append(Problem(f"bills[{i}]", r.id, f"cannot be built: {err}"))
    if problems:
        raise InputError(problems)
    opening = _opening(service, {(b.person.id, b.year) for b in bills})
    return settle_batch(bills, service.policies(), opening).settlements


def _persons(service: SettlementService, ids: list[str]) -> dict[str, Person]:
    out: dict[str, Person] = {}
    problems = []
    for i, pid in enumerate(ids):
        if pid in out:
            continue
        try:
            out[pid] = service.person(pid)
        except NotFound:
            problems.append(
                Problem(
                    f"bills[{i}].person_id",
                    pid,
                    "is not in the person registry; import the person first",
                )
            )
    if problems:
        raise InputError(problems)
    return out


def _opening(service: SettlementService, keys: set[tuple[str, int]]) -> Opening:
    person, household = {}, {}
    for (pid, year), found in service.accounts_many(sorted(keys)).items():
        if found is None:
            raise NotFound("person", pid, "import the person registry first")
        p, pa, ha = found
        person[(pid, year)] = pa
        household[(p.household, year)] = ha
    return Opening(person, household)


def settle_many(
    service: SettlementService | ScopedService,
    reqs: list[tuple[str, BillRequest]],
    req: pb.SettleStreamRequest,
    n_items: int,
) -> pb.SettleStreamResponse:
    results, ids, replay = [], [], []
    for i, (rid, r) in enumerate(reqs):
        try:
            rec, again = service.settle(rid, r)
        except InputError as err:
            raise InputError(
                [Problem(f"bills[{i}].{p.field}", p.value, p.rule) for p in err.problems]
            ) from None
        results.append(rec.settlement)
        ids.append(rec.settlement_id)
        replay.append(again)
    return _respond(results, ids, replay, req, n_items)
