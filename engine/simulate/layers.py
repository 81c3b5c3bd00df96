"""The two runs' layer rows, paired per bill and layer, and the reasons a bill changed.

The reasons are the slip's words (engine/explain.py): per layer whose figures differ, what
changed (pays more or less, a limit that binds now or no longer, applies now or no longer and
why, an alert raised or not, a layer only one table has).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from engine.explain import cap_words, why_words
from engine.simulate.columns import factorize, shared_codes
from engine.simulate.runs import LayerInfo, Run
from engine.simulate.stats import uniq

if TYPE_CHECKING:
    from numpy.typing import DTypeLike

#: a changed bill none of whose layers changed (the buckets did: the table prices it otherwise)
BUCKETS_REASON = "the candidate table splits the bill otherwise (in scope, first self-pay, over limit, out of catalogue)"


@dataclass(frozen=True)
class LayerRows:
    """One run's layer rows of the matched bills: ``pos`` (matched position of the bill),
    ``group`` (code of (region, layer id) in ``Groups``), pay, relief, alert, cap, reason."""

    pos: np.ndarray
    group: np.ndarray
    pay: np.ndarray
    relief: np.ndarray
    alert: np.ndarray
    cap: np.ndarray
    reason: np.ndarray


@dataclass(frozen=True)
class Groups:
    """The (region, layer id) pairs of both runs, sorted by region then layer id."""

    region: list[str]
    layer: list[str]

    def __len__(self) -> int:
        return len(self.region)


def layer_rows(
    run: Run, pos_of_bill: np.ndarray, region_code: np.ndarray, layer_code: np.ndarray,
    n_layers: int,
) -> tuple[np.ndarray, LayerRows]:  # fmt: skip
    """The rows of ``run`` whose bill is matched; their (region code * n_layers + layer code)."""
    pos = pos_of_bill[np.asarray(run.l_bill, dtype=np.int64)]
    keep = pos >= 0
    pos = pos[keep]
    key = region_code[pos] * n_layers + layer_code[keep]
    cap_c, cap_l = factorize(run.l_cap)
    rea_c, rea_l = factorize(run.l_reason)
    return key, LayerRows(
        pos, key, np.asarray(run.l_pay)[keep], np.asarray(run.l_relief)[keep],
        np.asarray(run.l_alert, dtype=bool)[keep], cap_l[cap_c[keep]] if len(cap_l) else
        np.zeros(0, object), rea_l[rea_c[keep]] if len(rea_l) else np.zeros(0, object),
    )  # fmt: skip


def both(
    base: Run, cand: Run, ia: np.ndarray, ic: np.ndarray, region: np.ndarray,
    region_labels: np.ndarray,
) -> tuple[Groups, LayerRows, LayerRows]:  # fmt: skip
    """The layer rows of both runs over the matched bills, with shared (region, layer) codes.
    ``region``: the code (into ``region_labels``) of each matched bill's region."""
    n = len(ia)
    pb = np.full(len(base), -1, np.int64)
    pb[ia] = np.arange(n)
    pc = np.full(len(cand), -1, np.int64)
    pc[ic] = np.arange(n)
    lb, lc, llabels = shared_codes(base.l_layer, cand.l_layer)
    NL = max(len(llabels), 1)
    kb, rb = layer_rows(base, pb, region, lb, NL)
    kc, rc = layer_rows(cand, pc, region, lc, NL)
    used = uniq(np.concatenate([kb, kc]))
    gb, gc = np.searchsorted(used, kb), np.searchsorted(used, kc)
    rb = LayerRows(rb.pos, gb, rb.pay, rb.relief, rb.alert, rb.cap, rb.reason)
    rc = LayerRows(rc.pos, gc, rc.pay, rc.relief, rc.alert, rc.cap, rc.reason)
    groups = Groups([str(region_labels[k // NL]) for k in used.tolist()],
                    [str(llabels[k % NL]) for k in used.tolist()])  # fmt: skip
    return groups, rb, rc


def label(info: Mapping[tuple[str, str], LayerInfo], region: str, layer: str) -> str:
    i = info.get((region, layer))
    return f"{i.name} ({i.fund_code})" if i else layer


def reasons(
    groups: Groups, rb: LayerRows, rc: LayerRows, n: int,
    info: Mapping[tuple[str, str], LayerInfo],
) -> tuple[np.ndarray, np.ndarray, list[str]]:  # fmt: skip
    """Per layer whose figures differ, why: (matched bill position, reason id) pairs sorted by
    position then layer, and the reason texts by id."""
    G = max(len(groups), 1)
    kb = rb.pos * G + rb.group
    kc = rc.pos * G + rc.group
    keys = uniq(np.concatenate([kb, kc]))
    ib, ic = np.searchsorted(keys, kb), np.searchsorted(keys, kc)
    m = len(keys)

    def spread(idx: np.ndarray, v: object, fill: object, dtype: DTypeLike) -> np.ndarray:
        out = np.full(m, fill, dtype=dtype)
        out[idx] = v
        return out

    has_b, has_c = spread(ib, True, False, bool), spread(ic, True, False, bool)
    pay_b, pay_c = spread(ib, rb.pay, 0, np.int64), spread(ic, rc.pay, 0, np.int64)
    rel_b, rel_c = spread(ib, rb.relief, 0, np.int64), spread(ic, rc.relief, 0, np.int64)
    al_b, al_c = spread(ib, rb.alert, False, bool), spread(ic, rc.alert, False, bool)
    cap_b, cap_c = spread(ib, rb.cap, "", object), spread(ic, rc.cap, "", object)
    why_b, why_c = spread(ib, rb.reason, "", object), spread(ic, rc.reason, "", object)
    both_ = has_b & has_c
    pos, grp = keys // G, keys % G
    texts: dict[str, int] = {}
    out_pos: list[np.ndarray] = []
    out_id: list[np.ndarray] = []

    def add(
        mask: np.ndarray, words: str, value: np.ndarray | None = None,
        say: Callable[[str], str] = str,
    ) -> None:  # fmt: skip
        """A reason for the rows of ``mask``: ``words``, with ``{}`` filled by ``say`` of the
        row's ``value`` (why a layer does not apply, which limit bound) when given."""
        rows = np.flatnonzero(mask)
        if not len(rows):
            return
        if value is None:
            vcode, vlab = np.zeros(len(rows), np.int64), np.array([""], dtype=object)
        else:
            vcode, vlab = factorize(value[rows])
        pair = grp[rows] * max(len(vlab), 1) + vcode
        upair, inv = np.unique(pair, return_inverse=True)
        ids = np.empty(len(upair), np.int64)
        for k, u in enumerate(upair.tolist()):  # one text per (layer, value): a few
            g, v = divmod(u, max(len(vlab), 1))
            w = words.format(say(str(vlab[v]))) if value is not None else words
            t = f"{label(info, groups.region[g], groups.layer[g])}: {w}"
            ids[k] = texts.setdefault(t, len(texts))
        out_pos.append(pos[rows])
        out_id.append(ids[inv.reshape(-1)])

    add(has_b & ~has_c, "not in the candidate table")
    add(has_c & ~has_b, "new in the candidate table")
    add(both_ & (pay_c > pay_b), "pays more")
    add(both_ & (pay_c < pay_b), "pays less")
    add(both_ & (rel_c > rel_b), "suggests more relief")
    add(both_ & (rel_c < rel_b), "suggests less relief")
    add(both_ & al_c & ~al_b, "now raises an alert")
    add(both_ & al_b & ~al_c, "no longer raises an alert")
    add(both_ & (why_b == "") & (why_c != ""), "does not apply now: {}", why_c, why_words)
    add(both_ & (why_b != "") & (why_c == ""), "applies now")
    add(both_ & (cap_c != cap_b) & (cap_c != ""), "now {}", cap_c, cap_words)
    add(both_ & (cap_c != cap_b) & (cap_c == "") & (cap_b != ""), "no longer {}", cap_b, cap_words)
    if out_pos:
        p, i = np.concatenate(out_pos), np.concatenate(out_id)
    else:
        p, i = np.zeros(0, np.int64), np.zeros(0, np.int64)
    order = np.lexsort((i, p))
    return p[order], i[order], list(texts)
