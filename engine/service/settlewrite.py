"""Settle (2304): one call in its own transaction, or grouped calls in one transaction
(group commit, engine/service/groupcommit.py); the record and writes of a settlement.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, cast

from engine.batch import FundYearKey
from engine.bill import Bill, BillRequest, Person
from engine.errors import BillSettled, Conflict, DuplicateRequest, InputError, OnestopError
from engine.policy.policyset import PolicySet
from engine.service import billcols, claimmoves, fundbook, ledger, settlecols
from engine.service.digest import legacy_digest
from engine.service.groupcommit import (
    GroupCommit,
    PreparedSettle,
    SettleAnswer,
    SettleCall,
    SettleWriter,
)
from engine.service.inputs import check_key
from engine.service.ports import (
    AccountMove,
    SettlementRecord,
    SettleReads,
    UnitOfWork,
    account_locks,
)
from engine.service.rowsrecord import RowsRecord
from engine.service.settlecols import ColumnsBill, Moved
from engine.service.settledrows import SettledRows
from engine.service.trial import Trial
from engine.service.versions import policy_version_of
from engine.settle import Outcome

log = logging.getLogger("onestop.service")


class SettleWrite(Trial):
    """The settle-write use cases of ``SettlementService``."""

    def settle(
        self,
        request_id: str,
        req: BillRequest | billcols.BillColumns | settlecols.ColumnsRequest,
        *,
        principal: str = "local",
    ) -> tuple[SettlementRecord, bool]:
        """Settle (2304). Returns the record and whether it is a replay of an earlier request
        with the same id. The same id with a different bill is a Conflict. With group commit
        on (``use_group_commit``) and another Settle in flight, the call goes to the
        service's writer, which settles it in one transaction with the calls queued beside
        it and answers after that commit (with none in flight it settles alone here). The
        request may come as columns (``billcols.BillColumns``, or checked already:
        ``settlecols.request_of``): settled without a per-item model, stored and digested as
        the model would be."""
        rec, replay, _rows = self.settle_rows(request_id, req, principal=principal)
        return rec, replay

    def settle_rows(
        self,
        request_id: str,
        req: BillRequest | billcols.BillColumns | settlecols.ColumnsRequest,
        *,
        principal: str = "local",
    ) -> tuple[SettlementRecord, bool, SettledRows | None]:
        """``settle``, and the kernel's output rows of a settlement made now by the columns
        path, alone or grouped (None: a replay, the model path), from which Settle's answer is
        written (``adapters.grpc.resultwire``); the record holds the same figures."""
        if isinstance(req, billcols.BillColumns):
            req = settlecols.request_of(req)  # a bad bill: the model path's InputError
        if not request_id or len(request_id) > 128:
            raise InputError.one("request_id", request_id, "must be 1 to 128 characters")
        check_key("request_id", request_id)
        call = SettleCall(request_id, req, principal, settlecols.digest_of(req))
        writer = self._writer
        if writer is None:
            return self._settle_alone_rows(call)
        with writer.in_flight() as first:
            if first:  # no other Settle in flight: no commit to share
                return self._settle_alone_rows(call)
            rec, replay = writer.submit(call)  # its reads, locks and writes: the writer's
        return rec, replay, (rec.rows if isinstance(rec, RowsRecord) and not replay else None)

    # --- group commit (engine/service/groupcommit.py) --------------------------------------
    def use_group_commit(self, config: GroupCommit | None) -> None:
        """Group Settle calls into shared transactions (one writer thread; None or
        ``max_group`` 1: each Settle its own transaction, in the caller's thread)."""
        old, self._writer = self._writer, None
        if old is not None:
            old.close()
        if config is not None and config.on:
            self._writer = SettleWriter(self.settle_group, config)

    @property
    def group_commit(self) -> GroupCommit | None:
        return None if self._writer is None else self._writer.config

    @property
    def settle_writer(self) -> SettleWriter | None:
        """The writer of grouped Settle calls (its ``groups`` and ``calls`` counts), if on."""
        return self._writer

    def close(self) -> None:
        """Stop the settle writer (after the calls already queued), if there is one."""
        self.use_group_commit(None)

    def _prepare_all(
        self, uow: UnitOfWork, calls: Sequence[SettleCall]
    ) -> list[PreparedSettle | SettleAnswer]:
        """What each call reads before its locks, as a lone settle does, the calls' reads in
        one round trip (``settle_reads_many``; with the persons' account locks when no bill's
        year has a hard-budget fund-year: ``_early_year``): a replay of the request (the
        answer), the bill with its person from the registry (checked against its table), the
        bill's active settlement (BillSettled), the hard budgets the bill draws on. An error
        of one call's is its own answer."""
        years = [self._early_year(c.req) for c in calls]
        pres = uow.settle_reads_many(
            [(c.request_id, c.req.person_id, c.req.hospital, c.req.id) for c in calls],
            None if None in years else cast("list[int]", years),
        )
        out: list[PreparedSettle | SettleAnswer] = []
        for c, pre in zip(calls, pres, strict=True):
            try:
                out.append(self._prepared(uow, c, pre))
            except Exception as exc:
                out.append(exc)
        return out

    def _prepared(
        self, uow: UnitOfWork, c: SettleCall, pre: SettleReads
    ) -> PreparedSettle | tuple[SettlementRecord, bool]:
        """A call after its reads ``pre``: its replay (the answer), or the call prepared."""
        got = self._after_reads(uow, c, pre)
        if isinstance(got, SettlementRecord):
            return got, True  # a replay of a committed settlement
        bill, person_version = got
        # the stored request dumped now, unless the store takes it as JSON written from the
        # columns (``_record``)
        json_bill = uow.settlements.takes_stored_json and isinstance(bill, ColumnsBill)
        stored = None if json_bill else settlecols.stored_of(c.req)
        return PreparedSettle(c, bill, person_version, self._keys(bill), stored)

    def _early_year(self, req: settlecols.Request) -> int | None:
        """The bill's accounting year when no hard-budget fund-year of that year is declared
        (so this settle locks no fund-year, which would sort before its accounts): the store
        may then lock the person's accounts with the reads (``settle_reads``); else None."""
        y = req.ch.year if isinstance(req, settlecols.ColumnsRequest) else req.discharge_date.year
        return None if any(k[2] == y for k in self.fund_book().hard_keys()) else y

    def _reads(
        self, uow: UnitOfWork, c: SettleCall, year: int | None = None
    ) -> SettlementRecord | tuple[Bill | ColumnsBill, int | None]:
        """A settle's reads before its locks, in one round trip (``settle_reads``): the
        settlement of an earlier request with this id (returned: the call is its replay), or
        the bill with its person from the registry (checked against its table) and the
        registry version used. BillSettled if the bill has an active settlement."""
        return self._after_reads(uow, c, self._settle_reads(uow, c, year))

    @staticmethod
    def _settle_reads(uow: UnitOfWork, c: SettleCall, year: int | None = None) -> SettleReads:
        req = c.req
        return uow.settle_reads(c.request_id, req.person_id, req.hospital, req.id, year)

    def _after_reads(
        self, uow: UnitOfWork, c: SettleCall, pre: SettleReads
    ) -> SettlementRecord | tuple[Bill | ColumnsBill, int | None]:
        """``_reads`` after its round trip ``pre``."""
        req = c.req
        if pre.found is not None:
            return self._replay(pre.found, c.digest, c.request_id, req)
        bill, person_version = self._bill_for(req, pre.person)
        if pre.active_id is not None:
            # a twin of this request may have committed between the reads (no locks here; on
            # PostgreSQL each read sees what is committed when it runs): then this call is
            # its replay, not a second settlement of the bill
            found = uow.settlements.by_request(c.request_id)
            if found is not None:
                return self._replay(found, c.digest, c.request_id, req)
            raise BillSettled(bill.hospital, bill.id)
        return bill, person_version

    def _bill_for(
        self, req: settlecols.Request, found: tuple[Person, int | None] | None
    ) -> tuple[Bill | ColumnsBill, int | None]:
        """The bill with its person (as the registry read it) checked against its table, and
        the registry version used: columns stay columns when they fit, anything else goes the
        model path (which raises what does not fit)."""
        if isinstance(req, settlecols.ColumnsRequest) and found is not None:
            bill = settlecols.bill_of(req.ch, found[0], self.policies())
            if bill is not None:
                return bill, found[1]
        return self._checked_bill(settlecols.model_of(req), found)

    def _keys(self, bill: Bill | ColumnsBill) -> list[FundYearKey]:
        """The hard-budget fund-years the bill's table draws on (section 12)."""
        if isinstance(bill, Bill):
            return self._hard_keys(bill)
        codes = [x.fund_code for x in bill.table.layers]
        return fundbook.hard_keys(self.fund_book(), bill.table.region.code, bill.year, codes)

    def settle_group(self, calls: Sequence[SettleCall]) -> list[SettleAnswer]:
        """Settle the calls as one group (what the writer does with the calls it takes from
        its queue), in this thread, in one transaction, in order, as one-by-one settles
        would: each sees the account moves of the calls before it (same person or
        household), a twin of an earlier call (same request id) is its replay, a second
        settlement of a bill is BillSettled; a call's own error (a bill that does not fit its
        table, ...) is its answer alone. The locks of the whole group are taken in the global
        order (with the reads, or in one ``lock`` call), so two writers' groups never
        deadlock. If the group's reads fail, or anything fails after a write (another process
        settled a twin or the bill since the reads, the commit failed), the group is rolled
        back and its calls settled one by one, each in its own transaction. Each call's
        answer, in order."""
        got: list[PreparedSettle | SettleAnswer] | None = None
        done: list[SettleAnswer] | None = None
        try:
            with self._uow() as uow:
                got = self._prepare_all(uow, calls)
                done = self._settle_together(uow, [p for p in got if isinstance(p, PreparedSettle)])
        except Exception as exc:
            log.info("settle group of %d rolled back (%s): one by one", len(calls),
                     type(exc).__name__)  # fmt: skip
        if got is None:  # the group's reads failed
            return [self._answer_alone(c) for c in calls]
        if done is None:
            done = [self._answer_alone(p.call) for p in got if isinstance(p, PreparedSettle)]
        it = iter(done)
        return [next(it) if isinstance(p, PreparedSettle) else p for p in got]

    def _answer_alone(self, c: SettleCall) -> SettleAnswer:
        try:
            return self._settle_alone(c)
        except Exception as exc:
            return exc

    def _settle_together(
        self, uow: UnitOfWork, group: Sequence[PreparedSettle]
    ) -> list[SettleAnswer]:
        """The prepared calls settled in ``uow``'s transaction, and its commit."""
        answers: list[SettleAnswer] = []
        if not group:
            return answers
        uow.lock(
            *(k for p in group for k in p.locks()),
            read=[
                k
                for p in group
                for k in (
                    ("person", p.bill.person.id, p.bill.year),
                    ("household", p.bill.person.household, p.bill.year),
                )
            ],
        )  # every account of the group, before the first write (held already, or one trip)
        policies = self.policies()
        taken: dict[str, SettlementRecord] = {}  # request id -> settled in this group
        bills: set[tuple[str, str]] = set()
        for p in group:
            c, bill = p.call, p.bill
            twin = taken.get(c.request_id)
            try:
                if twin is not None:
                    answers.append((self._replay(twin, c.digest, c.request_id, c.req), True))
                    continue
                if (bill.hospital, bill.id) in bills:
                    raise BillSettled(bill.hospital, bill.id)
                budgets = self._budgets(uow, p.keys)
                pa = uow.accounts.person_year(bill.person.id, bill.year)
                ha = uow.accounts.household_year(bill.person.household, bill.year)
                out, rows = settlecols.settle_rows(bill, policies, pa, ha, budgets)
            except OnestopError as exc:  # nothing of this call written
                answers.append(exc)
                continue
            # as a lone settle's: the record and its writes from the kernel's rows (the
            # columns path), the request's JSON from the columns where the store takes it
            rec = self._record(c, bill, out, p.person_version, policies, p.stored,
                               rows=rows, json_bill=p.stored is None)  # fmt: skip
            self._write(uow, rec, out, p.keys, c.principal,
                        None if rows is None else rows.plain())  # fmt: skip
            taken[c.request_id] = rec
            bills.add((bill.hospital, bill.id))
            answers.append((rec, False))
        uow.commit()
        return answers

    def _record(
        self,
        c: SettleCall,
        bill: Bill | ColumnsBill,
        out: Outcome | Moved,
        person_version: int | None,
        policies: PolicySet,
        stored: dict[str, Any] | None = None,
        rows: SettledRows | None = None,
        json_bill: bool = False,
    ) -> SettlementRecord:
        """The settlement record of a call settled now (its time taken under its locks);
        ``stored``: the request as stored (JSON-ready), if dumped already. ``rows``: the
        kernel's rows of a columns path settlement (``out`` is then ``Moved``): the record's
        model is built from them only if read (``RowsRecord``). ``json_bill``: the store
        writes the request as ``RowsRecord.stored_json`` (``takes_stored_json``): then it is
        written from the columns, and its dicts made only if read."""
        y = bill.year
        moves = tuple(
            [
                AccountMove("person", bill.person.id, y, k, v)
                for k, v in sorted(out.person_moves.items())
            ]
            + [
                AccountMove("household", bill.person.household, y, k, v)
                for k, v in sorted(out.household_moves.items())
            ]
        )
        values: dict[str, Any] = dict(
            settlement_id=self._new_id(), request_id=c.request_id, bill_digest=c.digest,
            moves=moves, created_at=self._clock(), status="settled", reversed_at=None,
            reversal_request_id=None, registry_version=person_version,
            policy_version=policy_version_of(policies, bill),
        )  # fmt: skip
        if rows is not None and stored is None and json_bill:  # the JSON from the columns
            text = settlecols.stored_json_of(c.req)
            if text is not None:
                return RowsRecord.of(rows, stored_json=text, **values)
        values["bill"] = settlecols.stored_of(c.req) if stored is None else stored
        if rows is not None:
            return RowsRecord.of(rows, **values)
        assert isinstance(out, Outcome)
        return SettlementRecord(settlement=out.settlement, **values)

    @staticmethod
    def _write(
        uow: UnitOfWork,
        rec: SettlementRecord,
        out: Outcome | Moved,
        keys: list[FundYearKey],
        principal: str,
        plain: dict[str, Any] | None = None,
    ) -> None:
        """Everything a settlement writes, in its transaction: the accounts it moved, the
        record, its ledger event, the hard budgets it used, its claims and relief cases.
        ``plain``: the settlement's ``to_dict()`` (``SettledRows.plain()`` on the columns
        path), which every write reads its figures from; else built from ``rec.settlement``."""
        if plain is None:
            plain = rec.settlement.to_dict()  # the stored settlement and its ledger digest
        claims = claimmoves.new_claims(rec, rec.created_at, principal, plain)  # sec. 13
        pid, hh, y = plain["person_id"], plain["household"], plain["year"]
        with uow.together():  # each writes other rows (PostgreSQL: one statement)
            uow.accounts.save_person_year(pid, y, out.person_after)
            uow.accounts.save_household_year(hh, y, out.household_after)
            uow.settlements.add(rec, plain)
            for k in keys:  # section 12: the bill's pays and reliefs are used
                spent = sum(
                    r["pay"] + r["relief"] for r in plain["layers"] if r["fund_code"] == k[1]
                )
                uow.funds.add_used(*k, spent)
            for cl in claims:
                uow.claims.add(cl)
            # the ledger events in one write, in this order (their storage ids are the
            # sealing order): the settlement's, then its claims'
            ledger.append_all(
                uow,
                [
                    ledger.settle_event(rec, principal, plain),
                    *(ledger.claim_event(cl, cl.filed_at, principal) for cl in claims),
                ],
            )

    def _settle_alone(self, c: SettleCall) -> tuple[SettlementRecord, bool]:
        """One settle in its own transaction (group commit off, or a failed group's calls)."""
        rec, replay, _rows = self._settle_alone_rows(c)
        return rec, replay

    def _settle_alone_rows(
        self, c: SettleCall
    ) -> tuple[SettlementRecord, bool, SettledRows | None]:
        """``_settle_alone``, and the kernel's rows of a settlement made now (columns path)."""
        request_id, req, d = c.request_id, c.req, c.digest
        with self._uow() as uow:
            got = self._reads(uow, c, self._early_year(req))
            if isinstance(got, SettlementRecord):
                return got, True, None
            bill, person_version = got
            keys = self._keys(bill)
            pid, hh, y = bill.person.id, bill.person.household, bill.year
            # the accounts read under the locks, in the locks' round trip (PostgreSQL). A twin
            # of this request or another settlement of the bill that committed since the reads
            # above fails this one's insert (the unique indexes on the request id and on the
            # bill's active settlement): DuplicateRequest or BillSettled below
            uow.lock(
                *fundbook.fund_locks(keys), *account_locks(pid, hh, y),
                read=[("person", pid, y), ("household", hh, y)],
            )  # fmt: skip
            policies = self.policies()  # one set: the table settled with is the one recorded
            budgets = self._budgets(uow, keys)
            pa = uow.accounts.person_year(pid, y)
            ha = uow.accounts.household_year(hh, y)
            out, rows = settlecols.settle_rows(bill, policies, pa, ha, budgets)
            rec = self._record(c, bill, out, person_version, policies, rows=rows,
                               json_bill=uow.settlements.takes_stored_json)  # fmt: skip
            try:
                self._write(
                    uow, rec, out, keys, c.principal, None if rows is None else rows.plain()
                )
                uow.commit()
            except (DuplicateRequest, BillSettled):  # a twin of this request may have won
                uow.rollback()
                with self._uow() as again:
                    twin = again.settlements.by_request(request_id)
                if twin is None:
                    raise
                return self._replay(twin, d, request_id, req), True, None
        return rec, False, rows

    @staticmethod
    def _replay(
        found: SettlementRecord, d: str, request_id: str, req: settlecols.Request
    ) -> SettlementRecord:
        if found.bill_digest != d and found.bill_digest != legacy_digest(settlecols.stored_of(req)):
            raise Conflict(
                f"request_id {request_id!r} was already used for bill "
                f"{found.bill.get('id')!r} with different content; use a new "
                "request id for a new bill"
            )
        return found
