"""PostgreSQL: ``onestop_lock_read``, a Settle's account locks and the read of the accounts
under them in one statement (issue 13 target 7: each statement is psycopg machinery on the
client and a parse/execute on the server; a Settle sent its two lock INSERTs and the read as
three). It takes the row lock of each household-year, then of each person-year, in the order
given (the caller passes them in the global lock order; a missing row is created with
admissions 0, as a missing row reads), then returns the rows of those account-years as
``Accounts.read_many`` reads them: (scope, key, year, layer id or NULL for the admissions
row, the four fields). VOLATILE plpgsql: under READ COMMITTED each statement in it takes a
new snapshot, so the read sees what committed before the locks were granted. A no-op on
SQLite (its one write lock is BEGIN IMMEDIATE).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_FIELDS = ("deductible_used", "eligible_cum", "paid", "selfpay_cum")


def _read(scope: str, years: str, layers: str, col: str, keys: str, ys: str) -> str:
    f = ", ".join(f"l.{x}::bigint" for x in _FIELDS)
    k = f"unnest({keys}, {ys}) AS k(key, yr)"
    return (
        f"SELECT '{scope}'::text, l.{col}::text, l.year, l.layer_id::text, {f} "
        f"FROM {layers} l JOIN {k} ON l.{col} = k.key AND l.year = k.yr "
        f"UNION ALL SELECT '{scope}'::text, y.{col}::text, y.year, NULL::text, "
        f"y.admissions::bigint, 0::bigint, 0::bigint, 0::bigint "
        f"FROM {years} y JOIN {k} ON y.{col} = k.key AND y.year = k.yr"
    )


def _lock(years: str, col: str, keys: str, ys: str) -> str:
    return (
        f"FOR i IN 1 .. coalesce(array_length({keys}, 1), 0) LOOP "
        f"INSERT INTO {years} ({col}, year, admissions) VALUES ({keys}[i], {ys}[i], 0) "
        f"ON CONFLICT ({col}, year) DO UPDATE SET admissions = {years}.admissions; "
        "END LOOP;"
    )


_CREATE = f"""
CREATE FUNCTION onestop_lock_read(hk text[], hy integer[], pk text[], py integer[])
RETURNS TABLE (o_scope text, o_key text, o_year integer, o_layer text,
               o_a bigint, o_b bigint, o_c bigint, o_d bigint)
LANGUAGE plpgsql VOLATILE AS $f$
BEGIN
{_lock("household_years", "household_id", "hk", "hy")}
{_lock("person_years", "person_id", "pk", "py")}
RETURN QUERY
{_read("household", "household_years", "household_year_layers", "household_id", "hk", "hy")}
UNION ALL
{_read("person", "person_years", "person_year_layers", "person_id", "pk", "py")};
END
$f$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_CREATE)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION onestop_lock_read(text[], integer[], text[], integer[])")
