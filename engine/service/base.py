"""The settlement service's shared state and the cached policy tables and fund declarations
in force.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime

from engine.errors import InputError, NotFound
from engine.funds import FundBook
from engine.policy.model import PolicyTable
from engine.policy.policyset import PolicySet
from engine.service import fundbook
from engine.service.groupcommit import SettleWriter
from engine.service.ports import SettlementRecord, UnitOfWork
from engine.service.versions import VERSION_SOURCE, _Versioned, effective


class ServiceBase:
    """What every part of the settlement service shares: the unit of work, the clock, the id
    maker, and the policy tables and fund declarations in force (cached by their stored
    version). ``SettlementService`` (engine/service/usecases.py) sets these up."""

    _uow: Callable[[], UnitOfWork]
    #: a unit of work for a trial's reads only (a store may make it cheaper; default ``_uow``)
    _trial_uow: Callable[[], UnitOfWork]
    _clock: Callable[[], datetime]
    _new_id: Callable[[], str]
    _lock: threading.Lock
    _policies: _Versioned[PolicySet]
    _funds: _Versioned[FundBook]
    _version_tables: dict[int, PolicyTable]
    _writer: SettleWriter | None

    # --- policies -------------------------------------------------------------------------
    #: how often (seconds) another process's PutPolicy is looked for
    POLICY_RECHECK = 2.0

    def policies(self, at_least: int = 0) -> PolicySet:
        """The tables in force, cached; reloaded when this service stores a version, and when
        another process sharing the store has stored one (checked every POLICY_RECHECK s), or
        at once when this service's tables are older than stored version ``at_least`` (a
        process settling for another names the version that one has in force)."""

        def build(uow: UnitOfWork) -> PolicySet:
            versions = effective(uow.policies.all())
            if not versions:
                raise NotFound("policy table", "any", "load policy tables first")
            return PolicySet.of([(f"{VERSION_SOURCE}{v.version}", v.table) for v in versions])

        with self._lock:
            if self._policies.version < at_least:
                self._policies.forget()
            return self._policies.get(
                self._uow, self.POLICY_RECHECK, lambda u: u.policies.latest_version(), build
            )

    def policies_version(self) -> int:
        """The stored version number of the tables ``policies()`` returns now."""
        self.policies()
        with self._lock:
            return self._policies.version

    def fund_book(self) -> FundBook:
        """The fund declarations in force (domain.md section 12), cached like ``policies``:
        reloaded when a funds file is stored (here, or by another process: checked every
        POLICY_RECHECK s). No funds file: an empty book (no fund is limited)."""
        with self._lock:
            return self._funds.get(
                self._uow,
                self.POLICY_RECHECK,
                lambda u: u.funds.latest_version(),
                lambda u: fundbook.book_of(u.funds.all()),
            )

    def forget_funds(self) -> None:
        with self._lock:
            self._funds.forget()

    @staticmethod
    def _find(uow: UnitOfWork, settlement_id: str, request_id: str) -> SettlementRecord:
        if settlement_id:
            rec = uow.settlements.by_id(settlement_id)
            if rec is None:
                raise NotFound("settlement", settlement_id)
            return rec
        if request_id:
            rec = uow.settlements.by_request(request_id)
            if rec is None:
                raise NotFound("settlement with request_id", request_id)
            return rec
        raise InputError.one(
            "settlement_id",
            "",
            "is empty and so is request_id; name the settlement to reverse by one of them",
        )
