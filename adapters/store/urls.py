"""Store URLs on the standard library alone: the kinds the stores take, a URL's kind refused
before SQLAlchemy and the service are imported (``onestop serve`` and ``serve-http`` tell a
wrong ``--db`` in ~0.2 s of CPU, not after 1.5-3 s of imports), the password hidden.

``adapters.store.sql.connect.make_engine`` refuses the same kinds with the same words
(``UNSUPPORTED``); tests/test_store_urls.py checks that the two agree."""

from __future__ import annotations

import re

#: the backends of the SQL store (``postgres`` is read as ``postgresql``)
SQL_BACKENDS = ("sqlite", "postgresql", "postgres")
UNSUPPORTED = "only sqlite:/// and postgresql+psycopg:// are supported"

# the scheme as SQLAlchemy's make_url reads it: name[+driver]://
_SCHEME = re.compile(r"^([\w+]+)://")
_PASSWORD = re.compile(r"(://[^:/@]*:)[^@]*@")


def safe_url(url: str) -> str:
    """The store URL without its password."""
    return _PASSWORD.sub(r"\1***@", url)


def unsupported(url: str) -> str | None:
    """Why a store URL of a kind no store takes is refused (its password hidden), or None:
    ``memory://``, the SQL kinds and anything SQLAlchemy would have to parse are left to the
    stores."""
    if url.startswith("memory:"):
        return None
    m = _SCHEME.match(url)
    if m is None or m.group(1).split("+", 1)[0] in SQL_BACKENDS:
        return None
    return f"store URL {safe_url(url)!r}: {UNSUPPORTED}"
