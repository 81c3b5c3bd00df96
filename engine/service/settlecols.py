"""Settle (2304) of a bill request given as columns: no per-item model (issue 13, target 7).

``billcols.checked`` columns (every rule of ``BillRequest`` holds) with the person from the
registry become a ``ColumnsBill``: what the settle path reads of a ``Bill`` (id, hospital,
region, discharge date, year, person) and its table, settled by ``billcols.run_one`` (the
kernel on the one bill's arrays) into the accounts moved and the kernel's rows without the
model (``settle_rows``: a Settle, alone or grouped, writes its answer, stored result, claims
and ledger event from them; ``SettledRows.settlement()`` is the model's ``Settlement``). The request is stored as ``Checked.stored()`` (= ``BillRequest.model_dump(mode="json")``)
and digested by ``Checked.digest()`` (= ``digest_of`` of the model).

Whatever the columns path does not settle itself (a bill that does not fit its table, an
unknown person, the kernel's account limit) goes the model path, so its errors read exactly
as before: ``model()`` parses the columns with ``parse_bill_request``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from engine import kernel as K
from engine.accounts import LayerAccount, YearAccounts
from engine.batch import FundYearKey
from engine.bill import Bill, BillRequest, Person
from engine.errors import InputError
from engine.policy.model import PolicyTable
from engine.policy.policyset import PolicySet
from engine.service import billcols, storedjson
from engine.service.settledrows import SettledRows
from engine.settle import Outcome, moves, settle_one


class _BillIds:
    """The bill's id and hospital, read from its checked columns ``ch``."""

    ch: billcols.Checked

    @property
    def id(self) -> str:
        return self.ch.cols.id

    @property
    def hospital(self) -> str:
        return self.ch.cols.hospital


@dataclass(frozen=True)
class ColumnsRequest(_BillIds):
    """Columns that passed every rule of ``BillRequest`` (``billcols.checked``), read by the
    settle path as it reads the model (id, hospital, person id)."""

    ch: billcols.Checked

    @property
    def person_id(self) -> str:
        return self.ch.cols.person_id


#: a settle call's request: the model, or columns that passed every rule of the model
Request = BillRequest | ColumnsRequest


def request_of(cols: billcols.BillColumns) -> Request:
    """The checked columns of a request, or its model when a rule fails (then the model
    path's InputError naming every bad field)."""
    ch = billcols.checked(cols)
    return cols.request() if ch is None else ColumnsRequest(ch)


def digest_of(req: Request) -> str:
    return billcols.digest_of(req) if isinstance(req, BillRequest) else req.ch.digest()


def stored_json_of(req: Request) -> bytes | None:
    """The request as stored, as its compact JSON bytes written from the columns
    (``storedjson``), or None (the model, or a string JSON escapes: ``stored_of``)."""
    return None if isinstance(req, BillRequest) else storedjson.stored_json(req.ch)


def stored_of(req: Request) -> dict[str, Any]:
    """The request as stored with its settlement (JSON-ready)."""
    return req.model_dump(mode="json") if isinstance(req, BillRequest) else req.ch.stored()


def model_of(req: Request) -> BillRequest:
    return req if isinstance(req, BillRequest) else req.ch.cols.request()


@dataclass(frozen=True)
class ColumnsBill(_BillIds):
    """Checked columns with their person and the table they fit: read by the settle path as
    it reads a ``Bill``."""

    ch: billcols.Checked
    person: Person
    table: PolicyTable

    @property
    def region(self) -> str | None:
        return self.ch.region

    @property
    def discharge_date(self) -> date:
        return self.ch.discharge

    @property
    def year(self) -> int:
        return self.ch.year

    def model(self) -> Bill:
        """The model bill (the model path: its checks raise what it would)."""
        return self.ch.cols.request().with_person(self.person)


def bill_of(ch: billcols.Checked, person: Person, policies: PolicySet) -> ColumnsBill | None:
    """The columns with their person if they fit the table in force (what ``check_bill`` and
    ``with_person`` check); None: the model path names what does not."""
    try:
        table = policies.table_for(ch.region, ch.discharge)
    except InputError:
        return None
    if not billcols.fits_table(ch, person, table):
        return None
    return ColumnsBill(ch, person, table)


@dataclass(frozen=True)
class Moved:
    """The accounts after a settlement made by the columns path and how it moved them (what an
    ``Outcome`` holds beside its ``settlement``, which the rows stand for)."""

    person_after: YearAccounts
    household_after: YearAccounts
    person_moves: dict[str, LayerAccount]
    household_moves: dict[str, LayerAccount]


def settle_rows(
    bill: Bill | ColumnsBill,
    policies: PolicySet,
    pa: YearAccounts,
    ha: YearAccounts,
    budgets: Mapping[FundYearKey, int] | None = None,
) -> tuple[Outcome, None] | tuple[Moved, SettledRows]:
    """``settle_one`` of the bill, without the model when the columns path settled it: the
    accounts moved and the kernel's output rows of the bill (Settle writes its answer, stored
    result, claims and ledger event from them: ``resultwire``, ``SettledRows.plain``); the
    model path's ``Outcome`` and None otherwise (a model bill, or columns the kernel refuses
    at the account limit: the model path names the limit)."""
    if (
        isinstance(bill, ColumnsBill)
        and policies.table_for(bill.region, bill.discharge_date) is not bill.table
    ):
        # another table in force since the bill was checked (a PutPolicy): check it again
        bill = bill_of(bill.ch, bill.person, policies) or bill.model()
    if isinstance(bill, Bill):
        return settle_one(bill, policies, pa, ha, budgets=budgets), None
    kb = billcols.run_one(bill.ch, bill.person, bill.table, pa, ha, dict(budgets or {}) or None)
    if kb is None:
        return settle_one(bill.model(), policies, pa, ha, budgets=budgets), None
    ids = kb.compiled.layer_ids
    p_layers = dict(pa.layers)
    h_layers = dict(ha.layers)
    for li, lid in enumerate(ids):
        p_layers[lid] = LayerAccount(*kb.p_acc[0, li].tolist())
        h_layers[lid] = LayerAccount(*kb.h_acc[0, li].tolist())
    p_after = YearAccounts(p_layers, int(kb.p_adm[0])).normalized()
    h_after = YearAccounts(h_layers, ha.admissions).normalized()
    assert not kb.out_bill[0, K.B_STATUS]
    rows = SettledRows(
        bill.id, bill.hospital, bill.person, bill.table, bill.year,
        bill.discharge_date.isoformat(), kb.out_bill[0], kb.out_layer[0, : len(bill.table.layers)],
    )  # fmt: skip
    return Moved(p_after, h_after, moves(pa, p_after), moves(ha, h_after)), rows
