"""PostgreSQL: ``onestop_lock_read`` takes the row lock of an account-year that exists with
``SELECT ... FOR NO KEY UPDATE`` instead of ``INSERT ... ON CONFLICT DO UPDATE SET
admissions = admissions``, which wrote a new version of the row (a heap tuple, its WAL
record, a dead tuple to prune) on every Settle for each of its two account-years, only to
hold the lock; the Settle's writes then update the row anyway (issue 13 target 7). A missing
row is still created (admissions 0) by the INSERT, which also holds its lock; a row inserted
by another transaction meanwhile makes the INSERT wait and lock it, as before. The lock is
the one the update took (NO KEY UPDATE: the key columns are never written), taken in the
order given, and the read after it still sees what committed before it was granted (each
statement of the VOLATILE function takes a new snapshot). The downgrade restores 0011's body.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03
"""

from __future__ import annotations

import importlib

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

_0011 = importlib.import_module("adapters.store.migrations.versions.0011_lock_read_function")


def _lock(years: str, col: str, keys: str, ys: str) -> str:
    return (
        f"FOR i IN 1 .. coalesce(array_length({keys}, 1), 0) LOOP "
        f"PERFORM 1 FROM {years} WHERE {col} = {keys}[i] AND year = {ys}[i] "
        "FOR NO KEY UPDATE; "
        "IF NOT FOUND THEN "
        f"INSERT INTO {years} ({col}, year, admissions) VALUES ({keys}[i], {ys}[i], 0) "
        f"ON CONFLICT ({col}, year) DO UPDATE SET admissions = {years}.admissions; "
        "END IF; END LOOP;"
    )


_READ = _0011._read  # the read under the locks is 0011's

CREATE = f"""
CREATE OR REPLACE FUNCTION onestop_lock_read(hk text[], hy integer[], pk text[], py integer[])
RETURNS TABLE (o_scope text, o_key text, o_year integer, o_layer text,
               o_a bigint, o_b bigint, o_c bigint, o_d bigint)
LANGUAGE plpgsql VOLATILE AS $f$
BEGIN
{_lock("household_years", "household_id", "hk", "hy")}
{_lock("person_years", "person_id", "pk", "py")}
RETURN QUERY
{_READ("household", "household_years", "household_year_layers", "household_id", "hk", "hy")}
UNION ALL
{_READ("person", "person_years", "person_year_layers", "person_id", "pk", "py")};
END
$f$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(CREATE)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_0011._CREATE.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1))
