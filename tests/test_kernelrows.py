"""The policy's row tables (``engine.policy.kernelrows``, built with numpy once per compiled
policy) against a naive loop over every (table, layer, variant, level, segment): the loop the
kernel ran on every call before (``engine.kernel._param_tables`` until 2026-12-03)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings

from engine.policy import kernelrows as R
from engine.policy.compiled import CompiledPolicies, compile_tables
from engine.policy.policyset import PolicySet
from tests.strategies import policy_sets


def naive_rows(c: CompiledPolicies) -> tuple[np.ndarray, np.ndarray]:
    n_p, n_l = c.kind.shape
    n_v, n_lv, n_k = c.ded_year.shape[2], c.ded.shape[3], c.seg_upto.shape[3]
    lt = np.full((n_p, n_l, R.N_LT), -7, dtype=np.int64)
    vt = np.full((n_p, n_l, n_v, n_lv, R.V_SEG + 2 * n_k), -7, dtype=np.int64)
    for p in range(n_p):
        for li in range(n_l):
            row = lt[p, li]
            row[R.L_KIND] = c.kind[p, li]
            row[R.L_COVERS] = c.covers[p, li]
            row[R.L_AFTER] = c.after[p, li]
            row[R.L_HOUSEHOLD] = c.household[p, li]
            row[R.L_SLOT] = c.slot[p, li]
            row[R.L_TAGS_ANY] = c.el_tags_any[p, li]
            row[R.L_TAGS_NONE] = c.el_tags_none[p, li]
            row[R.L_AGE_MIN] = c.el_age_min[p, li]
            row[R.L_AGE_MAX] = c.el_age_max[p, li]
            row[R.L_LEVELS] = c.el_levels[p, li]
            row[R.L_N_VARIANTS] = c.n_variants[p, li]
            row[R.L_FUND] = c.fund[p, li]
            for vi in range(n_v):
                for lv in range(n_lv):
                    v = vt[p, li, vi, lv]
                    v[R.V_DED_YEAR] = c.ded_year[p, li, vi]
                    v[R.V_TIERS_YEAR] = c.tiers_year[p, li, vi]
                    v[R.V_N_SEG] = c.n_seg[p, li, vi]
                    v[R.V_DED] = c.ded[p, li, vi, lv]
                    v[R.V_DED_LATER] = c.ded_later[p, li, vi, lv]
                    v[R.V_ADM_CAP] = c.adm_cap[p, li, vi, lv]
                    v[R.V_ANN_CAP] = c.ann_cap[p, li, vi, lv]
                    v[R.V_MAX_SHARE] = c.max_share[p, li, vi, lv]
                    v[R.V_ANN_CEILING] = c.ann_ceiling[p, li, vi, lv]
                    v[R.V_THRESHOLD] = c.threshold[p, li, vi, lv]
                    v[R.V_W_TAGS_ANY] = c.w_tags_any[p, li, vi]
                    v[R.V_W_LEVELS] = c.w_levels[p, li, vi]
                    for k in range(n_k):
                        v[R.V_SEG + 2 * k] = c.seg_upto[p, li, vi, k]
                        v[R.V_SEG + 2 * k + 1] = c.seg_ratio[p, li, vi, k, lv]
    return lt, vt


@settings(max_examples=60, deadline=None)
@given(policy_sets(fast=True))
def test_row_tables_equal_the_naive_loop(policies: PolicySet) -> None:
    c = compile_tables(policies.tables)
    lt, vt = R.row_tables(c)
    want_lt, want_vt = naive_rows(c)
    assert lt.dtype == vt.dtype == np.int64
    assert lt.flags.c_contiguous and vt.flags.c_contiguous  # one compiled kernel variant
    np.testing.assert_array_equal(lt, want_lt)
    np.testing.assert_array_equal(vt, want_vt)


def test_kernel_args_are_built_once() -> None:
    from tests.test_kernel_edges import reimburse, table

    c = compile_tables([table(reimburse(), reimburse("second", covers=("pre_selfpay",)))])
    first = c.kernel_args()
    assert c.kernel_args() is first
    b_ratio, n_layers, lt, vt = first
    assert b_ratio is c.b_ratio and n_layers is c.n_layers
    assert lt.shape == (1, 2, R.N_LT) and vt.shape[:2] == (1, 2)
