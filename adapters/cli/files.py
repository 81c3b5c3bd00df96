"""Reading bills and account files for the CLI, with errors that name the file and field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engine.accounts import Opening, YearAccounts
from engine.bill import Bill, parse_bill
from engine.errors import InputError, Problem


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise InputError.one(str(path), str(path), f"cannot be read: {err.strerror}") from None
    except json.JSONDecodeError as err:
        raise InputError.one(
            f"{path}:{err.lineno}", str(path), f"is not valid JSON: {err.msg}"
        ) from None


def read_bills(paths: list[Path]) -> list[Bill]:
    """Bills from JSON files: each holds one bill or a list of bills."""
    bills: list[Bill] = []
    problems: list[Problem] = []
    for path in paths:
        data = read_json(path)
        items = data if isinstance(data, list) else [data]
        for i, raw in enumerate(items):
            where = f"{path}[{i}]" if isinstance(data, list) else str(path)
            try:
                bills.append(parse_bill(raw))
            except InputError as err:
                problems += [Problem(f"{where}: {p.field}", p.value, p.rule) for p in err.problems]
    if problems:
        raise InputError(problems)
    return bills


def read_opening(path: Path | None) -> Opening:
    """``{"persons": {id: {year: accounts}}, "households": {id: {year: accounts}}}``."""
    if path is None:
        return Opening()
    data = read_json(path)
    if not isinstance(data, dict):
        raise InputError.one(
            str(path), type(data).__name__, "is not a mapping with persons and households"
        )
    out: dict[str, dict[tuple[str, int], YearAccounts]] = {"persons": {}, "households": {}}
    for k in data:
        if k not in out:
            raise InputError.one(f"{path}: {k}", k, "is not known; use persons, households")
    for kind, by_id in out.items():
        for key, years in (data.get(kind) or {}).items():
            for year, acc in (years or {}).items():
                where = f"{path}: {kind}.{key}.{year}"
                if not str(year).isdigit():
                    raise InputError.one(where, year, "is not a year")
                by_id[(str(key), int(year))] = YearAccounts.from_dict(acc, where)
    return Opening(out["persons"], out["households"])


def opening_to_json(o: Opening) -> dict[str, Any]:
    out: dict[str, Any] = {"persons": {}, "households": {}}
    for (key, year), acc in sorted(o.person.items()):
        out["persons"].setdefault(key, {})[str(year)] = acc.to_dict()
    for (key, year), acc in sorted(o.household.items()):
        d = acc.to_dict()
        d.pop("admissions", None)
        if d["layers"]:
            out["households"].setdefault(key, {})[str(year)] = d
    return out
