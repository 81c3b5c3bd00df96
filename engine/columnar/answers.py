"""Each bill's figures in the order the caller gave the bills (not settlement order), in one
compiled pass over the kernel's outputs: the packed stream's answer (``PackedResults``).

``answer_columns`` reads ``out_bill`` and the paying layers' rows of ``out_layer`` once, bill
by bill in the caller's order, with the GIL released, into contiguous int64 columns; before,
the stream built them with a dozen numpy gathers (the inverse order, a mask and ``nonzero`` of
the layer rows, a gather of whole 13-field rows, strided column copies: ~0.6 ms of GIL-held
CPU a message of 2,000 bills). ``answer_columns_plain`` is that numpy form, the reference the
tests hold this one to. Every bill of the batch must be kept (a batch with rejects has no
answer in the caller's order: the stream refuses the whole message first).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from engine import kernel as K
from engine import numbacache
from engine.columnar.prepare import Prepared

numbacache.install()

#: the per-bill columns, in this order in ``_pass``'s matrix
BILL_COLUMNS = (
    "total",
    "in_scope",
    "pre_selfpay",
    "over_limit",
    "out_of_catalogue",
    "window_pay",
    "net_selfpay",
    "funds_total",
)


@njit(cache=True, nogil=True)
def _pass(out_bill, out_layer, kept, b_policy, n_layers, bills, offsets, pay, relief, key):
    """Fill ``bills`` (8 x n), ``offsets`` (n + 1) and the layer rows; returns the rows."""
    n = len(kept)
    L = out_layer.shape[1]
    inv = np.empty(n, dtype=np.int64)  # the caller's index -> settlement position
    for q in range(n):
        inv[kept[q]] = q
    o = 0
    offsets[0] = 0
    for r in range(n):
        q = inv[r]
        total = out_bill[q, K.B_TOTAL]
        net = out_bill[q, K.B_NET]
        bills[0, r] = total
        bills[1, r] = out_bill[q, K.B_IN_SCOPE]
        bills[2, r] = out_bill[q, K.B_PRE]
        bills[3, r] = out_bill[q, K.B_OVER]
        bills[4, r] = out_bill[q, K.B_OOC]
        bills[5, r] = out_bill[q, K.B_WINDOW]
        bills[6, r] = net
        bills[7, r] = total - net
        p = b_policy[q]
        for li in range(n_layers[p]):
            pay[o] = out_layer[q, li, K.F_PAY]
            relief[o] = out_layer[q, li, K.F_RELIEF]
            key[o] = p * L + li
            o += 1
        offsets[r + 1] = o
    return o


def answer_columns(prep: Prepared) -> dict[str, np.ndarray]:
    """``BILL_COLUMNS`` per bill in the caller's order, ``layer_offsets`` (each bill's layer
    rows: the layers of its table), ``layer_pay``, ``layer_relief`` and ``layer_key`` (the
    row's table index times ``max_layers`` plus its layer index) per layer row: contiguous
    int64 arrays."""
    kb = prep.kb
    n = kb.n_bills
    kept = np.asarray(prep.kept, dtype=np.int64)
    if n != len(prep.bills):
        raise ValueError(f"{len(prep.bills) - n} bills left out: no answer in the caller's order")
    L = kb.compiled.max_layers
    bills = np.empty((len(BILL_COLUMNS), n), dtype=np.int64)
    offsets = np.empty(n + 1, dtype=np.int64)
    rows = np.empty((3, n * L), dtype=np.int64)
    m = _pass(
        np.ascontiguousarray(kb.out_bill), np.ascontiguousarray(kb.out_layer), kept, np.asarray(kb.b_policy, dtype=np.int64),
        np.asarray(kb.compiled.n_layers, dtype=np.int64), bills, offsets, rows[0], rows[1],
        rows[2],
    )  # fmt: skip
    out = dict(zip(BILL_COLUMNS, bills, strict=True))
    out.update(layer_offsets=offsets, layer_pay=rows[0, :m], layer_relief=rows[1, :m],
               layer_key=rows[2, :m])  # fmt: skip
    return out


def answer_columns_plain(prep: Prepared) -> dict[str, np.ndarray]:
    """``answer_columns`` in numpy (the reference)."""
    kb, c = prep.kb, prep.kb.compiled
    n = kb.n_bills
    kept = np.asarray(prep.kept)  # settlement position -> the caller's index
    inv = np.empty(n, dtype=np.int64)
    inv[kept] = np.arange(n)  # the caller's index -> settlement position
    ob = kb.out_bill[inv]
    nl = c.n_layers[kb.b_policy[inv]]
    L = c.max_layers
    mask = np.arange(L)[None, :] < nl[:, None]
    b, li = np.nonzero(mask)
    o = kb.out_layer[inv[b], li]
    return {
        "total": ob[:, K.B_TOTAL],
        "in_scope": ob[:, K.B_IN_SCOPE],
        "pre_selfpay": ob[:, K.B_PRE],
        "over_limit": ob[:, K.B_OVER],
        "out_of_catalogue": ob[:, K.B_OOC],
        "window_pay": ob[:, K.B_WINDOW],
        "net_selfpay": ob[:, K.B_NET],
        "funds_total": ob[:, K.B_TOTAL] - ob[:, K.B_NET],
        "layer_offsets": np.concatenate([[0], np.cumsum(nl)]).astype(np.int64),
        "layer_pay": o[:, K.F_PAY],
        "layer_relief": o[:, K.F_RELIEF],
        "layer_key": kb.b_policy[inv[b]] * L + li,
    }


def warm_answers() -> None:
    """Compile (or load from the cache) ``_pass``."""
    z = np.zeros(1, np.int64)
    _pass(np.zeros((1, K.N_BILL), np.int64), np.zeros((1, 1, K.N_FIELDS), np.int64), z, z,
          np.ones(1, np.int64), np.zeros((8, 1), np.int64), np.zeros(2, np.int64), z.copy(),
          z.copy(), z.copy())  # fmt: skip
