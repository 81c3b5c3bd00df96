"""``prepare_columns`` given the persons table checked once (``person_table``, as the packed
stream keeps it across messages) settles exactly as given the plain columns: the same rejects
(the persons' own among them, every time the table is used) and the same figures."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings

from engine import columnar as C
from tests.strategies import batches
from tests.test_batch_columnar import small_set


def _same(a: C.Prepared, b: C.Prepared) -> None:
    assert a.rejects == b.rejects
    assert np.array_equal(a.kept, b.kept)
    for k, v in vars(a.kb).items():
        if isinstance(v, np.ndarray):
            assert np.array_equal(v, getattr(b.kb, k)), k
    a.kb.run()
    b.kb.run()
    ca, cb = C.bill_columns(a), C.bill_columns(b)
    assert ca.keys() == cb.keys()
    for k in ca:
        assert np.array_equal(C.plain(ca[k]), C.plain(cb[k])), k


@settings(max_examples=60)
@given(batches())
def test_a_checked_persons_table_settles_as_the_columns(batch) -> None:
    bc, ic, pc, oc = C.columns_from_bills(batch.bills, batch.opening)
    table = C.person_table(pc)
    for _ in range(2):  # used twice: nothing of one batch is left in the table
        want = C.prepare_columns(bc, ic, pc, batch.policies, oc)  # the kernel runs in place
        _same(want, C.prepare_columns(bc, ic, table, batch.policies, oc))


def test_bad_person_rows_are_rejected_each_time_the_table_is_used() -> None:
    bills, items, persons, policies = small_set()
    d = np.array
    persons = C.PersonCols(
        person_id=d(["p0", "p1", "p1", "", "p9"], dtype=object),
        birth_date=d(
            ["1970-01-01", "1980-01-01", "1981-01-01", "1990-01-01", "1066-01-01"], dtype="M8[D]"
        ),
        household_id=d(["h0", "h1", "h2", "h3", "h9"], dtype=object),
        tag=d(["", "registered_poor", "pirate", "", "x"], dtype=object),
        tag_valid_from=d(["NaT", "2020-05-01", "NaT", "NaT", "NaT"], dtype="M8[D]"),
        tag_valid_to=d(["NaT", "2020-01-01", "NaT", "NaT", "NaT"], dtype="M8[D]"),
        file="persons.parquet",
    )
    want = C.prepare_columns(bills, items, persons, policies)
    fields = {(r.row, r.field) for r in want.rejects if r.file == "persons.parquet"}
    assert {(2, "household_id"), (2, "birth_date"), (3, "person_id"), (4, "birth_date"),
            (1, "tag_valid_to")} <= fields  # fmt: skip
    table = C.person_table(persons)
    for _ in range(2):
        want = C.prepare_columns(bills, items, persons, policies)
        _same(want, C.prepare_columns(bills, items, table, policies))
