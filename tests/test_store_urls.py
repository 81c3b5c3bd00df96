"""adapters.store.urls (the store URL's kind checked on the standard library alone, before the
servers import SQLAlchemy) agrees with make_engine, which refuses the same kinds."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.store.urls import UNSUPPORTED, safe_url, unsupported

KINDS = [
    "mysql://u@h/x",
    "mysql+pymysql://onestop:s3cret@db:3306/onestop",
    "oracle://scott:tiger@h/x",
    "mssql+pyodbc://h/x",
    "sqlite:///{tmp}/a.db",
    "sqlite+pysqlite:///{tmp}/b.db",
    "postgresql+psycopg://u:pw@127.0.0.1:1/x",
    "postgresql://u@127.0.0.1:1/x",
    "postgres://u@127.0.0.1:1/x",
]


@pytest.mark.parametrize("url", KINDS)
def test_refused_before_the_imports_exactly_when_make_engine_refuses(url: str, tmp_path: Path):
    from adapters.store.sql.connect import make_engine

    url = url.format(tmp=tmp_path)
    try:
        make_engine(url).dispose()
        engine_says = None
    except ValueError as e:
        engine_says = str(e)
    assert (unsupported(url) is None) == (engine_says is None), (url, engine_says)
    if engine_says is not None:
        assert UNSUPPORTED in engine_says
        assert unsupported(url) == engine_says  # the same line, the password hidden alike
        assert "s3cret" not in engine_says


def test_memory_and_unparsed_urls_are_left_to_the_stores() -> None:
    assert unsupported("memory://") is None
    assert unsupported("not a url") is None  # SQLAlchemy's own refusal, as before


def test_safe_url_hides_the_password() -> None:
    assert safe_url("postgresql+psycopg://onestop:s3cret@h:5432/x") == (
        "postgresql+psycopg://onestop:***@h:5432/x"
    )
