"""Policy tables compiled to plain arrays: the only form of a policy the kernel sees.

Every parameter is stored per hospital level (a single number is repeated), -1 marks
"not given" for optional caps, tags and levels become bit masks (bit i = the table's i-th
declared tag or level). Layer ids are numbered across all tables of the batch ("slots"), so a
layer that continues into a new table version keeps its year-to-date account.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from engine.policy.kernelrows import row_tables
from engine.policy.model import BUCKETS, PolicyTable, by_level

KIND = {"reimburse": 0, "backstop": 1, "alert": 2}
NONE = -1
MAX_BITS = 62


@dataclass(frozen=True)
class CompiledPolicies:
    tables: tuple[PolicyTable, ...]
    layer_ids: tuple[str, ...]  # slot -> layer id
    b_ratio: np.ndarray  # [P]
    n_layers: np.ndarray  # [P]
    kind: np.ndarray  # [P, L]
    covers: np.ndarray  # [P, L] bit mask over BUCKETS
    after: np.ndarray  # [P, L] 1 = settle after discharge
    household: np.ndarray  # [P, L] 1 = household scope
    slot: np.ndarray  # [P, L] account slot of the layer id
    el_tags_any: np.ndarray  # [P, L] mask, 0 = everyone
    el_tags_none: np.ndarray  # [P, L]
    el_age_min: np.ndarray  # [P, L] -1 = none
    el_age_max: np.ndarray  # [P, L]
    el_levels: np.ndarray  # [P, L] mask, 0 = all
    n_variants: np.ndarray  # [P, L]
    w_tags_any: np.ndarray  # [P, L, V] mask, 0 = no condition
    w_levels: np.ndarray  # [P, L, V]
    ded_year: np.ndarray  # [P, L, V] 1 = yearly deductible
    ded: np.ndarray  # [P, L, V, Lv]
    ded_later: np.ndarray  # [P, L, V, Lv]
    tiers_year: np.ndarray  # [P, L, V]
    n_seg: np.ndarray  # [P, L, V]
    seg_upto: np.ndarray  # [P, L, V, K] (last is open: -1)
    seg_ratio: np.ndarray  # [P, L, V, K, Lv]
    adm_cap: np.ndarray  # [P, L, V, Lv] -1 = none
    ann_cap: np.ndarray  # [P, L, V, Lv]
    max_share: np.ndarray  # [P, L, V, Lv]
    ann_ceiling: np.ndarray  # [P, L, V, Lv]
    threshold: np.ndarray  # [P, L, V, Lv]
    #: [P, L] the layer's fund: index in ``fund_keys`` of (region code, fund code); every
    #: layer with that code in any table of the region draws on one balance (domain.md 12)
    fund: np.ndarray
    fund_keys: tuple[tuple[str, str], ...] = ()

    @property
    def n_slots(self) -> int:
        return len(self.layer_ids)

    @property
    def max_layers(self) -> int:
        return int(self.kind.shape[1])

    @cached_property
    def _kernel_args(self) -> tuple[np.ndarray, ...]:
        return (self.b_ratio, self.n_layers, *row_tables(self))

    def kernel_args(self) -> tuple[np.ndarray, ...]:
        """The arrays in the order the kernel takes them: ``b_ratio``, ``n_layers`` and the
        two row tables of ``engine.policy.kernelrows`` (built on the first call, then kept:
        a compiled policy is immutable)."""
        return self._kernel_args

    def fund_index(self) -> dict[tuple[str, str], int]:
        """(region code, fund code) -> its index in ``fund_keys``."""
        return {k: i for i, k in enumerate(self.fund_keys)}


def mask(names: tuple[str, ...] | list[str] | frozenset[str], order: tuple[str, ...]) -> int:
    m = 0
    for n in names:
        m |= 1 << order.index(n)
    return m


def compile_tables(tables: tuple[PolicyTable, ...] | list[PolicyTable]) -> CompiledPolicies:
    tables = tuple(tables)
    if not tables:
        raise ValueError("compile_tables needs at least one table")
    for t in tables:
        if len(t.tags) > MAX_BITS or len(t.hospital_levels) > MAX_BITS:
            raise ValueError(f"policy {t.label}: at most {MAX_BITS} tags and levels")
    P = len(tables)
    L = max(len(t.layers) for t in tables)
    V = max(len(layer.variants) for t in tables for layer in t.layers)
    K = max([len(v.segments or ()) for t in tables for la in t.layers for v in la.variants] + [1])
    Lv = max(len(t.hospital_levels) for t in tables)
    ids: list[str] = []
    funds: list[tuple[str, str]] = []
    for t in tables:
        for layer in t.layers:
            if layer.id not in ids:
                ids.append(layer.id)
            if (t.region.code, layer.fund_code) not in funds:
                funds.append((t.region.code, layer.fund_code))

    def z(*shape: int, fill: int = 0) -> np.ndarray:
        return np.full(shape, fill, dtype=np.int64)

    a = {
        name: z(P, L)
        for name in (
            "kind",
            "covers",
            "after",
            "household",
            "slot",
            "el_tags_any",
            "el_tags_none",
            "el_levels",
            "n_variants",
            "fund",
        )
    }
    a["el_age_min"], a["el_age_max"] = z(P, L, fill=NONE), z(P, L, fill=NONE)
    for name in ("w_tags_any", "w_levels", "ded_year", "tiers_year", "n_seg"):
        a[name] = z(P, L, V)
    for name in ("ded", "ded_later"):
        a[name] = z(P, L, V, Lv)
    for name in ("adm_cap", "ann_cap", "max_share", "ann_ceiling", "threshold"):
        a[name] = z(P, L, V, Lv, fill=NONE)
    a["seg_upto"] = z(P, L, V, K, fill=NONE)
    a["seg_ratio"] = z(P, L, V, K, Lv)

    for p, t in enumerate(tables):
        levels, tags = t.hospital_levels, t.tags
        for li, layer in enumerate(t.layers):
            e = layer.eligibility
            a["kind"][p, li] = KIND[layer.kind]
            a["covers"][p, li] = mask(layer.covers, BUCKETS)
            a["after"][p, li] = int(layer.settle_at == "after_discharge")
            a["household"][p, li] = int(layer.scope == "household")
            a["slot"][p, li] = ids.index(layer.id)
            a["fund"][p, li] = funds.index((t.region.code, layer.fund_code))
            a["el_tags_any"][p, li] = mask(e.tags_any, tags)
            a["el_tags_none"][p, li] = mask(e.tags_none, tags)
            a["el_levels"][p, li] = mask(e.levels, levels)
            a["el_age_min"][p, li] = NONE if e.age_min is None else e.age_min
            a["el_age_max"][p, li] = NONE if e.age_max is None else e.age_max
            a["n_variants"][p, li] = len(layer.variants)
            for vi, v in enumerate(layer.variants):
                if v.when is not None:
                    a["w_tags_any"][p, li, vi] = mask(v.when.tags_any, tags)
                    a["w_levels"][p, li, vi] = mask(v.when.levels, levels)
                a["tiers_year"][p, li, vi] = int(v.tiers_basis == "year")
                segs = v.segments or ()
                a["n_seg"][p, li, vi] = len(segs)
                for k, s in enumerate(segs):
                    a["seg_upto"][p, li, vi, k] = NONE if s.up_to is None else s.up_to
                d = v.deductible
                if d is not None:
                    a["ded_year"][p, li, vi] = int(d.basis == "year")
                for lv, level in enumerate(levels):
                    if d is not None:
                        a["ded"][p, li, vi, lv] = _at(d.amount, level)
                        later = d.amount if d.later_admissions is None else d.later_admissions
                        a["ded_later"][p, li, vi, lv] = _at(later, level)
                    for k, s in enumerate(segs):
                        a["seg_ratio"][p, li, vi, k, lv] = _at(s.ratio, level)
                    for name, value in (
                        ("adm_cap", v.admission_cap),
                        ("ann_cap", v.annual_cap),
                        ("max_share", v.max_share),
                        ("ann_ceiling", v.annual_ceiling),
                        ("threshold", v.threshold),
                    ):
                        if value is not None:
                            a[name][p, li, vi, lv] = _at(value, level)
    return CompiledPolicies(
        tables=tables, layer_ids=tuple(ids), fund_keys=tuple(funds),
        b_ratio=np.array([t.b_selfpay_ratio for t in tables], dtype=np.int64),
        n_layers=np.array([len(t.layers) for t in tables], dtype=np.int64), **a,
    )  # fmt: skip


def _at(value: int | dict[str, int], level: str) -> int:
    """A number-or-map at one level; a level the map leaves out (where the variant cannot
    apply, as the checks made sure) is stored as 0 and never read."""
    if isinstance(value, dict) and level not in value:
        return 0
    return by_level(value, level)
