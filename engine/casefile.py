"""Reading case files (README, "Cases bureaus write"): YAML, one case, a list of cases, or a
mapping with ``cases:`` (and a ``policy:`` its cases share).

A case: ``name``; ``policy`` (a table written inline, or the path of a table file or folder,
relative to the case file; else the tables given to the loader, ``onestop test --policy``);
optional ``accounts`` (opening year-to-date accounts, the shape of ``onestop settle
--accounts``: ``{persons: {id: {year: {admissions, layers: {layer id: {field: amount}}}}},
households: ...}``); optional ``budgets`` (fund code -> opening balance of a hard budget,
domain.md section 12, in the region and years of the bills); ``bills`` (one bill or a list,
settled in the order of domain.md section 6, accounts carried from bill to bill); ``expect``
(one entry or a list, one per bill checked: ``bill`` (its id; not needed when the case has one
bill) and the figures expected).

Amounts (expectations, accounts, budgets, item ``amount``/``unit_price``/``unit_price_cap``)
are fen as integers, or yuan as strings ("1234.56", exact; more than two decimals refused).
Every problem names the file, the line, the field and the value (``CaseFileError``); nothing is
settled while any case file has one.

Where they live: ``policies/cases/`` (``onestop test policies/cases --policy policies``), with
the tables they check; the policy loader skips folders named ``cases`` (and ``drafts``) below a
policy directory (``engine.policy.load.policy_files``), so case files are never read as tables.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from engine.accounts import Opening, YearAccounts
from engine.batch import resolve
from engine.bill import Bill, parse_bill
from engine.cases import BILL_MONEY, BUCKETS, LAYER_MONEY, LAYER_OTHER, Case, CaseFileError, Check
from engine.errors import InputError, PolicyError, PolicyProblem, show
from engine.money import MAX_ACCOUNT
from engine.policy.checks import check_table
from engine.policy.load import _Lines, _parse_path, compose, load_policies, validated
from engine.policy.model import PolicyTable
from engine.policy.policyset import PolicySet
from engine.result import CAPS, REASONS
from engine.validation import dotted

CASE_KEYS = ("name", "description", "policy", "accounts", "budgets", "bills", "expect")
FILE_KEYS = ("description", "policy", "cases")
EXPECT_KEYS = (
    "bill", *BUCKETS, *BILL_MONEY, "admission_no", "alerts", "funds", "layers",
    "deductible", "caps", "relief",
)  # fmt: skip
#: shorthands of the first golden files: {layer id: value} for one layer field
LAYER_SHORTHAND = {"deductible": "deductible", "caps": "cap", "relief": "relief"}
ITEM_MONEY = ("amount", "unit_price", "unit_price_cap")
_YUAN = re.compile(r"[0-9]+(\.[0-9]+)?")

Path_ = tuple[Any, ...]
PolicyLoader = Callable[[Path], PolicySet]


def case_files(paths: Iterable[str | Path]) -> list[Path]:
    """The case files under ``paths``: a file as given, a folder's *.yaml / *.yml (sorted)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(q for q in p.rglob("*.y*ml") if q.is_file())
            if not found:
                raise CaseFileError([PolicyProblem(str(p), "", "holds no case files (*.yaml)")])
            out += found
        elif p.is_file():
            out.append(p)
        else:
            raise CaseFileError([PolicyProblem(str(p), "", "is not a file or a folder")])
    return out


def load_cases(paths: Iterable[str | Path], policies: PolicySet | None = None) -> list[Case]:
    """Every case of the case files under ``paths``; ``policies``: for cases that name none.
    CaseFileError with every problem of every file."""
    cache: dict[Path, PolicySet] = {}

    def load(p: Path) -> PolicySet:
        key = p.resolve()
        if key not in cache:
            cache[key] = load_policies(p)
        return cache[key]

    cases: list[Case] = []
    problems: list[PolicyProblem] = []
    for f in case_files(paths):
        try:
            text = f.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            problems.append(PolicyProblem(str(f), "", f"cannot be read: {err}"))
            continue
        try:
            cases += parse_cases(text, str(f), policies, load)
        except PolicyError as err:  # CaseFileError, or the YAML itself
            problems += err.problems
    if problems:
        raise CaseFileError(problems)
    return cases


class _File:
    """One case file being read: its node tree (for lines) and the problems found."""

    def __init__(self, file: str, node: yaml.Node | None, loader: PolicyLoader):
        self.file, self.node, self.lines = file, node, _Lines(node)
        self.loader = loader
        self.problems: list[PolicyProblem] = []

    def add(self, path: Path_, reason: str, value: Any = ..., key: bool = False) -> None:
        """A problem at ``path``; ``key``: on the line of the key itself (an unknown field)."""
        text = reason if value is ... else f"{show(value)} {reason}"
        line = self.lines.line(path)
        if key and path:
            parent = self.node_at(path[:-1])
            if isinstance(parent, yaml.MappingNode):
                k = next((k for k, _ in parent.value if k.value == str(path[-1])), None)
                line = k.start_mark.line + 1 if k is not None else line
        self.problems.append(PolicyProblem(self.file, dotted(path), text, line))

    def node_at(self, path: Path_) -> yaml.Node | None:
        node = self.node
        for part in path:
            if isinstance(node, yaml.MappingNode):
                node = next((v for k, v in node.value if k.value == str(part)), None)
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
                node = node.value[part] if 0 <= part < len(node.value) else None
            else:
                return None
        return node

    def input_problems(self, base: Path_, err: InputError) -> None:
        """An InputError of a part read at ``base`` (its fields are relative to it)."""
        for p in err.problems:
            path = (*base, *_parse_path(p.field))
            text = f"{p}".removeprefix(f"{p.field}: ")
            self.problems.append(
                PolicyProblem(self.file, dotted(path), text, self.lines.line(path))
            )


def parse_cases(
    text: str,
    file: str,
    policies: PolicySet | None = None,
    loader: PolicyLoader = load_policies,
) -> list[Case]:
    """The cases of one case file's text; ``file`` names it in problems and anchors relative
    policy paths. CaseFileError (or PolicyError for bad YAML) with every problem."""
    node, data = compose(text, file)
    f = _File(file, node, loader)
    cases: list[Case] = []
    shared: Any = None
    entries: list[tuple[Path_, Any]]
    if isinstance(data, list):
        entries = [((i,), c) for i, c in enumerate(data)]
    elif isinstance(data, dict) and "cases" in data:
        for k in data:
            if k not in FILE_KEYS:
                f.add(
                    (k,),
                    f"is not a known field of a case file ({', '.join(FILE_KEYS)})",
                    k,
                    key=True,
                )
        if not isinstance(data["cases"], list) or not data["cases"]:
            f.add(("cases",), "is not a list of cases")
            entries = []
        else:
            entries = [(("cases", i), c) for i, c in enumerate(data["cases"])]
        if data.get("policy") is not None:
            shared = _policy(f, ("policy",), data["policy"])
            if shared is None:  # its problems are said once, not again for every case
                raise CaseFileError(f.problems)
    elif isinstance(data, dict):
        entries = [((), data)]
    else:
        f.add((), "is not a case: a mapping with name, bills and expect, a list of them, or "
              "a mapping with cases:")  # fmt: skip
        entries = []
    if not entries and not f.problems:
        f.add((), "holds no cases")
    for path, raw in entries:
        case = _case(f, path, raw, shared or policies)
        if case is not None:
            cases.append(case)
    if f.problems:
        raise CaseFileError(f.problems)
    return cases


def amount(f: _File, path: Path_, value: Any) -> int | None:
    """Fen from an integer (fen) or a string of yuan ("1234.56"); None after a problem."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        how = "a decimal number" if isinstance(value, float) else "not an amount"
        f.add(path, f"is {how}; write fen as an integer (123456) or yuan as a string "
              "('1234.56')", value)  # fmt: skip
        return None
    if isinstance(value, int):
        if value < 0:
            f.add(path, "is negative; amounts are non-negative fen", value)
            return None
        return value
    if not _YUAN.fullmatch(value.strip()):
        f.add(path, "is not yuan; write yuan as digits with at most two decimals ('1234.56'), "
              "or fen as an integer", value)  # fmt: skip
        return None
    d = Decimal(value.strip())
    if -int(d.as_tuple().exponent) > 2:
        f.add(path, "has more than two decimals; yuan are exact to the fen ('1234.56')", value)
        return None
    return int(d * 100)


def _mapping(f: _File, path: Path_, value: Any, what: str) -> dict[Any, Any] | None:
    if isinstance(value, dict):
        return value
    f.add(path, f"is not a mapping of {what}", value)
    return None


def _case(f: _File, path: Path_, raw: Any, default: PolicySet | None) -> Case | None:
    if not isinstance(raw, dict):
        f.add(path, "is not a case (a mapping with name, bills and expect)", raw)
        return None
    before = len(f.problems)
    for k in raw:
        if k not in CASE_KEYS:
            f.add(
                (*path, k), f"is not a known field of a case ({', '.join(CASE_KEYS)})", k, key=True
            )
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        f.add((*path, "name"), "is missing or empty; give the case a name")
    policies: PolicySet | None = default
    if "policy" in raw:
        policies = _policy(f, (*path, "policy"), raw["policy"])
    elif default is None:
        f.add((*path, "policy"), "is missing: write the table in the case, give its path, or "
              "run with --policy")  # fmt: skip
    for k in ("bills", "expect"):
        if raw.get(k) in (None, [], {}):
            f.add((*path, k), "is missing; a case needs bills and what is expected of them")
    if len(f.problems) > before:
        return None
    assert policies is not None
    bills = _bills(f, (*path, "bills"), raw["bills"], policies)
    if bills is None:
        return None
    layers = {la.id for t in policies.tables for la in t.layers}
    funds = {la.fund_code for t in policies.tables for la in t.layers}
    opening = _opening(f, (*path, "accounts"), raw.get("accounts"), layers)
    budgets = _budgets(f, (*path, "budgets"), raw.get("budgets"), funds)
    checks = _expect(f, (*path, "expect"), raw["expect"], bills, layers, funds)
    if len(f.problems) > before:
        return None
    return Case(
        f.file, f.lines.line(path), str(name), policies, tuple(bills),
        opening, budgets, tuple(checks),
    )  # fmt: skip


def _policy(f: _File, path: Path_, raw: Any) -> PolicySet | None:
    """An inline table (lines of the case file) or the tables under a path relative to it."""
    if isinstance(raw, str):
        p = Path(os.path.normpath(Path(f.file).parent / raw))
        if not p.exists():
            f.add(path, f"names no file or folder (looked for {p})", raw)
            return None
        try:
            return f.loader(p)
        except PolicyError as err:
            f.problems += err.problems
            return None
    if not isinstance(raw, dict):
        f.add(path, "is not a policy table (a mapping) or the path of one", raw)
        return None
    lines = _Lines(f.node_at(path))
    try:
        table = validated(PolicyTable, raw, f.file, lines)
    except PolicyError as err:
        for q in err.problems:
            at = f"{dotted(path)}.{q.path}" if q.path else dotted(path)
            f.problems.append(PolicyProblem(f.file, at, q.reason, q.line))
        return None
    found = check_table(table)
    for at, reason in found:
        full = (*path, *_parse_path(at))
        f.problems.append(PolicyProblem(f.file, dotted(full), reason, f.lines.line(full)))
    if found:
        return None
    return PolicySet.of([(f"{f.file}#{dotted(path)}", table)])


def _bills(f: _File, path: Path_, raw: Any, policies: PolicySet | None) -> list[Bill] | None:
    entries = [(path, raw)] if isinstance(raw, dict) else None
    if isinstance(raw, list):
        entries = [((*path, i), b) for i, b in enumerate(raw)]
    if entries is None:
        f.add(path, "is not a bill (a mapping) or a list of bills", raw)
        return None
    bills: list[Bill] = []
    before = len(f.problems)
    for where, b in entries:
        if isinstance(b, dict):
            b = _yuan_items(f, where, b)
        try:
            bills.append(parse_bill(b))
        except InputError as err:
            f.input_problems(where, err)
    if len(f.problems) > before or policies is None:
        return None
    seen: dict[str, Path_] = {}
    for (where, _), bill in zip(entries, bills, strict=True):
        if bill.id in seen:
            f.add((*where, "id"), f"is the id of another bill of the case ({dotted(seen[bill.id])}); "
                  "ids are unique within a case", bill.id)  # fmt: skip
        seen.setdefault(bill.id, where)
    if len(f.problems) > before:
        return None
    try:
        resolve(bills, policies)
    except InputError as err:  # fields "bills[i]. ..." of the list given
        for p in err.problems:
            parts = _parse_path(p.field)
            where = entries[parts[1]][0]
            f.input_problems(where, InputError([type(p)(dotted(parts[2:]), p.value, p.rule)]))
        return None
    return bills


def _yuan_items(f: _File, where: Path_, bill: dict[Any, Any]) -> dict[Any, Any]:
    """The bill with its item amounts in fen (yuan strings converted)."""
    items = bill.get("items")
    if not isinstance(items, list):
        return bill
    out = []
    for i, it in enumerate(items):
        if isinstance(it, dict):
            it = dict(it)
            for k in ITEM_MONEY:
                if isinstance(it.get(k), str):
                    fen = amount(f, (*where, "items", i, k), it[k])
                    it[k] = fen if fen is not None else 0
        out.append(it)
    return {**bill, "items": out}


def _opening(f: _File, path: Path_, raw: Any, layers: set[str]) -> Opening:
    if raw is None:
        return Opening()
    data = _mapping(f, path, raw, "persons and households")
    out: dict[str, dict[tuple[str, int], YearAccounts]] = {"persons": {}, "households": {}}
    for k in data or {}:
        if k not in out:
            f.add((*path, k), "is not known; use persons, households", k, key=True)
    for kind, by_id in out.items():
        owners = (data or {}).get(kind) or {}
        if _mapping(f, (*path, kind), owners, "ids to years") is None:
            continue
        for key, years in owners.items():
            for year, acc in (_mapping(f, (*path, kind, key), years or {}, "years") or {}).items():
                where = (*path, kind, key, str(year))
                if not str(year).isdigit():
                    f.add(where, "is not a year", year)
                    continue
                acc = _yuan_accounts(f, where, acc, layers)
                try:
                    by_id[(str(key), int(year))] = YearAccounts.from_dict(acc, "")
                except InputError as err:
                    f.input_problems(where, err)
    return Opening(out["persons"], out["households"])


def _yuan_accounts(f: _File, where: Path_, acc: Any, layers: set[str]) -> Any:
    if not isinstance(acc, dict) or not isinstance(acc.get("layers"), dict):
        return acc
    out: dict[str, Any] = {}
    for lid, vals in acc["layers"].items():
        if lid not in layers:
            f.add(
                (*where, "layers", lid),
                f"is not a layer of the policy ({', '.join(sorted(layers))})",
                lid,
            )
        if isinstance(vals, dict):
            vals = {
                k: (amount(f, (*where, "layers", lid, k), v) or 0) if isinstance(v, str) else v
                for k, v in vals.items()
            }
        out[lid] = vals
    return {**acc, "layers": out}


def _budgets(f: _File, path: Path_, raw: Any, funds: set[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for code, v in (
        _mapping(f, path, raw, "fund codes to balances") or {} if raw is not None else {}
    ).items():
        if str(code) not in funds:
            f.add(
                (*path, code),
                f"is not a fund code of the policy ({', '.join(sorted(funds))})",
                code,
            )
            continue
        fen = amount(f, (*path, code), v)
        if fen is not None and fen > MAX_ACCOUNT:
            f.add((*path, code), f"is above the limit {MAX_ACCOUNT} fen of a balance", v)
        elif fen is not None:
            out[str(code)] = fen
    return out


def _expect(
    f: _File, path: Path_, raw: Any, bills: list[Bill], layers: set[str], funds: set[str]
) -> list[Check]:
    entries = [(path, raw)] if isinstance(raw, dict) else None
    if isinstance(raw, list):
        entries = [((*path, i), e) for i, e in enumerate(raw)]
    if entries is None:
        f.add(path, "is not an expectation (a mapping) or a list of them", raw)
        return []
    ids = [b.id for b in bills]
    checks: list[Check] = []
    for where, e in entries:
        if not isinstance(e, dict):
            f.add(where, "is not an expectation (a mapping with bill and figures)", e)
            continue
        bill = e.get("bill", ids[0] if len(ids) == 1 else None)
        if bill is None:
            f.add((*where, "bill"), "is missing; the case has several bills: name the one "
                  f"expected ({', '.join(ids)})")  # fmt: skip
            continue
        if str(bill) not in ids:
            f.add((*where, "bill"), f"is not a bill of the case ({', '.join(ids)})", bill)
            continue
        bill = str(bill)
        if len(e) == int("bill" in e):
            f.add(where, "expects nothing; give the figures expected (window_pay, funds, ...)")
        for k, v in e.items():
            at = (*where, k)
            if k == "bill":
                continue
            if k not in EXPECT_KEYS:
                f.add(
                    at,
                    f"is not a known expected figure ({', '.join(EXPECT_KEYS[1:])})",
                    k,
                    key=True,
                )
            elif k in BUCKETS or k in BILL_MONEY:
                checks += _money(f, at, bill, k, v)
            elif k in ("alerts", "admission_no"):
                if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                    f.add(at, "is not a count (a non-negative integer)", v)
                else:
                    checks.append(Check(bill, k, "count", v, f.lines.line(at)))
            elif k == "funds":
                for code, x in (_mapping(f, at, v, "fund codes to amounts") or {}).items():
                    if str(code) not in funds:
                        f.add((*at, code), "is not a fund code of the policy "
                              f"({', '.join(sorted(funds))})", code)  # fmt: skip
                    else:
                        checks += _money(f, (*at, code), bill, f"funds.{code}", x)
            elif k == "layers":
                for lid, x in (_mapping(f, at, v, "layer ids to figures") or {}).items():
                    if _known_layer(f, (*at, lid), lid, layers):
                        checks += _layer(f, (*at, lid), bill, str(lid), x)
            else:  # deductible, caps, relief: {layer id: value}
                for lid, x in (_mapping(f, at, v, "layer ids to figures") or {}).items():
                    if _known_layer(f, (*at, lid), lid, layers):
                        checks += _layer_field(f, (*at, lid), bill, str(lid), LAYER_SHORTHAND[k], x)
    return checks


def _known_layer(f: _File, at: Path_, lid: Any, layers: set[str]) -> bool:
    if str(lid) in layers:
        return True
    f.add(at, f"is not a layer of the policy ({', '.join(sorted(layers))})", lid)
    return False


def _money(f: _File, at: Path_, bill: str, name: str, v: Any) -> list[Check]:
    fen = amount(f, at, v)
    return [] if fen is None else [Check(bill, name, "money", fen, f.lines.line(at))]


def _layer(f: _File, at: Path_, bill: str, lid: str, v: Any) -> list[Check]:
    """``{layer: amount}`` (what it pays) or ``{layer: {pay, base, deductible, ...}}``."""
    if not isinstance(v, dict):
        return _money(f, at, bill, f"layers.{lid}.pay", v)
    out: list[Check] = []
    for k, x in v.items():
        out += _layer_field(f, (*at, k), bill, lid, str(k), x)
    return out


def _layer_field(f: _File, at: Path_, bill: str, lid: str, k: str, x: Any) -> list[Check]:
    name = f"layers.{lid}.{k}"
    if k in LAYER_MONEY:
        return _money(f, at, bill, name, x)
    kind = LAYER_OTHER.get(k)
    if kind is None:
        known = ", ".join([*LAYER_MONEY, *LAYER_OTHER])
        f.add(at, f"is not a known figure of a layer ({known})", k, key=True)
        return []
    if kind == "flag":
        if not isinstance(x, bool):
            f.add(at, "is not true or false", x)
            return []
        return [Check(bill, name, kind, x, f.lines.line(at))]
    choices = CAPS if k == "cap" else REASONS
    value = "" if x in (None, "none") else x
    if value not in choices:
        f.add(at, f"is not one of none, {', '.join(c for c in choices if c)}", x)
        return []
    return [Check(bill, name, kind, value, f.lines.line(at))]
