"""Alembic environment: the URL comes from the service settings unless the caller set one."""

from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import Engine, engine_from_config, event, pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.pool import ConnectionPoolEntry

from app.actions import models as _action_models  # noqa: F401
from app.alerts import models as _alert_models  # noqa: F401
from app.config import get_settings
from app.db import Base, UtcDateTime, sync_url
from app.followups import models as _follow_up_models  # noqa: F401
from app.idempotency import models as _idempotency_models  # noqa: F401
from app.keys import models as _key_models  # noqa: F401
from app.moments import models as _moment_models  # noqa: F401  (registers tables)
from app.privacy import models as _privacy_models  # noqa: F401
from app.rollups import models as _rollup_models  # noqa: F401
from app.surveys import models as _survey_models  # noqa: F401
from app.touchpoints import models as _touchpoint_models  # noqa: F401
from app.touchpoints import partitions
from app.webhooks import models as _webhook_models  # noqa: F401

config = context.config
if not config.get_main_option("sqlalchemy.url"):
    config.set_main_option(
        "sqlalchemy.url", sync_url(get_settings().database_url).replace("%", "%%")
    )

target_metadata = Base.metadata
MIGRATION_LOCK = 0x6D6F74_00
"""PostgreSQL advisory lock held while migrating."""
SQLITE_MIGRATION_WAIT_MS = 3_600_000
"""How long a migration on SQLite waits for another one to finish (PostgreSQL's waits for
as long as it takes): longer than any migration of ours takes, short of forever."""


def render_item(type_: str, obj: object, autogen_context: AutogenContext) -> str | Literal[False]:
    # Migrations stay static: the UTC wrapper type is rendered as the plain column type.
    if type_ == "type" and isinstance(obj, UtcDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def run_migrations_offline() -> None:
    url = config.get_main_option("sqlalchemy.url")
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        compare_type=True,
        render_item=render_item,
        render_as_batch=url is not None and url.startswith("sqlite"),
    )
    with context.begin_transaction():
        context.run_migrations()


def _migrate_sqlite_exclusively(engine: Engine) -> None:
    """Run the migration on SQLite as one transaction that holds the file to itself.

    By default Alembic runs each SQLite statement in a transaction of its own, so two
    instances started together on a new file both found it empty and the second failed
    on a table the first had just created. In one exclusive transaction the second waits
    for the first to commit, then finds the schema current; a failed migration leaves the
    file as it was.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # The driver's own transaction handling is turned off so that BEGIN is ours (below).
        dbapi_connection.isolation_level = None
        dbapi_connection.execute(f"PRAGMA busy_timeout={SQLITE_MIGRATION_WAIT_MS}")

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN EXCLUSIVE")


def run_migrations_online() -> None:
    section = config.get_section(config.config_ini_section, {})
    sqlite = section["sqlalchemy.url"].startswith("sqlite")
    connectable = engine_from_config(
        section,
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
        # Through a pooler in transaction mode a statement prepared in one transaction is
        # gone in the next; a migration runs each statement once and gains nothing by it.
        connect_args={} if sqlite else {"prepare_threshold": None},
    )
    if sqlite:
        _migrate_sqlite_exclusively(connectable)
    with connectable.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            compare_type=True,
            render_item=render_item,
            render_as_batch=sqlite,
            # The monthly partitions of the touchpoints are PostgreSQL's own layout of the
            # one table the models declare.
            include_object=None if sqlite else partitions.same_on_postgresql,
            # SQLite's DDL is transactional; only the driver's old habits made Alembic
            # commit each statement on its own.
            transactional_ddl=True if sqlite else None,
        )
        with context.begin_transaction():
            if not sqlite:
                # Instances that start together migrate one at a time: the others wait here,
                # then find the schema current. Held by the transaction, not the session: a
                # pooler in transaction mode would keep a session's lock held on its server
                # connection after this client left.
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK}
                )
            context.run_migrations()
    connectable.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
