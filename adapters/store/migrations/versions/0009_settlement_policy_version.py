"""A settlement records the policy version of the table it was settled with, so re-reading its
allocation (GetSettlement allocate, the FHIR replay, the slip) uses that table even after the
table in force was replaced. NULL for earlier settlements: they are read with the table in
force, refused as before when its layers differ.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("settlements", sa.Column("policy_version", sa.Integer, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("settlements") as batch:
        batch.drop_column("policy_version")
