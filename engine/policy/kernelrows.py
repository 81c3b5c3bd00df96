"""The compiled policy as the kernel's two row tables, built once per compiled policy.

``lt[p, li]`` holds a layer's parameters (columns ``L_*``) and ``vt[p, li, vi, lv]`` a
variant's at one hospital level (columns ``V_*``, then ``(upto, ratio)`` of each segment), so
that the kernel finds a layer's or a variant's parameters in one row (one index computation,
not one per dimension and parameter). The kernel used to build them from the 26 arrays of
``CompiledPolicies`` on every call (``engine.kernel._param_tables``): a one-bill call then
resolved and unboxed 26 arrays more (~3.5 us of its ~7 us) and allocated both tables again.
Now ``CompiledPolicies.kernel_args`` builds them here once and keeps them.

numpy only (no numba): the policy package stays importable without the kernel.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from engine.policy.compiled import CompiledPolicies

#: columns of ``lt`` (one row a table's layer)
L_KIND, L_COVERS, L_AFTER, L_HOUSEHOLD, L_SLOT, L_TAGS_ANY, L_TAGS_NONE = range(7)
L_AGE_MIN, L_AGE_MAX, L_LEVELS, L_N_VARIANTS, L_FUND = range(7, 12)
N_LT = 12
#: columns of ``vt`` (one row a layer's variant at one hospital level)
V_DED_YEAR, V_TIERS_YEAR, V_N_SEG, V_DED, V_DED_LATER, V_ADM_CAP, V_ANN_CAP = range(7)
V_MAX_SHARE, V_ANN_CEILING, V_THRESHOLD, V_W_TAGS_ANY, V_W_LEVELS = range(7, 12)
V_SEG = 12  # then (upto, ratio) of each segment

#: the ``L_*`` columns' arrays, in column order
_LT_NAMES = (
    "kind", "covers", "after", "household", "slot", "el_tags_any", "el_tags_none",
    "el_age_min", "el_age_max", "el_levels", "n_variants", "fund",
)  # fmt: skip
#: the ``V_*`` columns' arrays before the segments, in column order; True: [P, L, V] (the same
#: at every level), False: [P, L, V, Lv]
_VT_NAMES = (
    ("ded_year", True), ("tiers_year", True), ("n_seg", True), ("ded", False),
    ("ded_later", False), ("adm_cap", False), ("ann_cap", False), ("max_share", False),
    ("ann_ceiling", False), ("threshold", False), ("w_tags_any", True), ("w_levels", True),
)  # fmt: skip


def row_tables(c: CompiledPolicies) -> tuple[np.ndarray, np.ndarray]:
    """``(lt, vt)``: int64, C-contiguous, ``lt`` of shape [P, L, N_LT] and ``vt`` of shape
    [P, L, V, Lv, V_SEG + 2 K]."""
    lt = np.stack([getattr(c, name) for name in _LT_NAMES], axis=-1).astype(np.int64)
    P, L, V, Lv, K = c.seg_ratio.shape[:3] + c.seg_ratio.shape[4:] + c.seg_ratio.shape[3:4]
    vt = np.empty((P, L, V, Lv, V_SEG + 2 * K), dtype=np.int64)
    for col, (name, same_at_levels) in enumerate(_VT_NAMES):
        a = getattr(c, name)
        vt[..., col] = a[..., None] if same_at_levels else a
    vt[..., V_SEG::2] = c.seg_upto[:, :, :, None, :]
    vt[..., V_SEG + 1 :: 2] = np.moveaxis(c.seg_ratio, 4, 3)
    return np.ascontiguousarray(lt), vt
