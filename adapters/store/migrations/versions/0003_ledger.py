"""Audit ledger: events (written with their effect, sealed later) and blocks.

Revision ID: 0003
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ledger_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("method", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(128), nullable=False),
        sa.Column("content", sa.Text, nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=True),
        sa.Column("digest", sa.String(64), nullable=True),
    )
    op.create_index("ix_ledger_events_seq", "ledger_events", ["seq"])
    op.create_index("ix_ledger_events_subject", "ledger_events", ["subject"])
    op.create_table(
        "ledger_blocks",
        sa.Column("height", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("merkle_root", sa.String(64), nullable=False),
        sa.Column("first_seq", sa.BigInteger, nullable=False),
        sa.Column("last_seq", sa.BigInteger, nullable=False),
        sa.Column("sealed_at", sa.String(40), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.UniqueConstraint("first_seq", name="uq_ledger_blocks_first_seq"),
    )


def downgrade() -> None:
    op.drop_table("ledger_blocks")
    op.drop_index("ix_ledger_events_subject", "ledger_events")
    op.drop_index("ix_ledger_events_seq", "ledger_events")
    op.drop_table("ledger_events")
