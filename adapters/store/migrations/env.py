"""Alembic environment of the store, configured from code (no alembic.ini needed).

``adapters.store.sql.migrate(connection)`` passes an open connection in
``config.attributes["connection"]``; the command line can be used too, with
``alembic -c adapters/store/alembic.ini -x url=sqlite:///var/onestop.db upgrade head``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from adapters.store.schema import metadata

config = context.config


def run(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        run(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise SystemExit("give the database URL: alembic ... -x url=postgresql+psycopg://...")
    from adapters.store.sql import make_engine, migration_transaction

    engine = make_engine(url)
    try:
        with migration_transaction(engine) as conn:
            run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (SQL script) mode is not supported; run against a database")
main()
