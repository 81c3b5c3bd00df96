"""The person registry."""

from __future__ import annotations

from typing import TYPE_CHECKING

from adapters.store import schema as T
from adapters.store.sql.rows import _chunks
from engine.bill import Person, TagSpan

if TYPE_CHECKING:
    from adapters.store.sql.uow import SqlUnitOfWork

_P = T.persons
_TG = T.person_tags
_PERSON = (
    "SELECT p.birth_date, p.household, t.tag, t.valid_from, t.valid_to, p.region FROM persons p "
    "LEFT OUTER JOIN person_tags t ON t.person_id = p.person_id "
    "WHERE p.person_id = :id ORDER BY t.position"
)


class Registry:
    def __init__(self, uow: SqlUnitOfWork):
        self.u = uow

    def get(self, person_id: str) -> Person | None:
        rows = self.u.run(_PERSON, {"id": person_id}).fetchall()
        if not rows:
            return None
        d = self.u.s.x.date_out
        return Person(
            id=person_id,
            birth_date=d(rows[0][0]),  # type: ignore[arg-type]
            household=rows[0][1],
            tags=tuple(
                TagSpan(tag=tag, valid_from=d(vf), valid_to=d(vt))
                for _, _, tag, vf, vt, _ in rows
                if tag is not None
            ),
            region=rows[0][5],
        )

    def upsert(self, persons: list[Person]) -> int:
        if not persons:
            return 0
        c = self.u.conn(write=True)
        for part in _chunks(persons):
            c.execute(
                self.u.s.upsert(_P),
                [
                    {
                        "person_id": p.id,
                        "birth_date": p.birth_date,
                        "household": p.household,
                        "region": p.region,
                    }
                    for p in part
                ],
            )
            c.execute(_TG.delete().where(_TG.c.person_id.in_([p.id for p in part])))
            tags = [
                {
                    "person_id": p.id,
                    "position": i,
                    "tag": t.tag,
                    "valid_from": t.valid_from,
                    "valid_to": t.valid_to,
                }
                for p in part
                for i, t in enumerate(p.tags)
            ]
            if tags:
                c.execute(_TG.insert(), tags)
        return len(persons)
