"""Each bill's tags: the bits, in its table's tag list, of the person's tags valid on the
admission date (domain.md section 4); a tag its table does not know is a reject of the
persons row that gives it, and the bill is left out."""

from __future__ import annotations

import numpy as np

from engine.columnar.billchecks import BillKeys, Marks
from engine.columnar.inputs import plain_at
from engine.columnar.persontable import PersonTable
from engine.columnar.tableinforce import InForce
from engine.policy.policyset import PolicySet


def bill_tags(
    pt: PersonTable, policies: PolicySet, keys: BillKeys, force: InForce, m: Marks
) -> np.ndarray:
    """Per bill: its tags as a bit mask (int64)."""
    rj, bad, bidx = m.rj, m.bad, m.bidx
    nb = len(bidx)
    tables = policies.tables
    gu, t_cnt, t_start, t_rows, t_g = pt.gu, pt.t_cnt, pt.t_start, pt.t_rows, pt.t_g
    t_from, t_to = pt.t_from, pt.t_to
    pc, pcs, adm = keys.pc, keys.pcs, keys.adm
    policy, pol = force.policy, force.pol
    g_known = np.zeros((len(tables), max(len(gu), 1)), dtype=np.int64) - 1
    for p, t in enumerate(tables):
        for g, name in enumerate(gu):
            if str(name) in t.tags:
                g_known[p, g] = t.tags.index(str(name))
    cnt = t_cnt[pcs] if len(pt.pu) else np.zeros(nb, dtype=np.int64)
    cnt = np.where(pc >= 0, cnt, 0)
    rep = np.repeat(bidx, cnt)
    off = np.zeros(nb + 1, dtype=np.int64)
    np.cumsum(cnt, out=off[1:])
    tr = t_start[pcs[rep]] + (np.arange(len(rep)) - off[rep])  # index into t_rows
    trow = t_rows[tr]
    tg = t_g[tr]
    tbit = g_known[pol[rep], tg] if len(rep) else np.zeros(0, dtype=np.int64)
    unknown_tag = (tbit < 0) & (policy[rep] >= 0)
    if unknown_tag.any():
        rj.add(
            unknown_tag, pt.prow[trow], pt.cols.file, "tag", plain_at(pt.cols.tag, trow),
            np.array([f"is not a tag of policy {tables[p].label}; tags are "
                      f"{', '.join(tables[p].tags) or '(none)'}" for p in pol[rep]], dtype=object),
            rep,
        )  # fmt: skip
        bad[rep[unknown_tag]] = True
    valid = (t_from[trow] <= adm[rep]) & (adm[rep] <= t_to[trow]) & (tbit >= 0)
    b_tags = np.zeros(nb, dtype=np.int64)
    np.bitwise_or.at(b_tags, rep[valid], np.left_shift(1, tbit[valid]).astype(np.int64))
    return b_tags
