"""Initial schema: accounts, settlements (moves, per-layer rows), registry, policy versions.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _fen(name: str) -> sa.Column:
    return sa.Column(name, sa.BigInteger, nullable=False, server_default="0")


def _four(prefix: str = "") -> list[sa.Column]:
    return [
        _fen(f"{prefix}{f}") for f in ("deductible_used", "eligible_cum", "paid", "selfpay_cum")
    ]


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "person_years",
        sa.Column("person_id", sa.String(64), primary_key=True),
        sa.Column("year", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("admissions", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_table(
        "person_year_layers",
        sa.Column("person_id", sa.String(64), primary_key=True),
        sa.Column("year", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("layer_id", sa.String(64), primary_key=True),
        *_four(),
    )
    op.create_table(
        "household_years",
        sa.Column("household_id", sa.String(64), primary_key=True),
        sa.Column("year", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("admissions", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_table(
        "household_year_layers",
        sa.Column("household_id", sa.String(64), primary_key=True),
        sa.Column("year", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("layer_id", sa.String(64), primary_key=True),
        *_four(),
    )
    op.create_table(
        "settlements",
        sa.Column("settlement_id", sa.String(64), primary_key=True),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("bill_id", sa.String(64), nullable=False),
        sa.Column("bill_digest", sa.String(64), nullable=False),
        sa.Column("person_id", sa.String(64), nullable=False),
        sa.Column("household", sa.String(64), nullable=False),
        sa.Column("region", sa.String(64), nullable=False),
        sa.Column("year", sa.Integer, nullable=False),
        sa.Column("total", sa.BigInteger, nullable=False),
        sa.Column("funds_total", sa.BigInteger, nullable=False),
        sa.Column("window_pay", sa.BigInteger, nullable=False),
        sa.Column("net_selfpay", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("reversed_at", _utc(), nullable=True),
        sa.Column("reversal_request_id", sa.Text, nullable=True),
        sa.Column("bill", sa.JSON, nullable=False),
        sa.Column("settlement", sa.JSON, nullable=False),
        sa.UniqueConstraint("request_id", name="uq_settlements_request_id"),
        sa.CheckConstraint("status IN ('settled', 'reversed')", name="ck_settlements_status"),
    )
    op.create_index("ix_settlements_person_year", "settlements", ["person_id", "year"])
    op.create_index("ix_settlements_bill_id", "settlements", ["bill_id"])
    op.create_table(
        "settlement_moves",
        sa.Column(
            "settlement_id",
            sa.String(64),
            sa.ForeignKey("settlements.settlement_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("position", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("layer_id", sa.String(64), nullable=False),
        sa.Column("year", sa.Integer, nullable=False),
        *_four("d_"),
        sa.CheckConstraint("scope IN ('person', 'household')", name="ck_settlement_moves_scope"),
    )
    op.create_table(
        "settlement_layers",
        sa.Column(
            "settlement_id",
            sa.String(64),
            sa.ForeignKey("settlements.settlement_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("position", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("layer_id", sa.String(64), nullable=False),
        sa.Column("fund_code", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("settle_at", sa.String(16), nullable=False),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("variant", sa.Integer, nullable=False),
        sa.Column("base", sa.BigInteger, nullable=False),
        sa.Column("deductible", sa.BigInteger, nullable=False),
        sa.Column("eligible", sa.BigInteger, nullable=False),
        sa.Column("pay", sa.BigInteger, nullable=False),
        sa.Column("relief", sa.BigInteger, nullable=False),
        sa.Column("cap", sa.String(16), nullable=False),
    )
    op.create_index("ix_settlement_layers_fund_code", "settlement_layers", ["fund_code"])
    op.create_table(
        "persons",
        sa.Column("person_id", sa.String(64), primary_key=True),
        sa.Column("birth_date", sa.Date, nullable=False),
        sa.Column("household", sa.String(64), nullable=False),
    )
    op.create_index("ix_persons_household", "persons", ["household"])
    op.create_table(
        "person_tags",
        sa.Column(
            "person_id",
            sa.String(64),
            sa.ForeignKey("persons.person_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("position", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("tag", sa.String(64), nullable=False),
        sa.Column("valid_from", sa.Date, nullable=True),
        sa.Column("valid_to", sa.Date, nullable=True),
    )
    op.create_table(
        "policy_versions",
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("region", sa.String(64), nullable=False),
        sa.Column("effective_from", sa.Date, nullable=False),
        sa.Column("effective_to", sa.Date, nullable=True),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("source_name", sa.Text, nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
    )
    op.create_index("ix_policy_versions_region", "policy_versions", ["region", "effective_from"])


def downgrade() -> None:
    for name in (
        "policy_versions",
        "person_tags",
        "persons",
        "settlement_layers",
        "settlement_moves",
        "settlements",
        "household_year_layers",
        "household_years",
        "person_year_layers",
        "person_years",
    ):
        op.drop_table(name)
