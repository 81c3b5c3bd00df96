"""The numba settlement kernel: the rules of ``engine.reference`` over plain arrays.

It sees only integer arrays (bills as CSR offsets into item columns, the compiled policy, the
account slots) and settles a batch in one pass, in the order given; the wrapper in
``engine.batch`` validates, sorts and builds those arrays. No floats, no fastmath.

Layer output fields (last axis of ``out_layer``) are named by ``F_*``.

Overflow (README "Limits"): with bills of at most MAX_BILL_TOTAL fen and accounts of at most
MAX_ACCOUNT fen no sum can leave int64, and ``_tiered`` splits its products so that they stay
exact for any amount in int64 (``x * ratio`` itself would leave it from x ~ 9.2e14). A bill that would take any account field of a
layer above MAX_ACCOUNT is refused: ``out_bill[b, B_STATUS]`` says which layer and field
(``refused_at``), none of its account moves is written and the admission is not counted.

Hard budgets (domain.md section 12): ``bal[fund, year]`` holds the balance of each fund-year
whose budget is hard (-1: not limited), ``fund[p, li]`` (compiled) the fund of each layer and
``b_fyear[b]`` the bill's year as an index into ``bal``'s second axis. Without budgets ``bal``
and ``b_fyear`` are None: numba prunes the ``bal is not None`` branches at compile time, so the
no-budget kernel is the one it was before budgets. With them a layer pays at most its fund's
balance and takes what it pays (and an alert's relief) from it at once, so that a later layer
of the same fund on the same bill sees what is left; a refused bill gives back what its layers
took. A balance couples every household of a region: the caller runs such a batch serially, in
the region-wide order (``engine.batch.KernelBatch.run``).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from engine.money import MAX_ACCOUNT

F_REASON, F_VARIANT, F_BASE, F_DED, F_ELIGIBLE, F_PAY, F_RELIEF, F_CAP, F_ALERT = range(9)
F_ACC = 9  # 9..12: deductible_used, eligible_cum, paid, selfpay_cum after the bill
N_FIELDS = 13
#: per-bill output columns of ``out_bill``
B_TOTAL, B_IN_SCOPE, B_PRE, B_OVER, B_OOC, B_WINDOW, B_NET, B_ADMNO, B_STATUS = range(9)
N_BILL = 9

# reason codes (engine.result.REASONS) and cap codes (engine.result.CAPS)
R_TAGS_ANY, R_TAGS_NONE, R_AGE_MIN, R_AGE_MAX, R_LEVEL, R_NO_VARIANT = 1, 2, 3, 4, 5, 6
C_ADM, C_ANN, C_SHARE, C_CEIL, C_BUD = 1, 2, 3, 4, 5


@njit(cache=True, inline="always")
def _round_bp(amount, ratio):
    return (amount * ratio + 5000) // 10000


def refused_at(status: int) -> tuple[int, int]:
    """(layer index, account field index in ACCOUNT_FIELDS) of a non-zero ``B_STATUS``
    (``1 + layer index * 4 + field``; 0 = settled)."""
    return (status - 1) // 4, (status - 1) % 4


@njit(cache=True)
def _tiered(x, n_seg, upto, ratio, p, li, vi, lv):
    """R(x), exact without forming ``x * ratio`` (which leaves int64 from x ~ 9.2e14): each
    overlap is taken as 10000 * q + r, so R(x) = sum(q * ratio) + round(sum(r * ratio))."""
    whole = 0
    part = 0
    lo = 0
    for k in range(n_seg):
        up = upto[p, li, vi, k]
        hi = up if up >= 0 else max(x, lo)
        ov = min(x, hi) - lo
        if ov > 0:
            rt = ratio[p, li, vi, k, lv]
            whole += (ov // 10000) * rt
            part += (ov % 10000) * rt
        lo = hi
    return whole + (part + 5000) // 10000


@njit(cache=True)
def _muldivmod(a, x, d):
    """(a * x // d, a * x % d) exactly for 0 <= a, 0 <= x < 2**62 and 0 < d < 2**62, though
    ``a * x`` may leave int64: directly when the product fits, else a = a_q * d + a_r and
    a_r * x by binary long multiplication modulo d (every intermediate stays below 2**63)."""
    if a == 0 or x <= (2**62) // a:
        p = a * x
        return p // d, p % d
    a_q = a // d
    a_r = a % d
    q = 0
    r = 0
    for bit in range(62, -1, -1):  # invariant: q * d + r = a_r * (the bits of x so far)
        q *= 2
        r *= 2
        if r >= d:
            r -= d
            q += 1
        if (x >> bit) & 1:
            r += a_r
            if r >= d:
                r -= d
                q += 1
    return a_q * x + q, r


@njit(cache=True)
def _item_buckets(i0, i1, cat, qty, amount, price_cap, sp_ratio, b_ratio):
    """Section 3.1 per item: ``out[i - i0]`` = (in_scope, pre, over, ooc) of item i."""
    out = np.zeros((i1 - i0, 4), dtype=np.int64)
    for i in range(i0, i1):
        a = amount[i]
        c = cat[i]
        if c == 3:
            out[i - i0, 3] = a
            continue
        over = 0
        if price_cap[i] >= 0:
            cap_total = _round_bp(price_cap[i], qty[i])
            if a > cap_total:
                over = a - cap_total
        rest = a - over
        pre = 0
        if c == 2:
            r = sp_ratio[i] if sp_ratio[i] >= 0 else b_ratio
            pre = _round_bp(rest, r)
        out[i - i0, 0] = rest - pre
        out[i - i0, 1] = pre
        out[i - i0, 2] = over
    return out


@njit(cache=True)
def _split_bucket(ir, k, pay, total, out_item, i0, li):
    """Section 11: ``pay`` (0 < pay <= total = sum of ``ir[:, k]``) over the items in
    proportion to what each has left in bucket k; leftover fen to the largest remainders,
    ties to the lower index. Adds the shares to ``out_item[i0 + i, li]``, takes them from
    ``ir``."""
    n = ir.shape[0]
    share = np.zeros(n, dtype=np.int64)
    rems = np.zeros(n, dtype=np.int64)
    given = 0
    for i in range(n):
        q, r = _muldivmod(pay, ir[i, k], total)
        share[i] = q
        rems[i] = r
        given += q
    extra = pay - given
    if extra > 0:
        order = np.argsort(-rems, kind="mergesort")  # stable: ties keep the lower index first
        for j in range(extra):
            share[order[j]] += 1
    for i in range(n):
        ir[i, k] -= share[i]
        out_item[i0 + i, li] += share[i]


@njit(cache=True)
def _settle_range(
    lo, hi,
    item_start, cat, qty, amount, price_cap, sp_ratio,
    b_policy, b_level, b_tags, b_age, b_pslot, b_hslot,
    b_ratio, n_layers, kind, covers, after, household, slot, el_tags_any, el_tags_none,
    el_age_min, el_age_max, el_levels, n_variants, w_tags_any, w_levels, ded_year, ded,
    ded_later, tiers_year, n_seg, seg_upto, seg_ratio, adm_cap, ann_cap, max_share,
    ann_ceiling, threshold, fund,
    p_acc, p_adm, h_acc,
    out_bill, out_layer,
    b_fyear, bal,
    out_item,
):  # fmt: skip
    bk = np.zeros(4, dtype=np.int64)  # original buckets: in_scope, pre, over, ooc
    rem = np.zeros(4, dtype=np.int64)
    ir = np.zeros((0, 4), dtype=np.int64)  # per-item buckets left (allocation only)
    for b in range(lo, hi):
        p = b_policy[b]
        lv = b_level[b]
        tags = b_tags[b]
        age = b_age[b]
        ps = b_pslot[b]
        hs = b_hslot[b]
        # 3.1: the four buckets
        bk[:] = 0
        for i in range(item_start[b], item_start[b + 1]):
            a = amount[i]
            c = cat[i]
            if c == 3:
                bk[3] += a
                continue
            over = 0
            if price_cap[i] >= 0:
                cap_total = _round_bp(price_cap[i], qty[i])
                if a > cap_total:
                    over = a - cap_total
            rest = a - over
            pre = 0
            if c == 2:
                r = sp_ratio[i] if sp_ratio[i] >= 0 else b_ratio[p]
                pre = _round_bp(rest, r)
            bk[2] += over
            bk[1] += pre
            bk[0] += rest - pre
        total = bk[0] + bk[1] + bk[2] + bk[3]
        rem[:] = bk
        if out_item is not None:  # section 11: each item's own buckets
            ir = _item_buckets(item_start[b], item_start[b + 1], cat, qty, amount, price_cap,
                               sp_ratio, b_ratio[p])  # fmt: skip
        admno = p_adm[ps] + 1
        window_paid = 0
        all_paid = 0
        status = 0
        lbit = np.int64(1) << lv
        for li in range(n_layers[p]):
            s = slot[p, li]
            hh = household[p, li] == 1
            o = out_layer[b, li]
            o[:] = 0
            # the account this layer moves
            for f in range(4):
                o[F_ACC + f] = h_acc[hs, s, f] if hh else p_acc[ps, s, f]
            o[F_VARIANT] = -1
            # eligibility
            why = 0
            if el_tags_any[p, li] != 0 and (el_tags_any[p, li] & tags) == 0:
                why = R_TAGS_ANY
            elif (el_tags_none[p, li] & tags) != 0:
                why = R_TAGS_NONE
            elif el_age_min[p, li] >= 0 and age < el_age_min[p, li]:
                why = R_AGE_MIN
            elif el_age_max[p, li] >= 0 and age > el_age_max[p, li]:
                why = R_AGE_MAX
            elif el_levels[p, li] != 0 and (el_levels[p, li] & lbit) == 0:
                why = R_LEVEL
            vi = -1
            if why == 0:
                for v in range(n_variants[p, li]):
                    wt = w_tags_any[p, li, v]
                    wl = w_levels[p, li, v]
                    if wt != 0 and (wt & tags) == 0:
                        continue
                    if wl != 0 and (wl & lbit) == 0:
                        continue
                    vi = v
                    break
                if vi < 0:
                    why = R_NO_VARIANT
            if why != 0:
                o[F_REASON] = why
                continue
            o[F_VARIANT] = vi
            cov = covers[p, li]
            base = 0
            covered_total = 0
            for k in range(4):
                if (cov >> k) & 1:
                    base += rem[k]
                    covered_total += bk[k]
            k_ = kind[p, li]
            # section 12: the balance of the layer's fund this year, if its budget is hard
            bl = -1
            if bal is not None:
                bl = bal[fund[p, li], b_fyear[b]]
            d_used = o[F_ACC + 0]
            e_cum = o[F_ACC + 1]
            paid = o[F_ACC + 2]
            sp_cum = o[F_ACC + 3]
            pay = 0
            dd = 0
            eligible = base
            cap = 0
            if k_ == 0:
                # 5.2 reimburse
                if ded_year[p, li, vi] == 1:
                    left = ded[p, li, vi, lv] - d_used
                    if left < 0:
                        left = 0
                    dd = min(base, left)
                    d_used += dd
                else:
                    dv = ded_later[p, li, vi, lv] if admno >= 2 else ded[p, li, vi, lv]
                    dd = min(base, dv)
                eligible = base - dd
                start = e_cum if tiers_year[p, li, vi] == 1 else 0
                end = start + eligible
                if tiers_year[p, li, vi] == 1:
                    e_cum = end
                ns = n_seg[p, li, vi]
                pay = _tiered(end, ns, seg_upto, seg_ratio, p, li, vi, lv) - _tiered(
                    start, ns, seg_upto, seg_ratio, p, li, vi, lv
                )
                ac = adm_cap[p, li, vi, lv]
                if ac >= 0 and ac < pay:
                    pay = ac
                    cap = C_ADM
                an = ann_cap[p, li, vi, lv]
                if an >= 0 and an - paid < pay:
                    pay = an - paid
                    cap = C_ANN
                if bl >= 0 and bl < pay:
                    pay = bl
                    cap = C_BUD
                if pay < 0:
                    pay = 0
                paid += pay
            elif k_ == 1:
                # 5.3 backstop
                allowed = base
                ms = max_share[p, li, vi, lv]
                if ms >= 0:
                    share = _round_bp(covered_total, ms)
                    if share < allowed:
                        allowed = share
                        cap = C_SHARE
                ce = ann_ceiling[p, li, vi, lv]
                if ce >= 0:
                    left = ce - sp_cum
                    if left < 0:
                        left = 0
                    if left < allowed:
                        allowed = left
                        cap = C_CEIL
                pay = base - allowed
                if bl >= 0 and bl < pay:  # the patient keeps what the budget cannot pay
                    pay = bl
                    cap = C_BUD
                sp_cum += base - pay
            else:
                # 5.4 alert: no pay, no bucket change
                th = threshold[p, li, vi, lv]
                before = sp_cum
                aft = before + base
                x1 = aft - th if aft > th else 0
                x0 = before - th if before > th else 0
                ns = n_seg[p, li, vi]
                relief = _tiered(x1, ns, seg_upto, seg_ratio, p, li, vi, lv) - _tiered(
                    x0, ns, seg_upto, seg_ratio, p, li, vi, lv
                )
                an = ann_cap[p, li, vi, lv]
                if an >= 0 and an - paid < relief:
                    relief = an - paid
                    cap = C_ANN
                if relief < 0:
                    relief = 0
                if bl >= 0 and bl < relief:
                    relief = bl
                    cap = C_BUD
                paid += relief
                sp_cum = aft
                o[F_RELIEF] = relief
                o[F_ALERT] = 1 if aft > th else 0
            if bal is not None:  # noqa: SIM102 (a branch of its own: numba prunes it)
                if bl >= 0:
                    bal[fund[p, li], b_fyear[b]] = bl - pay - o[F_RELIEF]
            # take pay from the covered buckets in the fixed order
            left_pay = pay
            for k in range(4):
                if left_pay > 0 and (cov >> k) & 1:
                    used = min(left_pay, rem[k])
                    if out_item is not None:  # noqa: SIM102 (pruned without allocation)
                        if used > 0:
                            _split_bucket(ir, k, used, rem[k], out_item, item_start[b], li)
                    rem[k] -= used
                    left_pay -= used
            all_paid += pay
            if after[p, li] == 0:
                window_paid += pay
            o[F_BASE] = base
            o[F_DED] = dd
            o[F_ELIGIBLE] = eligible
            o[F_PAY] = pay
            o[F_CAP] = cap
            o[F_ACC + 0] = d_used
            o[F_ACC + 1] = e_cum
            o[F_ACC + 2] = paid
            o[F_ACC + 3] = sp_cum
            # the account limit: the first layer and field above it refuses the bill
            if status == 0:
                if d_used > MAX_ACCOUNT:
                    status = 1 + li * 4
                elif e_cum > MAX_ACCOUNT:
                    status = 2 + li * 4
                elif paid > MAX_ACCOUNT:
                    status = 3 + li * 4
                elif sp_cum > MAX_ACCOUNT:
                    status = 4 + li * 4
        if status == 0:  # write the moves of the layers that applied
            for li in range(n_layers[p]):
                o = out_layer[b, li]
                if o[F_REASON] != 0:
                    continue
                s = slot[p, li]
                if household[p, li] == 1:
                    for f in range(4):
                        h_acc[hs, s, f] = o[F_ACC + f]
                else:
                    for f in range(4):
                        p_acc[ps, s, f] = o[F_ACC + f]
            p_adm[ps] = admno
        elif bal is not None:  # a refused bill uses no balance: give back what its layers took
            for li in range(n_layers[p]):
                o = out_layer[b, li]
                if o[F_REASON] == 0 and bal[fund[p, li], b_fyear[b]] >= 0:
                    bal[fund[p, li], b_fyear[b]] += o[F_PAY] + o[F_RELIEF]
        ob = out_bill[b]
        ob[B_TOTAL] = total
        ob[B_IN_SCOPE] = bk[0]
        ob[B_PRE] = bk[1]
        ob[B_OVER] = bk[2]
        ob[B_OOC] = bk[3]
        ob[B_WINDOW] = total - window_paid
        ob[B_NET] = total - all_paid
        ob[B_ADMNO] = admno
        ob[B_STATUS] = status


@njit(cache=True, parallel=True)
def _settle_chunks(chunk_start, *args):
    """Settle independent chunks (each a run of whole households) in parallel."""
    for c in prange(len(chunk_start) - 1):
        _settle_range(chunk_start[c], chunk_start[c + 1], *args)


def settle_arrays(
    args: tuple[np.ndarray | None, ...], n_bills: int, chunk_start: np.ndarray | None = None
) -> None:
    """Run the kernel over all bills: serially, or in parallel over household chunks."""
    if chunk_start is None or len(chunk_start) <= 2:
        _settle_range(0, n_bills, *args)
    else:
        _settle_chunks(chunk_start, *args)
