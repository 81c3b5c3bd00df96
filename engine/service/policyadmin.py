"""Policy administration: storing a policy table as a new version, the versions stored."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import date

from engine.errors import LimitExceeded
from engine.policy.load import parse_table
from engine.policy.policyset import PolicySet
from engine.service import inputs, ledger
from engine.service.base import ServiceBase
from engine.service.inputs import check_source_name
from engine.service.ports import PolicyVersion
from engine.service.versions import effective


class PolicyAdmin(ServiceBase):
    """Policy admin use cases of ``SettlementService``."""

    def put_policy(
        self,
        text: str,
        source_name: str = "<request>",
        *,
        principal: str = "local",
        dry_run: bool = False,
    ) -> PolicyVersion:
        """Validate and store a table as a new version. A table with the same region and
        effective_from as an earlier version supersedes it; other overlaps are refused.
        The same text as the version in force for its region and effective_from stores
        nothing: that version is returned, marked ``unchanged`` (a retried put is no new
        version). ``dry_run``: validate only; the answer is the version that would be stored
        (version 0) or the unchanged one. Every use case that changes state appends its
        ledger event in its own transaction."""
        check_source_name(source_name)
        table = parse_table(text, source_name)
        with self._uow() as uow:
            uow.lock(("policy", table.region.code, 0))  # two bureaus' puts check in turn
            now = self.in_force_for(uow.policies.all(), table.region.code, table.effective_from)
            if now is not None and now.text == text:
                return replace(now, unchanged=True)
            stored = sum(1 for v in uow.policies.all() if v.region == table.region.code)
            if stored >= inputs.MAX_VERSIONS_PER_REGION:
                raise LimitExceeded(
                    "region",
                    "MAX_VERSIONS_PER_REGION",
                    inputs.MAX_VERSIONS_PER_REGION,
                    stored + 1,
                    f"region {table.region.code} has as many stored versions as allowed",
                )
            current = [
                v
                for v in effective(uow.policies.all())
                if not (v.region == table.region.code and v.effective_from == table.effective_from)
            ]
            PolicySet.of(
                [(f"version {v.version}", v.table) for v in current] + [(source_name, table)]
            )  # refuses overlaps with PolicyError
            if dry_run:
                return PolicyVersion(0, table.region.code, table.effective_from,
                                     table.effective_to, text, source_name, self._clock(),
                                     table)  # fmt: skip
            version = uow.policies.add(text, source_name, table, self._clock())
            ledger.append(uow, ledger.policy_event(version, principal))
            uow.commit()
        with self._lock:
            self._policies.forget()
        return version

    @staticmethod
    def in_force_for(
        versions: Sequence[PolicyVersion], region: str, effective_from: date
    ) -> PolicyVersion | None:
        """The version in force for this region and start date, if any."""
        same = [v for v in versions if v.region == region and v.effective_from == effective_from]
        return max(same, key=lambda v: v.version) if same else None

    def policy_versions(self) -> list[PolicyVersion]:
        with self._uow() as uow:
            return uow.policies.all()
