"""How the figures name layers and funds: from the policy tables and the funds.yaml files."""

from __future__ import annotations

from collections.abc import Iterable

from engine.funds import FundBook
from engine.policy.policyset import PolicySet
from engine.simulate import LayerInfo


def layer_info(*sets: PolicySet) -> dict[tuple[str, str], LayerInfo]:
    """(region, layer id) -> LayerInfo of the tables (later sets win: the candidate's)."""
    out: dict[tuple[str, str], LayerInfo] = {}
    for ps in sets:
        for t in ps.tables:
            for la in t.layers:
                out[(t.region.code, la.id)] = LayerInfo(la.fund_code, la.name,
                                                         la.name_zh or la.name, la.kind)  # fmt: skip
    return out


def fund_names(book: FundBook, regions: Iterable[str]) -> dict[str, tuple[str, str]]:
    """fund code -> (name, name_zh) of the funds.yaml declarations (one name per code)."""
    out: dict[str, tuple[str, str]] = {}
    for (region, code), f in sorted(book.funds.items()):
        if region in set(regions):
            out.setdefault(code, (f.name, f.name_zh or f.name))
    return out
