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
