"""The servers' composition root (``open_app``, behind ``onestop serve`` and ``serve-http``)
imports the sample persons only into the embedded stores: a PostgreSQL store is production,
and sample persons there would be counted in the funds' enrolment and published figures."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.defaults import DEFAULT_POLICIES, DEFAULT_REGISTRY, server_registry
from adapters.grpc.servecmd import open_app
from tests.pg import db_url, fresh_database, pg_url  # noqa: F401


def test_the_default_registry_of_each_store() -> None:
    given = Path("/data/registry.json")
    assert server_registry("sqlite:///var/onestop.db", None) == DEFAULT_REGISTRY
    assert server_registry("memory://", None) == DEFAULT_REGISTRY
    assert server_registry("postgresql+psycopg://u:p@db:5432/onestop", None) is None
    assert server_registry("postgresql+psycopg://u:p@db:5432/onestop", given) == given
    assert server_registry("sqlite:///x.db", given) == given


def test_a_server_imports_the_samples_on_sqlite_only(db_url: str) -> None:  # noqa: F811
    app = open_app(db_url, DEFAULT_POLICIES, None)
    try:
        imported = app.persons_imported
    finally:
        app.close()
    if db_url.startswith("postgresql"):
        assert imported == 0
    else:
        assert imported > 0


@pytest.mark.postgres
def test_a_registry_given_is_imported_on_postgresql(pg_url: str) -> None:  # noqa: F811
    app = open_app(fresh_database(pg_url), DEFAULT_POLICIES, DEFAULT_REGISTRY)
    try:
        assert app.persons_imported > 0
    finally:
        app.close()
