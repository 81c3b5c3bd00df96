"""The settlement service's use cases, over a unit of work (``engine.service.ports``).

NHSA semantics: ``pre_settle`` is 2303 (trial, changes nothing), ``settle`` is 2304
(idempotent by the client's request id), ``reverse`` is 2305/2601 (restores the accounts the
settlement moved; later settlements are not recomputed).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from engine.funds import FundBook
from engine.policy.model import PolicyTable
from engine.policy.policyset import PolicySet
from engine.service.groupcommit import GroupCommit, SettleWriter
from engine.service.policyadmin import PolicyAdmin
from engine.service.ports import UnitOfWork
from engine.service.queries import Queries
from engine.service.reconciling import Reconciling
from engine.service.registry import Registry
from engine.service.reversal import Reversal
from engine.service.settlewrite import SettleWrite
from engine.service.versions import _Versioned


class SettlementService(PolicyAdmin, Registry, SettleWrite, Reversal, Queries, Reconciling):
    """The use cases, each group in its own module (see the imports); this class sets up the
    state they share (``engine.service.base.ServiceBase``)."""

    def __init__(
        self,
        uow: Callable[[], UnitOfWork],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
        group_commit: GroupCommit | None = None,
    ):
        self._uow = uow
        self._trial_uow = uow
        self._clock = clock
        self._new_id = new_id
        self._lock = threading.Lock()
        self._policies: _Versioned[PolicySet] = _Versioned()
        self._funds: _Versioned[FundBook] = _Versioned()
        self._version_tables: dict[int, PolicyTable] = {}  # stored policy versions by number
        self._writer: SettleWriter | None = None  # group commit's writer (off: None)
        self.use_group_commit(group_commit)

    def use_trial_reads(self, uow: Callable[[], UnitOfWork]) -> None:
        """Trials (``pre_settle``) read through ``uow``: units of work that only read (the
        SQL store's ``trial_uow``: a kept connection per thread instead of the pool)."""
        self._trial_uow = uow
