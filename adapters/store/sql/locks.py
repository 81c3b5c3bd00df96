"""The account locks' SQL (PostgreSQL): a row lock on the key's row in ``person_years`` or
``household_years`` (a policy region: the row ``("policy:<region>", 0)`` of ``household_years``;
year 0 is no accounting year), held until the transaction ends. One statement per key creates
the row if it is missing (admissions 0, which reads as no accounts) and locks it either way,
changing nothing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from engine.service.ports import LockKey


def _lock_sql(years: str, col: str) -> str:
    """PostgreSQL: create the year's row if missing (admissions 0, as a missing row reads) and,
    either way, hold its row lock until the transaction ends; changes no value."""
    return (
        f"INSERT INTO {years} ({col}, year, admissions) VALUES (:k, :y, 0) "
        f"ON CONFLICT ({col}, year) DO UPDATE SET admissions = {years}.admissions"
    )


_LOCK = {
    "person": _lock_sql("person_years", "person_id"),
    "household": _lock_sql("household_years", "household_id"),
    # a region's policy writes: the row ("policy:<region>", year 0) of household_years, as
    # before (year 0 is no accounting year, so no household's accounts share it)
    "policy": _lock_sql("household_years", "household_id"),
    # a hard-budget fund-year: its fund_used row (created at 0 if missing), as for accounts
    "fund": (
        "INSERT INTO fund_used (region, fund_code, year, used) VALUES (:r, :c, :y, 0) "
        "ON CONFLICT (region, fund_code, year) DO UPDATE SET used = fund_used.used"
    ),
}


#: the lock kinds that are account-years (``onestop_lock_read`` takes them)
_ACCOUNT_KINDS = ("household", "person")


def _lock_read_keys(new: list[LockKey], read: Sequence[tuple[str, str, int]]) -> list[LockKey]:
    """PostgreSQL: the new account locks, in order, when they are exactly the account-years
    to read and every other new lock sorts before them (fund locks), so that one
    ``onestop_lock_read`` after the others takes them in the global order and reads them;
    else [] (the locks one statement each, the read after)."""
    acc = [k for k in new if k[0] in _ACCOUNT_KINDS]
    if not acc or set(acc) != set(read):
        return []
    if any(k[0] not in _ACCOUNT_KINDS and k > acc[0] for k in new):
        return []  # a policy lock sorts after them
    return acc


#: PostgreSQL, a Settle's reads: the registered person's household-year and person-year of
#: ``:y`` locked and read under the locks (``onestop_lock_read_person``, migration 0016: the
#: household looked up inside it; nothing when the person is not registered), before
#: ``_SETTLE_READS`` in the same round trip
_LOCK_PERSON = "SELECT * FROM onestop_lock_read_person(CAST(:pid AS text), CAST(:y AS integer))"

#: PostgreSQL, a group's reads (``settle_reads_many``): the registered persons' household-years
#: and person-years of ``:py`` (one year a person of ``:pk``) locked and read by
#: ``onestop_lock_read`` in the global order (households, then persons, each by key in code
#: point order, as Python sorts them, then year), before the ``_SETTLE_READS`` in the same
#: round trip; an unregistered person locks nothing
_LOCK_PERSONS = (
    "WITH c AS (SELECT DISTINCT c.pid, c.y, p.household AS h FROM unnest(CAST(:pk AS text[]), "
    "CAST(:py AS integer[])) AS c(pid, y) JOIN persons p ON p.person_id = c.pid), "
    "hh AS (SELECT DISTINCT h, y FROM c) SELECT * FROM onestop_lock_read("
    'ARRAY(SELECT h FROM hh ORDER BY h COLLATE "C", y), '
    'ARRAY(SELECT y FROM hh ORDER BY h COLLATE "C", y), '
    'ARRAY(SELECT pid FROM c ORDER BY pid COLLATE "C", y), '
    'ARRAY(SELECT y FROM c ORDER BY pid COLLATE "C", y))'
)


def _lock_params(kind: str, key: str, year: int) -> dict[str, Any]:
    if kind == "fund":
        region, _, code = key.rpartition("/")
        return {"r": region, "c": code, "y": year}
    return {"k": f"policy:{key}" if kind == "policy" else key, "y": year}
