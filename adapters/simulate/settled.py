"""``onestop policy whatif``: a handful of JSON bills through the simulation's code.

The bills are settled with ``engine.engines.settle`` (as ``onestop settle``: ``auto`` takes the
plain reference for a handful of bills, so no numba is loaded; the same figures to the fen as the
kernel) under the base tables and under the candidate directory of ``overlay.build`` (each
candidate laid over its own region), from the same opening accounts and the base's hard budgets; the two runs become ``engine.simulate.Run``
arrays and the figures are ``engine.simulate.figures``: the same dict, the same terminal
summary and the same ``--json`` as ``onestop simulate``. No pyarrow: this is the base install.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from adapters.simulate import overlay as ov
from adapters.simulate.names import fund_names, layer_info
from engine.accounts import Opening
from engine.bill import Bill
from engine.engines import Engine, settle
from engine.funds import FundBook, load_funds
from engine.policy.load import load_policies
from engine.policy.policyset import PolicySet
from engine.result import Settlement
from engine.simulate import Attrs, Run, figures
from engine.simulate.figures import budget_rows


def run_of(settlements: Sequence[Settlement]) -> Run:
    """The settled bills as the comparison's arrays."""
    obj = lambda xs: np.array(list(xs), dtype=object)  # noqa: E731
    i64 = lambda xs: np.array(list(xs), dtype=np.int64)  # noqa: E731
    rows = [(k, r) for k, s in enumerate(settlements) for r in s.layers]
    return Run(
        hospital=obj(s.hospital for s in settlements), bill_id=obj(s.bill_id for s in settlements),
        person_id=obj(s.person_id for s in settlements),
        household_id=obj(s.household for s in settlements),
        region=obj(s.region for s in settlements),
        total=i64(s.buckets.total for s in settlements),
        window_pay=i64(s.window_pay for s in settlements),
        net_selfpay=i64(s.net_selfpay for s in settlements),
        l_bill=i64(k for k, _ in rows), l_layer=obj(r.layer_id for _, r in rows),
        l_pay=i64(r.pay for _, r in rows), l_relief=i64(r.relief for _, r in rows),
        l_alert=np.array([r.alert for _, r in rows], dtype=bool),
        l_cap=obj(r.cap for _, r in rows), l_reason=obj(r.reason for _, r in rows),
    )  # fmt: skip


def attrs_of(bills: Sequence[Bill]) -> Attrs:
    """Hospital level, age and tags at admission (the engine's day for both)."""
    pairs = [(k, t) for k, b in enumerate(bills)
             for t in sorted(b.person.tags_on(b.admission_date))]  # fmt: skip
    return Attrs(
        hospital_level=np.array([b.hospital_level for b in bills], dtype=object),
        age=np.array([b.person.age_on(b.admission_date) for b in bills], dtype=np.int64),
        tag_bill=np.array([k for k, _ in pairs], dtype=np.int64),
        tag=np.array([t for _, t in pairs], dtype=object),
    )


def fund_rows_of(
    settlements: Sequence[Settlement], book: FundBook, regions: Sequence[str]
) -> list[dict[str, Any]]:
    """The fund rows of adapters/batch/funds.py (``used_before`` 0) for these settlements."""
    paid: dict[tuple[str, str, int], dict[str, int]] = {}
    for s in settlements:
        for r in s.layers:
            if book.get(s.region, r.fund_code) is None:
                continue
            acc = paid.setdefault((s.region, r.fund_code, s.year), {"paid": 0, "bound_bills": 0})
            acc["paid"] += r.pay + r.relief
            acc["bound_bills"] += r.cap == "budget"
    rows = []
    for key in sorted({*paid, *((rg, c, y) for (rg, c), f in book.funds.items()
                                if rg in regions for y in f.years)}):  # fmt: skip
        fy = book.year(*key)
        got = paid.get(key, {"paid": 0, "bound_bills": 0})
        rows.append({"region": key[0], "fund_code": key[1], "year": key[2],
                     "budget": fy.budget if fy is not None else None,
                     "budget_mode": fy.budget_mode if fy is not None else "report",
                     "carried_in": fy.carried_in if fy is not None else 0, "used_before": 0,
                     "paid": got["paid"], "bound_bills": got["bound_bills"]})  # fmt: skip
    return rows


def whatif(
    bills: Sequence[Bill], base: Sequence[Path], candidates: Sequence[Path], as_if: bool,
    opening: Opening | None, title: str = "", engine: Engine = "auto",
) -> tuple[dict[str, Any], PolicySet, PolicySet]:  # fmt: skip
    """The figures of ``bills`` under ``base`` and under ``candidates`` laid over it.
    PolicyError (base or candidate tables: see ``tables``), OverlayUsage, InputError."""
    base_ps, book, cand_ps, lay = tables(base, candidates, as_if)
    budgets = book.opening_balances({})
    budgets = {k: v for k, v in budgets.items() if k[0] in base_ps.regions}
    a = settle(engine, bills, base_ps, opening, budgets).settlements
    b = settle(engine, bills, cand_ps, opening, budgets).settlements
    doc, _ = figures(
        run_of(a), run_of(b), layers=layer_info(base_ps, cand_ps),
        fund_names=fund_names(book, base_ps.regions), attrs=attrs_of(bills),
        budgets=budget_rows(fund_rows_of(a, book, base_ps.regions),
                            fund_rows_of(b, book, base_ps.regions)),
        inputs={"bills_file": None, "items_file": None,
                "policy_dir": ", ".join(str(p) for p in base),
                "candidate_files": [str(c) for c in candidates],
                "candidate_regions": list(lay.regions), "replaced_tables": list(lay.replaced),
                "as_if_effective": as_if, "bills": len(bills),
                "items": sum(len(x.items) for x in bills)},
        title=title or f"{', '.join(c.name for c in candidates)} on {len(bills)} bill(s)"
        + (" (as if effective)" if as_if else ""),
        generated_at=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        changed_file="",
    )  # fmt: skip
    return doc, base_ps, cand_ps


class TablesRefused(Exception):
    """The base or the candidate tables were refused: ``which`` says which."""

    def __init__(self, which: str, error: Exception):
        super().__init__(str(error))
        self.which, self.error = which, error


def tables(
    base: Sequence[Path], candidates: Sequence[Path], as_if: bool
) -> tuple[PolicySet, FundBook, PolicySet, ov.Overlay]:
    from engine.errors import OnestopError

    try:
        base_ps, book = load_policies(*base), load_funds(*base)
    except OnestopError as e:
        raise TablesRefused("base tables", e) from None
    with tempfile.TemporaryDirectory(prefix="onestop-whatif-") as tmp:
        try:
            lay = ov.build(base, candidates, as_if, Path(tmp) / "candidate")
            cand_ps = load_policies(lay.directory)
        except OnestopError as e:
            raise TablesRefused("candidate tables", e) from None
    return base_ps, book, cand_ps, lay
