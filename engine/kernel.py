"""The numba settlement kernel: the rules of ``engine.reference`` over plain arrays.

It sees only integer arrays (bills as CSR offsets into item columns, the compiled policy, the
account slots) and settles a batch in one pass, in the order given; the wrapper in
``engine.batch`` validates, sorts and builds those arrays. No floats, no fastmath.

Layer output fields (last axis of ``out_layer``) are named by ``F_*``. The kernel writes every
field of every bill it settles, in ``out_bill`` and in all of ``out_layer``'s slots (zeros past
the bill's table's layers): an output buffer may be reused without zeroing it first.

Overflow (README "Limits"): with bills of at most MAX_BILL_TOTAL fen and accounts of at most
MAX_ACCOUNT fen no sum can leave int64, and ``_tiered_diff`` splits its products so that they stay
exact for any amount in int64 (``x * ratio`` itself would leave it from x ~ 9.2e14). A bill that would take any account field of a
layer above MAX_ACCOUNT is refused: ``out_bill[b, B_STATUS]`` says which layer and field
(``refused_at``), none of its account moves stays written and the admission is not counted.

Speed (issue 13, target 2): outputs are written by direct 3-D/2-D indexing (``out_layer[b, li,
F_PAY]``), not through a per-layer row view (``o = out_layer[b, li]``), which cost ~13 % of the
kernel; a layer's account move is written as soon as the layer is settled (the layers of one
table have distinct slots: ``engine.policy.checks`` refuses duplicate layer ids), and the rare
refused bill puts back the values kept in ``undo``, instead of a second pass over every bill's
layers to write the moves; the policy's parameters are read from two row tables
(``engine.policy.kernelrows``: built once per compiled policy and passed as two arguments, not
rebuilt from 26 arrays on every call, whose resolving and unboxing cost a one-bill call ~3.5
us). ``out_layer`` stays one int64 array of N_FIELDS per layer: narrower flag columns (int8
reason, variant, cap, alert) were not worth changing its readers for, as the kernel writing
its outputs into a small ring instead costs the same at one thread (benchmarks/README.md).

Hard budgets (domain.md section 12): ``bal[fund, year]`` holds the balance of each fund-year
whose budget is hard (-1: not limited), ``lt``'s ``L_FUND`` column the fund of each layer and
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

from engine import numbacache
from engine.money import MAX_ACCOUNT

# the columns of the policy's row tables ``lt`` and ``vt`` (built once per compiled policy)
from engine.policy.kernelrows import (
    L_AFTER,
    L_AGE_MAX,
    L_AGE_MIN,
    L_COVERS,
    L_FUND,
    L_HOUSEHOLD,
    L_KIND,
    L_LEVELS,
    L_N_VARIANTS,
    L_SLOT,
    L_TAGS_ANY,
    L_TAGS_NONE,
    N_LT,
    V_ADM_CAP,
    V_ANN_CAP,
    V_ANN_CEILING,
    V_DED,
    V_DED_LATER,
    V_DED_YEAR,
    V_MAX_SHARE,
    V_N_SEG,
    V_SEG,
    V_THRESHOLD,
    V_TIERS_YEAR,
    V_W_LEVELS,
    V_W_TAGS_ANY,
)
from engine.prefetch import prefetch

# processes compiling variants at once (onestop warm --jobs, tests beside it) keep each other's
numbacache.install()

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


#: The float64 path of the item pass is taken only where every product it rounds is below
#: GUARD and every amount below SMALL (section 3.1; ``_buckets_fast``).
GUARD = 2.0**52


#: fl(1 / 10000), a little above 1/10000: floor(fl((x + 5000) * INV)) = (x + 5000) // 10000 for
#: every integer 0 <= x < GUARD (``_buckets_fast``), without a division
INV = 1e-4

#: amounts below SMALL take the float path: their conversions to and from float64 are exact
SMALL = 2**50


def _vector_lanes() -> int:
    """The item pass's step (LANES) for the CPU numba compiles for: 16 where it has AVX-512
    (``NUMBA_CPU_NAME`` unset: the host), else 4."""
    from numba.core import config

    if getattr(config, "CPU_NAME", None):  # a named target (e.g. generic): taken as no AVX-512
        return 4
    from llvmlite import binding as ll

    return 16 if ll.get_host_cpu_features().get("avx512f", False) else 4


#: The item pass reads each bill in whole steps of LANES items: its slices are widened past the
#: bill's last item to a multiple of LANES (into the next bill's items, never past the columns'
#: end) and the lanes past it masked (``_buckets_fast``), so that the vectorized loop runs
#: whole and its scalar remainder loop never runs (a 40-item bill had 8 scalar iterations).
#: Measured (benchmarks/README.md, "Branch layers"): the item pass alone 1.07x min, 1.17x
#: median; the kernel 1.06-1.10x (CPU, interleaved). Fixed blocks of 16 with a constant trip
#: count were slower, with the partial block copied into padded scratch or read as an
#: overlapping block with masked lanes (the item pass 1.7x and 2.2x slower).
#: LANES is the vector loop's step on the host: 16 with AVX-512 (where 16 was measured); 4 on
#: AVX2 and below, where the loop runs 4 int64/float64 lanes a step (ymm, no unrolling), and
#: widening a 40-item bill to 48 lanes did 7 lanes of masked work for nothing: 4 instead, the
#: item pass alone 158 -> 139 ms, the kernel 1.04-1.06x (CPU, interleaved; benchmarks/README.md,
#: "branch kernel10"). Numba's cache is per CPU, so a cached kernel never meets another LANES.
LANES = _vector_lanes()
#: Items in place (``item_at``, issue 13 target 8): None, the usual form, means the item
#: columns hold the bills' items one after the other in settlement order, bill b's at
#: ``item_start[b] .. item_start[b + 1]``; an array means the columns are the caller's as
#: received (the packed stream's views of the message), bill b's items the run of
#: ``item_start[b + 1] - item_start[b]`` items from ``item_at[b]``, so that a batch whose bills
#: are sorted need not copy every item column into settlement order first (1.2-1.5 ms of a
#: 2,000 x 100 message). ``out_item`` (the allocation) then follows the columns' positions:
#: ``KernelBatch.want_allocation`` copies the runs into order first. The item dtypes of the
#: in-place variant ``onestop warm`` compiles (read-only arrays: the columns are views of the
#: message's bytes); ``engine.columnar.prepare_columns(in_place=True)`` reads other dtypes
#: as copies, as without it.
IN_PLACE_DTYPES = (np.int8, np.int32, np.int64, np.int32, np.int16)  # cat qty amount cap ratio
_MAGIC_F = 6755399441055744.0  # 1.5 * 2**52
_MAGIC_I = 0x4338000000000000  # its bits


@njit(cache=True, inline="always")
def _as_float(x):
    """float64(x) for an int64 |x| < 2**51, exactly, in vector-friendly bit operations (AVX2
    has no packed int64 -> float64 conversion): 1.5 * 2**52 + x has the bits MAGIC_I + x."""
    return np.int64(x + _MAGIC_I).view(np.float64) - _MAGIC_F


@njit(cache=True, inline="always")
def _as_int(x):
    """int64(x) for an integer-valued float64 |x| < 2**51 (the inverse of ``_as_float``)."""
    return np.float64(x + _MAGIC_F).view(np.int64) - _MAGIC_I


@njit(cache=True, inline="always")
def _buckets_fast(cat, qty, amount, price_cap, sp_ratio, b_ratio, n=-1):
    """Section 3.1 over one bill's items (0-based slices): (in_scope, pre, over, ooc) sums and
    whether every rounding was exact (False: the caller redoes the bill with ``_buckets_exact``).

    The bill's items are the first ``n`` of the columns (all of them if n < 0); the lanes past
    them (the caller widens the slices to whole LANES steps) are read as amount 0, category 3
    and no price cap: they add nothing, and take no part in the guard.

    The two per-item roundings ``(x * r + 5000) // 10000`` are done in float64, because int64
    division does not vectorize. Why this equals the integer result when the guard holds, i.e.
    when the float product ``fl(fl(x) * r)`` is below GUARD = 2**52 (r is an int32/int16
    ratio or quantity, exact in float64):
    - rounding to nearest is monotone and 2**52 is a float, so a true product x * r >= 2**52
      (or x itself >= 2**52, with r >= 1) gives a float product >= 2**52: the guard fails.
      Under the guard x < 2**52 is exact in float64 and so is the integer x * r < 2**52, so
      the float product IS the integer n - 5000, and n = x * r + 5000 < 2**53 is exact too;
    - the division by 10000 is a multiply by INV = fl(1/10000) (a ``vdivpd`` was two 13-cycle
      links in each lane's dependency chain): INV = (1 + eta) / 10000 with 0 < eta < 2**-54.
      For n = 10000 k + m (0 <= m <= 9999; n < GUARD + 5000, so k + 1 < 2**39) the exact
      product n * INV is at least k + m / 10000 >= k, an integer below 2**53, so its rounding
      stays at or above k (above k when m > 0: the floats near k are at most 2**-14 apart);
      and it is at most k + 0.9999 + 2**39 * 2**-54 = k + 1 - 1e-4 + 2**-15 < k + 1 - 2**-15,
      below the midpoint of k + 1 and the float before it, so its rounding stays below k + 1:
      floor(fl(n * INV)) = n // 10000. (Checked in tests/test_kernel_edges.py on every n near
      a multiple of 10000 over a spread of k up to the guard; it first fails near
      n ~ 9 * 10**15, past it.)
    No fastmath: the compiler may not reassociate or contract, so fl(n * INV) is exactly that
    product. Negative values never reach the kernel (prepare rejects them); were one to, the
    same bounds on |n| give floor(fl(n * INV)) = Python's n // 10000, and the guard takes
    |product|.
    The conversions between int64 and float64 are bit operations (``_as_float``, ``_as_int``),
    exact for |value| < 2**51, because AVX2 has no packed int64 <-> float64 conversion (the
    compiler made them one scalar instruction per lane). So the path also needs every amount
    below SMALL = 2**50: then the amount is exact in float64, and so are ct and pre (integers
    below 2**52 / 10000) and over = a - ct and rest = a - over (integers below 2**51), so
    ``_as_int`` gives them exactly. The sums stay in int64 (a float sum would not vectorize
    without reassociation). in_scope is summed as the bill's total less the other three
    buckets (an out-of-scope item has no over and no pre): one add per item instead of a
    masked difference, ~7 % of the kernel (1 M x 40, CPU)."""
    if n < 0:
        n = len(amount)
    s0 = 0
    s1 = 0
    s2 = 0
    s3 = 0
    big = 0
    fr = np.float64(b_ratio)
    for j in range(len(amount)):
        # every column read whole, then the lanes past the bill masked: a load under `j < n`
        # is a masked load, which AVX2 has not for int8/int16 columns (AVX-512 has), and the
        # loop then stayed scalar on AVX2 (4.3x slower there); and the cap converted at its
        # own width (int32 -> float64 is packed on AVX2, int64 -> float64 is not)
        inb = j < n
        a0 = amount[j]
        c0 = cat[j]
        pc = price_cap[j]
        q = qty[j]
        sr = sp_ratio[j]
        ai = a0 if inb else 0
        a = _as_float(ai)
        c = c0 if inb else 3
        capped = (pc >= 0) and inb
        ooc = c == 3
        pcap = np.float64(pc) * np.float64(q)
        ct = np.floor((pcap + 5000.0) * INV)
        over = a - ct if capped and (a > ct) and not ooc else 0.0
        rest = a - over
        r = np.float64(sr) if sr >= 0 else fr
        ppre = rest * r
        pre = np.floor((ppre + 5000.0) * INV) if c == 2 else 0.0
        # the cap's product only where a cap is used (a lane past the bill holds the next
        # bill's cap; no cap: the product is not used)
        big |= ((abs(pcap) >= GUARD) & capped) | (abs(ppre) >= GUARD)
        big |= (ai >= SMALL) | (ai <= -SMALL)
        oi = _as_int(over)
        pi = _as_int(pre)
        s3 += ai if ooc else 0
        s2 += oi
        s1 += pi
        s0 += ai  # the bill's total: in_scope is what the other three leave of it
    return s0 - s1 - s2 - s3, s1, s2, s3, big == 0


@njit(cache=True)
def _buckets_exact(cat, qty, amount, price_cap, sp_ratio, b_ratio):
    """Section 3.1 over one bill's items in int64 (any magnitude ``_tiered_diff``'s callers allow)."""
    s0 = 0
    s1 = 0
    s2 = 0
    s3 = 0
    for j in range(len(amount)):
        a = amount[j]
        c = cat[j]
        if c == 3:
            s3 += a
            continue
        over = 0
        if price_cap[j] >= 0:
            cap_total = _round_bp(np.int64(price_cap[j]), np.int64(qty[j]))
            if a > cap_total:
                over = a - cap_total
        rest = a - over
        pre = 0
        if c == 2:
            r = sp_ratio[j] if sp_ratio[j] >= 0 else b_ratio
            pre = _round_bp(rest, np.int64(r))
        s2 += over
        s1 += pre
        s0 += rest - pre
    return s0, s1, s2, s3


def refused_at(status: int) -> tuple[int, int]:
    """(layer index, account field index in ACCOUNT_FIELDS) of a non-zero ``B_STATUS``
    (``1 + layer index * 4 + field``; 0 = settled)."""
    return (status - 1) // 4, (status - 1) % 4


@njit(cache=True, inline="always")
def _tiered_diff(x0, x1, n_seg, vt, r):
    """R(x1) - R(x0), each R rounded on its own, in one pass over the segments. R(x) is exact
    without forming ``x * ratio`` (which leaves int64 from x ~ 9.2e14): each overlap is taken
    as 10000 * q + r, so R(x) = sum(q * ratio) + round(sum(r * ratio))."""
    w0 = 0
    f0 = 0
    w1 = 0
    f1 = 0
    lo0 = 0
    lo1 = 0
    for k in range(n_seg):
        up = vt[r, V_SEG + 2 * k]
        rt = vt[r, V_SEG + 2 * k + 1]
        hi0 = up if up >= 0 else max(x0, lo0)
        hi1 = up if up >= 0 else max(x1, lo1)
        ov0 = min(x0, hi0) - lo0
        ov1 = min(x1, hi1) - lo1
        if ov0 > 0:
            w0 += (ov0 // 10000) * rt
            f0 += (ov0 % 10000) * rt
        if ov1 > 0:
            w1 += (ov1 // 10000) * rt
            f1 += (ov1 % 10000) * rt
        lo0 = hi0
        lo1 = hi1
    return (w1 + (f1 + 5000) // 10000) - (w0 + (f0 + 5000) // 10000)


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
def _item_buckets(i0, i1, cat, qty, amount, price_cap, sp_ratio, b_ratio, out):
    """Section 3.1 per item: ``out[i - i0]`` = (in_scope, pre, over, ooc) of item i."""
    for i in range(i0, i1):
        a = amount[i]
        c = cat[i]
        o = out[i - i0]
        o[:] = 0
        if c == 3:
            o[3] = a
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
        o[0] = rest - pre
        o[1] = pre
        o[2] = over


@njit(cache=True)
def _split_bucket(ir, n, k, pay, total, out_item, i0, li, share, rems, idx):
    """Section 11: ``pay`` (0 < pay <= total = sum of ``ir[:n, k]``) over the n items in
    proportion to what each has left in bucket k; leftover fen to the largest remainders,
    ties to the lower index. Adds the shares to ``out_item[i0 + i, li]``, takes them from
    ``ir``. ``share``, ``rems``, ``idx``: scratch of at least n."""
    if pay == total:  # the whole bucket: every item's part, exactly
        for i in range(n):
            out_item[i0 + i, li] += ir[i, k]
            ir[i, k] = 0
        return
    given = 0
    lim = (2**62) // pay
    for i in range(n):
        x = ir[i, k]
        if x <= lim:  # the product fits: the common case
            p = pay * x
            q = p // total
            r = p - q * total
        else:
            q, r = _muldivmod(pay, x, total)
        share[i] = q
        rems[i] = r
        given += q
    extra = pay - given
    if extra > 0:
        # the ``extra`` largest remainders, ties to the lower index: a stable sort of the
        # indices by remainder, descending (insertion sort: bills have few items)
        if n <= 64:
            for i in range(n):
                j = i
                while j > 0 and rems[idx[j - 1]] < rems[i]:
                    idx[j] = idx[j - 1]
                    j -= 1
                idx[j] = i
        else:
            idx[:n] = np.argsort(-rems[:n], kind="mergesort")
        for j in range(extra):
            share[idx[j]] += 1
    for i in range(n):
        ir[i, k] -= share[i]
        out_item[i0 + i, li] += share[i]


@njit(cache=True, inline="always")
def _prefetch_row(arr, row):
    """Ask the CPU for every cache line of ``arr[row]`` (a C-contiguous row of an account
    array): the kernel reads the next bill's rows a bill ahead, since the rows are gathered by
    slot and their cache misses stalled the per-layer pass (~9 % of the kernel's samples on
    the account loads, perf; benchmarks/README.md, "Branch layers")."""
    st = arr.strides[0]
    if st > 0:
        at = row * st
        for k in range(0, st + 63, 64):
            prefetch(arr, at + min(k, st - 1))


@njit(cache=True, nogil=True)
def _settle_range(
    lo, hi,
    item_start, item_at, cat, qty, amount, price_cap, sp_ratio,
    b_policy, b_level, b_tags, b_age, b_pslot, b_hslot,
    b_ratio, n_layers, lrows, vrows,
    p_acc, p_adm, h_acc,
    out_bill, out_layer,
    b_fyear, bal,
    out_item,
):  # fmt: skip
    # allocation only (section 11): per-item buckets left, and scratch for the split
    most = 0
    if out_item is not None:
        for b in range(lo, hi):
            most = max(most, item_start[b + 1] - item_start[b])
    ir = np.zeros((most, 4), dtype=np.int64)
    sh_buf = np.zeros(most, dtype=np.int64)
    rm_buf = np.zeros(most, dtype=np.int64)
    ix_buf = np.zeros(most, dtype=np.int64)
    undo = np.empty((out_layer.shape[1], 4), dtype=np.int64)
    # the policy's row tables (engine.policy.kernelrows), as 2-D views: lt[p * L + li] and
    # vt[((p * L + li) * V + vi) * Lv + lv]
    n_l = lrows.shape[1]
    n_v = vrows.shape[2]
    n_lv = vrows.shape[3]
    lt = lrows.reshape(lrows.shape[0] * n_l, N_LT)
    vt = vrows.reshape(vrows.shape[0] * n_l * n_v * n_lv, vrows.shape[4])
    n_refused = 0
    for b in range(lo, hi):
        if b + 1 < hi:  # the next bill's account rows, gathered by slot: ask for them now
            _prefetch_row(p_acc, b_pslot[b + 1])
            _prefetch_row(h_acc, b_hslot[b + 1])
        p = b_policy[b]
        lv = b_level[b]
        tags = b_tags[b]
        age = b_age[b]
        ps = b_pslot[b]
        hs = b_hslot[b]
        # 3.1: the four buckets
        i0, i1 = item_start[b], item_start[b + 1]
        if item_at is not None:  # the bill's run where it is (IN_PLACE_DTYPES)
            i1 = item_at[b] + (i1 - i0)
            i0 = item_at[b]
        iw = i0 + (i1 - i0 + LANES - 1) // LANES * LANES  # whole LANES steps (see LANES)
        if iw > len(amount):
            iw = i1
        s0, s1, s2, s3, exact = _buckets_fast(
            cat[i0:iw], qty[i0:iw], amount[i0:iw], price_cap[i0:iw], sp_ratio[i0:iw], b_ratio[p],
            i1 - i0,
        )  # fmt: skip
        if not exact:  # some product at or above the guard: the int64 path (rare)
            s0, s1, s2, s3 = _buckets_exact(
                cat[i0:i1],
                qty[i0:i1],
                amount[i0:i1],
                price_cap[i0:i1],
                sp_ratio[i0:i1],
                b_ratio[p],
            )
        total = s0 + s1 + s2 + s3  # s0..s3: the buckets in_scope, pre, over, ooc
        if out_item is not None:  # section 11: each item's own buckets
            _item_buckets(i0, i1, cat, qty, amount, price_cap, sp_ratio, b_ratio[p], ir)
        admno = p_adm[ps] + 1
        window_paid = 0
        all_paid = 0
        status = 0
        lbit = np.int64(1) << lv
        # the buckets left to pay from, in locals (section 4: each layer takes from them)
        r0, r1, r2, r3 = s0, s1, s2, s3
        for li in range(n_layers[p]):
            q = p * n_l + li
            s = lt[q, L_SLOT]
            hh = lt[q, L_HOUSEHOLD] == 1
            # the account this layer moves
            if hh:
                d_used, e_cum = h_acc[hs, s, 0], h_acc[hs, s, 1]
                paid, sp_cum = h_acc[hs, s, 2], h_acc[hs, s, 3]
            else:
                d_used, e_cum = p_acc[ps, s, 0], p_acc[ps, s, 1]
                paid, sp_cum = p_acc[ps, s, 2], p_acc[ps, s, 3]
            u0, u1, u2, u3 = d_used, e_cum, paid, sp_cum
            # eligibility
            why = 0
            ta = lt[q, L_TAGS_ANY]
            lm = lt[q, L_LEVELS]
            if ta != 0 and (ta & tags) == 0:
                why = R_TAGS_ANY
            elif (lt[q, L_TAGS_NONE] & tags) != 0:
                why = R_TAGS_NONE
            elif lt[q, L_AGE_MIN] >= 0 and age < lt[q, L_AGE_MIN]:
                why = R_AGE_MIN
            elif lt[q, L_AGE_MAX] >= 0 and age > lt[q, L_AGE_MAX]:
                why = R_AGE_MAX
            elif lm != 0 and (lm & lbit) == 0:
                why = R_LEVEL
            vi = -1
            r = 0
            if why == 0:
                for v in range(lt[q, L_N_VARIANTS]):
                    r = (q * n_v + v) * n_lv + lv
                    wt = vt[r, V_W_TAGS_ANY]
                    wl = vt[r, V_W_LEVELS]
                    if wt != 0 and (wt & tags) == 0:
                        continue
                    if wl != 0 and (wl & lbit) == 0:
                        continue
                    vi = v
                    break
                if vi < 0:
                    why = R_NO_VARIANT
            if why != 0:  # the layer does not apply: its reason and the account unchanged
                out_layer[b, li, F_REASON] = why
                out_layer[b, li, F_VARIANT] = -1
                out_layer[b, li, F_BASE] = 0
                out_layer[b, li, F_DED] = 0
                out_layer[b, li, F_ELIGIBLE] = 0
                out_layer[b, li, F_PAY] = 0
                out_layer[b, li, F_RELIEF] = 0
                out_layer[b, li, F_CAP] = 0
                out_layer[b, li, F_ALERT] = 0
                out_layer[b, li, F_ACC + 0] = d_used
                out_layer[b, li, F_ACC + 1] = e_cum
                out_layer[b, li, F_ACC + 2] = paid
                out_layer[b, li, F_ACC + 3] = sp_cum
                continue
            cov = lt[q, L_COVERS]
            c0, c1, c2, c3 = cov & 1, (cov >> 1) & 1, (cov >> 2) & 1, (cov >> 3) & 1
            base = r0 * c0 + r1 * c1 + r2 * c2 + r3 * c3
            k_ = lt[q, L_KIND]
            # section 12: the balance of the layer's fund this year, if its budget is hard
            bl = -1
            if bal is not None:
                bl = bal[lt[q, L_FUND], b_fyear[b]]
            pay = 0
            relief = 0
            alert = 0
            dd = 0
            eligible = base
            cap = 0
            if k_ == 0:
                # 5.2 reimburse
                if vt[r, V_DED_YEAR] == 1:
                    left = vt[r, V_DED] - d_used
                    if left < 0:
                        left = 0
                    dd = min(base, left)
                    d_used += dd
                else:
                    dv = vt[r, V_DED_LATER] if admno >= 2 else vt[r, V_DED]
                    dd = min(base, dv)
                eligible = base - dd
                ty = vt[r, V_TIERS_YEAR] == 1
                start = e_cum if ty else 0
                end = start + eligible
                if ty:
                    e_cum = end
                pay = _tiered_diff(start, end, vt[r, V_N_SEG], vt, r)
                ac = vt[r, V_ADM_CAP]
                if ac >= 0 and ac < pay:
                    pay = ac
                    cap = C_ADM
                an = vt[r, V_ANN_CAP]
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
                ms = vt[r, V_MAX_SHARE]
                if ms >= 0:
                    share = _round_bp(s0 * c0 + s1 * c1 + s2 * c2 + s3 * c3, ms)
                    if share < allowed:
                        allowed = share
                        cap = C_SHARE
                ce = vt[r, V_ANN_CEILING]
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
                th = vt[r, V_THRESHOLD]
                before = sp_cum
                aft = before + base
                x1 = aft - th if aft > th else 0
                x0 = before - th if before > th else 0
                relief = _tiered_diff(x0, x1, vt[r, V_N_SEG], vt, r)
                an = vt[r, V_ANN_CAP]
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
                alert = 1 if aft > th else 0
            if bal is not None:  # noqa: SIM102 (a branch of its own: numba prunes it)
                if bl >= 0:
                    bal[lt[q, L_FUND], b_fyear[b]] = bl - pay - relief
            # take pay from the covered buckets in the fixed order
            if pay > 0:
                if out_item is None:
                    u = min(pay, r0 * c0)
                    r0 -= u
                    left_pay = pay - u
                    u = min(left_pay, r1 * c1)
                    r1 -= u
                    left_pay -= u
                    u = min(left_pay, r2 * c2)
                    r2 -= u
                    left_pay -= u
                    r3 -= min(left_pay, r3 * c3)
                else:  # section 11: the same takes, each split over the items
                    n_it = i1 - i0
                    u = min(pay, r0 * c0)
                    if u > 0:
                        _split_bucket(ir, n_it, 0, u, r0, out_item, i0, li, sh_buf, rm_buf, ix_buf)
                    r0 -= u
                    left_pay = pay - u
                    u = min(left_pay, r1 * c1)
                    if u > 0:
                        _split_bucket(ir, n_it, 1, u, r1, out_item, i0, li, sh_buf, rm_buf, ix_buf)
                    r1 -= u
                    left_pay -= u
                    u = min(left_pay, r2 * c2)
                    if u > 0:
                        _split_bucket(ir, n_it, 2, u, r2, out_item, i0, li, sh_buf, rm_buf, ix_buf)
                    r2 -= u
                    left_pay -= u
                    u = min(left_pay, r3 * c3)
                    if u > 0:
                        _split_bucket(ir, n_it, 3, u, r3, out_item, i0, li, sh_buf, rm_buf, ix_buf)
                    r3 -= u
            all_paid += pay
            if lt[q, L_AFTER] == 0:
                window_paid += pay
            out_layer[b, li, F_REASON] = 0
            out_layer[b, li, F_VARIANT] = vi
            out_layer[b, li, F_BASE] = base
            out_layer[b, li, F_DED] = dd
            out_layer[b, li, F_ELIGIBLE] = eligible
            out_layer[b, li, F_PAY] = pay
            out_layer[b, li, F_RELIEF] = relief
            out_layer[b, li, F_CAP] = cap
            out_layer[b, li, F_ALERT] = alert
            out_layer[b, li, F_ACC + 0] = d_used
            out_layer[b, li, F_ACC + 1] = e_cum
            out_layer[b, li, F_ACC + 2] = paid
            out_layer[b, li, F_ACC + 3] = sp_cum
            # the layer's move, written now (the table's layers have distinct slots); a
            # refused bill restores what ``undo`` keeps
            undo[li, 0] = u0
            undo[li, 1] = u1
            undo[li, 2] = u2
            undo[li, 3] = u3
            if hh:
                h_acc[hs, s, 0] = d_used
                h_acc[hs, s, 1] = e_cum
                h_acc[hs, s, 2] = paid
                h_acc[hs, s, 3] = sp_cum
            else:
                p_acc[ps, s, 0] = d_used
                p_acc[ps, s, 1] = e_cum
                p_acc[ps, s, 2] = paid
                p_acc[ps, s, 3] = sp_cum
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
        # the slots past the bill's table's layers (a batch of tables with fewer layers than
        # ``max_layers``): zeros, so that output buffers can be reused without zeroing them
        for li in range(n_layers[p], out_layer.shape[1]):
            for f in range(N_FIELDS):
                out_layer[b, li, f] = 0
        if status == 0:
            p_adm[ps] = admno
        else:  # refused: the accounts as they were before the bill
            n_refused += 1
            for li in range(n_layers[p]):
                if out_layer[b, li, F_REASON] != 0:
                    continue
                s = lt[p * n_l + li, L_SLOT]
                if lt[p * n_l + li, L_HOUSEHOLD] == 1:
                    for f in range(4):
                        h_acc[hs, s, f] = undo[li, f]
                else:
                    for f in range(4):
                        p_acc[ps, s, f] = undo[li, f]
        if bal is not None:  # noqa: SIM102 (numba prunes it)
            if status != 0:  # a refused bill uses no balance: give back what its layers took
                for li in range(n_layers[p]):
                    fu = lt[p * n_l + li, L_FUND]
                    if out_layer[b, li, F_REASON] == 0 and bal[fu, b_fyear[b]] >= 0:
                        bal[fu, b_fyear[b]] += out_layer[b, li, F_PAY] + out_layer[b, li, F_RELIEF]
        out_bill[b, B_TOTAL] = total
        out_bill[b, B_IN_SCOPE] = s0
        out_bill[b, B_PRE] = s1
        out_bill[b, B_OVER] = s2
        out_bill[b, B_OOC] = s3
        out_bill[b, B_WINDOW] = total - window_paid
        out_bill[b, B_NET] = total - all_paid
        out_bill[b, B_ADMNO] = admno
        out_bill[b, B_STATUS] = status
    return n_refused


@njit(cache=True, parallel=True, nogil=True)
def _settle_chunks(chunk_start, *args):
    """Settle independent chunks (each a run of whole households) in parallel; the number of
    bills refused."""
    n_refused = 0
    for c in prange(len(chunk_start) - 1):
        n_refused += _settle_range(chunk_start[c], chunk_start[c + 1], *args)
    return n_refused


def settle_arrays(
    args: tuple[np.ndarray | None, ...], n_bills: int, chunk_start: np.ndarray | None = None
) -> int:
    """Run the kernel over all bills: serially, or in parallel over household chunks. Returns
    the number of bills refused at the account limit (``out_bill[:, B_STATUS] != 0``), so that
    a caller finds none without a pass over ``out_bill``."""
    if chunk_start is None or len(chunk_start) <= 2:
        return int(_settle_range(0, n_bills, *args))
    return int(_settle_chunks(chunk_start, *args))
