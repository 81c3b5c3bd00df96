"""PostgreSQL: a settlement's stored request and result (``settlements.bill``,
``settlements.settlement``) as ``text``, not ``json``. The server parsed every value of a
``json`` column on its way in only to check it (~40 us of a durable Settle's backend CPU for
the 14 kB request of 100 items, issue 13 target 7); the values are written by the store from
Python objects (orjson, the same compact text as before) and read back by ``json.loads``, so
the check guarded nothing. No statement reads into them on the server. The table is
rewritten once; the columns keep their lz4 compression (0010, set again: a new type
resets it). A no-op on SQLite (its JSON
columns were text already). The downgrade casts them back to ``json`` (every stored value
is JSON).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

_COLUMNS = ("bill", "settlement")


def _set(kind: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    # a new type resets the column's compression to the default: lz4 (0010) set again
    alters = ", ".join(
        f"ALTER COLUMN {c} TYPE {kind} USING {c}::{kind}, ALTER COLUMN {c} SET COMPRESSION lz4"
        for c in _COLUMNS
    )
    op.execute(f"ALTER TABLE settlements {alters}")


def upgrade() -> None:
    _set("text")


def downgrade() -> None:
    _set("json")
