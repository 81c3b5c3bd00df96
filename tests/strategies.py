"""Hypothesis strategies: random but valid policy tables, bills and opening accounts.

Policy tables are built as plain dicts, validated by the pydantic model
(``PolicyTable.model_validate``) and must pass ``check_table`` with no problem: a strategy that
produced an inconsistent table would be a bug here, so it asserts. Bills are dicts parsed with
``parse_bill``. Sizes stay small (a dozen bills, a few items) so that thousands of examples run
in minutes; money values mix edge values (0, 1, the rounding half, 10^8) with random ones.

Every generator reads its choices from a ``Source``:

- ``fast=False`` (default): each choice is a Hypothesis draw, so failures shrink well. A draw
  costs Hypothesis ~40 us and an example makes a few hundred, ~12 ms per example.
- ``fast=True``: Hypothesis draws one 64-bit seed and the same generator reads its choices from
  ``random.Random(seed)`` (with the same edge-heavy distributions). About ten times cheaper per
  example, for the 10,000-example kernel == reference run; failures are reproducible (the seed
  is part of the example) but do not shrink.
"""

from __future__ import annotations

import builtins
import functools
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any, TypeVar

from hypothesis import strategies as st

from engine.accounts import LayerAccount, Opening, YearAccounts
from engine.bill import Bill, parse_bill
from engine.money import MAX_ACCOUNT
from engine.policy.checks import check_table
from engine.policy.model import BUCKETS, PolicyTable
from engine.policy.policyset import PolicySet

T = TypeVar("T")

LEVEL_POOL = ("township", "county", "city", "province")
HOSPITAL_POOL = ("H1", "H2", "450100001")  # NHSA fixmedins_code: letters and digits
TAG_POOL = ("registered_poor", "extreme_poverty", "subsistence", "low_income")
FUND_CODES = ("390100", "390200", "610100", "610200", "640100", "370200")
#: a small pool, so that several layers of a table often share a fund (and its budget)
SHARED_FUNDS = ("370200", "610100")
REGION = {"code": "450900", "name": "Yulin (test)"}
OTHER_REGION = {"code": "451400", "name": "Chongzuo (test)"}
OPEN_FROM = date(2019, 1, 1)
YEARS = (2020, 2021, 2022, 2023, 2024)
MAX_ITEM = 10**8  # fen per item in random bills (one million yuan)
SMALL = 2_000_000  # fen: deductibles, thresholds, ceilings

FEN_EDGES = (0, 1, 2, 4999, 5000, 5001, 9999, 10000, 99_999_999, 100_000_000)
BP_EDGES = (0, 1, 4999, 5000, 5001, 9999, 10000)
AGE_EDGES = (0, 6, 14, 18, 60, 65, 70)


# --------------------------------------------------------------------------- choice sources


@functools.cache
def _ints(lo: int, hi: int) -> st.SearchStrategy[int]:
    return st.integers(lo, hi)


@functools.cache
def _edged(edges: tuple[int, ...], lo: int, hi: int) -> st.SearchStrategy[int]:
    """One draw: an integer in [lo, hi], or (for the draws below ``lo``) one of ``edges``.
    Shrinks towards ``lo``."""
    inside = tuple(e for e in edges if lo <= e <= hi)
    return st.integers(lo - len(inside), hi).map(lambda v: v if v >= lo else inside[lo - 1 - v])


class Source:
    """Where a generator takes its choices from: Hypothesis draws (``draw`` given) or a seeded
    ``random.Random`` (``rnd`` given)."""

    def __init__(self, draw: Any = None, rnd: random.Random | None = None):
        self.draw, self.rnd = draw, rnd

    def int(self, lo: int, hi: int) -> int:
        if self.rnd is not None:
            return self.rnd.randint(lo, hi)
        return self.draw(_ints(lo, hi))

    def flag(self) -> bool:
        return self.int(0, 1) == 1

    def one_in(self, k: builtins.int) -> bool:
        return self.int(0, k - 1) == 0

    def choice(self, seq: Sequence[T]) -> T:
        return seq[self.int(0, len(seq) - 1)]

    def edged(
        self, edges: tuple[builtins.int, ...], lo: builtins.int, hi: builtins.int
    ) -> builtins.int:
        if self.rnd is None:
            return self.draw(_edged(edges, lo, hi))
        r = self.rnd.random()
        inside = [e for e in edges if lo <= e <= hi]
        if r < 0.25 and inside:
            return self.rnd.choice(inside)
        if r < 0.45:
            return self.rnd.randint(lo, min(hi, lo + 100_000))
        if r < 0.7 and hi > lo:  # log-uniform: every magnitude
            return lo + min(hi - lo, int(10 ** self.rnd.uniform(0, math.log10(hi - lo + 1))))
        return self.rnd.randint(lo, hi)

    def fen(self, hi: builtins.int = MAX_ITEM) -> builtins.int:
        """Non-negative fen up to ``hi``, edge values (0, 1, the rounding half, 10^8) often."""
        return self.edged(FEN_EDGES, 0, hi)

    def bp(self) -> builtins.int:
        """A ratio in basis points, edges (0, 1, 5000, 9999, 10000) often."""
        return self.edged(BP_EDGES, 0, 10_000)

    def subset(self, pool: Sequence[T], min_size: builtins.int = 0) -> list[T]:
        """A subset of ``pool`` in pool order (one choice: a bit mask)."""
        if not pool:
            return []
        m = self.int(0, 2 ** len(pool) - 1)
        out = [x for i, x in enumerate(pool) if (m >> i) & 1]
        return out if len(out) >= min_size else list(pool[:min_size])

    def permutation(self, items: Sequence[T]) -> list[T]:
        if self.rnd is not None:
            out = list(items)
            self.rnd.shuffle(out)
            return out
        return self.draw(st.permutations(list(items)))


def _source(draw: Any, fast: bool) -> Source:
    if fast:
        return Source(rnd=random.Random(draw(st.integers(0, 2**64 - 1))))
    return Source(draw=draw)


# --------------------------------------------------------------------------- policy tables


def _by_level(src: Source, value: Any, keys: list[str], levels: tuple[str, ...]) -> Any:
    """One number for all levels, or a map ``{level: value}`` covering at least ``keys`` (the
    levels where the variant can apply) and maybe other declared levels. ``value()`` draws one."""
    if not src.one_in(3):
        return value()
    extra = src.subset([lv for lv in levels if lv not in keys])
    chosen = [lv for lv in levels if lv in keys or lv in extra] or list(levels)
    return {lv: value() for lv in chosen}


def gen_segments(src: Source, keys: list[str], levels: tuple[str, ...]) -> list[dict[str, Any]]:
    """1-4 segments with strictly increasing ``up_to``; the last one open."""
    n = src.int(1, 4)
    bounds = sorted({src.fen(MAX_ITEM) or 1 for _ in range(n - 1)})
    segs: list[dict[str, Any]] = [
        {"up_to": b, "ratio": _by_level(src, src.bp, keys, levels)} for b in bounds
    ]
    segs.append({"ratio": _by_level(src, src.bp, keys, levels)})
    return segs


def _variant_params(src: Source, kind: str, keys: list[str], levels: tuple[str, ...]) -> dict:
    def small() -> int:
        return src.fen(SMALL)

    out: dict[str, Any] = {}
    if kind == "reimburse":
        if src.flag():
            basis = "year" if src.flag() else "admission"
            d: dict[str, Any] = {"basis": basis, "amount": _by_level(src, small, keys, levels)}
            if basis == "admission" and src.flag():
                d["later_admissions"] = _by_level(src, small, keys, levels)
            out["deductible"] = d
        out["segments"] = gen_segments(src, keys, levels)
        if src.flag():
            out["tiers_basis"] = "year" if src.flag() else "admission"
        if src.one_in(4):
            out["admission_cap"] = _by_level(src, src.fen, keys, levels)
        if src.one_in(3):
            out["annual_cap"] = _by_level(src, src.fen, keys, levels)
    elif kind == "backstop":
        which = src.choice(("max_share", "annual_ceiling", "both"))
        if which != "annual_ceiling":
            out["max_share"] = _by_level(src, src.bp, keys, levels)
        if which != "max_share":
            out["annual_ceiling"] = _by_level(src, small, keys, levels)
    else:
        out["threshold"] = _by_level(src, small, keys, levels)
        out["segments"] = gen_segments(src, keys, levels)
        if src.flag():
            out["annual_cap"] = _by_level(src, small, keys, levels)
    return out


def _age(src: Source) -> int | None:
    return None if src.one_in(3) else src.edged(AGE_EDGES, 0, 100)


def _eligibility(src: Source, levels: tuple[str, ...], tags: tuple[str, ...]) -> dict[str, Any]:
    if src.one_in(3):  # often everyone, so that layers apply
        return {}
    e: dict[str, Any] = {}
    if src.flag():
        e["tags_any"] = src.subset(tags)
    if src.flag():
        e["tags_none"] = src.subset(tags)
    lo, hi = _age(src), _age(src)
    if lo is not None and hi is not None and lo > hi:
        lo, hi = hi, lo
    if lo is not None:
        e["age_min"] = lo
    if hi is not None:
        e["age_max"] = hi
    if src.flag():
        e["levels"] = src.subset(levels)
    return e


def _layer(
    src: Source, lid: str, kind: str, after: bool, levels: tuple[str, ...], tags: tuple[str, ...],
    funds: tuple[str, ...] = FUND_CODES,
) -> dict[str, Any]:  # fmt: skip
    covers = src.subset(BUCKETS, min_size=1)
    if src.flag():  # the order given in the table does not matter
        covers.reverse()
    layer: dict[str, Any] = {
        "id": lid,
        "name": f"layer {lid}",
        "fund_code": src.choice(funds),
        "kind": kind,
        "covers": covers,
    }
    if after:
        layer["settle_at"] = "after_discharge"
    if kind == "alert" and src.flag():
        layer["scope"] = "household"
    elig = _eligibility(src, levels, tags)
    if elig:
        layer["eligibility"] = elig
    layer_levels = elig.get("levels") or list(levels)
    n = src.int(1, 3)
    variants: list[dict[str, Any]] = []
    seen: set[tuple[str, ...]] = set()
    for j in range(n):
        last = j == n - 1
        v: dict[str, Any] = {"label": f"{lid}.v{len(variants)}"}
        applies = layer_levels
        # Only the last variant may be a fallback (no 'when', or an empty one: it matches
        # every bill); the others have distinct non-empty conditions (the checks refuse a
        # variant that can never be chosen).
        if not last or src.flag():
            when = {"tags_any": src.subset(tags), "levels": src.subset(levels)}
            key = (*when["tags_any"], "|", *when["levels"])
            if key in seen or (key == ("|",) and not last):
                continue
            seen.add(key)
            v["when"] = when
            if when["levels"]:
                applies = [lv for lv in layer_levels if lv in when["levels"]]
        v.update(_variant_params(src, kind, applies, levels))
        variants.append(v)
    if not variants:
        variants.append({"label": f"{lid}.v0", **_variant_params(src, kind, layer_levels, levels)})
    layer["variants"] = variants
    return layer


def gen_policy(
    src: Source,
    levels: tuple[str, ...] | None = None,
    tags: tuple[str, ...] | None = None,
    effective_from: date = OPEN_FROM,
    effective_to: date | None = None,
    max_layers: int = 6,
    funds: tuple[str, ...] = FUND_CODES,
) -> dict[str, Any]:
    """A valid policy table as a dict: 1-4 levels, 0-4 tags, 1-6 layers in a legal order
    (window paying layers, then after-discharge paying layers, then alerts)."""
    if levels is None:
        levels = tuple(src.subset(LEVEL_POOL, min_size=1))
    if tags is None:
        tags = tuple(src.subset(TAG_POOL))
    n = src.int(1, max_layers)
    n_alert = src.int(0, min(2, n))
    n_paying = n - n_alert
    n_after = src.int(0, n_paying)
    kinds = ["backstop" if src.one_in(3) else "reimburse" for _ in range(n_paying)]
    kinds += ["alert"] * n_alert
    layers = [
        _layer(src, f"L{i}", k, n_paying - n_after <= i < n_paying, levels, tags, funds)
        for i, k in enumerate(kinds)
    ]
    d: dict[str, Any] = {
        "region": dict(REGION),
        "effective_from": effective_from,
        "hospital_levels": list(levels),
        "tags": list(tags),
        "b_selfpay_ratio": src.bp(),
        "layers": layers,
    }
    if effective_to is not None:
        d["effective_to"] = effective_to
    return d


def build_table(data: dict[str, Any]) -> PolicyTable:
    """A table from a dict; it must be sound (no problem from ``check_table``)."""
    table = PolicyTable.model_validate(data)
    problems = check_table(table)
    assert not problems, problems
    return table


def _share_ids(src: Source, first: dict[str, Any], second: dict[str, Any]) -> None:
    """Rename layers of ``second`` to continue layers of ``first``, mostly of the same kind and
    scope (a policy change mid-year that keeps some layers); the others get fresh ids."""
    pool = [(la["kind"], la.get("scope", "person"), la["id"]) for la in first["layers"]]
    for i, la in enumerate(second["layers"]):
        same = [p for p in pool if p[:2] == (la["kind"], la.get("scope", "person"))]
        if pool and src.one_in(8):  # rarely, an id that changes kind or scope: odd but legal
            same = pool
        if same and not src.one_in(4):
            chosen = same[0]
            pool.remove(chosen)
            la["id"] = chosen[2]
        else:
            la["id"] = f"M{i}"
        for v in la["variants"]:
            v["label"] = f"{la['id']}.{v['label'].rsplit('.', 1)[-1]}"


def _declared_again(src: Source, names: list[str], pool: tuple[str, ...]) -> tuple[str, ...]:
    """The same names in another order, maybe with more from ``pool``: a later table (or
    another region) that declares what the bills use, with other bit positions in the kernel."""
    more = [x for x in src.subset(pool) if x not in names]
    return tuple(src.permutation([*names, *more]))


def gen_policy_set(
    src: Source, allow_change: bool = True, max_layers: int = 6,
    funds: tuple[str, ...] = FUND_CODES,
) -> PolicySet:  # fmt: skip
    """One open-ended table from 2019-01-01; or (a policy change) two consecutive tables of one
    region, the second continuing some layer ids of the first; sometimes also a second region.
    Every table declares the first table's levels and tags (perhaps in another order, perhaps
    more), so a bill valid for one is valid for all."""
    first = gen_policy(src, max_layers=max_layers, funds=funds)
    tables = [first]
    if allow_change and src.one_in(4):
        change = date(YEARS[0], 1, 2) + timedelta(days=src.int(0, 365 * len(YEARS) - 2))
        first["effective_to"] = change - timedelta(days=1)
        second = gen_policy(
            src,
            levels=_declared_again(src, first["hospital_levels"], LEVEL_POOL),
            tags=_declared_again(src, first["tags"], TAG_POOL),
            effective_from=change,
            max_layers=max_layers,
            funds=funds,
        )
        _share_ids(src, first, second)
        tables.append(second)
    if allow_change and src.one_in(6):
        other = gen_policy(
            src,
            levels=_declared_again(src, first["hospital_levels"], LEVEL_POOL),
            tags=_declared_again(src, first["tags"], TAG_POOL),
            max_layers=max_layers,
            funds=funds,
        )
        other["region"] = dict(OTHER_REGION)
        _share_ids(src, first, other)
        tables.append(other)
    return PolicySet.of([build_table(t) for t in tables])


# --------------------------------------------------------------------------- bills


def _in_year(src: Source, year: int, birthday: tuple[int, int]) -> date:
    """An admission date in ``year``: near the birthday (age edges), at the year's ends, or
    anywhere."""
    how = src.int(0, 3)
    if how == 0:
        day = date(year, *birthday) + timedelta(days=src.int(-1, 1))
        return day if day.year == year else date(year, *birthday)
    if how == 1:
        return src.choice((date(year, 1, 1), date(year, 12, 20), date(year, 12, 31)))
    return date(year, 1, 1) + timedelta(days=src.int(0, 364))


def _item(src: Source) -> dict[str, Any]:
    shape = src.int(0, 23)  # category, how the price cap is given, own B ratio or not
    cat, how, own_ratio = "ABC"[shape % 3], shape // 3 % 4, shape >= 12
    amount = src.fen()
    it: dict[str, Any] = {"code": f"X{cat}", "category": cat, "amount": amount}
    if how == 1:  # a cap near the amount: one unit, cap = amount - 1, amount, amount + 1
        it["qty_e4"] = 10000
        it["unit_price_cap"] = max(0, amount + src.int(-1, 1))
    elif how == 2:  # any cap and quantity
        it["qty_e4"] = src.edged((0, 1, 5000, 10000, 25000), 0, 10**6)
        it["unit_price_cap"] = src.fen(SMALL)
    if cat == "B" and own_ratio:
        it["selfpay_ratio"] = src.bp()
    return it


def _tag_spans(src: Source, tags: tuple[str, ...], days: list[date]) -> list[Any]:
    """Some of the declared tags, each plain or with a validity range that may start or end
    right at (or next to) an admission date, so that it sometimes does not count."""
    near = [d + timedelta(days=k) for d in days for k in (-1, 0, 1)]

    def day() -> date | None:
        how = src.int(0, 2)
        if how == 0:
            return None
        if how == 1:
            return src.choice(near)
        return date(YEARS[0] - 1, 1, 1) + timedelta(days=src.int(0, 366 * 7))

    out: list[Any] = []
    for tag in src.subset(tags):
        if src.flag():
            out.append(tag)
            continue
        lo, hi = day(), day()
        if lo is not None and hi is not None and hi < lo:
            lo, hi = hi, lo
        span: dict[str, Any] = {"tag": tag}
        if lo is not None:
            span["valid_from"] = lo
        if hi is not None:
            span["valid_to"] = hi
        out.append(span)
    return out


def _age_limits(policies: PolicySet) -> list[int]:
    out = set(AGE_EDGES)
    for t in policies.tables:
        for la in t.layers:
            for a in (la.eligibility.age_min, la.eligibility.age_max):
                if a is not None:
                    out.update((max(0, a - 1), a, a + 1))
    return sorted(out)


def gen_bills(
    src: Source,
    policies: PolicySet,
    max_bills: int = 12,
    max_items: int = 8,
    years: tuple[int, ...] | None = None,
) -> list[Bill]:
    """Bills for ``policies``: up to 4 households of up to 3 persons, a few bills each, over one
    or two accounting years, in random order. Bill ids are unique, a person always has one
    household, ages fall around the layers' age limits, tags are sometimes not valid on the
    admission date."""
    first = policies.tables[0]
    levels, tags = first.hospital_levels, first.tags
    if years is None:
        y = src.choice(YEARS[:-1])
        years = (y, y + 1) if src.flag() else (y,)
    n_bills = src.int(1, max_bills)
    n_households = src.int(1, min(4, n_bills))
    n_persons = src.int(n_households, min(n_bills, 3 * n_households))
    ages = _age_limits(policies)
    birthdays = [(src.int(1, 12), src.int(1, 28)) for _ in range(n_persons)]
    # every person has a bill
    owners = [i if i < n_persons else src.int(0, n_persons - 1) for i in range(n_bills)]
    ids = src.permutation(range(n_bills))
    regions = policies.regions
    region = first.region.code if src.flag() or len(regions) > 1 else None
    raw = []
    for i, owner in enumerate(owners):
        admission = _in_year(src, src.choice(years), birthdays[owner])
        stay = src.int(0, 40) if src.flag() else 0
        discharge = admission + timedelta(days=stay)
        if discharge.year > years[-1]:
            discharge = admission
        raw.append((i, owner, admission, discharge))
    out: list[Bill] = []
    for p in range(n_persons):
        mine = [r for r in raw if r[1] == p]
        anchor = min(r[2] for r in mine)
        age = src.choice(ages) if src.flag() else src.int(0, 100)
        bm, bd = birthdays[p]
        birth = date(anchor.year - age, bm, bd)
        if birth > anchor:  # born at most on the first admission day: ages are never negative
            birth = date(anchor.year - age - 1, bm, bd)
        person: dict[str, Any] = {
            "id": f"p{p}",
            "birth_date": birth,
            "household": f"h{p % n_households}",
        }
        spans = _tag_spans(src, tags, [r[2] for r in mine])
        if spans:
            person["tags"] = spans
        for i, _, admission, discharge in mine:
            bill: dict[str, Any] = {
                "id": f"B{ids[i]:02d}",
                "hospital": src.choice(HOSPITAL_POOL),
                "person": person,
                "hospital_level": src.choice(levels),
                "admission_date": admission,
                "discharge_date": discharge,
                "items": [_item(src) for _ in range(src.int(1, max_items))],
            }
            if region is not None:  # with two regions, each bill names one
                bill["region"] = src.choice(regions) if len(regions) > 1 else region
            out.append(parse_bill(bill))
    return src.permutation(out)


#: Amounts above which x * ratio leaves int64, for ratios of 10000, 9999 and 9500 bp (a
#: ratio below 9224 bp cannot get there with accounts within MAX_ACCOUNT).
WRAPS = (2**63 // 10_000, 2**63 // 9_999, 2**63 // 9_500)


def gen_opening(
    src: Source, policies: PolicySet, bills: list[Bill], near_limit: bool = False
) -> Opening:
    """Random opening accounts for some of the person-years and household-years of ``bills``
    (and one that no bill touches, which must be carried over to the closing accounts).
    ``near_limit``: every key has accounts and each field given is at most 10^9 fen under
    MAX_ACCOUNT (or under one of WRAPS), so that a few bills reach the account limit."""
    ids = sorted({la.id for t in policies.tables for la in t.layers})

    def value() -> int:
        if not near_limit:
            return src.fen(3_000_000)
        return src.choice((MAX_ACCOUNT, *WRAPS)) - src.edged(FEN_EDGES, 0, 10**9)

    def account() -> LayerAccount:
        given = src.int(0, 15)  # which of the four fields are not zero
        return LayerAccount(*(value() if given >> k & 1 else 0 for k in range(4)))

    person: dict[tuple[str, int], YearAccounts] = {}
    household: dict[tuple[str, int], YearAccounts] = {}
    for key in [*sorted({(b.person.id, b.year) for b in bills}), ("nobody", 2020)]:
        if near_limit or src.flag():
            layers = {lid: account() for lid in src.subset(ids)}
            person[key] = YearAccounts(layers, src.int(0, 3))
    for key in sorted({(b.person.household, b.year) for b in bills}):
        if near_limit or src.flag():
            household[key] = YearAccounts({lid: account() for lid in src.subset(ids)})
    return Opening(person, household)


def gen_budgets(
    src: Source, policies: PolicySet, bills: list[Bill]
) -> dict[tuple[str, str, int], int]:
    """Opening balances of hard budgets (domain.md section 12) for the funds and years of
    ``bills``: each absent, 0, tiny (a few yuan), any (edge values) or large; and one for a
    fund-year no bill draws on (carried over unchanged)."""
    funds = sorted({(t.region.code, la.fund_code) for t in policies.tables for la in t.layers})
    years = sorted({b.year for b in bills})
    out: dict[tuple[str, str, int], int] = {}
    for region, code in funds:
        for year in years:
            how = src.int(0, 4)
            if how == 1:
                out[(region, code, year)] = 0
            elif how == 2:
                out[(region, code, year)] = src.int(1, 500)
            elif how == 3:
                out[(region, code, year)] = src.fen()
            elif how == 4:
                out[(region, code, year)] = 10**12
    out[(REGION["code"], "999999", YEARS[0])] = src.fen()
    return out


# --------------------------------------------------------------------------- strategies


@dataclass(frozen=True)
class Batch:
    policies: PolicySet
    bills: list[Bill]
    opening: Opening | None
    seed: int | None = None  # fast mode: ``gen_batch(Source(rnd=random.Random(seed)))`` again
    #: opening balances of hard budgets, (region, fund code, year) -> fen (``budgets=True``)
    budgets: dict[tuple[str, str, int], int] | None = None

    def __repr__(self) -> str:  # the seed first: the rest can be long
        return (
            f"Batch(seed={self.seed}, policies={self.policies!r}, bills={self.bills!r}, "
            f"opening={self.opening!r}, budgets={self.budgets!r})"
        )


def gen_batch(
    src: Source,
    max_bills: int = 12,
    max_items: int = 8,
    opening: bool | None = None,
    allow_change: bool = True,
    near_limit: bool = False,
    budgets: bool = False,
) -> Batch:
    """A policy set, bills for it and opening accounts (``opening`` None: sometimes; True:
    always; False: never; ``near_limit``: always, close to the account limit). ``budgets``:
    layers drawn from two fund codes (often shared) and random hard budgets for them."""
    ps = gen_policy_set(src, allow_change=allow_change,
                        funds=SHARED_FUNDS if budgets else FUND_CODES)  # fmt: skip
    bills = gen_bills(src, ps, max_bills=max_bills, max_items=max_items)
    want = near_limit or (src.flag() if opening is None else opening)
    op = gen_opening(src, ps, bills, near_limit) if want else None
    return Batch(ps, bills, op, budgets=gen_budgets(src, ps, bills) if budgets else None)


@st.composite
def policy_dicts(draw: Any, fast: bool = False, **kw: Any) -> dict[str, Any]:
    """A valid policy table as a dict (keywords: see ``gen_policy``)."""
    return gen_policy(_source(draw, fast), **kw)


@st.composite
def policy_tables(draw: Any, fast: bool = False, **kw: Any) -> PolicyTable:
    """A valid ``PolicyTable``, built by the model and passing ``check_table``."""
    return build_table(gen_policy(_source(draw, fast), **kw))


@st.composite
def policy_sets(draw: Any, fast: bool = False, **kw: Any) -> PolicySet:
    """One table; or two consecutive tables of one region (a policy change); maybe a second
    region."""
    return gen_policy_set(_source(draw, fast), **kw)


@st.composite
def bill_lists(draw: Any, policies: PolicySet, fast: bool = False, **kw: Any) -> list[Bill]:
    """Bills for ``policies`` (keywords: see ``gen_bills``)."""
    return gen_bills(_source(draw, fast), policies, **kw)


@st.composite
def batches(
    draw: Any,
    fast: bool = False,
    max_bills: int = 12,
    max_items: int = 8,
    opening: bool | None = None,
    allow_change: bool = True,
    near_limit: bool = False,
    budgets: bool = False,
    seed_xor: int = 0,
) -> Batch:
    """A ``Batch`` (see ``gen_batch``); with ``fast`` it carries the seed that rebuilds it:
    ``gen_batch(Source(rnd=random.Random(seed)), ...)`` with the same keywords. ``seed_xor``
    (fast only) is XORed into the drawn seed: tests that split one property's examples use
    different values so that they draw disjoint seeds (Hypothesis favours 0, 1, 2**64 - 1 and
    other small or boundary values, which every split would otherwise try again)."""
    # gen_batch's keywords
    kw: dict[str, Any] = {"max_bills": max_bills, "max_items": max_items, "opening": opening,
                          "allow_change": allow_change, "near_limit": near_limit,
                          "budgets": budgets}  # fmt: skip
    if not fast:
        return gen_batch(Source(draw=draw), **kw)
    seed = draw(st.integers(0, 2**64 - 1)) ^ seed_xor
    return replace(gen_batch(Source(rnd=random.Random(seed)), **kw), seed=seed)
