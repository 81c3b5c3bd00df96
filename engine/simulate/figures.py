"""The figures of a simulation (adapters/simulate/FIGURES.md, schema ``onestop.simulate/1``).

Over the bills settled in both runs (joined by (hospital, bill id)): per fund and layer, the
patients who pay more or less (the measure is ``net_selfpay``: what the patient bears after
every fund, after-discharge claims included), the patient's share of the bill, breakdowns,
alerts and relief, budgets, and the changed bills with their reasons. Money is integer fen
(sums with int64 ``np.add.at``, never float weights); percentages are exact (``stats.pct``);
bills and persons are distinct counts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from engine.columnar.inputs import Coded, take
from engine.simulate import stats
from engine.simulate.columns import factorize, match, values
from engine.simulate.layers import BUCKETS_REASON, Groups, LayerRows, both, reasons
from engine.simulate.runs import AGE_BANDS, Attrs, LayerInfo, Run, age_band_index

SCHEMA = "onestop.simulate/1"
MEASURE = "net_selfpay"
#: the share threshold of the breakdowns' ``*_above_10`` (the Guangxi 10% rule)
BREAKDOWN_THRESHOLD = 10
NO_TAG = "(none)"


def sorted_codes(col: Any) -> tuple[np.ndarray, np.ndarray]:
    """(codes, labels) with the labels sorted."""
    codes, labels = factorize(col)
    order = np.argsort(labels.astype(str), kind="stable")
    rank = np.empty(len(order), np.int64)
    rank[order] = np.arange(len(order))
    return (rank[codes] if len(codes) else codes), labels[order]


def _sum_by(group: np.ndarray, v: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros(n, np.int64)
    np.add.at(out, group, v.astype(np.int64))
    return out


def _side(bills: int, persons: int, pay: int) -> dict[str, int]:
    return {"bills": int(bills), "persons": int(persons), "pay": int(pay)}


def _codes_at(col: Any, rows: np.ndarray) -> np.ndarray:
    """Integer codes of a column's values at ``rows`` (equal values, equal codes)."""
    if isinstance(col, Coded):
        codes, _ = factorize(col)
        return codes[rows]
    return factorize(np.asarray(col)[rows])[0]


class _Cmp:
    """The matched bills of both runs as aligned arrays."""

    def __init__(self, base: Run, cand: Run, attrs: Attrs | None):
        self.ia, self.ic = match(base.hospital, base.bill_id, cand.hospital, cand.bill_id)
        ia, ic = self.ia, self.ic
        self.n = n = len(ia)
        self.hospital_col = base.hospital
        self.hospital = values(base.hospital)[ia]
        self.bill_id = values(base.bill_id)[ia]
        self.person_id = values(base.person_id)[ia]
        self.region_code, self.region_labels = sorted_codes(values(base.region)[ia])
        self.person = _codes_at(base.person_id, ia)
        self.household = _codes_at(base.household_id, ia)
        self.total = {"base": np.asarray(base.total)[ia], "candidate": np.asarray(cand.total)[ic]}
        self.window = {
            "base": np.asarray(base.window_pay)[ia],
            "candidate": np.asarray(cand.window_pay)[ic],
        }
        self.net = {
            "base": np.asarray(base.net_selfpay)[ia],
            "candidate": np.asarray(cand.net_selfpay)[ic],
        }
        self.fund_pay = {k: self.total[k] - self.net[k] for k in self.total}
        self.change = self.net["candidate"] - self.net["base"]
        self.groups, rb, rc = both(base, cand, ia, ic, self.region_code, self.region_labels)
        self.rows: dict[str, LayerRows] = {"base": rb, "candidate": rc}
        self.attrs = attrs
        self.pos_of_base = np.full(len(base), -1, np.int64)
        self.pos_of_base[ia] = np.arange(n)

    def relief(self, which: str) -> int:
        return int(self.rows[which].relief.sum())


def _funds(c: _Cmp, info: Mapping[tuple[str, str], LayerInfo]) -> list[dict[str, Any]]:
    G = len(c.groups)
    per: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for k, r in c.rows.items():
        paid = (r.pay > 0) | (r.relief > 0)
        bills = np.bincount(r.group[paid], minlength=G)
        persons = stats.group_distinct(r.group[paid], c.person[r.pos[paid]], G)
        per[k] = (bills, persons, _sum_by(r.group, r.pay, G))
    out = []
    for g in range(G):
        region, lid = c.groups.region[g], c.groups.layer[g]
        li = info.get((region, lid), LayerInfo("", lid, lid, ""))
        b, a = per["base"], per["candidate"]
        out.append({
            "region": region, "fund_code": li.fund_code, "layer_id": lid,
            "layer_name": li.name, "layer_name_zh": li.name_zh, "kind": li.kind,
            "base": _side(b[0][g], b[1][g], b[2][g]),
            "candidate": _side(a[0][g], a[1][g], a[2][g]),
            "change": int(a[2][g] - b[2][g]), "change_pct": stats.pct(a[2][g] - b[2][g], b[2][g]),
        })  # fmt: skip
    return out


def _fund_totals(
    c: _Cmp, info: Mapping[tuple[str, str], LayerInfo], names: Mapping[str, tuple[str, str]]
) -> list[dict[str, Any]]:
    G = len(c.groups)
    code_of = [info.get((c.groups.region[g], c.groups.layer[g]), LayerInfo("", "", "", "")).fund_code
               for g in range(G)]  # fmt: skip
    codes = sorted(set(code_of))
    fi = np.array([codes.index(x) for x in code_of], dtype=np.int64)
    F = len(codes)
    per: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for k, r in c.rows.items():
        f = fi[r.group] if len(r.group) else np.zeros(0, np.int64)
        paid = (r.pay > 0) | (r.relief > 0)
        bills = stats.group_distinct(f[paid], r.pos[paid], F)  # a bill once per fund
        persons = stats.group_distinct(f[paid], c.person[r.pos[paid]], F)
        per[k] = (bills, persons, _sum_by(f, r.pay, F))
    out = []
    for j, code in enumerate(codes):
        layer_names = sorted({info[(c.groups.region[g], c.groups.layer[g])].name
                              for g in range(G) if code_of[g] == code
                              and (c.groups.region[g], c.groups.layer[g]) in info})  # fmt: skip
        layer_zh = sorted({info[(c.groups.region[g], c.groups.layer[g])].name_zh
                           for g in range(G) if code_of[g] == code
                           and (c.groups.region[g], c.groups.layer[g]) in info})  # fmt: skip
        name, name_zh = names.get(code, (" / ".join(layer_names), " / ".join(layer_zh)))
        b, a = per["base"], per["candidate"]
        out.append({
            "fund_code": code, "name": name, "name_zh": name_zh,
            "base": _side(b[0][j], b[1][j], b[2][j]),
            "candidate": _side(a[0][j], a[1][j], a[2][j]),
            "change": int(a[2][j] - b[2][j]), "change_pct": stats.pct(a[2][j] - b[2][j], b[2][j]),
        })  # fmt: skip
    return out


def _totals(c: _Cmp, which: str) -> dict[str, int]:
    return {
        "total": int(c.total[which].sum()), "fund_pay": int(c.fund_pay[which].sum()),
        "window_pay": int(c.window[which].sum()), "net_selfpay": int(c.net[which].sum()),
        "relief": c.relief(which),
    }  # fmt: skip


class _Reasons:
    def __init__(self, c: _Cmp, info: Mapping[tuple[str, str], LayerInfo]):
        p, i, texts = reasons(c.groups, c.rows["base"], c.rows["candidate"], c.n, info)
        self.texts = texts
        changed = c.change != 0
        keep = changed[p] if len(p) else np.zeros(0, bool)
        self.p, self.i = p[keep], i[keep]
        self.start = np.searchsorted(self.p, np.arange(c.n + 1))
        with_reason = np.zeros(c.n, bool)
        with_reason[self.p] = True
        self.fallback = changed & ~with_reason

    def of(self, pos: int) -> list[str]:
        ids = self.i[self.start[pos] : self.start[pos + 1]]
        if len(ids) == 0:
            return [BUCKETS_REASON] if self.fallback[pos] else []
        return [self.texts[k] for k in ids.tolist()]

    def counts(self) -> list[dict[str, Any]]:
        n = np.bincount(self.i, minlength=len(self.texts))
        rows = [{"reason": t, "bills": int(n[k])} for k, t in enumerate(self.texts) if n[k]]
        if self.fallback.any():
            rows.append({"reason": BUCKETS_REASON, "bills": int(self.fallback.sum())})
        return sorted(rows, key=lambda r: (-r["bills"], r["reason"]))


def _patients(c: _Cmp, why: _Reasons, largest: int) -> dict[str, Any]:
    d = c.change
    more, less = d > 0, d < 0

    def side(m: np.ndarray) -> dict[str, int]:
        return {"bills": int(m.sum()), "persons": stats.distinct(c.person[m]),
                "sum": int(d[m].sum())}  # fmt: skip

    def case(pos: int) -> dict[str, Any]:
        return {
            "hospital": str(c.hospital[pos]), "bill_id": str(c.bill_id[pos]),
            "person_id": str(c.person_id[pos]), "base": int(c.net["base"][pos]),
            "candidate": int(c.net["candidate"][pos]), "change": int(d[pos]),
            "reasons": why.of(pos),
        }  # fmt: skip

    order = np.lexsort((np.arange(c.n), -d))  # largest increase first, then settlement order
    top_more = [int(p) for p in order[: int(more.sum())][:largest]]
    order = np.lexsort((np.arange(c.n), d))
    top_less = [int(p) for p in order[: int(less.sum())][:largest]]
    changed = d[d != 0]
    return {
        "measure": MEASURE,
        "more": side(more),
        "less": side(less),
        "same": {"bills": int((d == 0).sum())},
        "change_histogram": stats.change_histogram(changed),
        "change_deciles": stats.deciles(changed),
        "largest_more": [case(p) for p in top_more],
        "largest_less": [case(p) for p in top_less],
    }


def _above(c: _Cmp, which: str, threshold: int) -> np.ndarray:
    t, net = c.total[which], c.net[which]
    return (t > 0) & (100 * net > threshold * t)


def _share(c: _Cmp, which: str, thresholds: Sequence[int]) -> dict[str, Any]:
    t, net = c.total[which], c.net[which]
    ok = t > 0  # a bill of 0 has no share
    above = []
    for th in thresholds:
        m = _above(c, which, th)
        above.append({"threshold_pct": str(th), "bills": int(m.sum()),
                      "persons": stats.distinct(c.person[m])})  # fmt: skip
    return {
        "deciles": stats.share_deciles(net[ok], t[ok]),
        "histogram": stats.share_histogram(net[ok], t[ok]),
        "above": above,
        "no_total_bills": int((~ok).sum()),
    }


def _breakdown(c: _Cmp, pos: np.ndarray, key: Any) -> list[dict[str, Any]]:
    """Rows per key of (matched bill position, key) pairs; a bill once per key."""
    codes, labels = sorted_codes(key)
    K = max(len(labels), 1)
    pairs = stats.uniq(pos.astype(np.int64) * K + codes) if len(pos) else np.zeros(0, np.int64)
    p, k = pairs // K, pairs % K
    d = c.change[p]
    ab_b = _above(c, "base", BREAKDOWN_THRESHOLD)[p]
    ab_c = _above(c, "candidate", BREAKDOWN_THRESHOLD)[p]
    bills = np.bincount(k, minlength=len(labels))
    persons = stats.group_distinct(k, c.person[p], len(labels))
    fb = _sum_by(k, c.fund_pay["base"][p], len(labels))
    fc = _sum_by(k, c.fund_pay["candidate"][p], len(labels))
    more = np.bincount(k[d > 0], minlength=len(labels))
    less = np.bincount(k[d < 0], minlength=len(labels))
    above_b = np.bincount(k[ab_b], minlength=len(labels))
    above_c = np.bincount(k[ab_c], minlength=len(labels))
    return [
        {"key": str(labels[j]), "bills": int(bills[j]), "persons": int(persons[j]),
         "base_fund_pay": int(fb[j]), "candidate_fund_pay": int(fc[j]),
         "change": int(fc[j] - fb[j]), "more": int(more[j]), "less": int(less[j]),
         "base_above_10": int(above_b[j]), "candidate_above_10": int(above_c[j])}
        for j in range(len(labels)) if bills[j]
    ]  # fmt: skip


def _breakdowns(c: _Cmp) -> dict[str, list[dict[str, Any]]]:
    every = np.arange(c.n, dtype=np.int64)
    out: dict[str, list[dict[str, Any]]] = {"tag": [], "hospital_level": [], "age_band": []}
    a = c.attrs
    if a is not None:
        tp = c.pos_of_base[np.asarray(a.tag_bill, dtype=np.int64)] if len(a.tag_bill) else every[:0]
        keep = tp >= 0
        tp, tags = tp[keep], np.asarray(a.tag, dtype=object)[keep]
        none = np.setdiff1d(every, tp)
        tag_pos = np.concatenate([tp, none])
        tag_key = np.concatenate([tags, np.full(len(none), NO_TAG, dtype=object)])
        out["tag"] = _breakdown(c, tag_pos, tag_key)
        out["hospital_level"] = _breakdown(c, every, take(a.hospital_level, c.ia))
        band = age_band_index(np.asarray(a.age)[c.ia])
        labels = np.array([x for _, x in AGE_BANDS], dtype=object)
        rows = {r["key"]: r for r in _breakdown(c, every, Coded(band, labels))}
        out["age_band"] = [rows[x] for x in labels.tolist() if x in rows]
    out["hospital"] = _breakdown(c, every, take(c.hospital_col, c.ia))
    return out


def _alerts(c: _Cmp, info: Mapping[tuple[str, str], LayerInfo]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    G = len(c.groups)
    per = {}
    for k, r in c.rows.items():
        m = r.alert
        out[k] = {
            "alerts": int(m.sum()), "households": stats.distinct(c.household[r.pos[m]]),
            "persons": stats.distinct(c.person[r.pos[m]]), "relief": int(r.relief.sum()),
        }  # fmt: skip
        per[k] = (np.bincount(r.group[m], minlength=G), _sum_by(r.group, r.relief, G))
    rows = []
    for g in range(G):
        region, lid = c.groups.region[g], c.groups.layer[g]
        kind = info.get((region, lid), LayerInfo("", "", "", "")).kind
        b, a = per["base"], per["candidate"]
        if kind != "alert" and not (b[0][g] or a[0][g] or b[1][g] or a[1][g]):
            continue
        rows.append({"region": region, "layer_id": lid,
                     "base_alerts": int(b[0][g]), "candidate_alerts": int(a[0][g]),
                     "base_relief": int(b[1][g]), "candidate_relief": int(a[1][g])})  # fmt: skip
    out["by_layer"] = rows
    return out


def budget_rows(
    base: Sequence[Mapping[str, Any]], cand: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """The ``budgets`` figures from both runs' fund rows (adapters/batch/funds.py columns):
    one row per fund-year that declares a budget; used = used before the run + paid in it;
    left = budget + carried in - used (negative when a report-mode budget is overspent)."""

    def key(r: Mapping[str, Any]) -> tuple[str, str, int]:
        return (str(r["region"]), str(r["fund_code"]), int(r["year"]))

    cb = {key(r): r for r in cand}
    out = []
    for r in base:
        if r.get("budget") is None:
            continue
        c = cb.get(key(r), {**r, "paid": 0, "bound_bills": 0})
        have = int(r["budget"]) + int(r.get("carried_in") or 0)
        bu = int(r["used_before"]) + int(r["paid"])
        cu = int(c["used_before"]) + int(c["paid"])
        out.append({
            "region": key(r)[0], "fund_code": key(r)[1], "year": key(r)[2],
            "budget": int(r["budget"]), "budget_mode": r.get("budget_mode"),
            "carried_in": int(r.get("carried_in") or 0),
            "base_used": bu, "candidate_used": cu, "base_left": have - bu,
            "candidate_left": have - cu, "base_bound_bills": int(r["bound_bills"]),
            "candidate_bound_bills": int(c["bound_bills"]),
        })  # fmt: skip
    return out


def _budgets_of(c: _Cmp, budgets: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The budget rows of the regions whose bills were compared, and any fund-year with money
    used (before the run or in it): another county's untouched budget is not part of this
    what-if (it set the budget chart's scale and hid the fund that was)."""
    regions = {str(r) for r in c.region_labels}
    return [
        dict(b)
        for b in budgets
        if str(b["region"]) in regions or b["base_used"] or b["candidate_used"]
    ]


CHANGED_COLUMNS = (
    "hospital", "bill_id", "person_id", "region", "base_window_pay", "candidate_window_pay",
    "base_net_selfpay", "candidate_net_selfpay", "change", "base_fund_pay",
    "candidate_fund_pay", "reasons",
)  # fmt: skip


def _changed(
    c: _Cmp, why: _Reasons, sample: int, file: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    pos = np.flatnonzero(c.change != 0)
    cols: dict[str, Any] = {
        "hospital": c.hospital[pos], "bill_id": c.bill_id[pos], "person_id": c.person_id[pos],
        "region": c.region_labels[c.region_code[pos]],
        "base_window_pay": c.window["base"][pos],
        "candidate_window_pay": c.window["candidate"][pos],
        "base_net_selfpay": c.net["base"][pos], "candidate_net_selfpay": c.net["candidate"][pos],
        "change": c.change[pos], "base_fund_pay": c.fund_pay["base"][pos],
        "candidate_fund_pay": c.fund_pay["candidate"][pos],
        "reasons": np.array(["; ".join(why.of(int(p))) for p in pos.tolist()], dtype=object),
    }  # fmt: skip
    order = pos[np.lexsort((pos, -np.abs(c.change[pos])))][:sample]
    rows = [{
        "hospital": str(c.hospital[p]), "bill_id": str(c.bill_id[p]),
        "person_id": str(c.person_id[p]),
        "base_window_pay": int(c.window["base"][p]),
        "candidate_window_pay": int(c.window["candidate"][p]),
        "base_net_selfpay": int(c.net["base"][p]),
        "candidate_net_selfpay": int(c.net["candidate"][p]),
        "change": int(c.change[p]), "reasons": why.of(int(p)),
    } for p in order.tolist()]  # fmt: skip
    fund_only = (c.change == 0) & (c.fund_pay["base"] != c.fund_pay["candidate"])
    doc = {"bills": len(pos), "file": file, "reasons": why.counts(), "sample": rows,
           "funds_only_bills": int(fund_only.sum())}  # fmt: skip
    return doc, cols


def figures(
    base: Run,
    cand: Run,
    *,
    layers: Mapping[tuple[str, str], LayerInfo],
    fund_names: Mapping[str, tuple[str, str]] | None = None,
    attrs: Attrs | None = None,
    budgets: Sequence[Mapping[str, Any]] = (),
    inputs: Mapping[str, Any] | None = None,
    title: str = "",
    generated_at: str = "",
    thresholds: Sequence[int] = (10, 20),
    largest: int = 20,
    sample: int = 50,
    changed_file: str = "changed.csv",
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the figures dict, the changed bills as columns: CHANGED_COLUMNS, every changed bill in
    the base run's order). ``layers``: (region, layer id) -> LayerInfo of both runs' tables
    (the candidate's wins); ``fund_names``: fund code -> (name, name_zh) of funds.yaml
    declarations (else the layers' names); ``budgets``: ``budget_rows`` output."""
    c = _Cmp(base, cand, attrs)
    why = _Reasons(c, layers)
    changed, cols = _changed(c, why, sample, changed_file)
    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "title": title,
        "generated_at": generated_at,
        "inputs": {
            **(inputs or {}),
            "bills_compared": c.n,
            "persons": stats.distinct(c.person),
            "rejected": {"base": int(base.rejected), "candidate": int(cand.rejected)},
            "unmatched": {"base": len(base) - c.n, "candidate": len(cand) - c.n},
        },
        "totals": {"base": _totals(c, "base"), "candidate": _totals(c, "candidate")},
        "funds": _funds(c, layers),
        "fund_totals": _fund_totals(c, layers, fund_names or {}),
        "patients": _patients(c, why, largest),
        "share": {k: _share(c, k, thresholds) for k in ("base", "candidate")},
        "breakdowns": _breakdowns(c),
        "alerts": _alerts(c, layers),
        "budgets": _budgets_of(c, budgets),
        "changed": changed,
    }
    return doc, cols


__all__ = ["CHANGED_COLUMNS", "MEASURE", "SCHEMA", "Groups", "budget_rows", "figures"]
