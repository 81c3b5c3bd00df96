"""The kernel counts the bills it refuses at the account limit (``settle_arrays`` returns it,
``KernelBatch.n_refused``), so that ``KernelBatch.refused`` skips its pass over ``out_bill``
when there are none: the count must be exactly the bills whose status is set, serially and
over parallel chunks."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings

from engine import kernel as K
from engine.batch import prepare
from tests.strategies import Batch, batches


def _check(batch: Batch, threads: int) -> None:
    kb, _, _ = prepare(batch.bills, batch.policies, batch.opening, 4, batch.budgets)
    assert kb.n_refused is None  # not run yet: refused() reads out_bill
    kb.out_bill[:, K.B_STATUS] = 7  # garbage the run must overwrite
    kb.run(threads)
    status = kb.out_bill[:, K.B_STATUS]
    assert kb.n_refused == np.count_nonzero(status)
    assert np.array_equal(kb.refused(), np.flatnonzero(status))


@settings(max_examples=80)
@given(batches(near_limit=True))
def test_the_run_counts_the_bills_it_refuses(batch: Batch) -> None:
    _check(batch, threads=1)


@settings(max_examples=40)
@given(batches(near_limit=True))
def test_the_count_adds_up_over_parallel_chunks(batch: Batch) -> None:
    _check(batch, threads=2)


@settings(max_examples=30)
@given(batches(near_limit=True, budgets=True))
def test_the_count_with_budgets(batch: Batch) -> None:
    _check(batch, threads=1)
