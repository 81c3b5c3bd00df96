"""The registry keeps history and regions.

- ``persons.region``: the insured region (a bureau imports, and replaces, only its own);
  NULL for persons imported before.
- ``person_versions``: every imported version of every person (valid from its import, who
  imported it, the person as imported); ``persons.version`` is the one in force. Persons
  imported before have version NULL and no history until they are imported again.
- ``settlements.registry_version``: the person's version a settlement used (NULL before).

Revision ID: 0004
Revises: 0002 (0003, the ledger, comes between once merged)
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("persons", sa.Column("region", sa.String(32), nullable=True))
    op.add_column("persons", sa.Column("version", sa.Integer, nullable=True))
    op.add_column("settlements", sa.Column("registry_version", sa.Integer, nullable=True))
    op.create_table(
        "person_versions",
        sa.Column("person_id", sa.String(64), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("imported_by", sa.String(255), nullable=False),
        sa.Column("person", sa.JSON, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("person_versions")
    with op.batch_alter_table("settlements") as batch:
        batch.drop_column("registry_version")
    with op.batch_alter_table("persons") as batch:
        batch.drop_column("version")
        batch.drop_column("region")
