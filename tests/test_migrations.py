from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect

import app.main  # noqa: F401  (importing the app registers every model)
from app import migrate
from app.db import Base, sync_url

TABLES = {"moment", "touchpoint", "rating_history"}


def _tables(url: str) -> set[str]:
    engine = create_engine(sync_url(url))
    try:
        with engine.connect() as connection:
            return set(inspect(connection).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_upgrade_from_empty_to_head_and_back_to_base(empty_database_url: str) -> None:
    assert _tables(empty_database_url) == set()
    migrate.upgrade(empty_database_url)
    assert TABLES <= _tables(empty_database_url)
    assert migrate.current_revisions_sync(empty_database_url) == migrate.head_revisions(
        empty_database_url
    )
    migrate.downgrade(empty_database_url, "base")
    assert _tables(empty_database_url) == set()
    migrate.upgrade(empty_database_url)
    assert TABLES <= _tables(empty_database_url)


def test_models_and_migrations_agree(database_url: str) -> None:
    engine = create_engine(sync_url(database_url))
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert differences == []
