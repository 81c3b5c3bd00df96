"""Claim listings read by keyset pages: the fund-year and person indexes of ``claims`` end in
the listing's order (filed_at, claim_id), so a page is an index range, not a sort of the whole
fund-year. They replace ``ix_claims_fund`` and ``ix_claims_person`` (their prefixes).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_claims_fund_page", "claims", ["region", "fund_code", "year", "filed_at", "claim_id"]
    )
    op.create_index(
        "ix_claims_person_page", "claims", ["person_id", "year", "filed_at", "claim_id"]
    )
    op.drop_index("ix_claims_fund", table_name="claims")
    op.drop_index("ix_claims_person", table_name="claims")


def downgrade() -> None:
    op.create_index("ix_claims_fund", "claims", ["region", "fund_code", "year"])
    op.create_index("ix_claims_person", "claims", ["person_id", "year"])
    op.drop_index("ix_claims_person_page", table_name="claims")
    op.drop_index("ix_claims_fund_page", table_name="claims")
