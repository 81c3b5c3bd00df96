"""Scope checks: the use cases as one principal may call them.

The role table (which methods a role may call) is ``adapters.grpc.auth.METHOD_ROLES``; this
layer checks the scope, which needs data: the hospital of a bill or a settlement, the region
of a table or a person, the funds a settlement paid from. Servicers call
``ScopedService(service, principal)`` instead of the service.

What a caller cannot see is refused with PermissionDenied whether it exists or not: for a
scoped principal (cashier, bureau, fund) an unknown settlement id and another hospital's
settlement get the same answer, and a listing leaves out what it cannot see without a sign
(full pages, no short page before the last).

| role    | may see a settlement when             | accounts of a person when                   |
|---------|---------------------------------------|---------------------------------------------|
| cashier | its hospital is H                     | the person has a settlement at H that year  |
| bureau  | its region is R                       | the person's region is R (or, for a person  |
|         |                                       | without one, a settlement in R that year)   |
| fund    | a layer of fund F paid more than 0    | never                                       |
| auditor | always                                | always                                      |
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from adapters.auth.principals import PermissionDenied, Principal
from engine.accounts import YearAccounts
from engine.bill import BillRequest, Person
from engine.errors import Conflict, NotFound
from engine.policy.load import parse_table
from engine.result import Settlement
from engine.service.ports import PolicyVersion, SettlementRecord
from engine.service.usecases import SettlementService

HIDDEN = "no such settlement in your scope"


class ScopedService:
    def __init__(self, service: SettlementService, principal: Principal):
        self.service = service
        self.p = principal

    @property
    def everything(self) -> bool:
        """Sees every settlement and account (local, auditor)."""
        return self.p.unrestricted or self.p.role == "auditor"

    # --- predicates -------------------------------------------------------------------------
    def sees(self, s: Settlement) -> bool:
        p = self.p
        if self.everything:
            return True
        if p.role == "cashier":
            return s.hospital in p.hospitals
        if p.role == "bureau":
            return s.region in p.regions
        if p.role == "fund":
            return any(la.fund_code in p.funds and la.pay > 0 for la in s.layers)
        return False

    def _record(self, rec: SettlementRecord) -> bool:
        return self.sees(rec.settlement)

    def check_hospitals(self, hospitals: Iterable[str], field: str = "bills[{i}]") -> None:
        """Bills may be settled (or tried) only by a cashier of their hospital."""
        if self.p.unrestricted:
            return
        for i, h in enumerate(hospitals):
            if self.p.role != "cashier" or h not in self.p.hospitals:
                raise PermissionDenied(
                    f"{field.format(i=i)}: hospital {h!r} is not yours; a cashier settles "
                    f"bills of {', '.join(sorted(self.p.hospitals)) or 'no hospital'} only"
                )

    # --- reads ------------------------------------------------------------------------------
    def policies(self) -> Any:
        return self.service.policies()

    def get(self, settlement_id: str = "", request_id: str = "") -> SettlementRecord:
        if self.everything:
            return self.service.get(settlement_id, request_id)
        try:
            rec = self.service.get(settlement_id, request_id)
        except NotFound:
            raise PermissionDenied(HIDDEN) from None
        if not self._record(rec):
            raise PermissionDenied(HIDDEN)
        return rec

    def list_page(
        self, person_id: str, year: int | None, page_size: int, page_token: str
    ) -> tuple[list[SettlementRecord], str]:
        visible = None if self.everything else self._record
        return self.service.list_page(person_id, year, page_size, page_token, visible=visible)

    def accounts(self, person_id: str, year: int) -> tuple[Person, YearAccounts, YearAccounts]:
        if self.everything:
            return self.service.accounts(person_id, year)
        denied = PermissionDenied("accounts of this person are outside your scope")
        if self.p.role == "cashier":
            if not any(self._record(r) for r in self.service.list(person_id, year)):
                raise denied
        elif self.p.role == "bureau":
            try:
                person = self.service.person(person_id)
            except NotFound:
                raise denied from None
            if person.region is None:
                if not any(self._record(r) for r in self.service.list(person_id, year)):
                    raise denied
            elif person.region not in self.p.regions:
                raise denied
        else:
            raise denied
        return self.service.accounts(person_id, year)

    def policy_versions(self) -> list[PolicyVersion]:
        return self.service.policy_versions()

    def reconcile(self, hospital: str, start: str, end: str, theirs: Any, lines: Any) -> Any:
        """3201/3202: a cashier for its own hospital; a bureau for the settlements of its
        region at any hospital (only those are counted); the auditor for any."""
        region = None
        if not self.everything:
            p = self.p
            if p.role == "cashier" and hospital in p.hospitals:
                pass
            elif p.role == "bureau" and len(p.regions) == 1:
                (region,) = p.regions
            else:
                raise PermissionDenied("reconciliation of this hospital is outside your scope")
        return self.service.reconcile(hospital, start, end, theirs, lines, region=region)

    def daily_totals(self, region: str, start: str, end: str, hospital: str | None) -> Any:
        """Per-day totals: a bureau for its region; a cashier for its own hospital only."""
        if not self.everything:
            p = self.p
            if (p.role == "bureau" and region in p.regions) or (
                p.role == "cashier" and hospital is not None and hospital in p.hospitals
            ):
                pass
            else:
                raise PermissionDenied("totals of this region or hospital are outside your scope")
        return self.service.daily_totals(region, start, end, hospital)

    # --- writes -----------------------------------------------------------------------------
    def pre_settle(self, req: BillRequest) -> Settlement:
        self.check_hospitals([req.hospital], "bill.hospital")
        return self.service.pre_settle(req)

    def _request_id_free(self, request_id: str) -> None:
        """A request id another hospital used is refused as if it were not ours to see (the
        use case's Conflict would name that hospital's bill). Asked only after a Conflict:
        a request id another hospital used always conflicts (its bill differs by hospital)."""
        try:
            found = self.service.get(request_id=request_id)
        except NotFound:
            return
        if not self._record(found):
            raise PermissionDenied(
                f"request_id {request_id!r} cannot be used; choose a new request id"
            )

    def settle(self, request_id: str, req: BillRequest) -> tuple[SettlementRecord, bool]:
        self.check_hospitals([req.hospital], "bill.hospital")
        try:
            return self.service.settle(request_id, req, principal=self.p.name)
        except Conflict:
            if request_id and not self.p.unrestricted:
                self._request_id_free(request_id)
            raise

    def reverse(
        self, *, settlement_id: str = "", request_id: str = "", reversal_request_id: str = ""
    ) -> tuple[SettlementRecord, bool]:
        if not self.p.unrestricted:
            rec = self.get(settlement_id, request_id)  # PermissionDenied outside the scope
            self.check_hospitals([rec.settlement.hospital], "settlement")  # seeing isn't reversing
            settlement_id, request_id = rec.settlement_id, ""
        return self.service.reverse(
            settlement_id=settlement_id,
            request_id=request_id,
            reversal_request_id=reversal_request_id,
            principal=self.p.name,
        )

    def put_policy(self, text: str, source_name: str, dry_run: bool = False) -> PolicyVersion:
        if not self.p.unrestricted:
            table = parse_table(text, source_name)  # a bad table: PolicyError as before
            if self.p.role != "bureau" or table.region.code not in self.p.regions:
                raise PermissionDenied(
                    f"the table is for region {table.region.code}; you put tables of "
                    f"{', '.join(sorted(self.p.regions)) or 'no region'} only"
                )
        return self.service.put_policy(text, source_name, principal=self.p.name, dry_run=dry_run)

    def import_registry(self, persons: list[Person]) -> int:
        if self.p.unrestricted:
            return self.service.import_registry(persons, principal=self.p.name)
        regions = self.p.regions
        mine = ", ".join(sorted(regions)) or "no region"
        if self.p.role != "bureau":
            raise PermissionDenied("only a bureau imports the registry")
        for i, person in enumerate(persons):
            if person.region not in regions:
                raise PermissionDenied(
                    f"persons[{i}].region {person.region!r}: you import persons of {mine} only"
                )

        def check(i: int, new: Person, stored: Person | None) -> None:
            if stored is not None and stored.region not in regions:
                raise PermissionDenied(
                    f"persons[{i}] ({new.id}) is not a person of {mine}; it cannot be replaced"
                )

        return self.service.import_registry(persons, principal=self.p.name, check=check)
