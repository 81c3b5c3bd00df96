"""Where the servers' store, policy tables and sample registry are by default (``onestop
serve``, ``serve-http``, ``adapters.bootstrap.build``), and the address the clients call:
constants only, so that a command can show them in its options and refuse a bad option before
it imports the service or the client."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DB = "sqlite:///var/onestop.db"
DEFAULT_POLICIES = ROOT / "policies"
DEFAULT_REGISTRY = DEFAULT_POLICIES / "samples" / "registry.json"
DEFAULT_SERVER = "127.0.0.1:50051"
#: what the servers' --registry says when not given
REGISTRY_DEFAULT_TEXT = (
    "policies/samples/registry.json of onestop's tree for SQLite and memory://; none for PostgreSQL"
)


def server_registry(db: str, registry: str | Path | None) -> str | Path | None:
    """The registry a server imports as it starts: the one given; else the sample persons on
    the embedded stores (SQLite, memory://: the demo of `make serve`), and none on PostgreSQL,
    the production store, whose registry comes from the bureau (`bureau import-registry`):
    sample persons there would be counted in the funds' enrolment and published figures."""
    if registry is not None:
        return registry
    return None if db.startswith("postgresql") else DEFAULT_REGISTRY
