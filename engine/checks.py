"""Checks of a bill against the policy table that settles it (domain.md section 9)."""

from __future__ import annotations

from engine.bill import Bill, born_by
from engine.errors import InputError, Problem
from engine.policy.model import PolicyTable


def check_bill(bill: Bill, table: PolicyTable) -> None:
    """InputError naming every field of ``bill`` that ``table`` does not know, and an
    admission before the patient's birth (the bill meets the person here in a batch)."""
    problems = []
    born = born_by(bill.admission_date, bill.person)
    if born is not None:
        problems.append(born)
    if bill.hospital_level not in table.hospital_levels:
        problems.append(
            Problem(
                "hospital_level",
                bill.hospital_level,
                f"is not a level of policy {table.label}; levels are "
                f"{', '.join(table.hospital_levels)}",
            )
        )
    known = set(table.tags)
    for i, t in enumerate(bill.person.tags):
        if t.tag not in known:
            problems.append(
                Problem(
                    f"person.tags[{i}].tag",
                    t.tag,
                    f"is not a tag of policy {table.label}; tags are "
                    f"{', '.join(table.tags) or '(none)'}",
                )
            )
    if problems:
        raise InputError(problems)
