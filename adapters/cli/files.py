"""Reading bills and account files for the CLI, with errors that name the file and field."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from engine.accounts import Opening, YearAccounts
from engine.bill import Bill, Person, parse_bill
from engine.errors import InputError, Problem
from engine.policy.policyset import PolicySet


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise InputError.one(str(path), str(path), f"cannot be read: {err.strerror}") from None
    except json.JSONDecodeError as err:
        raise InputError.one(
            f"{path}:{err.lineno}", str(path), f"is not valid JSON: {err.msg}"
        ) from None
    except UnicodeDecodeError as err:  # JSON files are UTF-8
        raise InputError.one(
            str(path), str(path), f"is not UTF-8 text (byte {err.start}): JSON files are UTF-8"
        ) from None


#: a registry person's fields (engine.bill.Person: its region, township and village too)
REGISTRY_KEYS = frozenset(Person.model_fields)


def is_registry(data: Any) -> bool:
    """A person registry (a list of persons), which a glob like ``policies/samples/*.json``
    takes in beside the bills (``registry.json``)."""
    return (
        isinstance(data, list)
        and bool(data)
        and all(isinstance(x, dict) and set(x) <= REGISTRY_KEYS and "birth_date" in x for x in data)
    )


def read_bills(paths: list[Path]) -> list[Bill]:
    """Bills from JSON files: each holds one bill or a list of bills. A person registry among
    them is refused in one line naming it, not as one problem per field of every person."""
    bills: list[Bill] = []
    problems: list[Problem] = []
    for path in paths:
        data = read_json(path)
        if is_registry(data):
            raise InputError.one(
                str(path), f"{len(data)} persons",
                "is a person registry (id, birth_date, household, tags), not bills: leave it out "
                "(the bills name their person), e.g. policies/samples/hongan-*.json",
            )  # fmt: skip
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


def read_opening(path: Path | None, layer_ids: Iterable[str] | None = None) -> Opening:
    """``{"persons": {id: {year: accounts}}, "households": {id: {year: accounts}}}``.

    With ``layer_ids`` (the layers of the tables loaded), an account of any other layer is
    refused, naming the file, the layer id and the known ones: a typo must not start a
    layer from zero (a deductible already used would be charged again)."""
    if path is None:
        return Opening()
    data = read_json(path)
    if not isinstance(data, dict):
        raise InputError.one(
            str(path), type(data).__name__, "is not a mapping with persons and households"
        )
    out: dict[str, dict[tuple[str, int], YearAccounts]] = {"persons": {}, "households": {}}
    known = sorted(set(layer_ids or ()))
    problems: list[Problem] = []
    for k in data:
        if k not in out:
            raise InputError.one(f"{path}: {k}", k, "is not known; use persons, households")
    for kind, by_id in out.items():
        ids = data.get(kind) or {}
        if not isinstance(ids, dict):
            raise InputError.one(f"{path}: {kind}", ids, "is not a mapping by id")
        for key, years in ids.items():
            if not isinstance(years or {}, dict):
                raise InputError.one(f"{path}: {kind}.{key}", years, "is not a mapping by year")
            for year, acc in (years or {}).items():
                where = f"{path}: {kind}.{key}.{year}"
                if not str(year).isdigit():
                    raise InputError.one(where, year, "is not a year")
                by_id[(str(key), int(year))] = YearAccounts.from_dict(acc, where)
                if layer_ids is not None and isinstance(acc, dict):
                    problems += [
                        Problem(f"{where}.layers.{lid}", lid,
                                f"is not a layer of the policy tables ({', '.join(known)})")
                        for lid in (acc.get("layers") or {})
                        if lid not in known
                    ]  # fmt: skip
    if problems:
        raise InputError(problems)
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


def layer_ids(policies: PolicySet) -> set[str]:
    """The layer ids of every table loaded."""
    return {la.id for t in policies.tables for la in t.layers}
