"""The audit ledger's use cases: the events that state-changing use cases append, sealing
them into blocks, checkpoints, inclusion proofs and verification (rules: ``engine.ledger``).

Where seqs come from: an event is stored in the transaction of its effect with a storage id
only. The sealer (one at a time: ``Ledger.lock_sealer``, a PostgreSQL advisory lock or the
SQLite writer) takes the committed unsealed events in storage-id order, gives them the next
consecutive seqs, computes their digests and stores the block. A transaction that commits
after a seal is simply sealed in a later block, so seqs never have gaps or go backwards and
no settlement ever waits for a ledger-wide lock (PostgreSQL: appends never touch the rows or
the lock the sealer holds).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from bisect import bisect_right
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from engine import ledger as L
from engine.bill import Person
from engine.claims import Claim, MoneyIn
from engine.errors import Conflict, NotFound
from engine.service.ports import FundVersion, PolicyVersion, SettlementRecord, UnitOfWork

log = logging.getLogger("onestop.ledger")

BLOCK_LIMIT = 10_000  # events per block at most (a backlog is sealed in several blocks)


# --- events ------------------------------------------------------------------------------


def _digest(x: Any) -> str:
    return L.sha256_hex(L.canonical(x))


def _fast_digest(x: Any) -> str:
    """``_digest`` of a value this program built (integers, strings, no floats): the same
    bytes, without the checks (a Settle's hot path)."""
    return L.sha256_hex(L.sorted_json(x))


def _amounts(rec: SettlementRecord, plain: dict[str, Any] | None = None) -> dict[str, Any]:
    """The event's ids and amounts per fund, read from ``plain`` (the settlement's
    ``to_dict()``, a Settle's written from the kernel's rows) or else the model."""
    if plain is None:
        s = rec.settlement
        plain = {"bill_id": s.bill_id, "person_id": s.person_id, "household": s.household,
                 "region": s.region, "year": s.year, "buckets": {"total": s.buckets.total},
                 "layers": [{"fund_code": r.fund_code, "pay": r.pay} for r in s.layers],
                 "funds_total": s.funds_total, "window_pay": s.window_pay,
                 "net_selfpay": s.net_selfpay}  # fmt: skip
    funds: dict[str, int] = {}
    for r in plain["layers"]:
        funds[r["fund_code"]] = funds.get(r["fund_code"], 0) + r["pay"]
    return {
        "settlement_id": rec.settlement_id,
        "request_id": rec.request_id,
        "bill_id": plain["bill_id"],
        "person_id": plain["person_id"],
        "household": plain["household"],
        "region": plain["region"],
        "year": plain["year"],
        "total": plain["buckets"]["total"],
        "funds": funds,
        "funds_total": plain["funds_total"],
        "window_pay": plain["window_pay"],
        "net_selfpay": plain["net_selfpay"],
    }


def settle_event(
    rec: SettlementRecord, principal: str, plain: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Settle: ids, the amounts per fund, and the digest of the whole settlement result
    (``plain``: its ``to_dict()``, if the caller has built it already, or
    ``SettledRows.plain()``: then the model is not read)."""
    d = rec.settlement.to_dict() if plain is None else plain
    return {
        "method": "Settle",
        "at": L.rfc3339(rec.created_at),
        "principal": principal,
        **_amounts(rec, d),
        "bill_digest": rec.bill_digest,
        "content_digest": _fast_digest(d),
    }


def reverse_event(rec: SettlementRecord, principal: str) -> dict[str, Any]:
    """Reverse: the reversed settlement's ids and amounts (what the funds take back) and the
    digest of the account moves undone."""
    assert rec.reversed_at is not None and rec.reversal_request_id is not None
    moves = [
        {"scope": m.scope, "key": m.key, "year": m.year, "layer_id": m.layer_id,
         "delta": list(m.delta.as_tuple())}
        for m in rec.moves
    ]  # fmt: skip
    return {
        "method": "Reverse",
        "at": L.rfc3339(rec.reversed_at),
        "principal": principal,
        **_amounts(rec),
        "reversal_request_id": rec.reversal_request_id,
        "content_digest": _digest(moves),
    }


def policy_event(v: PolicyVersion, principal: str) -> dict[str, Any]:
    return {
        "method": "PutPolicy",
        "at": L.rfc3339(v.created_at),
        "principal": principal,
        "region": v.region,
        "version": v.version,
        "effective_from": v.effective_from.isoformat(),
        "effective_to": None if v.effective_to is None else v.effective_to.isoformat(),
        "source_name": v.source_name,
        "content_digest": _digest(v.text),
    }


def registry_event(persons: list[Person], at: datetime, principal: str) -> dict[str, Any]:
    """ImportRegistry: the person ids only; their data (birth dates, tags) as a digest."""
    return {
        "method": "ImportRegistry",
        "at": L.rfc3339(at),
        "principal": principal,
        "persons": sorted(p.id for p in persons),
        "count": len(persons),
        "content_digest": _digest([p.model_dump(mode="json") for p in persons]),
    }


#: the ledger method of each claim step (domain.md section 13)
CLAIM_METHODS = {
    "filed": "FileClaim",
    "approved": "ApproveClaim",
    "rejected": "RejectClaim",
    "paid": "PayClaim",
}


def claim_event(c: Claim, at: datetime, principal: str) -> dict[str, Any]:
    """A claim's or relief case's step (filed, approved, rejected, paid): its ids, status and
    amounts; its free texts (note, reason, payment reference) as a digest."""
    return {
        "method": CLAIM_METHODS[c.status],
        "at": L.rfc3339(at),
        "principal": principal,
        "claim_id": c.claim_id,
        "kind": c.kind,
        "settlement_id": c.settlement_id,
        "layer_id": c.layer_id,
        "fund_code": c.fund_code,
        "region": c.region,
        "year": c.year,
        "status": c.status,
        "filed_amount": c.filed_amount,
        "approved_amount": c.approved_amount,
        "amount": c.current_amount,
        "paid_date": None if c.paid_date is None else c.paid_date.isoformat(),
        "content_digest": _digest([c.note, c.reason, c.payment_ref]),
    }


def funds_event(v: FundVersion, principal: str) -> dict[str, Any]:
    return {
        "method": "PutFunds",
        "at": L.rfc3339(v.created_at),
        "principal": principal,
        "region": v.region,
        "funds_version": v.version,
        "source_name": v.source_name,
        "content_digest": _digest(v.text),
    }


def money_in_event(m: MoneyIn, request_id: str, principal: str) -> dict[str, Any]:
    assert m.recorded_at is not None
    return {
        "method": "RecordMoneyIn",
        "at": L.rfc3339(m.recorded_at),
        "principal": principal,
        "record_id": m.record_id,
        "request_id": request_id,
        "region": m.region,
        "fund_code": m.fund_code,
        "year": m.year,
        "kind": m.kind,
        "amount": m.amount,
        "on": m.on.isoformat(),
        "content_digest": _digest([m.payer, m.note]),
    }


def subject_of(event: dict[str, Any]) -> str:
    if "claim_id" in event:
        return str(event["claim_id"])
    if "record_id" in event:
        return f"money_in:{event['record_id']}"
    if "funds_version" in event:
        return f"funds:{event['funds_version']}"
    if "settlement_id" in event:
        return str(event["settlement_id"])
    if "version" in event:
        return f"policy:{event['version']}"
    return f"registry:{event.get('count', 0)}"


def append(uow: UnitOfWork, event: dict[str, Any]) -> None:
    """Write ``event`` in ``uow``'s transaction (it commits or rolls back with the effect)."""
    uow.ledger.append(event["method"], subject_of(event), L.canonical(event).decode())


def append_all(uow: UnitOfWork, events: Sequence[dict[str, Any]]) -> None:
    """``append`` of each event, in this order, as one write (PostgreSQL: one INSERT, which
    may be a part of ``uow.together``'s statement)."""
    uow.ledger.append_many([(e["method"], subject_of(e), L.canonical(e).decode()) for e in events])


# --- the ledger service ------------------------------------------------------------------


class LedgerService:
    def __init__(
        self,
        uow: Callable[[], UnitOfWork],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        block_limit: int = BLOCK_LIMIT,
    ):
        self._uow = uow
        self._clock = clock
        self._limit = block_limit

    def seal(self) -> list[L.Header]:
        """Seal every committed unsealed event (in storage-id order, next seqs) into new
        blocks; returns their headers (none when nothing is waiting)."""
        made: list[L.Header] = []
        while True:
            with self._uow() as uow:
                uow.ledger.lock_sealer()
                head = uow.ledger.head()
                rows = uow.ledger.unsealed(self._limit)
                if not rows:
                    return made
                first = 1 if head is None else head.header.last_seq + 1
                sealed = []
                for i, e in enumerate(rows):
                    seq = first + i
                    event = {**json.loads(e.content), "seq": seq}  # content: canonical, ours
                    sealed.append(replace(e, seq=seq, digest=_fast_digest(event)))
                h = L.make_block(
                    None if head is None else head.header,
                    first,
                    [e.digest or "" for e in sealed],
                    self._clock(),
                )
                uow.ledger.seal(sealed, L.StoredBlock(h, h.hash()))
                uow.commit()
            made.append(h)
            if len(rows) < self._limit:
                return made

    def checkpoint(self) -> L.StoredBlock | None:
        """The latest block: its hash is what a county publishes."""
        with self._uow() as uow:
            return uow.ledger.head()

    def pending(self) -> int:
        with self._uow() as uow:
            return uow.ledger.pending()

    def _chain(
        self, uow: UnitOfWork, stray: list[L.StoredEvent], batch: int = 500
    ) -> Iterator[tuple[L.StoredBlock, list[L.StoredEvent]]]:
        after, last = -1, 0
        while True:
            blocks = uow.ledger.blocks(after, batch)
            if not blocks:
                break
            lo = min(b.header.first_seq for b in blocks)
            hi = max(b.header.last_seq for b in blocks)
            rows = uow.ledger.events(lo, hi)
            starts = sorted((b.header.first_seq, i) for i, b in enumerate(blocks))
            keys = [s for s, _ in starts]
            per: list[list[L.StoredEvent]] = [[] for _ in blocks]
            for e in rows:
                j = bisect_right(keys, e.seq or 0) - 1
                b = blocks[starts[j][1]] if j >= 0 else None
                if b is not None and (e.seq or 0) <= b.header.last_seq:
                    per[starts[j][1]].append(e)
                else:
                    stray.append(e)
            yield from zip(blocks, per, strict=True)
            after = blocks[-1].header.height
            last = max(last, hi)
        extra = uow.ledger.stray(last)
        if extra:  # PostgreSQL reads each statement afresh: a seal may have landed meanwhile
            newer = [b.header for b in uow.ledger.blocks(after, 1 << 62)]
            extra = [
                e for e in extra
                if not any(h.first_seq <= (e.seq or 0) <= h.last_seq for h in newer)
            ]  # fmt: skip
        stray.extend(extra)

    def verify(self) -> tuple[L.Report, int]:
        """Recompute every stored block from the stored events (sealing nothing); returns the
        report and the number of events not sealed yet."""
        with self._uow() as uow:
            stray: list[L.StoredEvent] = []
            report = L.verify(self._chain(uow, stray), stray)
            return report, uow.ledger.pending()

    def headers_after(self, height: int) -> list[dict[str, Any]]:
        with self._uow() as uow:
            out: list[dict[str, Any]] = []
            while True:
                blocks = uow.ledger.blocks(height, 1000)
                if not blocks:
                    return out
                out += [b.header.to_json() for b in blocks]
                height = blocks[-1].header.height

    def prove(self, settlement_id: str) -> dict[str, Any]:
        """The section 15 inclusion proof of the settlement's Settle event."""
        with self._uow() as uow:
            e = uow.ledger.find("Settle", settlement_id)
            if e is None:
                raise NotFound("Settle event of settlement", settlement_id)
            if e.seq is None:
                raise Conflict(
                    f"the Settle event of {settlement_id} is not sealed yet; run "
                    "`onestop ledger seal` (a running server seals every second)"
                )
            block = uow.ledger.block_with(e.seq)
            if block is None:
                raise Conflict(f"event seq {e.seq} is in no block: run `onestop ledger verify`")
            h = block.header
            rows = uow.ledger.events(h.first_seq, h.last_seq)
        if [r.seq for r in rows] != list(range(h.first_seq, h.last_seq + 1)):
            raise Conflict(f"block {h.height}'s events are damaged: run `onestop ledger verify`")
        digests = [L.event_digest(r.event()) for r in rows]
        if L.merkle_root(digests) != h.merkle_root or h.hash() != block.hash:
            raise Conflict(
                f"block {h.height} does not match its events: run `onestop ledger verify`"
            )
        return L.make_proof(e.event(), digests, h)


#: unsealed events that make the sealer seal before its interval is up (``Sealer``)
SEAL_EARLY = 128


class Sealer:
    """Seals in the background every ``interval`` seconds (and at once on ``trigger``), and
    sooner once ``early`` events wait (checked every tenth of ``interval``): a busy server seals
    smaller blocks more often, so that no seal rewrites a whole second's events at once (a
    seal's rewrite is WAL that the commits behind it wait for: benchmarks/README.md, branch
    pipecommit); an idle one still seals at most once an interval. ``stop`` seals what is
    committed by then and ends the thread."""

    def __init__(self, ledger: LedgerService, interval: float = 1.0, early: int = SEAL_EARLY):
        self.ledger = ledger
        self.interval = interval
        self.early = early
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="ledger-sealer", daemon=True)
            self._thread.start()

    def trigger(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        last = time.monotonic()
        while not self._stop.is_set():
            woke = self._wake.wait(self.interval / 10)
            self._wake.clear()
            if woke or time.monotonic() - last >= self.interval or self._waiting():
                self._seal_once()
                last = time.monotonic()

    def _waiting(self) -> bool:
        """Whether ``early`` events wait to be sealed (a read, no lock)."""
        try:
            return self.ledger.pending() >= self.early
        except Exception:
            return False  # sealed at the interval, which logs what fails

    def _seal_once(self) -> None:
        try:
            made = self.ledger.seal()
            for h in made:
                log.info("sealed block %d: events %d..%d", h.height, h.first_seq, h.last_seq)
        except Exception:
            log.exception("sealing failed; retrying in %.1f s", self.interval)

    def stop(self, timeout: float = 10.0) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)
        self._thread = None
        self._seal_once()
