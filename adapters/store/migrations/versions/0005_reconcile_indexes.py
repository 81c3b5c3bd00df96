"""Reconciliation reads a hospital's settlements and reversals by commit time (domain.md
section 14): index (hospital, created_at) and (hospital, reversed_at), so a month of one
hospital does not scan every settlement.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_settlements_hospital_created", "settlements", ["hospital", "created_at"])
    op.create_index("ix_settlements_hospital_reversed", "settlements", ["hospital", "reversed_at"])


def downgrade() -> None:
    op.drop_index("ix_settlements_hospital_reversed", table_name="settlements")
    op.drop_index("ix_settlements_hospital_created", table_name="settlements")
