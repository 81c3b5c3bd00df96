"""The person registry: importing persons, a person and their imported versions."""

from __future__ import annotations

from collections.abc import Callable

from engine.bill import Person
from engine.errors import InputError, NotFound, Problem
from engine.service import ledger
from engine.service.base import ServiceBase
from engine.service.inputs import check_key, check_persons_count
from engine.service.ports import PersonVersion
from engine.service.versions import effective


class Registry(ServiceBase):
    """Registry use cases of ``SettlementService``."""

    # --- registry -------------------------------------------------------------------------
    def import_registry(
        self,
        persons: list[Person],
        *,
        principal: str = "local",
        check: Callable[[int, Person, Person | None], None] | None = None,
    ) -> int:
        """Insert or replace persons; the number inserted or replaced (a person stored exactly
        so is neither, and an import that changes nobody writes no ledger event: a replay).
        ``check(i, new, stored)`` (the caller's scope check) is called for each person with
        its stored version, in the transaction that writes them; whatever it raises refuses
        the whole import."""
        check_persons_count(len(persons))
        seen: dict[str, int] = {}
        for i, p in enumerate(persons):
            if p.id in seen:
                raise InputError.one(
                    f"persons[{i}].id", p.id, f"is given twice (also persons[{seen[p.id]}])"
                )
            seen[p.id] = i
        with self._uow() as uow:
            declared = {tag for v in effective(uow.policies.all()) for tag in v.table.tags}
            undeclared = [
                Problem(f"persons[{i}].tags[{j}]", t.tag,
                        f"is not a tag declared by the policy tables in force "
                        f"({', '.join(sorted(declared)) or 'none: load the policy tables first'})")
                for i, p in enumerate(persons)
                for j, t in enumerate(p.tags)
                if t.tag not in declared
            ]  # fmt: skip
            if undeclared:
                raise InputError(undeclared)
            uow.lock(("policy", "~registry", 0))  # imports number versions in turn
            if check is not None:
                for i, p in enumerate(persons):
                    check(i, p, uow.registry.get(p.id))
            n = uow.registry.upsert(persons, by=principal, at=self._clock())
            if n:  # every person already stored exactly so: a replay, no state change, no event
                ledger.append(uow, ledger.registry_event(persons, self._clock(), principal))
            uow.commit()
        return n

    def person_history(self, person_id: str) -> list[PersonVersion]:
        """Every imported version of the person, oldest first (each with when and by whom)."""
        with self._uow() as uow:
            return uow.registry.history(person_id)

    def person(self, person_id: str) -> Person:
        check_key("person_id", person_id)
        with self._uow() as uow:
            p = uow.registry.get(person_id)
        if p is None:
            raise NotFound("person", person_id, "import the person registry first")
        return p
