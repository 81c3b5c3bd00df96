"""Year-to-date accounts of persons and households."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from adapters.store.sql.rows import _flat, _values, compact_bytes, pg_array
from engine.accounts import ACCOUNT_FIELDS, LayerAccount, YearAccounts

if TYPE_CHECKING:
    from adapters.store.sql.uow import SqlUnitOfWork

_FOUR = ", ".join(ACCOUNT_FIELDS)

_ACC_COLS = ("k", "y", "l", *ACCOUNT_FIELDS)


def _account_sql(years: str, layers: str, col: str) -> tuple[str, tuple[str, str], str, str, str]:
    read = (
        f"SELECT layer_id, {_FOUR} FROM {layers} WHERE {col} = :k AND year = :y "
        f"UNION ALL SELECT NULL, admissions, 0, 0, 0 FROM {years} WHERE {col} = :k AND year = :y"
    )
    upsert_layers = (  # + VALUES ... + ON CONFLICT
        f"INSERT INTO {layers} ({col}, year, layer_id, {_FOUR}) VALUES ",
        f" ON CONFLICT ({col}, year, layer_id) DO UPDATE SET "
        + ", ".join(f"{f} = excluded.{f}" for f in ACCOUNT_FIELDS),
    )
    delete_layer = f"DELETE FROM {layers} WHERE {col} = :k AND year = :y AND layer_id = :l"
    # PostgreSQL: every changed layer in one statement of constant text (one JSON text of
    # the rows, json_to_recordset: integers read by bigint's input)
    upsert_layers_pg = (
        f"INSERT INTO {layers} ({col}, year, layer_id, {_FOUR}) "
        f"SELECT :k, :y, v.l, {', '.join('v.' + f for f in ACCOUNT_FIELDS)} "
        "FROM json_to_recordset(CAST(:rows AS json)) AS v(l text, "
        + ", ".join(f"{f} bigint" for f in ACCOUNT_FIELDS)
        + ")"
        + upsert_layers[1]
    )
    upsert_year = (
        f"INSERT INTO {years} ({col}, year, admissions) VALUES (:k, :y, :a) "
        f"ON CONFLICT ({col}, year) DO UPDATE SET admissions = excluded.admissions"
    )
    return read, upsert_layers, delete_layer, upsert_year, upsert_layers_pg


#: PostgreSQL: the locks of person- and household-years and their read under them in one
#: statement (the function of migration 0011; arrays: household keys and years, person's)
_LOCK_READ = (
    "SELECT * FROM onestop_lock_read(CAST(:hk AS text[]), CAST(:hy AS integer[]), "
    "CAST(:pk AS text[]), CAST(:py AS integer[]))"
)

#: keys read in one statement (``Accounts.read_many``): well below SQLite's 32,766 parameters
_MANY = 500

_TABLES = {
    "person": ("person_years", "person_year_layers", "person_id"),
    "household": ("household_years", "household_year_layers", "household_id"),
}


def _many_sql(scope: str, n_keys: int, n_years: int) -> str:
    """The read of ``_account_sql`` for ``n_keys`` keys and ``n_years`` years of one scope at
    once (parameters ``:<scope>_k<i>``, ``:<scope>_y<j>``), each row led by its scope, key and
    year; ``UNION ALL`` joins those of several scopes into one statement."""
    years, layers, col = _TABLES[scope]
    ks = ", ".join(f":{scope}_k{i}" for i in range(n_keys))
    ys = ", ".join(f":{scope}_y{i}" for i in range(n_years))
    where = f"WHERE {col} IN ({ks}) AND year IN ({ys})"
    return (
        f"SELECT '{scope}', {col}, year, layer_id, {_FOUR} FROM {layers} {where} "
        f"UNION ALL SELECT '{scope}', {col}, year, NULL, admissions, 0, 0, 0 FROM {years} {where}"
    )


class Accounts:
    """Person-year and household-year accounts: one row per key, year and layer, and one row
    per key and year for the admissions count. Saves write only what changed since the last
    read of the key in this transaction."""

    _SQL: ClassVar[dict[str, tuple[str, tuple[str, str], str, str, str]]] = {
        scope: _account_sql(*tables) for scope, tables in _TABLES.items()
    }

    def __init__(self, uow: SqlUnitOfWork):
        self.u = uow
        self._seen: dict[tuple[str, str, int], YearAccounts] = {}  # last read or saved
        self._fresh: set[tuple[str, str, int]] = set()  # ... and still current (lock held)

    def forget(self) -> None:
        self._seen.clear()
        self._fresh.clear()

    def seen(self) -> dict[tuple[str, str, int], YearAccounts]:
        """The account-years read or saved in this transaction, by (scope, key, year)."""
        return self._seen

    def keep_current(self, seen: dict[tuple[str, str, int], YearAccounts]) -> None:
        """These account-years, read before, are as stored in this transaction's snapshot
        (a trial's, unchanged since: ``trialreads``): its reads of them need no statement."""
        self._seen.update(seen)
        self._fresh.update(seen)

    @staticmethod
    def _from_rows(rows: Iterable[Any]) -> YearAccounts:
        adm = 0
        acc: dict[str, LayerAccount] = {}
        for lid, a, b, c, d in rows:
            if lid is None:
                adm = int(a)
            else:
                acc[lid] = LayerAccount(int(a), int(b), int(c), int(d))
        return YearAccounts(layers=dict(sorted(acc.items())), admissions=adm)

    def _read(self, scope: str, key: str, year: int) -> YearAccounts:
        k = (scope, key, year)
        if k in self._fresh:
            return self._seen[k]
        ya = self._from_rows(self.u.run(self._SQL[scope][0], {"k": key, "y": year}))
        self._keep(k, ya)  # fresh if read under its lock: nobody else changes it
        return ya

    def read_many(
        self, keys: Iterable[tuple[str, str, int]]
    ) -> dict[tuple[str, str, int], YearAccounts]:
        """Read these (scope, key, year) account-years now, so that the reads that follow in
        this transaction need none while the locks hold; returns them. One statement for up
        to ``_MANY`` of them, both scopes (the packed stream's trials read 64 person-years and
        32 household-years a message: 96 statements before); on PostgreSQL it goes with the
        statements waiting to go (a settle's locks): one round trip."""
        want = list(dict.fromkeys(keys))
        todo = [k for k in want if k not in self._fresh]
        for i in range(0, len(todo), _MANY):
            self._read_chunk(todo[i : i + _MANY])
        return {k: self._seen[k] for k in want}

    def _read_chunk(self, keys: list[tuple[str, str, int]]) -> None:
        """These account-years in one statement (of each scope every year asked for of every
        key asked for, the pairs not asked for dropped)."""
        unknown = {sc for sc, _, _ in keys} - _TABLES.keys()
        if unknown:
            raise ValueError(f"account scope {sorted(unknown)[0]!r}: person or household")
        parts: list[str] = []
        params: dict[str, Any] = {}
        for scope in _TABLES:
            ids = list(dict.fromkeys(k for sc, k, _ in keys if sc == scope))
            if not ids:
                continue
            years = sorted({y for sc, _, y in keys if sc == scope})
            parts.append(_many_sql(scope, len(ids), len(years)))
            params.update({f"{scope}_k{i}": v for i, v in enumerate(ids)})
            params.update({f"{scope}_y{i}": v for i, v in enumerate(years)})
        (got,) = self.u.run_many([(" UNION ALL ".join(parts), params)])
        self.take(keys, got)

    def lock_read(self, keys: Sequence[tuple[str, str, int]]) -> None:
        """PostgreSQL: take the locks of these person- and household-years (the caller's
        order: the global one) and read them under the locks in one statement
        (``onestop_lock_read``, migration 0011), sent with the statements waiting to go;
        the caller has marked them held."""
        hh = [k for k in keys if k[0] == "household"]
        pp = [k for k in keys if k[0] == "person"]
        if len(hh) + len(pp) != len(keys):
            raise ValueError(f"lock_read: person or household account-years only: {keys!r}")
        params = {
            "hk": pg_array([k for _, k, _ in hh]),
            "hy": pg_array([y for _, _, y in hh]),
            "pk": pg_array([k for _, k, _ in pp]),
            "py": pg_array([y for _, _, y in pp]),
        }
        (got,) = self.u.run_many([(_LOCK_READ, params)])
        self.take(keys, got)

    def take(self, keys: Sequence[tuple[str, str, int]], got: Iterable[Any]) -> None:
        """Keep the account-years ``keys`` from the rows of a read (scope, key, year, layer
        id or None, the four fields); rows of account-years not asked for are dropped."""
        rows: dict[tuple[str, str, int], list[Any]] = {k: [] for k in keys}
        for scope, key, year, *row in got:
            found = rows.get((scope, key, year))
            if found is not None:
                found.append(row)
        for k, rs in rows.items():
            self._keep(k, self._from_rows(rs))

    def _keep(self, k: tuple[str, str, int], ya: YearAccounts) -> None:
        self._seen[k] = ya
        if self.u.holds(*k):
            self._fresh.add(k)

    def _save(self, scope: str, key: str, year: int, acc: YearAccounts) -> None:
        _, upsert_layers, delete_layer, upsert_year, upsert_layers_pg = self._SQL[scope]
        self.u._driver(write=True)
        k0 = (scope, key, year)
        before = self._seen[k0] if k0 in self._fresh else self._read(scope, key, year)
        changed = [
            {"k": key, "y": year, "l": lid, **dict(zip(ACCOUNT_FIELDS, v.as_tuple(), strict=True))}
            for lid, v in acc.layers.items()
            if before.layers.get(lid) != v
        ]
        k = {"k": key, "y": year, "a": acc.admissions}
        admissions = acc.admissions != before.admissions
        if changed and not self.u.s.sqlite:
            k["rows"] = compact_bytes(changed).decode()
            # the admissions row rides along in the same statement
            ctes = ((f"{scope}_year", upsert_year),) if admissions else ()
            self.u.defer(upsert_layers_pg, k, ctes=ctes)
            admissions = False
        elif changed:
            head, tail = upsert_layers
            sql = head + _values(_ACC_COLS, len(changed)) + tail
            self.u.defer(sql, _flat(changed, _ACC_COLS))
        for lid in before.layers:
            if lid not in acc.layers:
                self.u.defer(delete_layer, {"k": key, "y": year, "l": lid})
        if admissions:
            self.u.defer(upsert_year, k)
        # what this transaction wrote is current until it ends: our row locks keep others out
        self._seen[(scope, key, year)] = acc
        self._fresh.add((scope, key, year))

    def person_year(self, person_id: str, year: int) -> YearAccounts:
        return self._read("person", person_id, year)

    def household_year(self, household_id: str, year: int) -> YearAccounts:
        return self._read("household", household_id, year)

    def save_person_year(self, person_id: str, year: int, acc: YearAccounts) -> None:
        self._save("person", person_id, year, acc)

    def save_household_year(self, household_id: str, year: int, acc: YearAccounts) -> None:
        self._save("household", household_id, year, acc)
