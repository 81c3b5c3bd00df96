"""Bills are per hospital: settlements get a ``hospital`` column (NHSA fixmedins_code) and a
partial unique index: at most one settled (not reversed) settlement per (hospital, bill_id).

Existing rows take the hospital from their stored bill JSON where it has one, else ''. The
upgrade refuses (and changes nothing) if a bill already has two active settlements: reverse
one of them first, then upgrade again.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

INDEX = "uq_settlements_active_bill"
ACTIVE = sa.text("status = 'settled'")


def upgrade() -> None:
    conn = op.get_bind()
    op.add_column(
        "settlements",
        sa.Column("hospital", sa.String(30), nullable=False, server_default=""),
    )
    if conn.dialect.name == "postgresql":
        from_bill = "COALESCE(bill::jsonb ->> 'hospital', '')"
    else:
        from_bill = "COALESCE(json_extract(bill, '$.hospital'), '')"
    op.execute(f"UPDATE settlements SET hospital = SUBSTR(CAST({from_bill} AS TEXT), 1, 30)")
    twice = conn.execute(
        sa.text(
            "SELECT hospital, bill_id, COUNT(*) FROM settlements WHERE status = 'settled' "
            "GROUP BY hospital, bill_id HAVING COUNT(*) > 1 ORDER BY hospital, bill_id LIMIT 10"
        )
    ).fetchall()
    if twice:
        bills = ", ".join(f"({h!r}, {b!r}) x{n}" for h, b, n in twice)
        raise RuntimeError(
            f"cannot add {INDEX}: these bills (hospital, bill_id) have more than one settled, "
            f"not reversed settlement: {bills}; reverse all but one of each, then upgrade again"
        )
    op.create_index(
        INDEX,
        "settlements",
        ["hospital", "bill_id"],
        unique=True,
        sqlite_where=ACTIVE,
        postgresql_where=ACTIVE,
    )


def downgrade() -> None:
    op.drop_index(INDEX, table_name="settlements")
    with op.batch_alter_table("settlements") as b:
        b.drop_column("hospital")
