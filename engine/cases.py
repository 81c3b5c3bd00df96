"""Test cases bureaus write (OpenFisca style): bills, a policy, and the figures expected.

A ``Case`` is parsed from a case file by ``engine.casefile``; ``run_case`` settles its bills
with the reference, the kernel or both, from its opening accounts and budgets, and compares
every expected figure with what each engine got. Pure: no files, no printing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from engine.accounts import Opening
from engine.batch import FundYearKey, reference_batch, settle_batch
from engine.bill import Bill
from engine.errors import OnestopError, PolicyError, PolicyProblem
from engine.explain import Line, explain, layer_line
from engine.policy.policyset import PolicySet
from engine.result import LayerResult, Settlement

ENGINES = ("reference", "kernel")

#: expected figures of a whole bill: money fields (fen) read from the settlement
BILL_MONEY = ("window_pay", "net_selfpay", "funds_total")
BUCKETS = ("total", "in_scope", "pre_selfpay", "over_limit", "out_of_catalogue")
#: expected figures of a layer: money fields, and the others with their kind
LAYER_MONEY = ("pay", "base", "deductible", "eligible", "relief")
LAYER_OTHER = {"cap": "text", "reason": "text", "applied": "flag", "alert": "flag"}


class CaseFileError(PolicyError):
    """A case file is malformed: every problem names the file, the line and the field."""

    def __init__(self, problems: list[PolicyProblem]):
        super().__init__(problems)


@dataclass(frozen=True)
class Check:
    """One expected figure of one bill. ``field`` is the name printed: ``window_pay``,
    ``funds.390100``, ``layers.basic.pay``, ``alerts``; ``kind`` is money (fen), count, text
    or flag; ``line`` is where the case file states it."""

    bill: str
    field: str
    kind: str
    expected: int | str | bool
    line: int | None = None

    @property
    def layer(self) -> str | None:
        return self.field.split(".")[1] if self.field.startswith("layers.") else None

    @property
    def fund(self) -> str | None:
        return self.field.split(".", 1)[1] if self.field.startswith("funds.") else None


@dataclass(frozen=True)
class Case:
    file: str
    line: int | None
    name: str
    policies: PolicySet
    bills: tuple[Bill, ...]
    opening: Opening
    budgets: dict[str, int]  # fund code -> opening balance of its hard budget (fen)
    checks: tuple[Check, ...]

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


@dataclass(frozen=True)
class Mismatch:
    """An expected figure an engine did not get; ``engines`` lists the engines that got
    ``got`` (the reference and the kernel agreeing is one mismatch)."""

    check: Check
    got: int | str | bool | None
    engines: tuple[str, ...]
    explanation: tuple[Line, ...] = ()

    @property
    def difference(self) -> int | None:
        """got - expected, in fen, for money and counts."""
        if self.check.kind in ("money", "count") and isinstance(self.got, int):
            return self.got - int(self.check.expected)
        return None


@dataclass(frozen=True)
class CaseResult:
    case: Case
    engines: tuple[str, ...]
    mismatches: tuple[Mismatch, ...] = ()
    #: why the engines refused the case's bills (a case input problem, not a failed figure)
    problems: tuple[str, ...] = field(default=())

    @property
    def status(self) -> str:
        return "error" if self.problems else "fail" if self.mismatches else "pass"


def budgets_for(case: Case) -> dict[FundYearKey, int]:
    """The case's budgets as (region, fund code, year) keys: every region and year its bills
    are settled in."""
    if not case.budgets:
        return {}
    out: dict[FundYearKey, int] = {}
    for b in case.bills:
        region = case.policies.table_for(b.region, b.discharge_date).region.code
        for code, balance in case.budgets.items():
            out[(region, code, b.year)] = balance
    return out


def settle_case(case: Case, engine: str) -> list[Settlement]:
    run = settle_batch if engine == "kernel" else reference_batch
    return run(list(case.bills), case.policies, case.opening, budgets=budgets_for(case)).settlements


def got_value(s: Settlement, check: Check) -> int | str | bool | None:
    """The figure of ``s`` that ``check`` names (None: the layer is not in the settlement)."""
    f = check.field
    if f in BUCKETS:
        return int(getattr(s.buckets, f))
    if f in BILL_MONEY:
        return int(getattr(s, f))
    if f == "alerts":
        return len(s.alerts)
    if f == "admission_no":
        return s.admission_no
    if check.fund is not None:
        return sum(r.pay for r in s.layers if r.fund_code == check.fund)
    layer = _layer(s, check.layer)
    if layer is None:
        return None
    attr = f.rsplit(".", 1)[1]
    value = layer.applied if attr == "applied" else getattr(layer, attr)
    return value if isinstance(value, bool | str) else int(value)


def _layer(s: Settlement, layer_id: str | None) -> LayerResult | None:
    return next((r for r in s.layers if r.layer_id == layer_id), None)


def explanation(s: Settlement, check: Check, policies: PolicySet) -> tuple[Line, ...]:
    """The lines of engine/explain.py behind a figure: the layer's line (every layer of the
    fund, the alert layers for ``alerts``), the buckets line or the patient's line."""
    table = policies.table_for(s.region, s.discharge_date)
    if check.layer is not None:
        r = _layer(s, check.layer)
        return (layer_line(r, table),) if r is not None else ()
    if check.fund is not None:
        return tuple(layer_line(r, table) for r in s.layers if r.fund_code == check.fund)
    if check.field == "alerts":
        return tuple(layer_line(r, table) for r in s.layers if r.kind == "alert")
    lines = explain(s, table)
    return (lines[0],) if check.field in BUCKETS or check.field == "admission_no" else (lines[-1],)


def _conservation(s: Settlement) -> Check | None:
    parts = s.funds_total + s.net_selfpay
    if parts == s.buckets.total:
        return None
    return Check(s.bill_id, "conservation (funds_total + net_selfpay)", "money", s.buckets.total)


def run_case(case: Case, engines: Sequence[str] = ENGINES) -> CaseResult:
    """Settle the case with each engine and compare every check; one mismatch per (check,
    figure got), naming the engines that got it."""
    found: dict[tuple[Check, object], tuple[int | str | bool | None, list[str], tuple[Line, ...]]]
    found = {}
    problems: list[str] = []
    for engine in engines:
        try:
            settled = settle_case(case, engine)
        except OnestopError as e:
            for p in getattr(e, "problems", [e]):
                if f"{p}" not in problems:
                    problems.append(f"{p}")
            continue
        by_id = {s.bill_id: s for s in settled}
        pairs: list[tuple[Check, int | str | bool | None, Settlement]] = []
        for s in settled:
            broken = _conservation(s)
            if broken is not None:
                pairs.append((broken, s.funds_total + s.net_selfpay, s))
        for check in case.checks:
            s = by_id[check.bill]
            got = got_value(s, check)
            if got != check.expected or type(got) is not type(check.expected):
                pairs.append((check, got, s))
        for check, got, s in pairs:
            key = (check, (type(got).__name__, got))
            if key not in found:
                found[key] = (got, [], explanation(s, check, case.policies))
            found[key][1].append(engine)
    mismatches = tuple(
        Mismatch(check, got, tuple(engs), lines) for (check, _), (got, engs, lines) in found.items()
    )
    return CaseResult(case, tuple(engines), mismatches, tuple(problems))
