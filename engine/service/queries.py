"""The read side of settlements: one settlement, a person's settlements (in pages, with
keyset page tokens), a person's accounts.
"""

from __future__ import annotations

import base64
import builtins
import json
from collections.abc import Callable, Sequence
from datetime import datetime

from engine.accounts import YearAccounts
from engine.bill import Person
from engine.errors import InputError, NotFound
from engine.service.base import ServiceBase
from engine.service.inputs import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, check_key
from engine.service.ports import SettlementRecord


def _page_token(person_id: str, year: int | None, created_at: datetime, sid: str) -> str:
    raw = json.dumps([1, person_id, year, created_at.isoformat(), sid], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _read_token(token: str, person_id: str, year: int | None) -> tuple[datetime, str]:
    """(created_at, settlement_id) of the token's last settlement; InputError naming
    page_token when it is not a token of this listing (same person and year)."""
    bad = InputError.one(
        "page_token",
        token,
        "is not a next_page_token of this listing (same person_id and year); "
        "start again with an empty page_token",
    )
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        v, pid, y, created, sid = json.loads(raw)
        at = datetime.fromisoformat(created)
    except (ValueError, TypeError):
        raise bad from None
    if v != 1 or pid != person_id or y != year or not isinstance(sid, str) or at.tzinfo is None:
        raise bad
    return at, sid


class Queries(ServiceBase):
    """Query use cases of ``SettlementService``."""

    # --- queries --------------------------------------------------------------------------
    def get(self, settlement_id: str = "", request_id: str = "") -> SettlementRecord:
        check_key("settlement_id", settlement_id)
        check_key("request_id", request_id)
        with self._uow() as uow:
            return self._find(uow, settlement_id, request_id)

    def list(self, person_id: str, year: int | None = None) -> list[SettlementRecord]:
        """Every settlement of the person (in the year), in commit order."""
        check_key("person_id", person_id)
        with self._uow() as uow:
            return uow.settlements.for_person(person_id, year)

    def list_page(
        self,
        person_id: str,
        year: int | None = None,
        page_size: int = 0,
        page_token: str = "",
        visible: Callable[[SettlementRecord], bool] | None = None,
    ) -> tuple[builtins.list[SettlementRecord], str]:
        """One page of ``list``: at most ``page_size`` settlements (0 = DEFAULT_PAGE_SIZE; at
        most MAX_PAGE_SIZE) after the one ``page_token`` names, and the next page's token
        ('' after the last page). A token names the last settlement of its page (created_at,
        settlement_id): pages stay exact while settlements are added. With ``visible`` (the
        caller's scope), only the settlements it accepts are listed and counted: a page is
        full unless it is the last, so nothing hints at the others."""
        check_key("person_id", person_id)
        if page_size < 0:
            raise InputError.one(
                "page_size", page_size, "is negative; give 0 (the default) or more"
            )
        size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        after = _read_token(page_token, person_id, year) if page_token else None
        with self._uow() as uow:
            if visible is None:
                recs = uow.settlements.for_person(person_id, year, limit=size + 1, after=after)
            else:
                recs = []
                while len(recs) <= size:
                    chunk = uow.settlements.for_person(person_id, year, limit=size + 1, after=after)
                    recs += [r for r in chunk if visible(r)]
                    if len(chunk) <= size:
                        break
                    after = (chunk[-1].created_at, chunk[-1].settlement_id)
        if len(recs) <= size:
            return recs, ""
        recs = recs[:size]
        last = recs[-1]
        return recs, _page_token(person_id, year, last.created_at, last.settlement_id)

    def accounts(self, person_id: str, year: int) -> tuple[Person, YearAccounts, YearAccounts]:
        check_key("person_id", person_id)
        with self._uow() as uow:
            person = uow.registry.get(person_id)
            if person is None:
                raise NotFound("person", person_id, "import the person registry first")
            return (
                person,
                uow.accounts.person_year(person_id, year),
                uow.accounts.household_year(person.household, year),
            )

    def accounts_many(
        self, keys: Sequence[tuple[str, int]]
    ) -> dict[tuple[str, int], tuple[Person, YearAccounts, YearAccounts] | None]:
        """``accounts`` of many (person, year) pairs in one unit of work (one snapshot, the
        registry entries in one read, the account-years in one ``read_many``): None for a
        person not in the registry. The stream's trials read a message's person-years so, as
        trials (``_trial_uow``: on SQLite a kept connection per thread, whose reads are kept
        while nothing else commits, so that a message repeating the last one's person-years
        runs no read of them; ``adapters.store.sql.trialreads``). The answer itself is kept
        there too (``UnitOfWork.kept``): the same keys as the last call's (SQLite: on this
        thread; PostgreSQL: in this process), with nothing committed elsewhere since, get the
        same objects without building them again (~0.2 ms of Python for a message's 64
        person-years)."""
        want = tuple(keys)
        out: dict[tuple[str, int], tuple[Person, YearAccounts, YearAccounts] | None] = {}
        persons: dict[str, Person | None] = {}
        with self._trial_uow() as uow:
            kept = uow.kept()
            last = None if kept is None else kept.get("accounts_many")
            if last is not None and last[0] == want:  # (its keys were checked when kept)
                return dict(last[1])
            for pid, _ in keys:
                check_key("person_id", pid)
            persons.update(uow.registry.get_many([pid for pid, _ in keys]))
            known = [(p, y, person) for p, y in keys if (person := persons.get(p)) is not None]
            read = uow.accounts.read_many(
                [("person", p, y) for p, y, _ in known]
                + [("household", person.household, y) for _, y, person in known]
            )
        for pid, year in keys:
            person = persons.get(pid)
            if person is None:
                out[(pid, year)] = None
                continue
            out[(pid, year)] = (
                person,
                read[("person", pid, year)],
                read[("household", person.household, year)],
            )
        if kept is not None:
            kept["accounts_many"] = (want, dict(out))  # built from this snapshot's reads
        return out
