"""PostgreSQL: ``onestop_lock_read_person(person, year)``, a Settle's early account locks and
their read (``settle_reads``) for one registered person: the person's household looked up
once inside the function, then its household-year and the person-year locked (in the global
order: household first) and read, as ``onestop_lock_read`` (0014) does for the four arrays
the statement used to build from ``persons`` by four ``ARRAY(SELECT ... FROM persons ...)``
subqueries (four index lookups of one row, four arrays to build and take apart, two loops
over arrays of one element and two ``unnest`` joins: issue 13 target 7). The same locks (an
existing row: ``FOR NO KEY UPDATE``, no new row version; a missing one created at 0 by the
INSERT, which holds its lock), the same rows in the same order (household layers and year,
then the person's), nothing when the person is not registered. VOLATILE plpgsql: each
statement in it takes a new snapshot, so the read sees what committed before the locks were
granted. ``onestop_lock_read`` stays (``lock`` uses it). The downgrade drops the function.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04
"""

from __future__ import annotations

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

_FIELDS = ("deductible_used", "eligible_cum", "paid", "selfpay_cum")


def _lock(years: str, col: str, key: str) -> str:
    return (
        f"PERFORM 1 FROM {years} WHERE {col} = {key} AND year = p_year FOR NO KEY UPDATE; "
        "IF NOT FOUND THEN "
        f"INSERT INTO {years} ({col}, year, admissions) VALUES ({key}, p_year, 0) "
        f"ON CONFLICT ({col}, year) DO UPDATE SET admissions = {years}.admissions; "
        "END IF;"
    )


def _read(scope: str, years: str, layers: str, col: str, key: str) -> str:
    f = ", ".join(f"l.{x}::bigint" for x in _FIELDS)
    return (
        f"SELECT '{scope}'::text, l.{col}::text, l.year, l.layer_id::text, {f} "
        f"FROM {layers} l WHERE l.{col} = {key} AND l.year = p_year "
        f"UNION ALL SELECT '{scope}'::text, a.{col}::text, a.year, NULL::text, "
        "a.admissions::bigint, 0::bigint, 0::bigint, 0::bigint "
        f"FROM {years} a WHERE a.{col} = {key} AND a.year = p_year"
    )


CREATE = f"""
CREATE FUNCTION onestop_lock_read_person(p_person text, p_year integer)
RETURNS TABLE (o_scope text, o_key text, o_year integer, o_layer text,
               o_a bigint, o_b bigint, o_c bigint, o_d bigint)
LANGUAGE plpgsql VOLATILE AS $f$
DECLARE h text;
BEGIN
SELECT p.household INTO h FROM persons p WHERE p.person_id = p_person;
IF NOT FOUND THEN RETURN; END IF;
{_lock("household_years", "household_id", "h")}
{_lock("person_years", "person_id", "p_person")}
RETURN QUERY
{_read("household", "household_years", "household_year_layers", "household_id", "h")}
UNION ALL
{_read("person", "person_years", "person_year_layers", "person_id", "p_person")};
END
$f$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(CREATE)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION onestop_lock_read_person(text, integer)")
