"""A settled batch's summary figures in one compiled pass over ``out_layer`` (``onestop batch``
sums them over its parts): per layer slot the bills it paid, their distinct persons, the amount
and relief paid; per (region, fund code, year) what its layers drew (``paid``) and the bills a
hard budget bound (``bound_bills``, cap ``budget``); the alerts and reliefs of the batch.

The pass reads each bill's layer rows once, with the GIL released (the writer thread of a
pipelined run computes them while the next part is checked and settled), instead of a numpy
mask and gather of the whole ``out_layer`` per slot and per field (~140 ms of GIL-held CPU a
200 k-bill part). ``layer_figures_plain`` and ``results.fund_figures`` are the numpy forms, the
reference the tests hold this one to.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from engine import kernel as K
from engine import numbacache
from engine.columnar.prepare import Prepared

numbacache.install()


@njit(cache=True, nogil=True)
def _pass(out_layer, b_policy, n_layers, slot, fund, year, ymin, span, person, n_persons,
          n_slots, n_keys, s_bills, s_persons, s_amount, s_relief,
          k_seen, k_paid, k_bound):  # fmt: skip
    """Fill the per-slot (``s_*``) and per fund-year (``k_*``) sums; returns (alerts, relief)
    over every layer row of every bill (as the numpy sums of the whole array)."""
    n, L = out_layer.shape[0], out_layer.shape[1]
    seen = np.zeros(n_slots * n_persons, dtype=np.bool_)
    last = np.full(n_keys, -1, dtype=np.int64)  # the last bill a budget bound, per key
    alerts = 0
    relief = 0
    for b in range(n):
        for li in range(L):
            if out_layer[b, li, K.F_ALERT] == 1:
                alerts += 1
            relief += out_layer[b, li, K.F_RELIEF]
        p = b_policy[b]
        y = year[b] - ymin
        for li in range(n_layers[p]):
            s = slot[p, li]
            pay = out_layer[b, li, K.F_PAY]
            rel = out_layer[b, li, K.F_RELIEF]
            s_amount[s] += pay
            s_relief[s] += rel
            if pay > 0 or rel > 0:
                s_bills[s] += 1
                at = s * n_persons + person[b]
                if not seen[at]:
                    seen[at] = True
                    s_persons[s] += 1
            if out_layer[b, li, K.F_REASON] == 0:
                k = fund[p, li] * span + y
                k_seen[k] = True
                k_paid[k] += pay + rel
                if out_layer[b, li, K.F_CAP] == K.C_BUD and last[k] != b:
                    last[k] = b
                    k_bound[k] += 1
    return alerts, relief


@dataclass
class Figures:
    alerts: int
    relief: int
    #: layer id -> {"bills", "persons", "amount", "relief"}
    layers: dict[str, dict[str, int]]
    #: (region, fund_code, year) -> {"paid", "bound_bills"} (as ``results.fund_figures``)
    funds: dict[tuple[str, str, int], dict[str, int]]


def figures(prep: Prepared) -> Figures:
    """The batch's figures (see the module's docstring), by the compiled pass."""
    kb, c = prep.kb, prep.kb.compiled
    n, S = kb.n_bills, len(c.layer_ids)
    ymin = int(prep.year.min()) if n else 0
    span = int(prep.year.max()) - ymin + 1 if n else 1
    n_keys = len(c.fund_keys) * span
    s_sums = np.zeros((4, S), dtype=np.int64)
    k_seen = np.zeros(n_keys, dtype=np.bool_)
    k_sums = np.zeros((2, n_keys), dtype=np.int64)
    ol = kb.out_layer[:n]
    alerts, relief = _pass(
        ol, np.ascontiguousarray(kb.b_policy[:n], dtype=np.int64), c.n_layers, c.slot, c.fund,
        np.ascontiguousarray(prep.year[:n], dtype=np.int64), ymin, span,
        np.ascontiguousarray(prep.person.codes[:n], dtype=np.int64),
        max(len(prep.person.labels), 1), max(S, 1), max(n_keys, 1),
        s_sums[0], s_sums[1], s_sums[2], s_sums[3], k_seen, k_sums[0], k_sums[1],
    )  # fmt: skip
    layers = {
        lid: {"bills": int(s_sums[0, s]), "persons": int(s_sums[1, s]),
              "amount": int(s_sums[2, s]), "relief": int(s_sums[3, s])}
        for s, lid in enumerate(c.layer_ids)
    }  # fmt: skip
    funds = {}
    for k in np.flatnonzero(k_seen).tolist():
        region, code = c.fund_keys[k // span]
        funds[(region, code, k % span + ymin)] = {
            "paid": int(k_sums[0, k]),
            "bound_bills": int(k_sums[1, k]),
        }
    return Figures(int(alerts), int(relief), layers, funds)


def layer_figures_plain(prep: Prepared) -> dict[str, dict[str, int]]:
    """``figures(prep).layers`` by numpy masks, one slot at a time (the reference)."""
    kb, c = prep.kb, prep.kb.compiled
    slot = c.slot[kb.b_policy] if kb.n_bills else np.zeros((0, c.max_layers), np.int64)
    valid = np.arange(c.max_layers)[None, :] < c.n_layers[kb.b_policy][:, None]
    pays, reliefs = kb.out_layer[:, :, K.F_PAY], kb.out_layer[:, :, K.F_RELIEF]
    out = {}
    for s, lid in enumerate(c.layer_ids):
        m = valid & (slot == s)
        pay, relief = pays[m], reliefs[m]  # row-major, as np.nonzero(m)
        paid = (pay > 0) | (relief > 0)
        persons = np.unique(prep.person.codes[np.nonzero(m)[0][paid]])
        out[lid] = {"bills": int(paid.sum()), "persons": len(persons),
                    "amount": int(pay.sum()), "relief": int(relief.sum())}  # fmt: skip
    return out


def warm_figures() -> None:
    """Compile (or load from the cache) ``_pass``."""
    z = np.zeros(1, np.int64)
    _pass(np.zeros((1, 1, K.N_FIELDS), np.int64), z, np.ones(1, np.int64),
          np.zeros((1, 1), np.int64), np.zeros((1, 1), np.int64), z, 0, 1, z, 1, 1, 1,
          z.copy(), z.copy(), z.copy(), z.copy(), np.zeros(1, np.bool_), z.copy(),
          z.copy())  # fmt: skip
