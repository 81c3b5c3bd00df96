"""The opening year-to-date accounts of a batch: its rows checked (``check_opening``) and put
into the kernel's account slots (``open_slots``)."""

from __future__ import annotations

import numpy as np

from engine.accounts import ACCOUNT_FIELDS
from engine.columnar.inputs import OpeningCols, Reject, Rejects, lookup, rows_of
from engine.money import MAX_ACCOUNT
from engine.policy.compiled import CompiledPolicies


def open_slots(
    op: OpeningCols,
    compiled: CompiledPolicies,
    pkeys: tuple[np.ndarray, np.ndarray],
    hkeys: tuple[np.ndarray, np.ndarray],
    span: int,
    ymin: int,
    p_acc: np.ndarray,
    p_adm: np.ndarray,
    h_acc: np.ndarray,
) -> None:
    """Fill the slots that have opening rows (rows of other persons or years are ignored).
    ``pkeys`` / ``hkeys``: the sorted distinct person / household ids and the slots' sorted keys
    ``code * span + year - ymin`` (a slot is its key's position), as ``kept_columns`` made
    them. A row's key is made the same way from its id's code and year: no string array made
    or searched per slot (numpy's casts and searches of objects: ~0.2 ms a 64-row opening)."""
    scope = np.asarray(op.scope)
    ids = np.asarray(op.id)
    year = np.asarray(op.year, dtype=np.int64)
    slot_of = {name: i for i, name in enumerate(compiled.layer_ids)}
    lslot = np.array(
        [
            slot_of.get(x if type(x) is str else str(x), -1)
            for x in np.asarray(op.layer_id).tolist()
        ],
        dtype=np.int64,
    )
    for sc, (u, key_u), acc in (("person", pkeys, p_acc), ("household", hkeys, h_acc)):
        if len(key_u) == 0:
            continue
        rows = np.flatnonzero(scope == sc)
        if len(rows) == 0:
            continue
        code = lookup(np.asarray(u), ids[rows])
        y = year[rows] - ymin
        key = code * span + y
        pos = np.minimum(np.searchsorted(key_u, key), len(key_u) - 1)
        hit = (code >= 0) & (y >= 0) & (y < span) & (key_u[pos] == key)
        ls = lslot[rows]
        use = hit & (ls >= 0)
        if use.any():
            r = rows[use]
            acc[pos[use], ls[use]] = np.stack(
                [np.asarray(getattr(op, f), dtype=np.int64)[r] for f in ACCOUNT_FIELDS], axis=1
            )
        if sc == "person" and op.admissions is not None:
            adm = np.asarray(op.admissions, dtype=np.int64)[rows[hit]]
            np.maximum.at(p_adm, pos[hit], adm)


def check_opening(op: OpeningCols, compiled: CompiledPolicies) -> list[Reject]:
    """Rejects for bad opening rows (unknown scope or layer, negative values)."""
    rows = rows_of(op.row, len(op))
    rj = Rejects()
    scope = np.asarray(op.scope).astype(str)
    rj.add(~np.isin(scope, ["person", "household"]), rows, op.file, "scope", scope,
           "is not a scope; use person or household", None)  # fmt: skip
    lid = np.asarray(op.layer_id).astype(str)
    known = np.isin(lid, [*compiled.layer_ids, ""])
    rj.add(~known, rows, op.file, "layer_id", lid,
           f"is not a layer of the policies ({', '.join(compiled.layer_ids)})", None)  # fmt: skip
    for f in (*ACCOUNT_FIELDS, "admissions"):
        a = getattr(op, f)
        if a is None:
            continue
        a = np.asarray(a)
        rj.add(a < 0, rows, op.file, f, a, "is negative; accounts are non-negative whole fen",
               None)  # fmt: skip
        if f != "admissions":
            rj.add(a > MAX_ACCOUNT, rows, op.file, f, a, f"is above the limit {MAX_ACCOUNT} fen",
                   None)  # fmt: skip
    return rj.build(np.array([], dtype=object))
