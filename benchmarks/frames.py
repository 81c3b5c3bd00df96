"""The settlement rules done the way an analyst would with pandas or polars: vectorized per
layer, year-to-date accounts as grouped cumulative sums.

Both start from the kernel's prepared inputs (item columns, and per bill: level, tag mask, age,
person-year and household-year group), so the comparison is of the settling itself.

What they implement (for one policy table): the four buckets (3.1), eligibility and variants,
``reimburse`` (admission or yearly deductible, later-admission deductible, tiers per admission
or per year, admission and annual caps), ``backstop`` (max share, annual ceiling), ``alert``
(threshold, tiers, annual cap on the relief, person or household scope), the fixed order of
taking pays from the buckets, window and net shares. They compute pays and reliefs, not the
reason codes, caps hit or account figures.

Where they are not exact: a running account is written as a capped cumulative sum
(``paid = min(cumsum(pay), cap)``), which is the sequential rule only when the cap (or the
yearly deductible) is the same for all bills of the person-year. When a person's tag changes
within a year so that a layer switches variant with a different cap or yearly deductible, the
vectorized form can differ from the sequential rule; ``switching_groups`` finds those
person-years so the check can tell them apart.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.batch import KernelBatch

BUCKET_NAMES = ("in_scope", "pre_selfpay", "over_limit", "out_of_catalogue")


class _Params:
    """Per-bill parameters of one layer, gathered from the compiled policy (plain lookups)."""

    def __init__(self, kb: KernelBatch, li: int) -> None:
        c = kb.compiled
        p = 0
        tags, lv, age = kb.b_tags, kb.b_level, kb.b_age
        lbit = np.left_shift(1, lv)
        why = np.zeros(kb.n_bills, dtype=bool)
        if c.el_tags_any[p, li]:
            why |= (c.el_tags_any[p, li] & tags) == 0
        why |= (c.el_tags_none[p, li] & tags) != 0
        if c.el_age_min[p, li] >= 0:
            why |= age < c.el_age_min[p, li]
        if c.el_age_max[p, li] >= 0:
            why |= age > c.el_age_max[p, li]
        if c.el_levels[p, li]:
            why |= (c.el_levels[p, li] & lbit) == 0
        vi = np.full(kb.n_bills, -1, dtype=np.int64)
        for variant in range(int(c.n_variants[p, li]) - 1, -1, -1):
            ok = np.ones(kb.n_bills, dtype=bool)
            if c.w_tags_any[p, li, variant]:
                ok &= (c.w_tags_any[p, li, variant] & tags) != 0
            if c.w_levels[p, li, variant]:
                ok &= (c.w_levels[p, li, variant] & lbit) != 0
            vi[ok] = variant
        self.applied = ~why & (vi >= 0)
        self.vi = vi
        v = np.maximum(vi, 0)

        def at(a: np.ndarray) -> np.ndarray:
            return a[p, li, v, lv]

        self.kind = int(c.kind[p, li])
        self.covers = [k for k in range(4) if (int(c.covers[p, li]) >> k) & 1]
        self.after = bool(c.after[p, li])
        self.household = bool(c.household[p, li])
        self.ded_year = c.ded_year[p, li, v] == 1
        self.ded, self.ded_later = at(c.ded), at(c.ded_later)
        self.tiers_year = c.tiers_year[p, li, v] == 1
        self.n_seg = c.n_seg[p, li, v]
        K = c.seg_upto.shape[3]
        self.upto = [c.seg_upto[p, li, v, k] for k in range(K)]
        self.ratio = [c.seg_ratio[p, li, v, k, lv] for k in range(K)]
        self.adm_cap, self.ann_cap = at(c.adm_cap), at(c.ann_cap)
        self.max_share, self.ceiling = at(c.max_share), at(c.ann_ceiling)
        self.threshold = at(c.threshold)


def switching_groups(kb: KernelBatch) -> np.ndarray:
    """Per bill: True if its person-year (or household-year, for household layers) has bills
    that use different variants of some layer (then a capped cumulative sum may differ)."""
    c = kb.compiled
    out = np.zeros(kb.n_bills, dtype=bool)
    for li in range(int(c.n_layers[0])):
        pr = _Params(kb, li)
        g = kb.b_hslot if pr.household else kb.b_pslot
        code = np.where(pr.applied, pr.vi, -1)
        lo = np.full(g.max() + 1 if len(g) else 0, 1 << 30)
        hi = np.full_like(lo, -(1 << 30))
        np.minimum.at(lo, g, code)
        np.maximum.at(hi, g, code)
        out |= (lo != hi)[g]
    return out


# --------------------------------------------------------------------------- pandas


def settle_pandas(kb: KernelBatch, item_bill: np.ndarray) -> dict[str, np.ndarray]:
    import pandas as pd

    c = kb.compiled
    S = pd.Series
    it = pd.DataFrame({
        "bill": item_bill, "cat": kb.cat, "qty": kb.qty.astype(np.int64),
        "amount": kb.amount.astype(np.int64), "cap": kb.price_cap.astype(np.int64),
        "ratio": kb.sp_ratio.astype(np.int64),
    })  # fmt: skip
    notc = it.cat != 3
    cap_total = (it.cap * it.qty + 5000) // 10000
    over = (it.amount - cap_total).clip(lower=0).where((it.cap >= 0) & notc, 0)
    rest = (it.amount - over).where(notc, 0)
    r = it.ratio.where(it.ratio >= 0, int(c.b_ratio[0]))
    pre = ((rest * r + 5000) // 10000).where(it.cat == 2, 0)
    parts = pd.DataFrame({
        "in_scope": rest - pre, "pre_selfpay": pre, "over_limit": over,
        "out_of_catalogue": it.amount.where(~notc, 0), "bill": it.bill,
    })  # fmt: skip
    bk = parts.groupby("bill", sort=True).sum()
    orig = [bk[name].reset_index(drop=True) for name in BUCKET_NAMES]
    rem = [o.copy() for o in orig]
    total = orig[0] + orig[1] + orig[2] + orig[3]
    bills = pd.DataFrame({"p": kb.b_pslot, "h": kb.b_hslot})
    admno = bills.groupby("p").cumcount() + 1
    window_paid = S(np.zeros(kb.n_bills, dtype=np.int64))
    all_paid = window_paid.copy()
    out: dict[str, np.ndarray] = {}

    def gcum(x: Any, g: str) -> Any:
        return x.groupby(bills[g]).cumsum()

    def capped(x: Any, cap: Any, g: str) -> Any:
        """What the sequential rule lets through of x under a running cap (cap < 0: none)."""
        cum = gcum(x, g)
        through = cum.clip(upper=cap) - (cum - x).clip(upper=cap)
        return through.where(cap >= 0, x)

    def tiered(x: Any, pr: _Params) -> Any:
        tot = S(np.zeros(kb.n_bills, dtype=np.int64))
        lo = S(np.zeros(kb.n_bills, dtype=np.int64))
        for k in range(len(pr.upto)):
            active = S(k < pr.n_seg)
            up = S(pr.upto[k])
            hi = up.where(up >= 0, x.clip(lower=lo))
            ov = (x.clip(upper=hi) - lo).clip(lower=0)
            tot = tot + (ov * S(pr.ratio[k])).where(active, 0)
            lo = hi.where(active, lo)
        return (tot + 5000) // 10000

    for li in range(int(c.n_layers[0])):
        pr = _Params(kb, li)
        g = "h" if pr.household else "p"
        applied = S(pr.applied)
        base = sum((rem[k] for k in pr.covers), S(np.zeros(kb.n_bills, dtype=np.int64)))
        base = base.where(applied, 0)
        relief = S(np.zeros(kb.n_bills, dtype=np.int64))
        if pr.kind == 0:
            dy = S(pr.ded_year)
            d_adm = S(pr.ded_later).where(admno >= 2, S(pr.ded))
            ded = base.clip(upper=d_adm).where(~dy, capped(base.where(dy, 0), S(pr.ded), g))
            eligible = base - ded
            ty = S(pr.tiers_year)
            start = (gcum(eligible.where(ty, 0), g) - eligible).where(ty, 0)
            pay = tiered(start + eligible, pr) - tiered(start, pr)
            ac = S(pr.adm_cap)
            pay = pay.where((ac < 0) | (pay <= ac), ac)
            pay = capped(pay.where(applied, 0), S(pr.ann_cap), g).clip(lower=0)
        elif pr.kind == 1:
            covered_total = sum((orig[k] for k in pr.covers), S(np.zeros(kb.n_bills, np.int64)))
            ms = S(pr.max_share)
            share = (covered_total * ms + 5000) // 10000
            allowed = base.where((ms < 0) | (base <= share), share)
            allowed = capped(allowed.where(applied, 0), S(pr.ceiling), g)
            pay = base - allowed
        else:
            th = S(pr.threshold)
            before = gcum(base, g) - base
            x1 = (before + base - th).clip(lower=0)
            x0 = (before - th).clip(lower=0)
            relief = capped((tiered(x1, pr) - tiered(x0, pr)).where(applied, 0),
                            S(pr.ann_cap), g).clip(lower=0)  # fmt: skip
            pay = S(np.zeros(kb.n_bills, dtype=np.int64))
        pay = pay.where(applied, 0)
        left = pay
        for k in pr.covers:
            used = left.clip(upper=rem[k])
            rem[k] = rem[k] - used
            left = left - used
        all_paid = all_paid + pay
        if not pr.after:
            window_paid = window_paid + pay
        out[f"pay_{li}"] = pay.to_numpy()
        out[f"relief_{li}"] = relief.to_numpy()
    for name, o in zip(BUCKET_NAMES, orig, strict=True):
        out[name] = o.to_numpy()
    out["total"] = total.to_numpy()
    out["window_pay"] = (total - window_paid).to_numpy()
    out["net_selfpay"] = (total - all_paid).to_numpy()
    return out


# --------------------------------------------------------------------------- polars


def settle_polars(kb: KernelBatch, item_bill: np.ndarray) -> dict[str, np.ndarray]:
    import polars as pl

    c = kb.compiled
    col, lit, when = pl.col, pl.lit, pl.when
    it = pl.DataFrame({
        "bill": item_bill, "cat": kb.cat, "qty": kb.qty.astype(np.int64),
        "amount": kb.amount.astype(np.int64), "cap": kb.price_cap.astype(np.int64),
        "ratio": kb.sp_ratio.astype(np.int64),
    })  # fmt: skip
    notc = col("cat") != 3
    over = (
        when((col("cap") >= 0) & notc)
        .then((col("amount") - (col("cap") * col("qty") + 5000) // 10000).clip(lower_bound=0))
        .otherwise(0)
    )
    it = it.with_columns(over=over)
    it = it.with_columns(rest=when(notc).then(col("amount") - col("over")).otherwise(0))
    r = when(col("ratio") >= 0).then(col("ratio")).otherwise(int(c.b_ratio[0]))
    it = it.with_columns(pre=when(col("cat") == 2).then((col("rest") * r + 5000) // 10000)
                         .otherwise(0))  # fmt: skip
    bk = (
        it.lazy()
        .group_by("bill")
        .agg(
            in_scope=(col("rest") - col("pre")).sum(),
            pre_selfpay=col("pre").sum(),
            over_limit=col("over").sum(),
            out_of_catalogue=when(~notc).then(col("amount")).otherwise(0).sum(),
        )
        .sort("bill")
        .collect()
    )
    n = kb.n_bills
    df = bk.with_columns(p=pl.Series(kb.b_pslot), h=pl.Series(kb.b_hslot))
    df = df.with_columns(
        total=col("in_scope") + col("pre_selfpay") + col("over_limit") + col("out_of_catalogue"),
        admno=pl.int_range(pl.len()).over("p") + 1,
        r0=col("in_scope"), r1=col("pre_selfpay"), r2=col("over_limit"),
        r3=col("out_of_catalogue"), window_paid=lit(0, pl.Int64), all_paid=lit(0, pl.Int64),
    )  # fmt: skip
    orig = ["in_scope", "pre_selfpay", "over_limit", "out_of_catalogue"]

    def capped(x: pl.Expr, cap: pl.Expr, g: str) -> pl.Expr:
        cum = x.cum_sum().over(g)
        through = cum.clip(upper_bound=cap) - (cum - x).clip(upper_bound=cap)
        return when(cap >= 0).then(through).otherwise(x)

    def tiered(x: pl.Expr, K: int) -> pl.Expr:
        tot: pl.Expr = lit(0, pl.Int64)
        lo: pl.Expr = lit(0, pl.Int64)
        for k in range(K):
            active = col("nseg") > k
            hi = when(col(f"up{k}") >= 0).then(col(f"up{k}")).otherwise(pl.max_horizontal(x, lo))
            ov = (pl.min_horizontal(x, hi) - lo).clip(lower_bound=0)
            tot = tot + when(active).then(ov * col(f"ra{k}")).otherwise(0)
            lo = when(active).then(hi).otherwise(lo)
        return (tot + 5000) // 10000

    out: dict[str, np.ndarray] = {}
    for li in range(int(c.n_layers[0])):
        pr = _Params(kb, li)
        g = "h" if pr.household else "p"
        K = len(pr.upto)
        df = df.with_columns(
            applied=pl.Series(pr.applied), nseg=pl.Series(pr.n_seg),
            dy=pl.Series(pr.ded_year), ded=pl.Series(pr.ded), dl=pl.Series(pr.ded_later),
            ty=pl.Series(pr.tiers_year), ac=pl.Series(pr.adm_cap), an=pl.Series(pr.ann_cap),
            ms=pl.Series(pr.max_share), ce=pl.Series(pr.ceiling), th=pl.Series(pr.threshold),
            **{f"up{k}": pl.Series(pr.upto[k]) for k in range(K)},
            **{f"ra{k}": pl.Series(pr.ratio[k]) for k in range(K)},
        )  # fmt: skip
        base = pl.sum_horizontal([col(f"r{k}") for k in pr.covers])
        df = df.with_columns(base=when(col("applied")).then(base).otherwise(0))
        b = col("base")
        if pr.kind == 0:
            d_adm = when(col("admno") >= 2).then(col("dl")).otherwise(col("ded"))
            df = df.with_columns(
                dd=when(col("dy"))
                .then(capped(when(col("dy")).then(b).otherwise(0), col("ded"), g))
                .otherwise(pl.min_horizontal(b, d_adm))
            )
            df = df.with_columns(el=b - col("dd"))
            df = df.with_columns(
                start=when(col("ty"))
                .then(when(col("ty")).then(col("el")).otherwise(0).cum_sum().over(g) - col("el"))
                .otherwise(0)
            )
            df = df.with_columns(pay=tiered(col("start") + col("el"), K) - tiered(col("start"), K))
            df = df.with_columns(
                pay=when((col("ac") >= 0) & (col("pay") > col("ac")))
                .then(col("ac"))
                .otherwise(col("pay"))
            )
            df = df.with_columns(
                pay=capped(when(col("applied")).then(col("pay")).otherwise(0), col("an"), g).clip(
                    lower_bound=0
                ),
                relief=lit(0, pl.Int64),
            )
        elif pr.kind == 1:
            covered = pl.sum_horizontal([col(orig[k]) for k in pr.covers])
            share = (covered * col("ms") + 5000) // 10000
            allowed = when((col("ms") >= 0) & (b > share)).then(share).otherwise(b)
            df = df.with_columns(
                allowed=capped(when(col("applied")).then(allowed).otherwise(0), col("ce"), g)
            )
            df = df.with_columns(pay=b - col("allowed"), relief=lit(0, pl.Int64))
        else:
            before = b.cum_sum().over(g) - b
            df = df.with_columns(
                x1=(before + b - col("th")).clip(lower_bound=0),
                x0=(before - col("th")).clip(lower_bound=0),
            )
            rel = tiered(col("x1"), K) - tiered(col("x0"), K)
            df = df.with_columns(
                relief=capped(when(col("applied")).then(rel).otherwise(0), col("an"), g).clip(
                    lower_bound=0
                ),
                pay=lit(0, pl.Int64),
            )
        df = df.with_columns(pay=when(col("applied")).then(col("pay")).otherwise(0))
        df = df.with_columns(left=col("pay"))
        for k in pr.covers:
            df = df.with_columns(used=pl.min_horizontal(col("left"), col(f"r{k}")))
            df = df.with_columns(
                **{f"r{k}": col(f"r{k}") - col("used")}, left=col("left") - col("used")
            )
        df = df.with_columns(
            all_paid=col("all_paid") + col("pay"),
            window_paid=col("window_paid") + (lit(0) if pr.after else col("pay")),
        )
        out[f"pay_{li}"] = df["pay"].to_numpy()
        out[f"relief_{li}"] = df["relief"].to_numpy()
    for name in orig:
        out[name] = df[name].to_numpy()
    out["total"] = df["total"].to_numpy()
    out["window_pay"] = (df["total"] - df["window_paid"]).to_numpy()
    out["net_selfpay"] = (df["total"] - df["all_paid"]).to_numpy()
    assert len(out["total"]) == n
    return out


def kernel_view(kb: KernelBatch) -> dict[str, np.ndarray]:
    """The kernel's results in the same shape, for the check."""
    from engine import kernel as K

    ob, ol = kb.out_bill, kb.out_layer
    out = {
        "total": ob[:, K.B_TOTAL], "in_scope": ob[:, K.B_IN_SCOPE],
        "pre_selfpay": ob[:, K.B_PRE], "over_limit": ob[:, K.B_OVER],
        "out_of_catalogue": ob[:, K.B_OOC], "window_pay": ob[:, K.B_WINDOW],
        "net_selfpay": ob[:, K.B_NET],
    }  # fmt: skip
    for li in range(int(kb.compiled.n_layers[0])):
        out[f"pay_{li}"] = ol[:, li, K.F_PAY]
        out[f"relief_{li}"] = ol[:, li, K.F_RELIEF]
    return out


def check(kb: KernelBatch, got: dict[str, np.ndarray]) -> dict[str, Any]:
    """Which columns differ from the kernel, on how many bills, and whether every difference
    sits in a person-year with a variant switch."""
    want = kernel_view(kb)
    switch = switching_groups(kb)
    diff = np.zeros(kb.n_bills, dtype=bool)
    cols = {}
    for k, w in want.items():
        d = got[k] != w
        cols[k] = int(d.sum())
        diff |= d
    return {
        "bills_differing": int(diff.sum()),
        "outside_switching_person_years": int((diff & ~switch).sum()),
        "bills_in_switching_person_years": int(switch.sum()),
        "columns": cols,
    }
