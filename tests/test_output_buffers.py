"""Reused kernel output buffers (engine.columnar.OutputBuffers, as ``onestop batch`` uses them):
a batch settled into a buffer full of another batch's figures (or of garbage) gives the very
outputs of a fresh run, equal to the reference (its accounts too, in a reused account buffer:
zeroed, then opened); a buffer given back is taken from the batch."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings

from engine import columnar as C
from tests.strategies import batches
from tests.test_batch_columnar import compare

GARBAGE = -7_777_777_777


@settings(max_examples=60)
@given(batches())
def test_garbage_filled_buffers_give_the_fresh_outputs(batch) -> None:
    bc, ic, pc, oc = C.columns_from_bills(batch.bills, batch.opening)
    fresh = C.settle_columns(bc, ic, pc, batch.policies, oc)
    pool = C.OutputBuffers()
    max_layers = fresh.kb.compiled.max_layers
    ob, ol = pool.take(len(bc) + 3, max_layers)  # larger than the batch: views are used
    ob.fill(GARBAGE)
    ol.fill(GARBAGE)
    prep0 = C.prepare_columns(bc, ic, pc, batch.policies)
    prep0.lent = (ob, ol)
    k = fresh.kb  # accounts too: a flat buffer larger than the batch's, full of garbage
    acc = np.full(k.p_acc.size + k.h_acc.size + k.p_adm.size + 5, GARBAGE, dtype=np.int64)
    prep0.lent_acc = acc
    pool.give_back(prep0)
    assert len(prep0.kb.p_acc) == 0 and len(prep0.kb.h_acc) == 0 and len(prep0.kb.p_adm) == 0
    prep = C.prepare_columns(bc, ic, pc, batch.policies, oc, out=pool)
    assert prep.lent is not None and prep.lent[1] is ol  # the garbage buffer was reused
    assert prep.lent_acc is acc and np.shares_memory(prep.kb.p_acc, acc)
    opened = C.prepare_columns(bc, ic, pc, batch.policies, oc).kb  # zeroed, then opened
    for name in ("p_acc", "p_adm", "h_acc"):
        assert np.array_equal(getattr(prep.kb, name), getattr(opened, name))
    C.run(prep, 1)
    if fresh.rejects:  # the account limit: the same bills refused
        assert [r.rule for r in prep.rejects] == [r.rule for r in fresh.rejects]
        return
    assert np.array_equal(prep.kb.out_bill, fresh.kb.out_bill)
    assert np.array_equal(prep.kb.out_layer, fresh.kb.out_layer)  # unused slots too: zeros
    for name in ("p_acc", "p_adm", "h_acc"):  # the closing accounts
        assert np.array_equal(getattr(prep.kb, name), getattr(fresh.kb, name))
    compare(batch.bills, batch.policies, batch.opening, prep)


def test_a_given_back_buffer_is_taken_from_the_batch() -> None:
    """After ``give_back`` the batch's outputs are empty (a late reader fails), and the next
    take of the same or a smaller size gets the same buffer."""
    pool = C.OutputBuffers()
    ob, ol = pool.take(10, 3)
    assert ob.shape == (10, C.K.N_BILL) and ol.shape == (10, 3, C.K.N_FIELDS)
    prep = type("P", (), {})()
    prep.lent, prep.lent_acc, prep.lent_fields = (ob, ol), None, None
    prep.kb = type("KB", (), {"out_bill": ob[:8], "out_layer": ol[:8]})()
    pool.give_back(prep)
    assert prep.lent is None and len(prep.kb.out_bill) == 0 and len(prep.kb.out_layer) == 0
    with pytest.raises(IndexError):
        prep.kb.out_layer[0]
    again = pool.take(9, 3)
    assert again[1] is ol and pool.allocated == 1
    assert pool.take(9, 3)[1] is not ol and pool.allocated == 2  # lent out: a new one
    assert pool.take(4, 5)[1].shape == (4, 5, C.K.N_FIELDS)  # another width: a new one


def test_account_buffers_are_reused_zeroed() -> None:
    """``take_accounts``: views of one flat buffer, shaped and zeroed; given back, the next
    take of the same or a smaller size gets the same buffer, zeroed again."""
    pool = C.OutputBuffers()
    buf, (p_acc, p_adm, h_acc) = pool.take_accounts(4, 3, 5)
    assert (p_acc.shape, p_adm.shape, h_acc.shape) == ((4, 5, 4), (4,), (3, 5, 4))
    assert all(x.flags.c_contiguous and np.shares_memory(x, buf) for x in (p_acc, p_adm, h_acc))
    assert not np.shares_memory(p_acc, h_acc) and not np.shares_memory(p_adm, h_acc)
    buf.fill(9)
    prep = type("P", (), {})()
    prep.lent, prep.lent_acc, prep.lent_fields = None, buf, None
    prep.kb = type("KB", (), {"p_acc": p_acc, "p_adm": p_adm, "h_acc": h_acc})()
    pool.give_back(prep)
    assert prep.lent_acc is None and len(prep.kb.p_acc) == 0
    again, (p2, a2, h2) = pool.take_accounts(3, 3, 5)
    assert again is buf and not p2.any() and not a2.any() and not h2.any()
    assert pool.take_accounts(4, 3, 5)[0] is not buf  # lent out: a new one


@settings(max_examples=40)
@given(batches())
def test_items_let_go_after_the_kernel_leave_the_outputs_as_they_were(batch) -> None:
    """``run(keep_items=False)`` (``onestop batch``): the same outputs and rejects as a run
    that keeps the items, whose columns are then empty arrays holding no memory of the
    batch's (a late reader finds no items); with ``allocate`` they are kept."""
    bc, ic, pc, oc = C.columns_from_bills(batch.bills, batch.opening)
    kept = C.prepare_columns(bc, ic, pc, batch.policies, oc)
    C.run(kept, 1)
    let_go = C.prepare_columns(bc, ic, pc, batch.policies, oc)
    refused = C.run(let_go, 1, keep_items=False)
    assert [r.rule for r in let_go.rejects] == [r.rule for r in kept.rejects]
    assert [r.rule for r in refused] == [r.rule for r in C.run(C.prepare_columns(
        bc, ic, pc, batch.policies, oc), 1)]  # fmt: skip
    assert np.array_equal(let_go.kb.out_bill, kept.kb.out_bill)
    assert np.array_equal(let_go.kb.out_layer, kept.kb.out_layer)
    for name in ("cat", "qty", "amount", "price_cap", "sp_ratio"):
        a = getattr(let_go.kb, name)
        assert len(a) == 0 and a.base is None and a.dtype == getattr(kept.kb, name).dtype
    for name, cols in (("bills", C.bill_columns), ("layers", C.layer_columns),
                       ("closing", C.closing_columns)):  # fmt: skip
        x, y = cols(let_go), cols(kept)
        assert list(x) == list(y), name
        for k in x:
            assert np.array_equal(C.plain(x[k]), C.plain(y[k])), (name, k)
    alloc = C.prepare_columns(bc, ic, pc, batch.policies, oc)
    C.run(alloc, 1, allocate=True, keep_items=False)
    assert len(alloc.kb.amount) == len(kept.kb.amount)


@settings(max_examples=30)
@given(batches())
def test_the_layer_fields_are_out_layer_field_by_field(batch) -> None:
    """``layer_fields`` (made once by a part's writer for its layers and alerts) holds each
    field of ``out_layer`` as one contiguous row, bill-major; the columns made with it are
    those made without it (the bills' and alerts' read their fields in place then)."""
    bc, ic, pc, oc = C.columns_from_bills(batch.bills, batch.opening)
    prep = C.settle_columns(bc, ic, pc, batch.policies, oc)
    f = C.layer_fields(prep)
    ol = prep.kb.out_layer
    assert f.flags.c_contiguous and f.shape == (C.K.N_FIELDS, ol.shape[0] * ol.shape[1])
    assert np.array_equal(f, ol.reshape(-1, C.K.N_FIELDS).T)
    pool = C.OutputBuffers()  # the writer's: into a reused buffer, lent until give_back
    lent = C.layer_fields(prep, pool)
    assert prep.lent_fields is not None and np.shares_memory(lent, prep.lent_fields)
    assert lent.flags.c_contiguous and np.array_equal(lent, f)
    buf = prep.lent_fields
    buf.fill(GARBAGE)  # the next part's fields overwrite whatever the last left
    assert np.shares_memory(C.layer_fields(prep, pool), buf) and prep.lent_fields is buf
    assert np.array_equal(buf[: f.size].reshape(f.shape), f)
    pool.give_back(prep)
    assert prep.lent_fields is None and pool.take_fields(prep, f.size) is buf
    prep.lent_fields = None
    for cols in (C.bill_columns, C.layer_columns, C.alert_columns):
        x, y = cols(prep, fields=f), cols(prep)
        assert list(x) == list(y)
        for k in x:
            assert np.array_equal(C.plain(x[k]), C.plain(y[k])), k
