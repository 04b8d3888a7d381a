"""Schema migrations: run Alembic programmatically and tell whether the schema is current."""

from importlib import resources
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import sync_url

MIGRATIONS_PACKAGE = "app.migrations"
"""Where an installed service (a wheel, or an editable install) keeps the migrations: the
repository's top-level migrations/ directory, shipped inside the package."""
_SOURCE_TREE_MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def migrations_dir() -> Path:
    """The directory of the migrations, whatever the working directory."""
    try:
        installed = resources.files(MIGRATIONS_PACKAGE)
    except ModuleNotFoundError:
        # A source tree imported without installing it (PYTHONPATH): beside the package.
        installed = None
    # A checkout's own migrations come first: an editable install of another checkout maps
    # the package to that one's directory, which may hold other revisions.
    in_checkout = (_SOURCE_TREE_MIGRATIONS.parent / "pyproject.toml").is_file()
    candidates = (_SOURCE_TREE_MIGRATIONS, installed) if in_checkout else (installed,)
    for candidate in candidates:
        # Alembic reads the scripts from the file system: a package inside a zip won't do.
        if isinstance(candidate, Path) and (candidate / "env.py").is_file():
            return candidate
    raise FileNotFoundError(
        f"the migrations were not found in the package {MIGRATIONS_PACKAGE} "
        f"nor in {_SOURCE_TREE_MIGRATIONS}"
    )


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    # Percent signs in passwords would otherwise be read as interpolation.
    config.set_main_option("sqlalchemy.url", sync_url(database_url).replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the database schema up to `revision` (default: the latest)."""
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(database_url), revision)


def head_revisions(database_url: str) -> set[str]:
    """The revisions a fully migrated database is at."""
    return set(ScriptDirectory.from_config(alembic_config(database_url)).get_heads())


def current_revisions_sync(database_url: str) -> set[str]:
    """The revisions the database is at; none for a database never migrated."""
    engine = create_engine(sync_url(database_url))
    try:
        with engine.connect() as connection:
            if not inspect(connection).has_table("alembic_version"):
                return set()
            return {
                row[0]
                for row in connection.execute(text("SELECT version_num FROM alembic_version"))
            }
    finally:
        engine.dispose()


async def current_revisions(engine: AsyncEngine) -> set[str]:
    """The revisions the database says it is at; raises if it cannot be reached."""
    async with engine.connect() as connection:
        result = await connection.execute(text("SELECT version_num FROM alembic_version"))
        return {row[0] for row in result}
