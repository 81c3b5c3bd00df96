"""A reversal request id names one reversal: an index to find the settlement it reversed, so a
reversal request id used again for another settlement is refused (Conflict) without a scan.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_settlements_reversal_request", "settlements", ["reversal_request_id"])


def downgrade() -> None:
    op.drop_index("ix_settlements_reversal_request", table_name="settlements")
