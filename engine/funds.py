"""Funds and their budgets (domain.md section 12), declared per region in ``funds.yaml``.

A fund is a ``fund_code`` within a region: every layer with that code, in every table version
of the region, draws on one balance. A fund declares, per accounting year (one declaration; it
does not change with the table in force), its ``budget`` (fen), ``carried_in`` (fen) and
``budget_mode``:

- ``report`` (default; insurance-backed funds): payouts are never limited; the budget is only
  compared with what was paid.
- ``hard`` (charity pools): a layer of the fund pays at most the remaining balance
  ``max(0, budget + carried_in - used)``; ``used`` is the fund's current pays of the year.

The file also says who runs the fund, who is insured (``eligibility``, for the enrolment derived
from the registry) and the carry-over rule at year end (``carry``; the engine does not compute
it: next year's ``carried_in`` is declared). Example (``policies/hongan/funds.yaml``)::

    region: "421122"
    funds:
      - fund_code: "370200"
        name: Backbone public-welfare health insurance
        name_zh: 顶梁柱健康扶贫公益保险
        operator: China Foundation for Poverty Alleviation (CFPA)
        carry: none
        eligibility: {tags_any: [registered_poor], age_min: 18, age_max: 60}
        years:
          2018: {budget: 178000000, budget_mode: report, money_in_source: seed}

Validated like a policy table: a bad file is refused as a whole, every problem naming the file,
the line, the path and the value.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field

from engine.errors import PolicyError, PolicyProblem
from engine.money import MAX_ACCOUNT
from engine.policy.load import FUNDS_FILE, NOT_TABLE_DIRS, parse_checked, read_text
from engine.policy.model import Eligibility, FundCode, Key, Name, RegionCode, _Strict

BudgetMode = Literal["report", "hard"]
Carry = Literal["none", "refund", "forward"]
Fen = Annotated[int, Field(ge=0, le=MAX_ACCOUNT)]


class FundYear(_Strict):
    """One accounting year of a fund."""

    budget: Fen | None = None  # fen; required when budget_mode is hard
    carried_in: Fen = 0  # fen brought forward from the previous year (carry: forward)
    budget_mode: BudgetMode = "report"
    #: fen per insured person a year (a premium bought for each enrolled person), if any
    premium_per_person: Fen | None = None
    source: dict[str, Key | tuple[Key, ...]] = {}
    note: str = ""


class Fund(_Strict):
    fund_code: FundCode
    name: Name
    name_zh: Annotated[str, Field(max_length=200)] = ""
    operator: Annotated[str, Field(max_length=200)] = ""
    carry: Carry = "none"
    #: who is insured (enrolment as of a date, from the registry); None: the eligibility of the
    #: fund's first layer in the table in force
    eligibility: Eligibility | None = None
    years: dict[int, FundYear] = {}
    source: dict[str, Key | tuple[Key, ...]] = {}
    note: str = ""


class FundsFile(_Strict):
    region: RegionCode
    funds: tuple[Fund, ...] = ()
    sources: dict[Key, str] = {}
    assumptions: dict[Key, str] = {}


def check_funds(f: FundsFile) -> list[tuple[str, str]]:
    """Cross-field problems as (path, reason)."""
    out: list[tuple[str, str]] = []
    seen: dict[str, int] = {}
    known = set(f.sources) | set(f.assumptions)
    for i, fund in enumerate(f.funds):
        if fund.fund_code in seen:
            out.append((f"funds[{i}].fund_code",
                        f"{fund.fund_code!r} is declared twice (also funds[{seen[fund.fund_code]}])"))  # fmt: skip
        seen.setdefault(fund.fund_code, i)
        for y, fy in fund.years.items():
            where = f"funds[{i}].years.{y}"
            if not 1900 <= y <= 2999:
                out.append((f"funds[{i}].years", f"{y} is not an accounting year (1900..2999)"))
            if fy.budget_mode == "hard" and fy.budget is None:
                out.append((f"{where}.budget",
                            "is missing; a fund with budget_mode hard must declare its budget (fen)"))  # fmt: skip
            for k, v in fy.source.items():
                for key in (v,) if isinstance(v, str) else v:
                    if key not in known:
                        out.append((f"{where}.source.{k}",
                                    f"{key!r} is not declared in sources or assumptions"))  # fmt: skip
        for k, v in fund.source.items():
            for key in (v,) if isinstance(v, str) else v:
                if key not in known:
                    out.append((f"funds[{i}].source.{k}",
                                f"{key!r} is not declared in sources or assumptions"))  # fmt: skip
    return out


def parse_funds(text: str, file: str = "<text>") -> FundsFile:
    """One region's fund declarations from YAML text; PolicyError with every problem."""
    return parse_checked(text, file, FundsFile, check_funds,
                         "a funds file is a YAML mapping with region and funds")  # fmt: skip


@dataclass(frozen=True)
class FundBook:
    """Every declared fund, by (region, fund_code). Funds not declared have no budget
    (``report`` without a budget): they are never limited."""

    funds: Mapping[tuple[str, str], Fund] = field(default_factory=dict)
    files: tuple[str, ...] = ()

    @classmethod
    def of(cls, files: Iterable[tuple[str, FundsFile]]) -> FundBook:
        funds: dict[tuple[str, str], Fund] = {}
        where: dict[str, str] = {}
        names: list[str] = []
        problems: list[PolicyProblem] = []
        for name, f in files:
            names.append(name)
            if f.region in where:
                problems.append(PolicyProblem(name, "region", f"{f.region!r} is declared in "
                                              f"{where[f.region]} too; one funds file per region"))  # fmt: skip
                continue
            where[f.region] = name
            for fund in f.funds:
                funds[(f.region, fund.fund_code)] = fund
        if problems:
            raise PolicyError(problems)
        return cls(funds, tuple(names))

    def get(self, region: str, fund_code: str) -> Fund | None:
        return self.funds.get((region, fund_code))

    def year(self, region: str, fund_code: str, year: int) -> FundYear | None:
        fund = self.funds.get((region, fund_code))
        return None if fund is None else fund.years.get(year)

    def hard_total(self, region: str, fund_code: str, year: int) -> int | None:
        """``budget + carried_in`` of a fund whose budget is hard that year, else None
        (payouts not limited)."""
        fy = self.year(region, fund_code, year)
        if fy is None or fy.budget_mode != "hard" or fy.budget is None:
            return None
        return fy.budget + fy.carried_in

    def opening_balances(
        self, used: Mapping[tuple[str, str, int], int] | None = None
    ) -> dict[tuple[str, str, int], int]:
        """The ``budgets`` argument of a batch: each hard fund-year's balance given what it has
        already ``used`` (0 where not given)."""
        used = used or {}
        out = {}
        for key in self.hard_keys():
            total = self.hard_total(*key)
            assert total is not None
            out[key] = balance(total, used.get(key, 0))
        return out

    @cached_property
    def hard(self) -> frozenset[tuple[str, str, int]]:
        """Every (region, fund_code, year) whose ``hard_total`` is not None (made once: the
        book never changes; a trial asks it of each of its table's layers)."""
        return frozenset(
            (r, c, y)
            for (r, c), fund in self.funds.items()
            for y in fund.years
            if self.hard_total(r, c, y) is not None
        )

    def hard_keys(self) -> list[tuple[str, str, int]]:
        """Every (region, fund_code, year) with a hard budget."""
        return sorted(
            (r, c, y)
            for (r, c), fund in self.funds.items()
            for y, fy in fund.years.items()
            if fy.budget_mode == "hard"
        )


def balance(total: int, used: int) -> int:
    """Section 12: the remaining balance of a hard-budget fund."""
    return max(0, total - used)


def load_funds_file(path: str | Path) -> FundsFile:
    p = Path(path)
    return parse_funds(read_text(p), str(p))


def funds_files(path: str | Path) -> list[Path]:
    """The fund declarations under ``path``: the file itself if it is named FUNDS_FILE, every
    FUNDS_FILE below a directory except inside a ``cases/`` or ``drafts/`` folder below it (as
    ``engine.policy.load.policy_files``: a draft's budgets are not in force)."""
    p = Path(path)
    if p.is_dir():
        return sorted(
            q
            for q in p.rglob(FUNDS_FILE)
            if q.is_file() and not NOT_TABLE_DIRS.intersection(q.relative_to(p).parts[:-1])
        )
    return [p] if p.name == FUNDS_FILE else []


def load_funds(*paths: str | Path) -> FundBook:
    """Every funds file under the given files or directories, as one book; all problems at
    once. No funds file: an empty book (no fund is limited)."""
    files: list[tuple[str, FundsFile]] = []
    problems: list[PolicyProblem] = []
    for f in [f for path in paths for f in funds_files(path)]:
        try:
            files.append((str(f), load_funds_file(f)))
        except PolicyError as err:
            problems += err.problems
    if problems:
        raise PolicyError(problems)
    return FundBook.of(files)
