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

from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from adapters.auth.principals import PermissionDenied, Principal
from engine.accounts import YearAccounts
from engine.allocation import Allocation
from engine.bill import BillRequest, Person
from engine.claims import Claim, FundFacts, MoneyIn
from engine.errors import Conflict, InputError, NotFound
from engine.policy.load import parse_table
from engine.result import Settlement
from engine.service.billcols import BillColumns
from engine.service.claimviews import ClaimFilter, claim_page
from engine.service.cover import CoverKey, CoverRow, PersonCover
from engine.service.funds import FundService
from engine.service.ports import FundVersion, PolicyVersion, SettlementRecord
from engine.service.settlecols import Request
from engine.service.settledrows import SettledRows
from engine.service.settlewrite import SettledAnswer
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
    def pre_settle(self, req: BillRequest | BillColumns) -> Settlement:
        if isinstance(req, BillColumns) and not self.p.unrestricted:
            if self.p.role == "cashier" and req.hospital in self.p.hospitals:
                return self.service.pre_settle(req)
            req = req.request()  # a bad field is named before the scope, as for a model
        self.check_hospitals([req.hospital], "bill.hospital")
        return self.service.pre_settle(req)

    def pre_settle_rows(self, req: BillColumns) -> SettledRows | Settlement:
        """``pre_settle`` answered as the kernel's rows where the service can (the same scope
        rules as ``pre_settle``)."""
        if self.p.unrestricted or (self.p.role == "cashier" and req.hospital in self.p.hospitals):
            return self.service.pre_settle_rows(req)
        return self.pre_settle(req)

    def pre_settle_allocated(
        self, req: BillRequest, allocate: bool = True
    ) -> tuple[Settlement, Allocation | None]:
        self.check_hospitals([req.hospital], "bill.hospital")
        return self.service.pre_settle_allocated(req, allocate)

    def allocation_of(self, rec: SettlementRecord) -> Allocation:
        """The allocation of a record the caller already holds (from ``get`` or ``settle``,
        which checked the scope)."""
        return self.service.allocation_of(rec)

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

    def settle(self, request_id: str, req: Request) -> tuple[SettlementRecord, bool]:
        rec, replay, _rows = self.settle_rows(request_id, req)
        return rec, replay

    def settle_rows(
        self, request_id: str, req: Request
    ) -> tuple[SettlementRecord, bool, SettledRows | None]:
        """``settle``, and the kernel's rows of a settlement made now (``settle_rows``)."""
        self.check_hospitals([req.hospital], "bill.hospital")
        try:
            return self.service.settle_rows(request_id, req, principal=self.p.name)
        except Conflict:
            self.after_conflict(request_id)
            raise

    def settle_rows_then(
        self, request_id: str, req: Request, done: Callable[[SettledAnswer], None]
    ) -> bool:
        """``settle_rows`` handed to the service's writer without waiting, when grouped
        (``SettlementService.settle_rows_then``; False: settle it with ``settle_rows``). A
        Conflict handed to ``done`` is for the caller to pass through ``after_conflict``
        (which may read the store) before it answers with it."""
        self.check_hospitals([req.hospital], "bill.hospital")
        return self.service.settle_rows_then(request_id, req, done, principal=self.p.name)

    def after_conflict(self, request_id: str) -> None:
        """What a Settle's Conflict becomes for this caller: PermissionDenied if the request
        id is another hospital's (``_request_id_free``), else nothing (the Conflict stands)."""
        if request_id and not self.p.unrestricted:
            self._request_id_free(request_id)

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


# --------------------------------------------------------------------------- funds (issue 10)

CLAIM_HIDDEN = "no such claim in your scope"
PERSON_HIDDEN = "this person is outside your scope"


class ScopedFunds:
    """The fund use cases (``engine.service.funds.FundService``) as one principal may
    call them. What a scoped caller cannot see is refused with PermissionDenied whether it
    exists or not (an unknown claim id and another fund's claim look the same).

    | role    | sees a claim when                  | sees a person when                   |
    |---------|------------------------------------|--------------------------------------|
    | fund    | its fund is F (and region, if set) | never (statements only)              |
    | bureau  | its region is R                    | the person's region is R             |
    | cashier | its hospital is H                  | never                                |
    | cadre   | its person lives in the cadre's    | region R and township in T, or       |
    |         | townships or villages              | village in V (a (township, village)  |
    |         |                                    | pair, or a name in any township)     |
    | person  | it is their own                    | it is them                           |
    | auditor | always                             | always                               |

    Decisions (approve, reject, pay) are the fund operator's, on claims of its funds. Filing:
    a cashier for its hospital's settlements, a cadre for persons it sees, a person for their
    own settlements. Money in and funds.yaml: the fund operator for its funds (a bureau may put
    its region's funds.yaml too). Statements: the fund operator and the bureau.
    """

    def __init__(self, funds: FundService, settlements: SettlementService, principal: Principal):
        self.funds = funds
        self.settlements = settlements
        self.p = principal
        self._persons: dict[str, Person | None] = {}  # looked up once per call

    @property
    def everything(self) -> bool:
        return self.p.unrestricted or self.p.role == "auditor"

    # --- predicates -------------------------------------------------------------------------
    def _fund_ok(self, region: str, fund_code: str) -> bool:
        p = self.p
        return p.role == "fund" and fund_code in p.funds and (not p.regions or region in p.regions)

    def _person(self, person_id: str) -> Person | None:
        if person_id not in self._persons:
            try:
                self._persons[person_id] = self.settlements.person(person_id)
            except NotFound:
                self._persons[person_id] = None
        return self._persons[person_id]

    def _cadre_sees(self, person: Person) -> bool:
        p = self.p
        return person.region in p.regions and p.lives_in_scope(person.township, person.village)

    def sees_person(self, person_id: str) -> bool:
        p = self.p
        if self.everything:
            return True
        if p.role == "person":
            return bool(person_id) and person_id == p.person
        if p.role in ("cadre", "bureau"):
            person = self._person(person_id)
            if person is None:
                return False
            return self._cadre_sees(person) if p.role == "cadre" else person.region in p.regions
        return False

    def sees_claim(self, c: Claim) -> bool:
        p = self.p
        if self.everything:
            return True
        if p.role == "fund":
            return self._fund_ok(c.region, c.fund_code)
        if p.role == "bureau":
            return c.region in p.regions
        if p.role == "cashier":
            return c.hospital in p.hospitals
        if p.role in ("person", "cadre"):
            return self.sees_person(c.person_id)
        return False

    # --- claims -----------------------------------------------------------------------------
    def get_claim(self, claim_id: str) -> Claim:
        if self.everything:
            return self.funds.get_claim(claim_id)
        try:
            c = self.funds.get_claim(claim_id)
        except NotFound:
            raise PermissionDenied(CLAIM_HIDDEN) from None
        if not self.sees_claim(c):
            raise PermissionDenied(CLAIM_HIDDEN)
        return c

    def _decides(self, claim_id: str) -> None:
        """Only the operator of the claim's fund approves, rejects or pays it."""
        if self.p.unrestricted:
            return
        c = self.get_claim(claim_id)  # PermissionDenied outside the scope
        if not self._fund_ok(c.region, c.fund_code):  # seeing is not deciding
            raise PermissionDenied("only the operator of the claim's fund decides or pays it")

    def approve(self, claim_id: str, amount: int | None, note: str) -> Claim:
        self._decides(claim_id)
        return self.funds.approve(claim_id, amount, note, principal=self.p.name)

    def reject(self, claim_id: str, reason: str) -> Claim:
        self._decides(claim_id)
        return self.funds.reject(claim_id, reason, principal=self.p.name)

    def pay(self, claim_id: str, paid_date: Any, payment_ref: str) -> Claim:
        self._decides(claim_id)
        return self.funds.pay(claim_id, paid_date, payment_ref, principal=self.p.name)

    def file_claim(self, settlement_id: str, layer_id: str) -> Claim:
        p = self.p
        if not p.unrestricted:
            try:
                rec = self.settlements.get(settlement_id=settlement_id)
            except NotFound:
                raise PermissionDenied(HIDDEN) from None
            s = rec.settlement
            if p.role == "cashier":
                ok = s.hospital in p.hospitals
            elif p.role in ("person", "cadre"):
                ok = self.sees_person(s.person_id)
            else:
                ok = False
            if not ok:
                raise PermissionDenied(HIDDEN)
        return self.funds.file_claim(settlement_id, layer_id, principal=p.name)

    def list_claims(self, f: ClaimFilter, size: int, token: str) -> tuple[list[Claim], str]:
        """Claims of a person (``person_id``), or of a region and year (one fund, or every fund
        of the region: declared or on a layer; a fund operator's own only). Scope defaults fill
        what is not given: a person's own id, a caller's only region, an operator's only fund."""
        p = self.p
        person_id, region, fund_code = f.person_id, f.region, f.fund_code
        if p.role == "person" and not person_id:
            person_id = p.person
        if not region and len(p.regions) == 1:
            (region,) = p.regions
        if not fund_code and p.role == "fund" and len(p.funds) == 1:
            (fund_code,) = p.funds
        f = replace(f, person_id=person_id, region=region, fund_code=fund_code)
        f.check()
        codes: tuple[str, ...] | None = None
        if person_id:
            scoped = not self.everything and p.role in ("person", "cadre", "bureau")
            if scoped and not self.sees_person(person_id):
                raise PermissionDenied(PERSON_HIDDEN)
        else:
            missing = [n for n, v in (("region", region), ("year", f.year)) if not v]
            if missing:
                raise InputError.one(
                    missing[0], "", "is empty; name a person_id, or a region and year"
                )
            if not fund_code:
                codes = tuple(self._region_funds(region))
                if p.role == "fund":
                    codes = tuple(c for c in codes if c in p.funds)
        visible = None if self.everything else self.sees_claim
        return claim_page(self.funds.claims_page, f, size, token, fund_codes=codes, visible=visible)

    def _region_funds(self, region: str) -> list[str]:
        """The fund codes of a region: declared in its funds.yaml or on a layer of a table."""
        codes = {c for (r, c) in self.funds.book().funds if r == region}
        try:
            tables = self.settlements.policies().tables
        except NotFound:
            tables = ()
        codes |= {la.fund_code for t in tables if t.region.code == region for la in t.layers}
        return sorted(codes)

    # --- funds ------------------------------------------------------------------------------
    def _statement_ok(self, region: str, fund_code: str) -> None:
        p = self.p
        if self.everything or self._fund_ok(region, fund_code):
            return
        if p.role == "bureau" and region in p.regions:
            return
        raise PermissionDenied("this fund's statement is outside your scope")

    def facts(self, region: str, fund_code: str, year: int, as_of: Any) -> FundFacts:
        self._statement_ok(region, fund_code)
        return self.funds.facts(region, fund_code, year, as_of)

    def public_facts(self, region: str, fund_code: str, year: int, as_of: Any) -> FundFacts:
        """Every authenticated role: the servicer gives out aggregates only."""
        return self.funds.facts(region, fund_code, year, as_of)

    def record_money_in(self, request_id: str, region: str, fund_code: str, year: int,
                        kind: str, payer: str, amount: int, on: Any,
                        note: str) -> tuple[MoneyIn, bool]:  # fmt: skip
        if not self.p.unrestricted and not self._fund_ok(region, fund_code):
            raise PermissionDenied(
                f"fund {fund_code} of region {region} is not yours; you record money in for "
                f"{', '.join(sorted(self.p.funds)) or 'no fund'} only"
            )
        return self.funds.record_money_in(
            request_id, region, fund_code, year, kind, payer, amount, on, note,
            principal=self.p.name,
        )  # fmt: skip

    def put_funds(self, text: str, source_name: str, dry_run: bool) -> FundVersion:
        p = self.p
        if not p.unrestricted:
            from engine.funds import parse_funds

            file = parse_funds(text, source_name)  # a bad file: PolicyError as before
            codes = [f.fund_code for f in file.funds]
            if p.role == "bureau":
                ok = file.region in p.regions
            elif p.role == "fund":
                ok = all(self._fund_ok(file.region, c) for c in codes)
            else:
                ok = False
            if not ok:
                raise PermissionDenied(
                    f"the file declares funds {', '.join(codes) or '(none)'} of region "
                    f"{file.region}; outside your scope"
                )
        return self.funds.put_funds(text, source_name, principal=p.name, dry_run=dry_run)

    # --- cover ---------------------------------------------------------------------------
    def person_cover(self, person_id: str, year: int) -> PersonCover:
        if not self.sees_person(person_id):
            raise PermissionDenied(PERSON_HIDDEN)
        return self.funds.person_cover(person_id, year)

    def _cadre_may_name(self, township: str, village: str) -> bool:
        """A cadre may ask for a township or village where some of its villagers may live."""
        p = self.p
        if township and township in p.townships:
            return True
        if village:
            return village in p.villages or any(
                v == village and (not township or t == township) for t, v in p.township_villages
            )
        return not township or any(t == township for t, _ in p.township_villages)

    def cover_list(
        self,
        region: str,
        township: str,
        village: str,
        as_of: Any,
        *,
        after: CoverKey | None = None,
        limit: int | None = None,
    ) -> list[CoverRow]:
        """A cadre names a region of its own and a township or village of its own (or none:
        every person it sees); the rows are only those of persons it sees. A bureau: its
        region. At most ``limit`` rows after ``after`` (the order of ``cover_key``)."""
        p = self.p
        keep = None
        if not self.everything:
            if p.role == "bureau":
                if region not in p.regions:
                    raise PermissionDenied("the cover list of this region is outside your scope")
            elif p.role == "cadre":
                if region not in p.regions or not self._cadre_may_name(township, village):
                    raise PermissionDenied("this cover list is outside your villages")
                keep = self._cadre_sees
            else:
                raise PermissionDenied("the cover list is for village cadres and bureaus")
        return self.funds.cover_list(
            region, township or None, village or None, as_of, keep=keep, after=after, limit=limit
        )
