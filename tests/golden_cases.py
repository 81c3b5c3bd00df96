"""Golden cases as data files (OpenFisca style): a policy, bills and the published figures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from engine.bill import Bill, parse_bill
from engine.policy.load import parse_table
from engine.policy.policyset import PolicySet

GOLDEN = Path(__file__).parent / "golden"


def golden_files() -> list[Path]:
    return sorted(GOLDEN.glob("*.yaml"))


def load_case(path: Path) -> tuple[PolicySet, list[Bill], list[dict[str, Any]]]:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    table = parse_table(yaml.safe_dump(doc["policy"], allow_unicode=True), f"{path}#policy")
    bills = [parse_bill(b) for b in doc["bills"]]
    return PolicySet.of([(str(path), table)]), bills, doc["expect"]
