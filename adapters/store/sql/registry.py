"""The person registry: the persons in force (``persons``, ``person_tags``) and every imported
version of each (``person_versions``: valid from its import, who imported it), never
overwritten."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from adapters.store import schema as T
from adapters.store.sql.rows import _chunks
from engine.bill import Person, TagSpan
from engine.service.ports import PersonVersion

if TYPE_CHECKING:
    from adapters.store.sql.uow import SqlUnitOfWork

_P = T.persons
_TG = T.person_tags
_V = T.person_versions
PERSON_COLS = (
    "p.birth_date, p.household, t.tag, t.valid_from, t.valid_to, p.region, p.version, "
    "p.township, p.village"
)
PERSON = (
    f"SELECT {PERSON_COLS} FROM persons p LEFT OUTER JOIN person_tags t "
    "ON t.person_id = p.person_id WHERE p.person_id = :id ORDER BY t.position"
)
#: ``PERSON`` of several persons: each row its person id, then ``PERSON``'s row
_CURRENT = (
    f"SELECT p.person_id, {PERSON_COLS} FROM persons p LEFT OUTER JOIN person_tags t "
    "ON t.person_id = p.person_id WHERE p.person_id IN :ids ORDER BY p.person_id, t.position"
)
_HISTORY = (
    "SELECT version, valid_from, imported_by, person FROM person_versions "
    "WHERE person_id = :id ORDER BY version"
)


#: (date reader, person id, the ``PERSON`` rows) -> (person, version), as ``versioned_of``
#: built them: the rows are the whole input (any change of the person changes its rows,
#: its version among them), so an entry never goes stale; cleared when full
_READ: dict[tuple[Any, ...], tuple[Person, int | None]] = {}
_READ_MAX = 4096


def _stored_as(p: Person) -> tuple[Any, ...]:
    """What the registry stores of a person (besides its id)."""
    return (p.birth_date, p.household, p.region, p.township, p.village, p.tags)


def _by_person(rows: Any) -> dict[str, list[tuple[Any, ...]]]:
    """The rows of ``_CURRENT`` by person id, each as ``PERSON``'s row (the id dropped)."""
    by: dict[str, list[tuple[Any, ...]]] = {}
    for pid, *row in rows:
        by.setdefault(pid, []).append(tuple(row))
    return by


class Registry:
    def __init__(self, uow: SqlUnitOfWork):
        self.u = uow

    def get_versioned(self, person_id: str) -> tuple[Person, int | None] | None:
        return self.versioned_of(person_id, self.u.run(PERSON, {"id": person_id}).fetchall())

    def versioned_of(self, person_id: str, rows: Sequence[Any]) -> tuple[Person, int | None] | None:
        """The person and version from the rows of ``PERSON`` (none: not registered). The same
        rows give the same (frozen) person: kept by the rows (``_READ``), so a person read again
        skips pydantic's validation (every PreSettle reads one)."""
        if not rows:
            return None
        d = self.u.s.x.date_out
        key = (d, person_id, *map(tuple, rows))
        hit = _READ.get(key)
        if hit is not None:
            return hit
        found = self._person_of(person_id, rows, d)
        if len(_READ) >= _READ_MAX:
            _READ.clear()
        _READ[key] = found
        return found

    @staticmethod
    def _person_of(person_id: str, rows: Sequence[Any], d: Any) -> tuple[Person, int | None]:
        person = Person(
            id=person_id,
            birth_date=d(rows[0][0]),
            household=rows[0][1],
            tags=tuple(
                TagSpan(tag=tag, valid_from=d(vf), valid_to=d(vt))
                for _, _, tag, vf, vt, _, _, _, _ in rows
                if tag is not None
            ),
            region=rows[0][5],
            township=rows[0][7] or "",
            village=rows[0][8] or "",
        )
        return person, rows[0][6]

    def get(self, person_id: str) -> Person | None:
        found = self.get_versioned(person_id)
        return None if found is None else found[0]

    def get_many(self, person_ids: Sequence[str]) -> dict[str, Person]:
        """The persons in force among ``person_ids``: one statement per 500 ids (on the
        driver's cursor, as ``get``). A person whose rows were read before is the one already
        built (``versioned_of``, whose ``_READ`` ``get`` shares): the packed stream reads the
        same ~64 persons every message, and building each anew (pydantic) was most of this read."""
        out: dict[str, Person] = {}
        for ids in _chunks(list(dict.fromkeys(person_ids)), 500):
            sql = _CURRENT.replace(":ids", "(" + ", ".join(f":i{k}" for k in range(len(ids))) + ")")
            got = self.u.run(sql, {f"i{k}": v for k, v in enumerate(ids)}).fetchall()
            for pid, rows in _by_person(got).items():
                found = self.versioned_of(pid, rows)
                assert found is not None  # rows: registered
                out[pid] = found[0]
        return out

    def _unchanged(self, persons: Sequence[Person]) -> set[str]:
        """Ids of the persons stored exactly so, with a version: importing them again adds no
        version (a server start imports its registry file each time)."""
        d = self.u.s.x.date_out
        rows = self.u.conn(write=True).execute(
            sa.text(_CURRENT).bindparams(sa.bindparam("ids", expanding=True)),
            {"ids": [p.id for p in persons]},
        )
        stored = _by_person(rows)
        same = set()
        for p in persons:
            got = stored.get(p.id)
            if got is None:
                continue
            q, version = self._person_of(p.id, got, d)
            if version is not None and _stored_as(p) == _stored_as(q):
                same.add(p.id)
        return same

    def history(self, person_id: str) -> list[PersonVersion]:
        x = self.u.s.x
        return [
            PersonVersion(
                Person.model_validate(x.json_out(data)),
                version,
                x.ts_at(at),
                by,
            )
            for version, at, by, data in self.u.run(_HISTORY, {"id": person_id}).fetchall()
        ]

    def in_region(
        self, region: str, township: str | None = None, village: str | None = None
    ) -> list[Person]:
        return self._persons(self._place(region, township, village), _P.c.person_id)

    def page_in_region(
        self,
        region: str,
        township: str | None,
        village: str | None,
        after: tuple[str, str, str] | None,
        limit: int,
    ) -> list[Person]:
        """A keyset page on (township, village, person id): the ids first (a page of persons,
        not of person-and-tag rows), then those persons with their tags."""
        cond = self._place(region, township, village)
        if after is not None:
            key = sa.tuple_(_P.c.township, _P.c.village, _P.c.person_id)
            cond.append(key > sa.tuple_(*(sa.literal(x) for x in after)))
        ids = (
            sa.select(_P.c.person_id).where(*cond)
            .order_by(_P.c.township, _P.c.village, _P.c.person_id).limit(limit)
        )  # fmt: skip
        page = [r.person_id for r in self.u.conn().execute(ids)]
        if not page:
            return []
        return self._persons(
            [_P.c.person_id.in_(page)], _P.c.township, _P.c.village, _P.c.person_id
        )

    @staticmethod
    def _place(region: str, township: str | None, village: str | None) -> list[Any]:
        cond: list[Any] = [_P.c.region == region]
        if township is not None:
            cond.append(_P.c.township == township)
        if village is not None:
            cond.append(_P.c.village == village)
        return cond

    def _persons(self, cond: list[Any], *order: Any) -> list[Person]:
        q = (
            sa.select(_P, _TG.c.tag, _TG.c.valid_from.label("tag_from"),
                      _TG.c.valid_to.label("tag_to"))
            .select_from(_P.outerjoin(_TG, _TG.c.person_id == _P.c.person_id))
            .where(*cond)
            .order_by(*order, _TG.c.position)
        )  # fmt: skip
        out: dict[str, dict[str, Any]] = {}
        tags: dict[str, list[TagSpan]] = {}
        for r in self.u.conn().execute(q):
            if r.person_id not in out:
                out[r.person_id] = {
                    "id": r.person_id, "birth_date": r.birth_date, "household": r.household,
                    "region": r.region, "township": r.township, "village": r.village,
                }  # fmt: skip
                tags[r.person_id] = []
            if r.tag is not None:
                tags[r.person_id].append(
                    TagSpan(tag=r.tag, valid_from=r.tag_from, valid_to=r.tag_to)
                )
        return [Person.model_construct(**d, tags=tuple(tags[pid])) for pid, d in out.items()]

    def upsert(self, persons: list[Person], by: str = "local", at: datetime | None = None) -> int:
        if not persons:
            return 0
        at = at or datetime.now(UTC)
        c = self.u.conn(write=True)
        changed = 0
        for chunk in _chunks(persons):
            same = self._unchanged(chunk)
            part = [p for p in chunk if p.id not in same]
            if not part:
                continue
            changed += len(part)
            ids = [p.id for p in part]
            latest = dict(
                c.execute(
                    sa.select(_V.c.person_id, sa.func.max(_V.c.version))
                    .where(_V.c.person_id.in_(ids))
                    .group_by(_V.c.person_id)
                ).all()
            )
            version = {p.id: (latest.get(p.id) or 0) + 1 for p in part}
            c.execute(
                self.u.s.upsert(_P),
                [
                    {
                        "person_id": p.id,
                        "birth_date": p.birth_date,
                        "household": p.household,
                        "region": p.region,
                        "version": version[p.id],
                        "township": p.township,
                        "village": p.village,
                    }
                    for p in part
                ],
            )
            c.execute(
                _V.insert(),
                [
                    {
                        "person_id": p.id,
                        "version": version[p.id],
                        "valid_from": at,
                        "imported_by": by[:255],
                        "person": p.model_dump(mode="json"),
                        "township": p.township,
                        "village": p.village,
                    }
                    for p in part
                ],
            )
            c.execute(_TG.delete().where(_TG.c.person_id.in_(ids)))
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
        return changed
