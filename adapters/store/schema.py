"""The SQL schema of the store (SQLAlchemy Core tables), shared by SQLite and PostgreSQL.

Money is integer fen in BIGINT columns. Timestamps are UTC (``UtcDateTime``: timestamptz on
PostgreSQL, naive UTC text on SQLite, always read back as aware UTC datetimes).

The migrations in ``adapters/store/migrations`` create exactly these tables; a test compares
them with Alembic's autogenerate so the two cannot drift apart.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator

metadata = sa.MetaData()


class UtcDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on every backend (a naive value is taken to be UTC)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


#: JSON kept as text: SQLite's JSON type; on PostgreSQL ``text`` (migration 0015)
_JSON_TEXT = sa.JSON().with_variant(sa.Text(), "postgresql")


def _fen(name: str) -> sa.Column[int]:
    return sa.Column(name, sa.BigInteger, nullable=False, server_default="0")


def _four(prefix: str = "") -> list[sa.Column[int]]:
    return [
        _fen(f"{prefix}deductible_used"),
        _fen(f"{prefix}eligible_cum"),
        _fen(f"{prefix}paid"),
        _fen(f"{prefix}selfpay_cum"),
    ]


# --- year-to-date accounts (domain.md section 6) -------------------------------------------

person_years = sa.Table(
    "person_years",
    metadata,
    sa.Column("person_id", sa.String(64), primary_key=True),
    sa.Column("year", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("admissions", sa.Integer, nullable=False, server_default="0"),
)

person_year_layers = sa.Table(
    "person_year_layers",
    metadata,
    sa.Column("person_id", sa.String(64), primary_key=True),
    sa.Column("year", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("layer_id", sa.String(64), primary_key=True),
    *_four(),
)

# One row per household-year: its admissions field and the row that ``lock`` takes
# (SELECT ... FOR UPDATE on PostgreSQL) to serialize settlements moving its accounts.
household_years = sa.Table(
    "household_years",
    metadata,
    sa.Column("household_id", sa.String(64), primary_key=True),
    sa.Column("year", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("admissions", sa.Integer, nullable=False, server_default="0"),
)

household_year_layers = sa.Table(
    "household_year_layers",
    metadata,
    sa.Column("household_id", sa.String(64), primary_key=True),
    sa.Column("year", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("layer_id", sa.String(64), primary_key=True),
    *_four(),
)

# --- settlements ---------------------------------------------------------------------------

settlements = sa.Table(
    "settlements",
    metadata,
    sa.Column("settlement_id", sa.String(64), primary_key=True),
    sa.Column("request_id", sa.String(128), nullable=False),
    sa.Column("bill_id", sa.String(64), nullable=False),
    # the hospital's code (NHSA fixmedins_code): a bill is (hospital, bill_id); '' for rows
    # settled before migration 0002 whose stored bill had no hospital
    sa.Column("hospital", sa.String(30), nullable=False, server_default=""),
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
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("reversed_at", UtcDateTime, nullable=True),
    sa.Column("reversal_request_id", sa.Text, nullable=True),
    # the request and the result as JSON text (PostgreSQL: ``text``, 0015: not parsed by the
    # server on every insert; SQLite's JSON columns are text)
    sa.Column("bill", _JSON_TEXT, nullable=False),
    sa.Column("settlement", _JSON_TEXT, nullable=False),
    # the person's registry version used (0004); NULL for earlier settlements
    sa.Column("registry_version", sa.Integer, nullable=True),
    # the policy version of the table settled with (0009); NULL for earlier settlements
    sa.Column("policy_version", sa.Integer, nullable=True),
    sa.UniqueConstraint("request_id", name="uq_settlements_request_id"),
    sa.CheckConstraint("status IN ('settled', 'reversed')", name="ck_settlements_status"),
)
sa.Index("ix_settlements_person_year", settlements.c.person_id, settlements.c.year)
# no index on bill_id alone (0013): a bill is (hospital, bill_id), read by the active bill's
# partial unique index
# PostgreSQL: the reversal indexes hold reversed rows only (0012: a Settle's insert adds no
# entry to them); SQLite: whole
sa.Index(
    "ix_settlements_reversal_request",
    settlements.c.reversal_request_id,
    postgresql_where=sa.text("reversal_request_id IS NOT NULL"),
)
# reconciliation (domain.md section 14): a hospital's settlements and reversals by commit time
sa.Index("ix_settlements_hospital_created", settlements.c.hospital, settlements.c.created_at)
sa.Index(
    "ix_settlements_hospital_reversed",
    settlements.c.hospital,
    settlements.c.reversed_at,
    postgresql_where=sa.text("reversed_at IS NOT NULL"),
)
# A bill settled and not reversed cannot be settled again: at most one active settlement per
# (hospital, bill_id), enforced by the database (two racing windows cannot both commit).
ACTIVE_BILL_UNIQUE = "uq_settlements_active_bill"
sa.Index(
    ACTIVE_BILL_UNIQUE,
    settlements.c.hospital,
    settlements.c.bill_id,
    unique=True,
    sqlite_where=sa.text("status = 'settled'"),
    postgresql_where=sa.text("status = 'settled'"),
)

settlement_moves = sa.Table(
    "settlement_moves",
    metadata,
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

# Per-layer results, one row per layer of each settlement: what bureaus query by fund.
settlement_layers = sa.Table(
    "settlement_layers",
    metadata,
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
sa.Index("ix_settlement_layers_fund_code", settlement_layers.c.fund_code)

# --- person registry -----------------------------------------------------------------------

persons = sa.Table(
    "persons",
    metadata,
    sa.Column("person_id", sa.String(64), primary_key=True),
    sa.Column("birth_date", sa.Date, nullable=False),
    sa.Column("household", sa.String(64), nullable=False),
    sa.Column("region", sa.String(32), nullable=True),  # 0004
    # the version in force (person_versions); NULL: imported before 0004, no history
    sa.Column("version", sa.Integer, nullable=True),
    # where the person lives (0006): a cadre's cover list by township and village
    sa.Column("township", sa.String(100), nullable=False, server_default=""),
    sa.Column("village", sa.String(100), nullable=False, server_default=""),
)

#: every imported version of every person (0004): the registry is never overwritten
person_versions = sa.Table(
    "person_versions",
    metadata,
    sa.Column("person_id", sa.String(64), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("valid_from", UtcDateTime, nullable=False),
    sa.Column("imported_by", sa.String(255), nullable=False),
    sa.Column("person", sa.JSON, nullable=False),
    sa.Column("township", sa.String(100), nullable=False, server_default=""),  # 0006
    sa.Column("village", sa.String(100), nullable=False, server_default=""),
)
sa.Index("ix_persons_household", persons.c.household)
sa.Index("ix_persons_region", persons.c.region, persons.c.township, persons.c.village)

person_tags = sa.Table(
    "person_tags",
    metadata,
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

# --- policy tables -------------------------------------------------------------------------

policy_versions = sa.Table(
    "policy_versions",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("region", sa.String(64), nullable=False),
    sa.Column("effective_from", sa.Date, nullable=False),
    sa.Column("effective_to", sa.Date, nullable=True),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("source_name", sa.Text, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
)
sa.Index("ix_policy_versions_region", policy_versions.c.region, policy_versions.c.effective_from)

# --- funds, claims and money in (domain.md sections 12-13; 0006) --------------------------

#: every stored funds.yaml of a region (the latest version of a region is in force)
fund_versions = sa.Table(
    "fund_versions",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("region", sa.String(64), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("source_name", sa.Text, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
)
sa.Index("ix_fund_versions_region", fund_versions.c.region)

#: what a hard-budget fund has used in a year (section 12); its row is the fund's lock
fund_used = sa.Table(
    "fund_used",
    metadata,
    sa.Column("region", sa.String(64), primary_key=True),
    sa.Column("fund_code", sa.String(16), primary_key=True),
    sa.Column("year", sa.Integer, primary_key=True, autoincrement=False),
    _fen("used"),
)

claims = sa.Table(
    "claims",
    metadata,
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
    sa.Column("filed_at", UtcDateTime, nullable=False),
    sa.Column("filed_by", sa.String(255), nullable=False),
    sa.Column("approved_amount", sa.BigInteger, nullable=True),
    sa.Column("decided_at", UtcDateTime, nullable=True),
    sa.Column("decided_by", sa.String(255), nullable=False, server_default=""),
    sa.Column("note", sa.Text, nullable=False, server_default=""),
    sa.Column("reason", sa.Text, nullable=False, server_default=""),
    sa.Column("paid_at", UtcDateTime, nullable=True),
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
#: a listing's keyset pages (0007): the filters, then the order (filed_at, claim_id)
sa.Index(
    "ix_claims_fund_page",
    claims.c.region, claims.c.fund_code, claims.c.year, claims.c.filed_at, claims.c.claim_id,
)  # fmt: skip
sa.Index(
    "ix_claims_person_page",
    claims.c.person_id, claims.c.year, claims.c.filed_at, claims.c.claim_id,
)  # fmt: skip

money_in = sa.Table(
    "money_in",
    metadata,
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
    sa.Column("recorded_at", UtcDateTime, nullable=False),
    sa.UniqueConstraint("request_id", name="uq_money_in_request_id"),
)
sa.Index("ix_money_in_fund", money_in.c.region, money_in.c.fund_code, money_in.c.year)

# --- audit ledger (domain.md section 15) ---------------------------------------------------

# One row per event, written in the transaction of its effect with its storage id ``id``
# and its content (canonical JSON without seq); ``seq`` and ``digest`` are given by the
# sealer, in ``id`` order among the committed rows, when it seals them into a block.
ledger_events = sa.Table(
    "ledger_events",
    metadata,
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
sa.Index("ix_ledger_events_seq", ledger_events.c.seq)
sa.Index("ix_ledger_events_subject", ledger_events.c.subject)

ledger_blocks = sa.Table(
    "ledger_blocks",
    metadata,
    sa.Column("height", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("merkle_root", sa.String(64), nullable=False),
    sa.Column("first_seq", sa.BigInteger, nullable=False),
    sa.Column("last_seq", sa.BigInteger, nullable=False),
    sa.Column("sealed_at", sa.String(40), nullable=False),  # the header's exact text
    sa.Column("hash", sa.String(64), nullable=False),
    sa.UniqueConstraint("first_seq", name="uq_ledger_blocks_first_seq"),
)
