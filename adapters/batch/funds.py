"""Fund budgets in batch runs (domain.md section 12): the opening ``used`` file, the opening
balances a run settles with, and the ``funds`` output.

- Declarations come from the ``funds.yaml`` files under the ``--policy`` paths
  (``engine.funds.load_funds``).
- ``--fund-used FILE`` (CSV or JSON: a list of objects) gives, per region, fund_code and year,
  what the fund has already ``used`` before this batch (0 where not given). A bad file is
  refused as a whole with one line naming the file, the row (data rows from 0, as in the reject
  file), the field and the value.
- Output: one row per declared fund-year, and per declared fund and year the batch drew on:
  region, fund_code, year, name, budget_mode, budget, carried_in, used_before (the opening
  used), opening_balance and closing_balance (hard budgets only; else null), paid (pays and
  alert reliefs of this batch) and bound_bills (bills where the hard budget bound a layer).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from adapters.batch.io import InputFileError
from adapters.batch.parquetout import required
from engine.funds import FundBook, balance
from engine.money import MAX_ACCOUNT

FundYearKey = tuple[str, str, int]
USED_FIELDS = ("region", "fund_code", "year", "used")
FUND_COLUMNS = (
    "region", "fund_code", "year", "name", "budget_mode", "budget", "carried_in", "used_before",
    "opening_balance", "paid", "closing_balance", "bound_bills",
)  # fmt: skip


class FundUsedError(InputFileError):
    """A bad ``--fund-used`` file (one line: file, row, field, value, rule)."""


def _records(path: Path) -> list[dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise FundUsedError(f"{path}: cannot be read ({e})") from None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise FundUsedError(f"{path}: is not JSON ({e.msg}, line {e.lineno})") from None
        if not isinstance(data, list):
            raise FundUsedError(
                f"{path}: is not a JSON list; give a list of objects with {', '.join(USED_FIELDS)}"
            )
        for i, r in enumerate(data):
            if not isinstance(r, dict):
                raise FundUsedError(
                    f"{path} row {i}: is not an object with {', '.join(USED_FIELDS)}"
                )
        return data
    rows = list(csv.DictReader(text.splitlines()))
    return rows


def _int(path: Path, i: int, name: str, v: Any, hi: int) -> int:
    if isinstance(v, str) and v.strip().lstrip("-").isdigit():
        v = int(v.strip())
    if isinstance(v, bool) or not isinstance(v, int):
        raise FundUsedError(f"{path} row {i}: {name}: {v!r} is not a whole number")
    if not 0 <= v <= hi:
        raise FundUsedError(f"{path} row {i}: {name}: {v!r} is not between 0 and {hi}")
    return v


def read_fund_used(path: str | Path, book: FundBook) -> dict[FundYearKey, int]:
    """(region, fund_code, year) -> used, from a CSV or JSON file; FundUsedError (one line) on
    the first bad row: a missing or bad field, a fund not declared in the book, a key twice."""
    p = Path(path)
    out: dict[FundYearKey, int] = {}
    first: dict[FundYearKey, int] = {}
    for i, r in enumerate(_records(p)):
        for name in USED_FIELDS:
            if r.get(name) in (None, ""):
                raise FundUsedError(f"{p} row {i}: {name}: is missing; every row gives "
                                    f"{', '.join(USED_FIELDS)}")  # fmt: skip
        region, code = str(r["region"]), str(r["fund_code"])
        year = _int(p, i, "year", r["year"], 2999)
        if year < 1900:
            raise FundUsedError(f"{p} row {i}: year: {year!r} is not an accounting year")
        used = _int(p, i, "used", r["used"], 2 * MAX_ACCOUNT)
        if book.get(region, code) is None:
            raise FundUsedError(
                f"{p} row {i}: fund_code: {code!r} is not a fund declared for region "
                f"{region!r} in the funds.yaml files under --policy"
            )
        key = (region, code, year)
        if key in first:
            raise FundUsedError(f"{p} row {i}: fund_code: {code!r} of region {region!r} in "
                                f"{year} is given twice (also row {first[key]})")  # fmt: skip
        first[key] = i
        out[key] = used
    return out


def opening_budgets(
    book: FundBook, used: dict[FundYearKey, int], regions: tuple[str, ...] | list[str]
) -> dict[FundYearKey, int]:
    """The ``budgets`` of a run: each hard fund-year of the policies' regions, at its balance."""
    return {k: v for k, v in book.opening_balances(used).items() if k[0] in regions}


def fund_rows(
    book: FundBook,
    used: dict[FundYearKey, int],
    paid: dict[FundYearKey, dict[str, int]],
    regions: tuple[str, ...] | list[str],
) -> list[dict[str, Any]]:
    """The rows of the funds output (see the module docstring), sorted by key."""
    keys = {k for k in book.hard_keys() if k[0] in regions}
    keys |= {(r, c, y) for (r, c), f in book.funds.items() if r in regions for y in f.years}
    keys |= {k for k in paid if book.get(k[0], k[1]) is not None}
    keys |= set(used)
    rows = []
    for key in sorted(keys):
        fund = book.get(key[0], key[1])
        fy = book.year(*key)
        total = book.hard_total(*key)
        got = paid.get(key, {"paid": 0, "bound_bills": 0})
        u = used.get(key, 0)
        opening = None if total is None else balance(total, u)
        rows.append({
            "region": key[0], "fund_code": key[1], "year": key[2],
            "name": fund.name if fund is not None else "",
            "budget_mode": fy.budget_mode if fy is not None else "report",
            "budget": fy.budget if fy is not None else None,
            "carried_in": fy.carried_in if fy is not None else 0,
            "used_before": u, "opening_balance": opening, "paid": got["paid"],
            "closing_balance": None if opening is None else opening - got["paid"],
            "bound_bills": got["bound_bills"],
        })  # fmt: skip
    return rows


#: the funds output's columns that can be null (a fund-year without a hard budget): the
#: others are declared non-null (Parquet REQUIRED), as in every other output
FUND_NULLABLE = ("budget", "opening_balance", "closing_balance")


def fund_table(rows: list[dict[str, Any]]) -> Any:
    """The rows as an Arrow table (integer fen; null where a figure does not apply: only
    ``FUND_NULLABLE``'s columns)."""
    import pyarrow as pa

    types = {"region": pa.string(), "fund_code": pa.string(), "name": pa.string(),
             "budget_mode": pa.string()}  # fmt: skip
    return required(pa.table({
        c: pa.array([r[c] for r in rows], types.get(c, pa.int64())) for c in FUND_COLUMNS
    }), FUND_NULLABLE)  # fmt: skip
