"""Input checks and limits of the use cases: request keys, dates and date ranges, policy
source names, import sizes.
"""

from __future__ import annotations

from datetime import date

from engine.errors import InputError, LimitExceeded, Problem
from engine.validation import ID_RULE, bad_id_chars


def check_key(field: str, value: str, limit: int = 128) -> None:
    """A request id or lookup key that would reach SQL: InputError if it holds a control
    character (NUL makes PostgreSQL fail) or is longer than ``limit``. Empty is the caller's
    business (it often means "not given")."""
    if bad_id_chars(value):
        raise InputError.one(field, value, ID_RULE)
    if len(value) > limit:
        raise InputError.one(field, value, f"is {len(value)} characters long; at most {limit}")


def key_problems(field: str, value: str) -> list[Problem]:
    """What ``check_key`` would refuse in ``value``, as problems (none: []): a message of many
    bills names every bad request id before any bill of it is settled (so a bad id late in a
    message does not leave the earlier bills settled). An empty id is the caller's business."""
    try:
        check_key(field, value)
    except InputError as err:
        return err.problems
    return []


#: Limits of the use cases (the gRPC server states them with its own: adapters/grpc/limits.py).
MAX_VERSIONS_PER_REGION = 1_000  # stored policy versions of one region
MAX_PERSONS_PER_IMPORT = 100_000  # persons in one import_registry call
MAX_SOURCE_NAME = 200  # characters of a policy table's source name
MAX_PAGE_SIZE = 1_000  # settlements per page of ``list``
DEFAULT_PAGE_SIZE = 100
MAX_RECONCILE_DAYS = 366  # days in one reconciliation or totals range
MAX_HOSPITAL_LINES = 200_000  # lines of a hospital's own settlement list (3202)


def parse_day(field: str, value: str | date) -> date:
    """A date YYYY-MM-DD (an Asia/Shanghai calendar date); InputError naming ``field``."""
    if isinstance(value, date):
        return value
    try:
        if len(value) != 10:
            raise ValueError
        return date.fromisoformat(value)
    except (ValueError, TypeError):
        raise InputError.one(
            field, value, "is not a date YYYY-MM-DD (a calendar date in Asia/Shanghai)"
        ) from None


def date_range(start: str | date, end: str | date) -> tuple[date, date]:
    """from_date..to_date inclusive: both dates, in order, at most MAX_RECONCILE_DAYS."""
    a, b = parse_day("from_date", start), parse_day("to_date", end)
    if b < a:
        raise InputError.one("to_date", b.isoformat(), f"is before from_date {a.isoformat()}")
    days = (b - a).days + 1
    if days > MAX_RECONCILE_DAYS:
        raise LimitExceeded("to_date", "MAX_RECONCILE_DAYS", MAX_RECONCILE_DAYS, days,
                            "ask for a shorter range (a month at a time)")  # fmt: skip
    return a, b


def check_source_name(name: str) -> None:
    """A policy table's source name is stored and shown: printable text, 1 to 200 characters."""
    if not name or len(name) > MAX_SOURCE_NAME:
        raise InputError.one("source_name", name, f"must be 1 to {MAX_SOURCE_NAME} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise InputError.one(
            "source_name", name, "holds a control character (NUL, newline, ...); use plain text"
        )


def check_persons_count(n: int) -> None:
    if n > MAX_PERSONS_PER_IMPORT:
        raise LimitExceeded("persons", "MAX_PERSONS_PER_IMPORT", MAX_PERSONS_PER_IMPORT, n)
