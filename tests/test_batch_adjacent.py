"""The plan's order check of adjacent rows: a dictionary column (the bills' household ids) is
compared by its dictionaries' ranks (``plan._adjacent_coded``, ``arrowcols.dict_ranks``) and
gives what the rows compared as strings give (Arrow's byte order); a part's person ids are
found among the persons file's by integer keys (``idkeys.IdKeys``) where the strings find
them."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.batch import arrowcols
from adapters.batch.plan import _adjacent, _adjacent_coded


def _as_strings(col: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """The reference: every row cast to its string, adjacent rows compared by Arrow."""
    c = col.cast(pa.string()).combine_chunks()
    if len(c) < 2:
        return np.zeros(0, bool), np.zeros(0, bool)
    nxt, prv = c.slice(1), c.slice(0, len(c) - 1)
    return (pc.less(nxt, prv).to_numpy(zero_copy_only=False),
            pc.equal(nxt, prv).to_numpy(zero_copy_only=False))  # fmt: skip


WORDS = ["H001", "H002", "H010", "H1", "", "é", "e", "Ω", "z", "H001\x00", "a b"]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(st.sampled_from(WORDS), max_size=12), min_size=1, max_size=5),
       st.randoms(use_true_random=False))  # fmt: skip
def test_dictionary_ranks_compare_as_the_strings(chunks: list[list[str]], rnd) -> None:
    """Row groups of any dictionaries (unsorted, with unused and repeated entries, empty row
    groups): the same (less, equal) as the strings, across row group boundaries too."""
    arrays = []
    for rows in chunks:
        d = sorted(set(rows) | {rnd.choice(WORDS)})
        rnd.shuffle(d)
        if d and rnd.random() < 0.3:
            d = [*d, d[0]]  # a dictionary with a repeat
        idx = [d.index(r) if rnd.random() < 0.5 else len(d) - 1 - d[::-1].index(r) for r in rows]
        arrays.append(pa.DictionaryArray.from_arrays(pa.array(idx, pa.int32()), pa.array(d)))
    col = pa.chunked_array(arrays, pa.dictionary(pa.int32(), pa.string()))
    got = _adjacent_coded(col)
    assert got is not None
    want = _as_strings(col)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_array_equal(_adjacent(col)[0], want[0])


def test_other_columns_are_compared_as_strings() -> None:
    """A plain string column, or a dictionary with nulls: not by ranks (None), and ``_adjacent``
    gives the strings' comparison (nulls as '')."""
    plain = pa.chunked_array([pa.array(["b", "a", "a"])])
    assert _adjacent_coded(plain) is None
    nulls = pa.chunked_array([pa.array(["b", None, "a"]).dictionary_encode()])
    assert _adjacent_coded(nulls) is None
    lt, eq = _adjacent(nulls)
    assert lt.tolist() == [True, False] and eq.tolist() == [False, False]


def test_dict_ranks() -> None:
    d = pa.array(["b", "a", "b", "ä", ""])
    assert arrowcols.dict_ranks(d).tolist() == [2, 1, 2, 3, 0]


IDS = st.one_of(st.text(alphabet="P0129Z", min_size=3, max_size=3),  # ids of one width
                st.text(alphabet="P0129ZÄ\x00 ", min_size=0, max_size=4))  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(st.lists(IDS, min_size=1, max_size=30, unique=True), st.lists(IDS, max_size=30))
def test_id_keys_find_what_the_strings_find(ids: list[str], wanted: list[str]) -> None:
    """``IdKeys.lookup`` gives the index of each value among sorted unique ids, -1 for none of
    them, as the fixed-width strings' lookup does; None (strings compared) where the values or
    the ids are no ASCII ids of one width."""
    from adapters.batch.idkeys import IdKeys
    from engine.columnar.inputs import lookup

    labels = np.array(sorted(ids, key=lambda s: s.encode()), dtype=object)
    values = np.array(wanted + ids[:5], dtype=object)
    want = lookup(labels.astype(str), values.astype(str))
    keys = IdKeys.of(labels)
    if keys is None:
        return
    got = keys.lookup(values)
    if got is not None:
        np.testing.assert_array_equal(got, want)


def test_id_keys_of_person_ids() -> None:
    from adapters.batch.idkeys import IdKeys

    labels = np.array([f"P{i:09d}" for i in range(0, 3000, 3)], dtype=object)
    keys = IdKeys.of(labels)
    assert keys is not None
    got = keys.lookup(np.array(["P000000003", "P000000004", "Q000000003", "P000002997",
                                "P00000000/", "P00000:003"], dtype=object))  # fmt: skip
    assert got is not None
    assert got.tolist() == [1, -1, -1, 999, -1, -1]
    assert keys.lookup(np.array(["P000000003", "P00000000"], dtype=object)) is None  # widths
    assert keys.lookup(np.array(["Pé00000003"], dtype=object)) is None
    assert IdKeys.of(np.array(["b", "a"], dtype=object)) is None  # not sorted
