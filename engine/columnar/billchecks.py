"""The bills table's own rules (``prepare_columns``' first stage): ids and dates given and
plausible, a known hospital code, (hospital, bill id) unique, the person listed and born, the
household the persons table's. Each bad value is a reject; a bad bill is marked in ``Marks.bad``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.bill import HOSPITAL_RULE, RANGE_RULE, is_hospital_code
from engine.columnar.idcodes import factor_ids
from engine.columnar.inputs import (
    BillCols,
    Rejects,
    days_of,
    empty_id,
    factor,
    lookup,
    no_nulls,
    rows_of,
)
from engine.columnar.persontable import PersonTable, implausible


@dataclass
class Marks:
    """What the bill checks share: the rejects so far, which bills are bad (marked in place),
    the bills' row numbers and file, and each bill's index (a reject's bill)."""

    rj: Rejects
    bad: np.ndarray
    brow: Any
    bf: str
    bidx: np.ndarray

    @classmethod
    def of(cls, bills: BillCols, rj: Rejects) -> Marks:
        nb = len(bills)
        return cls(rj, np.zeros(nb, dtype=bool), rows_of(bills.row, nb), bills.file,
                   np.arange(nb, dtype=np.int64))  # fmt: skip


@dataclass
class BillKeys:
    """What the later stages read of the checked bills."""

    adm: np.ndarray  # admission, int days
    dis: np.ndarray  # discharge, int days
    hosp: Any  # the hospital column, nulls as ''
    hosp_u: np.ndarray  # distinct hospitals
    hosp_code: np.ndarray  # per bill: its hospital's code
    bu: np.ndarray  # distinct bill ids
    bcode: np.ndarray  # per bill: its bill id's code
    nh: int  # the key's hospital radix: key = bill id code * nh + hospital code
    key_u: np.ndarray  # the distinct (hospital, bill id) keys, sorted
    key_first: np.ndarray  # each key's first bill
    pc: np.ndarray  # per bill: the person's code in the persons table, -1 if not listed
    pcs: np.ndarray  # pc with -1 as 0 (an index)
    hc: np.ndarray  # per bill: the person's household code


def check_bills(
    bills: BillCols,
    pt: PersonTable,
    m: Marks,
    extra_rejects: list[tuple[int, str, Any, str]] | None = None,
) -> BillKeys:
    """The rules of the bills table, with ``extra_rejects`` (bill index, field, value, rule)
    found by the caller; the persons table ``pt`` is checked already."""
    rj, bad, brow, bf, bidx = m.rj, m.bad, m.brow, m.bf, m.bidx
    nb = len(bills)
    pf = pt.cols.file
    pu, hu, p_house, p_birth, p_bad = pt.pu, pt.hu, pt.p_house, pt.p_birth, pt.p_bad
    n_p = len(pu)

    adm, adm_na = days_of(bills.admission_date)
    dis, dis_na = days_of(bills.discharge_date)
    for name, ids in (("bill_id", bills.bill_id), ("person_id", bills.person_id)):
        e = empty_id(ids)
        rj.add(e, brow, bf, name, ids, "is empty; give an id", bidx)
        bad |= e
    rj.add(adm_na, brow, bf, "admission_date", None, "is missing; it is required", bidx)
    rj.add(dis_na, brow, bf, "discharge_date", None, "is missing; it is required", bidx)
    bad |= adm_na | dis_na
    odd_day = np.zeros(nb, dtype=bool)
    for name, col, d, na in (("admission_date", bills.admission_date, adm, adm_na),
                             ("discharge_date", bills.discharge_date, dis, dis_na)):  # fmt: skip
        odd = ~na & implausible(d)
        rj.add(odd, brow, bf, name, col, RANGE_RULE, bidx)
        odd_day |= odd
    bad |= odd_day
    early = ~adm_na & ~dis_na & (dis < adm) & ~odd_day
    rj.add(
        early, brow, bf, "discharge_date", bills.discharge_date,
        "is before admission_date; discharge must be on or after admission", bidx,
    )  # fmt: skip
    bad |= early

    # a bill is (hospital, bill id): the same id at two hospitals is two bills
    hosp = no_nulls(bills.hospital)
    hosp_u, hosp_code = factor(hosp)
    hosp_ok = np.array([is_hospital_code(str(h)) for h in hosp_u], dtype=bool)
    bad_hosp = ~hosp_ok[hosp_code] if nb else np.zeros(0, dtype=bool)
    rj.add(bad_hosp, brow, bf, "hospital", hosp, HOSPITAL_RULE, bidx)
    bad |= bad_hosp
    bu, bcode = factor_ids(bills.bill_id)  # by integer keys when ASCII (``idcodes``)
    nh = max(len(hosp_u), 1)
    bkey = bcode * nh + hosp_code
    if nb:
        o = np.argsort(bkey, kind="stable")
        sk = bkey[o]
        dup = np.zeros(nb, dtype=bool)
        dup[o[1:]] = sk[1:] == sk[:-1]
        new_key = np.concatenate(([True], sk[1:] != sk[:-1]))
        key_u, key_first = sk[new_key], o[new_key]  # stable: a key's first row
        first_of = np.empty(nb, dtype=np.int64)
        first_of[o] = key_first[np.cumsum(new_key) - 1]
        rj.add(
            dup, brow, bf, "bill_id", bills.bill_id,
            np.array([f"is used by {bf} row {brow[first_of[i]]} too, at the same hospital "
                      f"{str(hosp_u[hosp_code[i]])!r}; a bill id is unique within its hospital"
                      for i in range(nb)], dtype=object) if dup.any() else "",
            bidx,
        )  # fmt: skip
        bad |= dup
    else:
        key_u, key_first = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    for b, fld, val, rule in extra_rejects or ():
        rj.add(bidx == b, brow, bf, fld, val, rule, bidx)
        bad[b] = True

    pc = lookup(pu, bills.person_id)
    unknown = pc < 0
    rj.add(
        unknown, brow, bf, "person_id", bills.person_id,
        f"is not in the persons table ({pf}); every bill's person must be listed", bidx,
    )  # fmt: skip
    bad |= pc < 0
    pcs = np.maximum(pc, 0)
    pbad = (pc >= 0) & p_bad[pcs] if n_p else np.zeros(nb, dtype=bool)
    rj.add(
        pbad & ~bad, brow, bf, "person_id", bills.person_id,
        f"has a rejected row in the persons table ({pf})", bidx,
    )  # fmt: skip
    bad |= pbad
    unborn = (pc >= 0) & ~bad & (adm < (p_birth[pcs] if n_p else adm))
    if unborn.any():
        why = np.empty(nb, dtype=object)
        for bi in np.flatnonzero(unborn).tolist():
            born = np.datetime64(int(p_birth[pcs[bi]]), "D")
            why[bi] = (f"is before the patient's birth_date {born} (person {str(pu[pcs[bi]])!r}); "
                      "a patient is admitted on or after their birth")  # fmt: skip
        rj.add(unborn, brow, bf, "admission_date", bills.admission_date, why, bidx)
        bad |= unborn
    hc = p_house[pcs] if n_p else np.zeros(nb, dtype=np.int64)
    if bills.household_id is not None and n_p:
        given = lookup(hu, bills.household_id)
        wrong = (pc >= 0) & (given != hc)
        rj.add(
            wrong & ~bad, brow, bf, "household_id", bills.household_id,
            f"differs from the person's household in the persons table ({pf})", bidx,
        )  # fmt: skip
        bad |= wrong
    return BillKeys(adm, dis, hosp, hosp_u, hosp_code, bu, bcode, nh, key_u, key_first, pc, pcs,
                    hc)  # fmt: skip
