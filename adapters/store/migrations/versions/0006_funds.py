"""Funds, claims after discharge, relief cases and money in (domain.md sections 12-13).

- ``fund_versions``: every stored ``funds.yaml`` of a region (versioned like policy tables;
  the latest version of a region is in force).
- ``fund_used``: what each hard-budget fund has used in a year (section 12); its row is also
  the fund's lock.
- ``claims``: claims (after-discharge layers) and relief cases (alerts), one per
  (settlement, layer).
- ``money_in``: premiums, donations, government money into a fund (idempotent by request id).
- ``persons.township`` / ``persons.village`` (and on ``person_versions``): where a person
  lives, '' for the persons stored before.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _fen(name: str) -> sa.Column[int]:
    return sa.Column(name, sa.BigInteger, nullable=False, server_default="0")


def upgrade() -> None:
    for table in ("persons", "person_versions"):
        op.add_column(
            table, sa.Column("township", sa.String(100), nullable=False, server_default="")
        )
        op.add_column(
            table, sa.Column("village", sa.String(100), nullable=False, server_default="")
        )
    op.create_index("ix_persons_region", "persons", ["region", "township", "village"])
    op.create_table(
        "fund_versions",
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("region", sa.String(64), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("source_name", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_fund_versions_region", "fund_versions", ["region"])
    op.create_table(
        "fund_used",
        sa.Column("region", sa.String(64), primary_key=True),
        sa.Column("fund_code", sa.String(16), primary_key=True),
        sa.Column("year", sa.Integer, primary_key=True, autoincrement=False),
        _fen("used"),
    )
    op.create_table(
        "claims",
        sa.Column("claim_id", sa.String(160), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("settlement_id", sa.String(64), nullable=False),
        sa.Column("layer_id", sa.String(64), nullable=False),
        sa.Column("fund_code", sa.String(16), nullable=False),
        sa.Column("region", sa.String(64), nullable=False),
        sa.Column("year", sa.Integer, nullable=False),
        sa.Column("person_id", sa.String(64), nullable=False),
        sa.Column("household", sa.String(64), nullable=False),
        sa.Column("hospital", sa.String(30), nullable=False),
        sa.Column("bill_id", sa.String(64), nullable=False),
        sa.Column("discharge_date", sa.Date, nullable=False),
        sa.Column("filed_amount", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("filed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("filed_by", sa.String(255), nullable=False),
        sa.Column("approved_amount", sa.BigInteger, nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(255), nullable=False, server_default=""),
        sa.Column("note", sa.Text, nullable=False, server_default=""),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("paid_date", sa.Date, nullable=True),
        sa.Column("payment_ref", sa.String(128), nullable=False, server_default=""),
        sa.Column("paid_by", sa.String(255), nullable=False, server_default=""),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("scope_key", sa.String(64), nullable=False),
        sa.UniqueConstraint("settlement_id", "layer_id", name="uq_claims_settlement_layer"),
        sa.CheckConstraint(
            "status IN ('filed', 'approved', 'rejected', 'paid')", name="ck_claims_status"
        ),
        sa.CheckConstraint("kind IN ('claim', 'relief')", name="ck_claims_kind"),
    )
    op.create_index("ix_claims_fund", "claims", ["region", "fund_code", "year"])
    op.create_index("ix_claims_person", "claims", ["person_id", "year"])
    op.create_table(
        "money_in",
        sa.Column("record_id", sa.String(64), primary_key=True),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("region", sa.String(64), nullable=False),
        sa.Column("fund_code", sa.String(16), nullable=False),
        sa.Column("year", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("payer", sa.String(200), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("value_date", sa.Date, nullable=False),
        sa.Column("note", sa.Text, nullable=False, server_default=""),
        sa.Column("recorded_by", sa.String(255), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("request_id", name="uq_money_in_request_id"),
    )
    op.create_index("ix_money_in_fund", "money_in", ["region", "fund_code", "year"])


def downgrade() -> None:
    op.drop_index("ix_money_in_fund", table_name="money_in")
    op.drop_table("money_in")
    op.drop_index("ix_claims_person", table_name="claims")
    op.drop_index("ix_claims_fund", table_name="claims")
    op.drop_table("claims")
    op.drop_table("fund_used")
    op.drop_index("ix_fund_versions_region", table_name="fund_versions")
    op.drop_table("fund_versions")
    op.drop_index("ix_persons_region", table_name="persons")
    for table in ("person_versions", "persons"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("village")
            batch.drop_column("township")
