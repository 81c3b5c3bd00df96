"""Which policy table settles each bill (its region's table in force on the discharge date,
domain.md section 3) and the bill's hospital level in that table."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.columnar.billchecks import Marks
from engine.columnar.inputs import DAY_MAX, EPOCH, BillCols, factor
from engine.policy.policyset import PolicySet


@dataclass
class InForce:
    policy: np.ndarray  # per bill: the table's index in ``policies.tables``, -1 if none
    pol: np.ndarray  # policy with -1 as 0 (an index)
    level: np.ndarray  # per bill: the hospital level's index in its table, -1 if none
    rcode: np.ndarray  # per bill: its region's code
    rnames: np.ndarray  # the regions' names


def tables_in_force(bills: BillCols, policies: PolicySet, dis: np.ndarray, m: Marks) -> InForce:
    """Each bill's table and level; a bill of an unknown region, outside every table of its
    region or at a level its table lacks is a reject. Raises ``ValueError`` when the bills
    name no region and the policies cover several."""
    rj, bad, brow, bf, bidx = m.rj, m.bad, m.brow, m.bf, m.bidx
    nb = len(bills)
    tables = policies.tables
    regions = policies.regions
    if bills.region is None:
        if len(regions) != 1:
            raise ValueError(
                f"{bf}: the column region is missing; the policies cover several regions "
                f"({', '.join(regions)}): say which"
            )
        rcode = np.zeros(nb, dtype=np.int64)
        rnames = np.array(regions, dtype=object)
    else:
        rnames, rcode = factor(bills.region)
        known_r = np.array([str(r) in regions for r in rnames], dtype=bool)
        unk = ~known_r[rcode] if nb else np.zeros(0, dtype=bool)
        rj.add(
            unk & ~bad, brow, bf, "region", bills.region,
            f"has no policy table; known regions are {', '.join(regions)}", bidx,
        )  # fmt: skip
        bad |= unk
    policy = np.full(nb, -1, dtype=np.int64)
    for p, t in enumerate(tables):
        ri = [i for i, r in enumerate(rnames) if str(r) == t.region.code]
        if not ri:
            continue
        lo = (t.effective_from - EPOCH).days
        hi = DAY_MAX
        if t.effective_to is not None:
            hi = (t.effective_to - EPOCH).days
        in_force = (rcode == ri[0]) & (dis >= lo) & (dis <= hi)
        policy[in_force] = p
    out_of = (policy < 0) & ~bad
    if out_of.any():
        labels = {
            str(r): ", ".join(t.label for t in tables if t.region.code == str(r)) for r in rnames
        }
        rj.add(
            out_of, brow, bf, "discharge_date", bills.discharge_date,
            np.array([f"is outside every policy table of region {rnames[c]} (tables: "
                      f"{labels[str(rnames[c])]})" for c in rcode], dtype=object),
            bidx,
        )  # fmt: skip
    bad |= policy < 0
    pol = np.maximum(policy, 0)

    # the hospital level, per table
    lu, lcode = factor(bills.hospital_level)
    lv_of = np.full((len(tables), len(lu)), -1, dtype=np.int64)
    for p, t in enumerate(tables):
        for j, name in enumerate(lu):
            if str(name) in t.hospital_levels:
                lv_of[p, j] = t.hospital_levels.index(str(name))
    level = lv_of[pol, lcode] if nb else np.zeros(0, dtype=np.int64)
    nolevel = (level < 0) & (policy >= 0)
    if nolevel.any():
        rj.add(
            nolevel, brow, bf, "hospital_level", bills.hospital_level,
            np.array([f"is not a level of policy {tables[p].label}; levels are "
                      f"{', '.join(tables[p].hospital_levels)}" for p in pol], dtype=object),
            bidx,
        )  # fmt: skip
    bad |= level < 0
    return InForce(policy, pol, level, rcode, rnames)
