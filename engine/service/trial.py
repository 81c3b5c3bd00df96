"""Trial settlement (2303) and reading a stored settlement with the table it was settled
with (its allocation); the bill and budget reads the settle-write path shares.
"""

from __future__ import annotations

from engine.allocation import Allocation
from engine.allocation import allocate as allocation_for
from engine.batch import FundYearKey, KernelBatch
from engine.bill import Bill, BillRequest, Person, parse_bill_request
from engine.checks import check_bill
from engine.errors import InputError, NotFound
from engine.funds import balance
from engine.policy.model import PolicyTable
from engine.policy.policyset import PolicySet
from engine.result import Settlement
from engine.service import billcols, fundbook
from engine.service.base import ServiceBase
from engine.service.ports import SettlementRecord, UnitOfWork
from engine.service.settledrows import SettledRows
from engine.settle import Outcome, settle_one


class Trial(ServiceBase):
    """Trial use cases of ``SettlementService``, and the reads settling shares."""

    # --- settlement -----------------------------------------------------------------------
    def _bill(self, uow: UnitOfWork, req: BillRequest) -> Bill:
        return self._versioned_bill(uow, req)[0]

    def _versioned_bill(self, uow: UnitOfWork, req: BillRequest) -> tuple[Bill, int | None]:
        """The bill with its person from the registry, and the registry version used."""
        return self._checked_bill(req, uow.registry.get_versioned(req.person_id))

    def _checked_bill(
        self, req: BillRequest, found: tuple[Person, int | None] | None
    ) -> tuple[Bill, int | None]:
        """The bill with its person (``found``: as the registry read it), checked against
        its table, and the registry version used."""
        if found is None:
            raise InputError.one(
                "person_id", req.person_id, "is not in the person registry; import the person first"
            )
        person, version = found
        bill = req.with_person(person)
        check_bill(bill, self.policies().table_for(bill.region, bill.discharge_date))
        return bill, version

    def _hard_keys(self, bill: Bill) -> list[FundYearKey]:
        """The hard-budget fund-years the bill's table draws on (section 12)."""
        table = self.policies().table_for(bill.region, bill.discharge_date)
        codes = [x.fund_code for x in table.layers]
        return fundbook.hard_keys(self.fund_book(), table.region.code, bill.year, codes)

    def _budgets(self, uow: UnitOfWork, keys: list[FundYearKey]) -> dict[FundYearKey, int] | None:
        """Each hard fund-year's balance as stored (read under its lock when settling)."""
        book = self.fund_book()
        out = {}
        for k in keys:
            total = book.hard_total(*k)
            if total is not None:
                out[k] = balance(total, uow.funds.used(*k))
        return out or None

    def _settle(
        self,
        uow: UnitOfWork,
        bill: Bill,
        budgets: dict[FundYearKey, int] | None = None,
        allocate_items: bool = False,
        policies: PolicySet | None = None,
    ) -> Outcome:
        p = uow.accounts.person_year(bill.person.id, bill.year)
        h = uow.accounts.household_year(bill.person.household, bill.year)
        return settle_one(
            bill, policies or self.policies(), p, h, budgets=budgets, allocate_items=allocate_items
        )

    def pre_settle(self, req: BillRequest | billcols.BillColumns) -> Settlement:
        """Trial settlement (2303): what settling now would pay (hard budgets at their
        balance now, read without a lock). Changes nothing. The request may come as columns
        (``billcols.BillColumns``: the fast path, no per-item model)."""
        if isinstance(req, billcols.BillColumns):
            return self._pre_settle_columns(req)
        return self.pre_settle_allocated(req, allocate=False)[0]

    def pre_settle_allocated(
        self, req: BillRequest, allocate: bool = True
    ) -> tuple[Settlement, Allocation | None]:
        """``pre_settle`` and, if ``allocate``, the per-item allocation (domain.md section 11),
        computed by the kernel in the same run."""
        with self._trial_uow() as uow:
            bill = self._bill(uow, req)
            budgets = self._budgets(uow, self._hard_keys(bill))
            out = self._settle(uow, bill, budgets, allocate_items=allocate)
            return out.settlement, out.allocation

    def settled_table(self, rec: SettlementRecord) -> PolicyTable | None:
        """The policy table a stored settlement was settled with: the table of its recorded
        policy version (stored versions never change, so they are cached by number). None for
        a settlement stored before settlements recorded their version (migration 0009)."""
        v = rec.policy_version
        if v is None:
            return None
        with self._lock:
            table = self._version_tables.get(v)
        if table is None:
            with self._uow() as uow:
                found = [p for p in uow.policies.all() if p.version == v]
            if not found:
                raise NotFound("policy version", v, "the settlement's table is not stored")
            table = found[0].table
            with self._lock:
                self._version_tables[v] = table
        return table

    def table_of(self, rec: SettlementRecord) -> PolicyTable:
        """The table to read a stored settlement with (slip, explanation): the one it was
        settled with, or for a settlement stored before versions were recorded the table in
        force for its region and discharge date."""
        s = rec.settlement
        return self.settled_table(rec) or self.policies().table_for(s.region, s.discharge_date)

    def _pre_settle_columns(self, cols: billcols.BillColumns) -> Settlement:
        """``pre_settle`` of a request given as columns, without a per-item model."""
        got = self._run_columns(cols)
        if got is None:
            return self.pre_settle(cols.request())
        kb, ch, person, table = got
        return billcols.settlement_of(kb, ch, person, table)

    def pre_settle_rows(self, cols: billcols.BillColumns) -> SettledRows | Settlement:
        """``pre_settle`` of a request given as columns, answered as the kernel's output rows
        (no ``Settlement`` or ``LayerResult`` objects: PreSettle writes its answer from them);
        a request the columns path does not take is settled by the model path as ever, and
        answered as its ``Settlement``."""
        got = self._run_columns(cols)
        if got is None:
            return self.pre_settle(cols.request())
        kb, ch, person, table = got
        return SettledRows(
            cols.id, cols.hospital, person, table, ch.year, ch.discharge.isoformat(),
            kb.out_bill[0], kb.out_layer[0, : len(table.layers)],
        )  # fmt: skip

    def _run_columns(
        self, cols: billcols.BillColumns
    ) -> tuple[KernelBatch, billcols.Checked, Person, PolicyTable] | None:
        """The kernel run of a request given as columns: the vectorized checks, the registry
        and accounts in one unit of work, the kernel on the one bill. None when anything is
        off (a bad field, an unknown person, a table that does not fit, the account limit):
        the model path names it exactly as before."""
        ch = billcols.checked(cols)
        if ch is None:
            return None
        with self._trial_uow() as uow:
            found = uow.registry.get_versioned(cols.person_id)
            if found is None:
                return None
            person = found[0]
            try:
                table = self.policies().table_for(ch.region, ch.discharge)
            except InputError:
                return None
            if not billcols.fits_table(ch, person, table):
                return None
            codes = [x.fund_code for x in table.layers]
            keys = fundbook.hard_keys(self.fund_book(), table.region.code, ch.year, codes)
            budgets = self._budgets(uow, keys) if keys else None  # no hard fund: no read
            pa = uow.accounts.person_year(person.id, ch.year)
            ha = uow.accounts.household_year(person.household, ch.year)
            kb = billcols.run_one(ch, person, table, pa, ha, budgets)
        return None if kb is None else (kb, ch, person, table)

    def allocation_of(self, rec: SettlementRecord) -> Allocation:
        """The per-item allocation (domain.md section 11) of a stored settlement, from its
        stored bill and figures and the policy table it was settled with (its recorded policy
        version; claim decisions do not change it). For a settlement stored before versions
        were recorded, the table in force: InputError if that is no longer the one it used
        (replaced since with other layers)."""
        s = rec.settlement
        table = self.settled_table(rec) or self.policies().table_for(s.region, s.discharge_date)
        if table.label != s.policy or [x.id for x in table.layers] != [
            r.layer_id for r in s.layers
        ]:
            raise InputError.one(
                "allocate", True, f"cannot be computed: the table {s.policy!r} the settlement "
                "used is no longer in force with the same layers",
            )  # fmt: skip
        return allocation_for(parse_bill_request(rec.bill), table, s)
