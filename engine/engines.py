"""Which engine settles a batch: the plain reference for a few bills, the kernel for many.

Both give the same settlements to the fen (the property tests and the golden cases hold them
equal); they differ in what they cost. The numba kernel (``engine.batch``) costs a fixed price
in every process that uses it, before its first bill: importing numpy and numba and setting
up numba's type system and the cached kernel (about 1.2 s of CPU on the 2-core machine of
benchmarks/README.md), then a little less per item than the reference (~2 us of CPU, from
Bill objects to Settlements). The plain reference (``engine.plainbatch``) imports neither. ``auto`` picks the reference below
``KERNEL_FROM_ITEMS`` items in the batch (measured: benchmarks/README.md, "Which engine
settles"), the kernel from there on.

``ONESTOP_ENGINE`` (``auto``, ``kernel`` or ``reference``) or ``onestop settle --engine``
forces one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

from engine.accounts import Opening
from engine.bill import Bill
from engine.plainbatch import BatchResult, FundYearKey, reference_batch
from engine.policy.policyset import PolicySet

Engine = Literal["auto", "kernel", "reference"]
ENGINES: tuple[Engine, ...] = ("auto", "kernel", "reference")
#: the environment variable that forces an engine (as ``onestop settle --engine``)
ENV = "ONESTOP_ENGINE"
#: ``auto``: the kernel from this many items in a batch (all bills together), the reference
#: below: where the kernel's fixed cost in a fresh process (~1.2 s of CPU) is paid back by its
#: lower cost per item (~2 us of CPU less than the reference's, Bill objects to Settlements,
#: bills of 40 items), measured by benchmarks/engine_pick.py (benchmarks/README.md, "Which
#: engine settles": 0.4-1 M items).
KERNEL_FROM_ITEMS = 500_000


def pick(engine: Engine, bills: Sequence[Bill]) -> Literal["kernel", "reference"]:
    """The engine that settles ``bills``: ``engine`` unless it is ``auto``."""
    if engine != "auto":
        return engine
    return "kernel" if sum(len(b.items) for b in bills) >= KERNEL_FROM_ITEMS else "reference"


def settle(
    engine: Engine,
    bills: Sequence[Bill],
    policies: PolicySet,
    opening: Opening | None = None,
    budgets: Mapping[FundYearKey, int] | None = None,
    allocate_items: bool = False,
) -> BatchResult:
    """``bills`` settled by the engine ``pick`` names (the kernel imported only then)."""
    if pick(engine, bills) == "reference":
        return reference_batch(bills, policies, opening, budgets, allocate_items)
    from engine.batch import settle_batch

    return settle_batch(bills, policies, opening, budgets=budgets, allocate_items=allocate_items)
