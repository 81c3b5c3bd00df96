"""Reconciliation with hospitals (domain.md section 14; NHSA 3201 / 3202) and a region's
daily totals.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import date

from engine.bill import HOSPITAL_RULE, is_hospital_code
from engine.errors import InputError, LimitExceeded
from engine.reconcile import (
    DailyFund,
    HospitalLine,
    HospitalTotals,
    Reconciliation,
    daily,
    duplicate_lines,
    entries,
    reconcile,
    utc_bounds,
)
from engine.service.base import ServiceBase
from engine.service.inputs import MAX_HOSPITAL_LINES, date_range


class Reconciling(ServiceBase):
    """Reconciliation use cases of ``SettlementService``."""

    # --- reconciliation (domain.md section 14; NHSA 3201 / 3202) -----------------------------
    # Scope: the hospital (or region) is an explicit argument, so the caller (the gRPC layer,
    # which knows the principal) checks that it may see it before calling.
    def reconcile(
        self,
        hospital: str,
        start: str | date,
        end: str | date,
        theirs: HospitalTotals | None = None,
        lines: Sequence[HospitalLine] | None = None,
        *,
        region: str | None = None,
    ) -> Reconciliation:
        """The totals of a hospital's settlements and reversals dated start..end (Asia/Shanghai
        commit dates, inclusive), compared with the hospital's own totals (3201) and list of
        settlements (3202) when given. ``region``: count only the settlements of that region
        (a bureau's scope; None = every region)."""
        if not is_hospital_code(hospital):
            raise InputError.one("hospital", hospital, HOSPITAL_RULE)
        a, b = date_range(start, end)
        if lines is not None:
            if len(lines) > MAX_HOSPITAL_LINES:
                raise LimitExceeded(
                    "their_list.settlements", "MAX_HOSPITAL_LINES", MAX_HOSPITAL_LINES, len(lines)
                )
            for i, ln in enumerate(lines):
                if not ln.settlement_id:
                    raise InputError.one(
                        f"their_list.settlements[{i}].settlement_id", "", "is empty"
                    )
            dup = duplicate_lines(lines)
            if dup:
                i, first = dup[0]
                raise InputError.one(
                    f"their_list.settlements[{i}].settlement_id",
                    lines[i].settlement_id,
                    f"is listed twice with the same reversal flag "
                    f"(also their_list.settlements[{first}])",
                )
        lo, hi = utc_bounds(a, b)
        with self._uow() as uow:
            facts = uow.reconciliation.facts(lo, hi, hospital=hospital, region=region)
        return reconcile(hospital, a, b, facts, theirs, lines)

    def daily_totals(
        self, region: str, start: str | date, end: str | date, hospital: str | None = None
    ) -> builtins.list[DailyFund]:
        """Per day, hospital and fund code, the settlements and reversals of a region dated
        start..end (Asia/Shanghai): the bureau's monthly settlement with its hospitals."""
        if not region:
            raise InputError.one("region", "", "is empty; name the region (its code)")
        if hospital is not None and not is_hospital_code(hospital):
            raise InputError.one("hospital", hospital, HOSPITAL_RULE)
        a, b = date_range(start, end)
        lo, hi = utc_bounds(a, b)
        with self._uow() as uow:
            facts = uow.reconciliation.facts(lo, hi, hospital=hospital, region=region)
        return daily(entries(facts, a, b))
