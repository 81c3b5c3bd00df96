"""The persons table checked and indexed once (``person_table``), apart from any bills:
``prepare_columns`` does it for every batch; a caller that settles many batches over one
unchanged persons table (the packed stream: the same 64 persons every message, kept while
their reads stand) passes the ``PersonTable`` instead and the work is done once. Its arrays
and rejects are only read by ``prepare_columns``, so one table serves any number of batches
(none of them sees another's rejects: each copies the list)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.bill import RANGE_RULE
from engine.columnar.inputs import (
    DAY_MAX,
    DAY_MIN,
    PLAUSIBLE,
    PersonCols,
    Rejects,
    days_of,
    empty_id,
    factor,
    rows_of,
    take,
)
from engine.policy.compiled import MAX_BITS


@dataclass(frozen=True)
class PersonTable:
    """``cols`` checked: one household and birth date per person (``pu``: the sorted distinct
    person ids; ``p_house``, ``p_birth``, ``p_bad`` per person, a code into ``hu`` for the
    household), the tag rows sorted by person (``t_start`` offsets into ``t_rows`` / ``t_g``,
    codes into ``gu``; ``t_from`` / ``t_to`` per row, open ends as ``DAY_MIN`` / ``DAY_MAX``),
    ``prow`` the row numbers, and the rejects of bad rows (``Rejects.items``)."""

    cols: PersonCols
    prow: Any
    pu: np.ndarray
    hu: np.ndarray
    p_house: np.ndarray
    p_birth: np.ndarray
    p_bad: np.ndarray
    gu: np.ndarray
    t_cnt: np.ndarray
    t_start: np.ndarray
    t_rows: np.ndarray
    t_g: np.ndarray
    t_from: np.ndarray
    t_to: np.ndarray
    rejects: tuple[Any, ...]


def implausible(days: np.ndarray) -> np.ndarray:
    """Days outside the plausible dates (engine.bill.DATE_MIN..DATE_MAX)."""
    return (days < PLAUSIBLE[0]) | (days > PLAUSIBLE[1])


def person_table(persons: PersonCols) -> PersonTable:
    """Check ``persons`` and index it by person (ValueError: more distinct tags than a batch
    takes, ``MAX_BITS``)."""
    npr = len(persons)
    rj = Rejects()
    prow = rows_of(persons.row, npr)
    pf = persons.file
    pu, pcode_rows = factor(persons.person_id)
    p_birth_rows, p_birth_missing = days_of(persons.birth_date)
    hu, hcode_rows = factor(persons.household_id)
    n_p = len(pu)
    first = np.full(n_p, npr, dtype=np.int64)
    np.minimum.at(first, pcode_rows, np.arange(npr))
    p_house = hcode_rows[first] if npr else np.zeros(0, dtype=np.int64)
    p_birth = p_birth_rows[first] if npr else np.zeros(0, dtype=np.int64)
    p_bad = np.zeros(n_p, dtype=bool)
    empty_pid = empty_id(persons.person_id)
    rj.add(empty_pid, prow, pf, "person_id", persons.person_id, "is empty; give an id", None)
    empty_hid = empty_id(persons.household_id)
    rj.add(empty_hid, prow, pf, "household_id", persons.household_id, "is empty; give an id", None)
    p_bad[pcode_rows[empty_hid]] = True
    rj.add(p_birth_missing, prow, pf, "birth_date", None, "is missing; it is required", None)
    p_bad[pcode_rows[p_birth_missing]] = True
    odd = ~p_birth_missing & implausible(p_birth_rows)
    rj.add(odd, prow, pf, "birth_date", persons.birth_date, RANGE_RULE, None)
    p_bad[pcode_rows[odd]] = True
    other_house = hcode_rows != p_house[pcode_rows]
    rj.add(
        other_house, prow, pf, "household_id", persons.household_id,
        "differs from the household on an earlier row of this person; a person belongs to "
        "one household", None,
    )  # fmt: skip
    p_bad[pcode_rows[other_house]] = True
    other_birth = (p_birth_rows != p_birth[pcode_rows]) & ~p_birth_missing
    rj.add(
        other_birth, prow, pf, "birth_date", persons.birth_date,
        "differs from the birth date on an earlier row of this person", None,
    )  # fmt: skip
    p_bad[pcode_rows[other_birth]] = True

    # tag rows
    has_tag = ~empty_id(persons.tag) if persons.tag is not None else np.zeros(npr, dtype=bool)
    t_idx = np.flatnonzero(has_tag)
    if persons.tag_valid_from is not None:
        t_from, t_from_na = days_of(persons.tag_valid_from)
        t_from = np.where(t_from_na, DAY_MIN, t_from)
    else:
        t_from = np.full(npr, DAY_MIN, dtype=np.int64)
    if persons.tag_valid_to is not None:
        t_to, t_to_na = days_of(persons.tag_valid_to)
        t_to = np.where(t_to_na, DAY_MAX, t_to)
    else:
        t_to = np.full(npr, DAY_MAX, dtype=np.int64)
    for name, col, d in (("tag_valid_from", persons.tag_valid_from, t_from),
                         ("tag_valid_to", persons.tag_valid_to, t_to)):  # fmt: skip
        odd = has_tag & (d != DAY_MIN) & (d != DAY_MAX) & implausible(d)
        rj.add(odd, prow, pf, name, col, RANGE_RULE, None)
        p_bad[pcode_rows[odd]] = True
    backwards = has_tag & (t_to < t_from)
    rj.add(
        backwards, prow, pf, "tag_valid_to", persons.tag_valid_to,
        "is before tag_valid_from; a tag's validity range runs forwards", None,
    )  # fmt: skip
    p_bad[pcode_rows[backwards]] = True
    if len(t_idx):
        gu, g_of = factor(take(persons.tag, t_idx))
    else:
        gu, g_of = np.array([], dtype=object), np.zeros(0, dtype=np.int64)
    if len(gu) > MAX_BITS:
        raise ValueError(f"{pf}: {len(gu)} distinct tags; at most {MAX_BITS} in one batch")
    t_order = np.argsort(pcode_rows[t_idx], kind="stable")
    t_rows = t_idx[t_order]  # tag rows sorted by person
    t_g = g_of[t_order]
    t_cnt = np.bincount(pcode_rows[t_rows], minlength=n_p)
    t_start = np.zeros(n_p + 1, dtype=np.int64)
    np.cumsum(t_cnt, out=t_start[1:])
    return PersonTable(
        cols=persons, prow=prow, pu=pu, hu=hu, p_house=p_house, p_birth=p_birth, p_bad=p_bad,
        gu=gu, t_cnt=t_cnt, t_start=t_start, t_rows=t_rows, t_g=t_g, t_from=t_from, t_to=t_to,
        rejects=tuple(rj.items),
    )  # fmt: skip
