"""Reconciliation totals (domain.md section 14; NHSA 3201 totals, 3202 detail). Pure.

A hospital advances the window funds and settles with each fund every month, so both sides
must agree on the totals of a range of settlement dates. Here:

- ``entries``: the +1 / -1 contributions of a range. A settlement's date, and a reversal's,
  is the calendar date of its commit time in Asia/Shanghai (UTC+8, no daylight saving), not a
  date of the bill. A settlement dated in the range counts +1 with its figures; a reversal
  dated in the range counts -1 with the figures of the settlement it reverses (a reversal of an
  earlier month's settlement shows in the month of the reversal; a settlement reversed within
  the range nets to 0).
- ``totals``: count (fixmedins_setl_cnt), ``total`` (medfee_sumamt), pay per window fund code
  (layers sharing a code added; a code absent means 0), window funds total (fund_pay_sumamt =
  ``total - window_pay``), ``window_pay`` (psn_cash_pay). After-discharge funds apart, per fund
  code, at the settlement's figures: the hospital does not advance them.
- ``compare``: the engine's totals against the hospital's own (3201): "match", or exactly the
  totals that differ, each with the entries behind it (3202 detail).
- ``compare_list``: the hospital's own list of settlements (3202 file: setl_id, amounts,
  refd_setl_flag) against the entries: missing on either side, or with a different amount.
- ``daily``: per day, hospital and fund code, for the bureau's monthly settlement.

Money is integer fen throughout.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Literal

#: Asia/Shanghai: UTC+8 all year (China has had no daylight saving since 1991).
SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")

#: The names of the compared totals (NHSA 3201 input fields); a window fund's total is
#: FUND_PREFIX + its fund code, e.g. "fund:390100".
COUNT = "fixmedins_setl_cnt"
MEDFEE = "medfee_sumamt"
FUND_PAY = "fund_pay_sumamt"
CASH = "psn_cash_pay"
FUND_PREFIX = "fund:"
AMOUNTS = (MEDFEE, FUND_PAY, CASH)

WINDOW = "window"
AFTER_DISCHARGE = "after_discharge"


def local_date(t: datetime) -> date:
    """The Asia/Shanghai calendar date of a moment (a naive datetime is taken to be UTC)."""
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.astimezone(SHANGHAI).date()


def utc_bounds(start: date, end: date) -> tuple[datetime, datetime]:
    """[from, to) in UTC of the Shanghai dates start..end inclusive: start 00:00 +08:00 up to
    the day after end, 00:00 +08:00 (16:00 UTC of the day before each)."""
    a = datetime.combine(start, time(0), SHANGHAI).astimezone(UTC)
    b = datetime.combine(end + timedelta(days=1), time(0), SHANGHAI).astimezone(UTC)
    return a, b


@dataclass(frozen=True)
class Fact:
    """What reconciliation needs of one stored settlement."""

    settlement_id: str
    hospital: str
    committed_at: datetime  # commit time (UTC)
    reversed_at: datetime | None  # the reversal's commit time, None when not reversed
    total: int  # medfee_sumamt
    window_pay: int  # psn_cash_pay
    layers: tuple[tuple[str, str, int], ...]  # (fund_code, settle_at, pay) per layer
    region: str = ""


def _funds(layers: Iterable[tuple[str, str, int]], settle_at: str, sign: int) -> dict[str, int]:
    out: dict[str, int] = {}
    for code, at, pay in layers:
        if at == settle_at and pay:
            out[code] = out.get(code, 0) + sign * pay
    return dict(sorted(out.items()))


@dataclass(frozen=True)
class Entry:
    """One contribution to the totals (a 3202 detail row): a settlement (+1) or a reversal
    (-1), with its figures signed as they count."""

    settlement_id: str
    hospital: str
    reversal: bool  # NHSA refd_setl_flag
    day: date  # Asia/Shanghai date of the commit (settlement) or of the reversal
    at: datetime  # the commit or reversal time (UTC)
    medfee_sumamt: int
    fund_pay_sumamt: int
    psn_cash_pay: int
    funds: Mapping[str, int]  # window funds per code
    after_discharge: Mapping[str, int]  # after-discharge funds per code

    @property
    def sign(self) -> int:
        return -1 if self.reversal else 1

    @property
    def key(self) -> tuple[str, bool]:
        return (self.settlement_id, self.reversal)

    def amount(self, name: str) -> int:
        """The entry's figure for a total's name (COUNT: its sign)."""
        if name == COUNT:
            return self.sign
        if name.startswith(FUND_PREFIX):
            return self.funds.get(name[len(FUND_PREFIX) :], 0)
        return int(getattr(self, name))


def entry(f: Fact, reversal: bool) -> Entry:
    sign = -1 if reversal else 1
    at = f.reversed_at if reversal else f.committed_at
    assert at is not None
    return Entry(
        settlement_id=f.settlement_id,
        hospital=f.hospital,
        reversal=reversal,
        day=local_date(at),
        at=at,
        medfee_sumamt=sign * f.total,
        fund_pay_sumamt=sign * (f.total - f.window_pay),
        psn_cash_pay=sign * f.window_pay,
        funds=_funds(f.layers, WINDOW, sign),
        after_discharge=_funds(f.layers, AFTER_DISCHARGE, sign),
    )


def entries(facts: Iterable[Fact], start: date, end: date) -> list[Entry]:
    """The settlements and reversals dated start..end (inclusive, Asia/Shanghai), in time
    order (at, settlement id, settlement before reversal)."""
    out = []
    for f in facts:
        if start <= local_date(f.committed_at) <= end:
            out.append(entry(f, False))
        if f.reversed_at is not None and start <= local_date(f.reversed_at) <= end:
            out.append(entry(f, True))
    out.sort(key=lambda e: (e.at, e.settlement_id, e.reversal))
    return out


@dataclass(frozen=True)
class Totals:
    fixmedins_setl_cnt: int = 0
    medfee_sumamt: int = 0
    fund_pay_sumamt: int = 0  # window funds total = total - window_pay
    psn_cash_pay: int = 0  # window_pay
    funds: Mapping[str, int] = field(default_factory=dict)  # window funds per code, no zeros
    after_discharge: Mapping[str, int] = field(default_factory=dict)  # apart; not compared

    def value(self, name: str) -> int:
        if name.startswith(FUND_PREFIX):
            return self.funds.get(name[len(FUND_PREFIX) :], 0)
        return int(getattr(self, name))


def _add(into: dict[str, int], xs: Mapping[str, int]) -> None:
    for k, v in xs.items():
        into[k] = into.get(k, 0) + v


def _nonzero(xs: Mapping[str, int]) -> dict[str, int]:
    return {k: v for k, v in sorted(xs.items()) if v}


def totals(es: Iterable[Entry]) -> Totals:
    n = med = fund = cash = 0
    funds: dict[str, int] = {}
    after: dict[str, int] = {}
    for e in es:
        n += e.sign
        med += e.medfee_sumamt
        fund += e.fund_pay_sumamt
        cash += e.psn_cash_pay
        _add(funds, e.funds)
        _add(after, e.after_discharge)
    return Totals(n, med, fund, cash, _nonzero(funds), _nonzero(after))


# --------------------------------------------------------------------------- 3201 totals


@dataclass(frozen=True)
class HospitalTotals:
    """The hospital's own totals (3201 input). A total left None is not compared; ``funds``
    None means no per-fund figures were sent (a code absent from a given dict means 0)."""

    fixmedins_setl_cnt: int | None = None
    medfee_sumamt: int | None = None
    fund_pay_sumamt: int | None = None
    psn_cash_pay: int | None = None
    funds: Mapping[str, int] | None = None


@dataclass(frozen=True)
class Difference:
    """A total that differs: its name, both figures and the entries behind ours (3202)."""

    name: str
    ours: int
    theirs: int
    entries: tuple[Entry, ...]


def behind(es: Sequence[Entry], name: str) -> tuple[Entry, ...]:
    """The entries that make up a total: all of them for the count and the sums, those the
    fund paid for a fund code."""
    return tuple(e for e in es if name in (COUNT, *AMOUNTS) or e.amount(name) != 0)


def compare(ours: Totals, theirs: HospitalTotals, es: Sequence[Entry]) -> list[Difference]:
    """Exactly the totals that differ (empty: match), in the order count, medfee_sumamt,
    fund_pay_sumamt, psn_cash_pay, then window funds by code."""
    out = []
    for name in (COUNT, *AMOUNTS):
        t = getattr(theirs, name)
        if t is not None and t != ours.value(name):
            out.append(Difference(name, ours.value(name), t, behind(es, name)))
    if theirs.funds is not None:
        for code in sorted(set(ours.funds) | set(theirs.funds)):
            name = FUND_PREFIX + code
            o, t = ours.funds.get(code, 0), theirs.funds.get(code, 0)
            if o != t:
                out.append(Difference(name, o, t, behind(es, name)))
    return out


# --------------------------------------------------------------------------- 3202 detail


@dataclass(frozen=True)
class HospitalLine:
    """One line of the hospital's own list (3202 file): a settlement, or its reversal
    (refd_setl_flag), with amounts signed as they count (a reversal's are negative, as NHSA
    cancels carry them). An amount left None is not compared."""

    settlement_id: str
    reversal: bool = False
    medfee_sumamt: int | None = None
    fund_pay_sumamt: int | None = None
    psn_cash_pay: int | None = None

    @property
    def key(self) -> tuple[str, bool]:
        return (self.settlement_id, self.reversal)


Problem = Literal["missing_theirs", "missing_ours", "amount"]


@dataclass(frozen=True)
class LineDifference:
    """A settlement (or reversal) the two lists disagree on: on ours only
    (``missing_theirs``), on theirs only (``missing_ours``), or on both with different
    amounts (``amount``, naming the amounts that differ)."""

    settlement_id: str
    reversal: bool
    problem: Problem
    fields: tuple[str, ...]
    ours: Entry | None
    theirs: HospitalLine | None


def compare_list(es: Sequence[Entry], lines: Sequence[HospitalLine]) -> list[LineDifference]:
    """Entries against the hospital's lines, by (settlement id, reversal). Ours in time
    order first, then theirs only, in their order. Lines must have distinct keys."""
    mine = {e.key: e for e in es}
    theirs = {ln.key: ln for ln in lines}
    out = []
    for e in es:
        ln = theirs.get(e.key)
        if ln is None:
            out.append(LineDifference(e.settlement_id, e.reversal, "missing_theirs", (), e, None))
            continue
        differ = tuple(
            n for n in AMOUNTS if getattr(ln, n) is not None and getattr(ln, n) != e.amount(n)
        )
        if differ:
            out.append(LineDifference(e.settlement_id, e.reversal, "amount", differ, e, ln))
    for ln in lines:
        if ln.key not in mine:
            out.append(LineDifference(ln.settlement_id, ln.reversal, "missing_ours", (), None, ln))
    return out


def duplicate_lines(lines: Sequence[HospitalLine]) -> list[tuple[int, int]]:
    """(later index, first index) of lines that repeat a (settlement id, reversal) key."""
    seen: dict[tuple[str, bool], int] = {}
    out = []
    for i, ln in enumerate(lines):
        if ln.key in seen:
            out.append((i, seen[ln.key]))
        else:
            seen[ln.key] = i
    return out


@dataclass(frozen=True)
class Reconciliation:
    """The answer to a 3201/3202 reconciliation of one hospital over a range of dates."""

    hospital: str
    start: date
    end: date
    totals: Totals
    entries: tuple[Entry, ...]
    compared: bool  # the hospital sent totals or a list
    differences: tuple[Difference, ...] = ()
    line_differences: tuple[LineDifference, ...] = ()

    @property
    def match(self) -> bool:
        """Balanced (NHSA stmt_rslt 0): something was compared and nothing differs."""
        return self.compared and not self.differences and not self.line_differences


def reconcile(
    hospital: str,
    start: date,
    end: date,
    facts: Iterable[Fact],
    theirs: HospitalTotals | None = None,
    lines: Sequence[HospitalLine] | None = None,
) -> Reconciliation:
    es = [e for e in entries(facts, start, end) if e.hospital == hospital]
    t = totals(es)
    return Reconciliation(
        hospital=hospital,
        start=start,
        end=end,
        totals=t,
        entries=tuple(es),
        compared=theirs is not None or lines is not None,
        differences=tuple(compare(t, theirs, es)) if theirs is not None else (),
        line_differences=tuple(compare_list(es, lines)) if lines is not None else (),
    )


# --------------------------------------------------------------------------- bureau totals


@dataclass(frozen=True)
class DailyFund:
    """Per day, hospital and fund code: the net count of settlements the fund paid (+1 a
    settlement, -1 a reversal) and the net pay. ``settle_at`` tells window funds (which the
    hospital advanced) from after-discharge ones."""

    day: date
    hospital: str
    fund_code: str
    settle_at: str
    count: int
    pay: int


def daily(es: Iterable[Entry]) -> list[DailyFund]:
    """Totals per (day, hospital, settle_at, fund code), sorted so; rows whose count and pay
    both net to 0 are kept (a settlement reversed the same day shows as 0, not as nothing)."""
    acc: dict[tuple[date, str, str, str], list[int]] = {}
    for e in es:
        for settle_at, funds in ((WINDOW, e.funds), (AFTER_DISCHARGE, e.after_discharge)):
            for code, pay in funds.items():
                row = acc.setdefault((e.day, e.hospital, settle_at, code), [0, 0])
                row[0] += e.sign
                row[1] += pay
    return [
        DailyFund(day, h, code, at, n, pay) for (day, h, at, code), (n, pay) in sorted(acc.items())
    ]
