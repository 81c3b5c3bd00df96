"""``engine.columnar.answers``: each bill's figures in the caller's order from one compiled pass
equal the numpy gathers the packed stream used before (``answer_columns_plain``), for batches
of several tables (different numbers of layers) in any bill order; a batch that left bills out
has no such answer."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings

from engine import columnar as C
from engine.columnar.answers import BILL_COLUMNS, answer_columns, answer_columns_plain
from tests.strategies import batches


@settings(max_examples=60)
@given(batches())
def test_the_compiled_answer_is_the_numpy_one(batch) -> None:
    bc, ic, pc, oc = C.columns_from_bills(batch.bills, batch.opening)
    prep = C.settle_columns(bc, ic, pc, batch.policies, oc)
    if prep.rejects:  # bills left out: no answer in the caller's order
        with pytest.raises(ValueError, match="left out"):
            answer_columns(prep)
        return
    got, want = answer_columns(prep), answer_columns_plain(prep)
    assert got.keys() == want.keys()
    for k in got:
        assert got[k].dtype == np.int64 and got[k].flags.c_contiguous, k
        assert np.array_equal(got[k], want[k]), k
    # each bill's own row, whatever order the kernel settled it in
    n = len(bc)
    assert len(got["total"]) == n and got["layer_offsets"][-1] == len(got["layer_pay"])
    for i in range(n):
        q = int(np.flatnonzero(prep.kept == i)[0])
        assert got["total"][i] == prep.kb.out_bill[q, C.K.B_TOTAL]
    assert set(BILL_COLUMNS) < got.keys()
