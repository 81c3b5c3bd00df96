"""What a donor or the public reads about one fund of one region and year (domain.md sections
12-13), computed from ``FundFacts``: pure, no I/O, no personal data.

The figures carry no person id, name, household, hospital, bill id, settlement id, claim id,
payer or note: only counts, fen, days, months and the fund's own declarations. Everything is
integer (fen, counts, basis points, whole days); nothing here uses floating point.

**The one rounding rule.** Every quotient is rounded half-up to the unit (fen, basis point,
day): ``div_half_up(a, b) = (2 * a + b) // (2 * b)`` for ``b > 0``, i.e. ``floor(a / b + 1/2)``
(domain.md section 2's ``(amount * ratio + 5000) // 10000`` is this rule with ``b = 10000``).

Definitions (the README's "Publishing fund figures" repeats them):

- ``enrolled``: persons covered, as the store counted them on ``as_of``.
- ``money_in``: every money-in record of the fund-year: ``total`` fen, ``count`` records, and
  ``by_kind`` (premium, donation, government, other; every kind present, 0 when none).
- ``claims`` (after-discharge claims) and ``relief`` (relief cases), each by **current status**,
  so the four statuses partition ``all``: ``all`` every one ever filed (count, filed fen);
  ``filed`` awaiting a decision (filed fen); ``approved`` payable, not yet paid (approved fen);
  ``rejected`` (the filed fen refused); ``paid`` (the approved fen paid). ``average_paid`` is
  ``paid.fen / paid.count`` rounded half-up to the fen (None when none is paid);
  ``days_to_payment`` is over the paid ones.
- ``window``: the fund's window pays: ``settlements`` = distinct settlements not reversed that
  have a window pay of the fund (0 fen included), ``fen`` their pays; ``reversed`` the distinct
  settlements reversed (their pays are not counted).
- ``money_out`` = window fen + paid claims fen + paid relief fen (section 13: only ``paid``
  counts as money out); ``payable`` = approved claims fen + approved relief fen, shown apart.
- ``balance`` = money in + carried_in - money out (may be negative: a report fund can pay more
  than it took in).
- hard budgets only (``budget_mode: hard``; None otherwise): ``budget_used`` = section 12's
  ``used`` (window fen + claims and cases at their current amount: filed, approved or paid;
  rejected count 0), ``budget_left`` = ``max(0, budget + carried_in - budget_used)``.
- ``loss_ratio_bp`` = money_out * 10000 / money_in rounded half-up (None when money in is 0).
- ``days_to_payment`` (per kind, and for claims and relief together): from the discharge date to
  the payment's value date. ``median`` (the middle value; for an even count the half-up mean of
  the two middle ones), ``mean`` (half-up), ``p90`` (nearest rank: the value at rank
  ``ceil(0.9 n)`` in ascending order, an observed value), ``min``, ``max``, and a ``histogram``
  over fixed bins (``BINS``); all None (histogram all 0) when nothing is paid.
- ``monthly``: one row per calendar month from January of the year (or the earliest month with
  an event, if earlier) to the later of the last month with an event and ``min(as_of, December
  of the year)``'s month, gaps filled with 0: ``money_in`` by value date; ``paid_out`` = window
  pays by settlement date + paid claims and cases by payment date; ``claims_filed`` /
  ``relief_filed`` (counts, every one, by filing date), ``claims_paid`` / ``relief_paid``
  (counts, by payment date). Times are read as calendar dates in Asia/Shanghai (UTC+8, as in
  section 14; a naive time is UTC). A payment's date is ``paid_date``, else the date of
  ``paid_at``, else of ``filed_at``. The rows sum to the totals: ``money_in`` to
  money_in.total, ``paid_out`` to money_out, the filed counts to ``all.count``, the paid counts
  to ``paid.count``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from engine.claims import Claim, FundFacts

SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")
MONEY_IN_KINDS = ("premium", "donation", "government", "other")
STATUSES = ("filed", "approved", "rejected", "paid")
#: days-to-payment histogram bins: (label, lowest day, highest day or None); a negative day
#: count (paid before discharge) falls into the first bin
BINS: tuple[tuple[str, int, int | None], ...] = (
    ("0-7", 0, 7),
    ("8-14", 8, 14),
    ("15-30", 15, 30),
    ("31-60", 31, 60),
    ("61-90", 61, 90),
    ("91-180", 91, 180),
    ("181+", 181, None),
)


def div_half_up(a: int, b: int) -> int:
    """``a / b`` rounded half-up to an integer (``b > 0``): the module's one rounding rule."""
    if b <= 0:
        raise ValueError(f"divisor {b} is not positive")
    return (2 * a + b) // (2 * b)


def local_date(t: datetime) -> date:
    """The calendar date of ``t`` in Asia/Shanghai (a naive time is read as UTC)."""
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.astimezone(SHANGHAI).date()


def month_of(d: date) -> str:
    return f"{d.year:04d}-{d.month:02d}"


def paid_on(c: Claim) -> date:
    """A paid claim's payment date: ``paid_date``, else ``paid_at``'s, else ``filed_at``'s."""
    if c.paid_date is not None:
        return c.paid_date
    return local_date(c.paid_at if c.paid_at is not None else c.filed_at)


@dataclass(frozen=True)
class Tally:
    """A count and its fen."""

    count: int = 0
    fen: int = 0

    def add(self, fen: int) -> Tally:
        return Tally(self.count + 1, self.fen + fen)

    def to_json(self) -> dict[str, int]:
        return {"count": self.count, "fen": self.fen}


@dataclass(frozen=True)
class Days:
    """Days from discharge to payment over paid claims (or cases)."""

    count: int = 0
    median: int | None = None
    mean: int | None = None
    p90: int | None = None
    min: int | None = None
    max: int | None = None
    histogram: tuple[tuple[str, int], ...] = tuple((b[0], 0) for b in BINS)

    @classmethod
    def of(cls, days: Iterable[int]) -> Days:
        xs = sorted(days)
        n = len(xs)
        if n == 0:
            return cls()
        mid = n // 2
        median = xs[mid] if n % 2 else div_half_up(xs[mid - 1] + xs[mid], 2)
        rank = -(-9 * n // 10)  # ceil(0.9 n), from 1
        counts = [0] * len(BINS)
        for x in xs:
            counts[_bin(x)] += 1
        return cls(
            count=n,
            median=median,
            mean=div_half_up(sum(xs), n),
            p90=xs[rank - 1],
            min=xs[0],
            max=xs[-1],
            histogram=tuple((b[0], k) for b, k in zip(BINS, counts, strict=True)),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "median": self.median,
            "mean": self.mean,
            "p90": self.p90,
            "min": self.min,
            "max": self.max,
            "histogram": [{"days": label, "count": k} for label, k in self.histogram],
        }


def _bin(x: int) -> int:
    for i, (_, _lo, hi) in enumerate(BINS):
        if hi is None or x <= hi:
            return i
    raise AssertionError("the last bin is open")  # pragma: no cover


@dataclass(frozen=True)
class ClaimFigures:
    """Claims (or relief cases) of a fund by current status; the statuses partition ``all``."""

    all: Tally = Tally()
    filed: Tally = Tally()
    approved: Tally = Tally()
    rejected: Tally = Tally()
    paid: Tally = Tally()
    average_paid: int | None = None
    days_to_payment: Days = Days()

    @classmethod
    def of(cls, claims: Iterable[Claim]) -> ClaimFigures:
        every = Tally()
        by = {s: Tally() for s in STATUSES}
        days: list[int] = []
        for c in claims:
            every = every.add(c.filed_amount)
            amount = c.filed_amount if c.status == "rejected" else c.current_amount
            by[c.status] = by[c.status].add(amount)
            if c.status == "paid":
                days.append((paid_on(c) - c.discharge_date).days)
        paid = by["paid"]
        return cls(
            all=every,
            filed=by["filed"],
            approved=by["approved"],
            rejected=by["rejected"],
            paid=paid,
            average_paid=div_half_up(paid.fen, paid.count) if paid.count else None,
            days_to_payment=Days.of(days),
        )

    def status(self, name: str) -> Tally:
        t = getattr(self, name)
        assert isinstance(t, Tally)
        return t

    def to_json(self) -> dict[str, Any]:
        return {
            "all": self.all.to_json(),
            **{s: self.status(s).to_json() for s in STATUSES},
            "average_paid": self.average_paid,
            "days_to_payment": self.days_to_payment.to_json(),
        }


@dataclass(frozen=True)
class Window:
    settlements: int = 0  # distinct settlements not reversed with a window pay of the fund
    fen: int = 0
    reversed: int = 0  # distinct settlements reversed

    def to_json(self) -> dict[str, int]:
        return {"settlements": self.settlements, "fen": self.fen, "reversed": self.reversed}


@dataclass(frozen=True)
class Month:
    month: str  # YYYY-MM
    money_in: int = 0  # fen
    paid_out: int = 0  # fen
    claims_filed: int = 0
    claims_paid: int = 0
    relief_filed: int = 0
    relief_paid: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "month": self.month,
            "money_in": self.money_in,
            "paid_out": self.paid_out,
            "claims_filed": self.claims_filed,
            "claims_paid": self.claims_paid,
            "relief_filed": self.relief_filed,
            "relief_paid": self.relief_paid,
        }


MONTH_FIELDS = (
    "money_in",
    "paid_out",
    "claims_filed",
    "claims_paid",
    "relief_filed",
    "relief_paid",
)


@dataclass(frozen=True)
class Checkpoint:
    """The ledger block the figures were published at (section 15)."""

    height: int
    hash: str
    sealed_at: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"height": self.height, "hash": self.hash, "sealed_at": self.sealed_at}


@dataclass(frozen=True)
class FundFigures:
    """The published figures of one fund of one region and year (no personal data)."""

    region: str
    region_name: str
    fund_code: str
    fund_name: str
    fund_name_zh: str
    year: int
    as_of: date
    budget_mode: str
    budget: int | None
    carried_in: int
    enrolled: int
    money_in: Tally
    money_in_by_kind: dict[str, Tally]
    window: Window
    claims: ClaimFigures
    relief: ClaimFigures
    money_out: int
    payable: int
    balance: int
    budget_used: int | None
    budget_left: int | None
    loss_ratio_bp: int | None
    days_to_payment: Days  # claims and relief cases together
    monthly: tuple[Month, ...]
    checkpoint: Checkpoint | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def slug(self) -> str:
        """The page's directory name: region-fund-year."""
        return f"{self.region}-{self.fund_code}-{self.year}"

    @property
    def has_data(self) -> bool:
        """Any record at all: money in, a window pay (reversed or not), a claim or case
        (enrolment alone is not data of the year)."""
        return bool(
            self.money_in.count or self.window.settlements or self.window.reversed
            or self.claims.all.count or self.relief.all.count
        )  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        return {
            "region": self.region,
            "region_name": self.region_name,
            "fund_code": self.fund_code,
            "fund_name": self.fund_name,
            "fund_name_zh": self.fund_name_zh,
            "year": self.year,
            "as_of": self.as_of.isoformat(),
            "budget_mode": self.budget_mode,
            "budget": self.budget,
            "carried_in": self.carried_in,
            "enrolled": self.enrolled,
            "money_in": {
                **self.money_in.to_json(),
                "by_kind": {k: t.to_json() for k, t in self.money_in_by_kind.items()},
            },
            "window": self.window.to_json(),
            "claims": self.claims.to_json(),
            "relief": self.relief.to_json(),
            "money_out": self.money_out,
            "payable": self.payable,
            "balance": self.balance,
            "budget_used": self.budget_used,
            "budget_left": self.budget_left,
            "loss_ratio_bp": self.loss_ratio_bp,
            "days_to_payment": self.days_to_payment.to_json(),
            "monthly": [m.to_json() for m in self.monthly],
            "checkpoint": None if self.checkpoint is None else self.checkpoint.to_json(),
        }


def flat(doc: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``(dotted.key, value)`` for every scalar of a ``to_json()`` document (lists of objects
    keyed by their ``month`` or ``days`` label, else by index): the CSV rows and the keys
    the page marks its numbers with."""
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from flat(v, f"{prefix}{k}.")
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            if isinstance(v, dict):
                label = v.get("month", v.get("days", i))
                v = {k: x for k, x in v.items() if k not in ("month", "days")}
            else:
                label = i
            yield from flat(v, f"{prefix}{label}.")
    else:
        yield prefix[:-1], doc


def _months(first: date, last: date) -> list[str]:
    out = []
    y, m = first.year, first.month
    while (y, m) <= (last.year, last.month):
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def figures(facts: FundFacts, checkpoint: Checkpoint | None = None) -> FundFigures:
    """The published figures of ``facts`` (definitions: the module docstring). ``checkpoint``
    overrides ``facts.checkpoint`` (height, hash)."""
    by_kind = {k: Tally() for k in MONEY_IN_KINDS}
    money_in = Tally()
    rows: dict[str, dict[str, int]] = {}

    def bump(d: date, key: str, n: int) -> None:
        row = rows.setdefault(month_of(d), dict.fromkeys(MONTH_FIELDS, 0))
        row[key] += n

    for r in facts.money_in:
        money_in = money_in.add(r.amount)
        by_kind[r.kind] = by_kind.get(r.kind, Tally()).add(r.amount)
        bump(r.on, "money_in", r.amount)

    live: set[str] = set()
    gone: set[str] = set()
    window_fen = 0
    for p in facts.window_pays:
        if p.settle_at != "window":
            continue
        if p.reversed:
            gone.add(p.settlement_id)
            continue
        live.add(p.settlement_id)
        window_fen += p.pay
        bump(local_date(p.settled_at), "paid_out", p.pay)
    window = Window(len(live), window_fen, len(gone - live))

    claims = [c for c in facts.claims if c.kind == "claim"]
    cases = [c for c in facts.claims if c.kind == "relief"]
    for c in facts.claims:
        bump(local_date(c.filed_at), "claims_filed" if c.kind == "claim" else "relief_filed", 1)
        if c.status == "paid":
            d = paid_on(c)
            bump(d, "claims_paid" if c.kind == "claim" else "relief_paid", 1)
            bump(d, "paid_out", c.current_amount)
    cf, rf = ClaimFigures.of(claims), ClaimFigures.of(cases)

    money_out = window.fen + cf.paid.fen + rf.paid.fen
    payable = cf.approved.fen + rf.approved.fen
    used: int | None = None
    left: int | None = None
    if facts.budget_mode == "hard" and facts.budget is not None:
        used = window.fen + sum(c.current_amount for c in facts.claims)
        left = max(0, facts.budget + facts.carried_in - used)

    end_of_year = date(facts.year, 12, 31)
    first = date(facts.year, 1, 1)
    last = min(facts.as_of, end_of_year) if facts.as_of >= first else first
    if rows:
        first = min(first, date.fromisoformat(min(rows) + "-01"))
        last = max(last, date.fromisoformat(max(rows) + "-01"))
    monthly = tuple(
        Month(m, **rows.get(m, dict.fromkeys(MONTH_FIELDS, 0))) for m in _months(first, last)
    )

    if checkpoint is None and facts.checkpoint is not None:
        checkpoint = Checkpoint(*facts.checkpoint)
    return FundFigures(
        region=facts.region,
        region_name=facts.region_name,
        fund_code=facts.fund_code,
        fund_name=facts.fund_name,
        fund_name_zh=facts.fund_name_zh,
        year=facts.year,
        as_of=facts.as_of,
        budget_mode=facts.budget_mode,
        budget=facts.budget,
        carried_in=facts.carried_in,
        enrolled=facts.enrolled,
        money_in=money_in,
        money_in_by_kind=by_kind,
        window=window,
        claims=cf,
        relief=rf,
        money_out=money_out,
        payable=payable,
        balance=money_in.fen + facts.carried_in - money_out,
        budget_used=used,
        budget_left=left,
        loss_ratio_bp=div_half_up(money_out * 10_000, money_in.fen) if money_in.fen else None,
        days_to_payment=Days.of(
            (paid_on(c) - c.discharge_date).days for c in facts.claims if c.status == "paid"
        ),
        monthly=monthly,
        checkpoint=checkpoint,
    )


_FEN_LEAVES = ("fen", "money_in", "paid_out", "average_paid")
_FEN_KEYS = {
    "budget", "carried_in", "money_out", "payable", "balance", "budget_used", "budget_left",
}  # fmt: skip
_DAY_LEAVES = ("median", "mean", "p90", "min", "max")


def unit_of(key: str) -> str:
    """The unit of a ``flat`` key: ``fen``, ``count``, ``bp``, ``days`` or ``text``."""
    leaf = key.rsplit(".", 1)[-1]
    if key in _FEN_KEYS or leaf in _FEN_LEAVES:
        return "fen"
    if key == "loss_ratio_bp":
        return "bp"
    if "days_to_payment" in key and leaf in _DAY_LEAVES:
        return "days"
    if (
        key in ("enrolled", "year")
        or leaf in ("count", "settlements", "reversed", "height")
        or (key.startswith("monthly."))
    ):
        return "count"
    return "text"
