"""``ix_settlements_bill_id`` dropped: no statement reads ``settlements`` by ``bill_id`` alone
(a bill is (hospital, bill_id): the Settle path and ``active_for_bill`` read the partial
unique index ``uq_settlements_active_bill``), so it was one more index insertion on every
Settle for nothing (issue 13 target 7; ``pg_stat_user_indexes`` after 300 durable Settles:
0 scans). The downgrade builds it again.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_settlements_bill_id", table_name="settlements")


def downgrade() -> None:
    op.create_index("ix_settlements_bill_id", "settlements", ["bill_id"])
