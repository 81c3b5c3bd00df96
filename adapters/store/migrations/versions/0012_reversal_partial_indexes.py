"""PostgreSQL: the two reversal indexes of ``settlements`` hold only reversed rows
(``WHERE ... IS NOT NULL``), so a Settle's insert, whose reversal columns are NULL, adds no
entry to them (two index insertions fewer on every durable Settle, issue 13 target 7). The
reads that use them compare the column (``reversal_request_id = :id``, ``reversed_at >=
:a``), which implies IS NOT NULL, so they keep their index. SQLite keeps the full indexes
(its planner's use of a partial index under the reconciliation's OR is not relied on).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

#: (index, its columns, the column that is NULL until the settlement is reversed)
_INDEXES = (
    ("ix_settlements_reversal_request", ["reversal_request_id"], "reversal_request_id"),
    ("ix_settlements_hospital_reversed", ["hospital", "reversed_at"], "reversed_at"),
)


def _rebuild(partial: bool) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, cols, col in _INDEXES:
        op.drop_index(name, table_name="settlements")
        where = sa.text(f"{col} IS NOT NULL") if partial else None
        op.create_index(name, "settlements", cols, postgresql_where=where)


def upgrade() -> None:
    _rebuild(partial=True)


def downgrade() -> None:
    _rebuild(partial=False)
