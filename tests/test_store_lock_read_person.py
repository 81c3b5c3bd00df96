"""``onestop_lock_read_person`` (migration 0016, PostgreSQL): a Settle's early account locks
and their read for one registered person, the household looked up inside the function
instead of by four ``ARRAY(SELECT ... FROM persons ...)`` arguments of ``onestop_lock_read``."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from adapters.store.sql import SqlStore, alembic_config, upgrade
from engine.accounts import LayerAccount, YearAccounts
from engine.bill import Person
from engine.service.ports import account_locks
from engine.service.usecases import SettlementService
from tests.pg import pg_url  # noqa: F401  (fixture)

#: what the statement was before 0016: ``onestop_lock_read`` of four arrays from ``persons``
_BY_ARRAYS = (
    "SELECT * FROM onestop_lock_read("
    "ARRAY(SELECT CAST(household AS text) FROM persons WHERE person_id = %(pid)s), "
    "ARRAY(SELECT CAST(%(y)s AS integer) FROM persons WHERE person_id = %(pid)s), "
    "ARRAY(SELECT CAST(person_id AS text) FROM persons WHERE person_id = %(pid)s), "
    "ARRAY(SELECT CAST(%(y)s AS integer) FROM persons WHERE person_id = %(pid)s))"
)
_BY_PERSON = "SELECT * FROM onestop_lock_read_person(CAST(%(pid)s AS text), CAST(%(y)s AS integer))"


def _rows(c: sa.Connection, sql: str, pid: str, y: int) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in c.exec_driver_sql(sql, {"pid": pid, "y": y})]


def _locked_elsewhere(eng: sa.Engine, table: str, col: str, key: str, y: int) -> bool:
    with eng.connect() as c:
        c.exec_driver_sql("SET lock_timeout = '200ms'")
        try:
            c.exec_driver_sql(  # ``lock``'s statement: waits for a row inserted, not committed
                f"INSERT INTO {table} ({col}, year, admissions) VALUES (%(k)s, %(y)s, 0) "
                f"ON CONFLICT ({col}, year) DO UPDATE SET admissions = {table}.admissions",
                {"k": key, "y": y},
            )
        except sa.exc.OperationalError as err:
            assert "lock timeout" in str(err), err
            return True
        finally:
            c.rollback()
    return False


@pytest.mark.postgres
def test_pg_lock_read_person_reads_and_locks_as_the_arrays_did(pg_url: str) -> None:  # noqa: F811
    """At head the function returns exactly the rows (and order) of ``onestop_lock_read`` over
    the four arrays, for rows that exist, rows that are missing (created at 0 and locked) and
    a person not registered (nothing, nothing created); it holds both rows' locks until the
    transaction ends. Downgraded to 0015 it is gone (the arrays' form still answers);
    upgraded again it is back. A Settle's ``settle_reads`` then holds the locks early."""
    from alembic import command

    from adapters.store.sql.connect import migration_transaction
    from tests.pg import fresh_database

    url = fresh_database(pg_url)
    store = SqlStore(url)
    other = sa.create_engine(url)
    try:
        SettlementService(store.uow).import_registry(
            [Person.model_validate({"id": "p1", "birth_date": "1960-01-01", "household": "h 1"})]
        )
        acc = YearAccounts(
            layers={'q"uote': LayerAccount(1, 2, 3, 4), "b\\s,{x}": LayerAccount(5, 6, 7, -8)},
            admissions=3,
        )
        with store.uow() as u:
            u.lock(*account_locks("p1", "h 1", 2024))
            u.accounts.save_person_year("p1", 2024, acc)
            u.accounts.save_household_year("h 1", 2024, YearAccounts(admissions=1))
            u.commit()
        for pid, y in (("p1", 2024), ("p1", 2031), ("nobody", 2024)):
            with other.connect() as c:
                want = _rows(c, _BY_ARRAYS, pid, y)
                c.rollback()  # the arrays' form created the missing rows: undone
            with other.connect() as c:
                got = _rows(c, _BY_PERSON, pid, y)
                if pid == "p1":
                    assert _locked_elsewhere(other, "person_years", "person_id", pid, y)
                    assert _locked_elsewhere(other, "household_years", "household_id", "h 1", y)
                c.commit()
            assert got == want, (pid, y)
            assert not _locked_elsewhere(other, "person_years", "person_id", pid, y)
        with other.connect() as c:
            assert _rows(c, _BY_PERSON, "p1", 2031) == [
                ("household", "h 1", 2031, None, 0, 0, 0, 0),
                ("person", "p1", 2031, None, 0, 0, 0, 0),
            ]  # created at 0 by the call before, committed
            n = "SELECT count(*) FROM person_years WHERE person_id = 'nobody'"
            assert c.exec_driver_sql(n).scalar() == 0
            c.rollback()
        with store.uow() as u:
            u.settle_reads("r1", "p1", "H", "b1", 2024)
            assert u.holds("person", "p1", 2024) and u.holds("household", "h 1", 2024)
            assert u.accounts.person_year("p1", 2024) == acc
            assert _locked_elsewhere(other, "person_years", "person_id", "p1", 2024)
            u.commit()

        def exists() -> bool:
            with other.connect() as c:
                q = "SELECT count(*) FROM pg_proc WHERE proname = 'onestop_lock_read_person'"
                return bool(c.exec_driver_sql(q).scalar())

        assert exists()
        cfg = alembic_config()
        with migration_transaction(store.engine) as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0015")
        assert not exists()
        with other.connect() as c:
            assert len(_rows(c, _BY_ARRAYS, "p1", 2024)) == 4
            c.rollback()
        upgrade(store.engine)
        assert exists()
    finally:
        other.dispose()
        store.dispose()
