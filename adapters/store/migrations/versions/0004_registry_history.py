"""Registry persons carry their insured region (``persons.region``, NULL for persons imported
before): a bureau imports, and replaces, only persons of its own region.

Revision ID: 0004
Revises: 0002 (0003, the ledger, comes between once merged)
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("persons", sa.Column("region", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("persons") as batch:
        batch.drop_column("region")
