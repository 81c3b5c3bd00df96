"""PostgreSQL: a settlement's stored request and result (``settlements.bill``,
``settlements.settlement``, a few kB of JSON each, so TOASTed) compressed with lz4 instead
of the default pglz: cheaper to compress on every durable Settle's insert (issue 13 target
7) and to read back. Rows stored before keep their pglz values (both read the same); a
no-op on SQLite.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_COLUMNS = ("bill", "settlement")


def _set(method: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for col in _COLUMNS:
        op.execute(f"ALTER TABLE settlements ALTER COLUMN {col} SET COMPRESSION {method}")


def upgrade() -> None:
    _set("lz4")


def downgrade() -> None:
    _set("pglz")
