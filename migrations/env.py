"""Alembic environment: the URL comes from the service settings unless the caller set one."""

from typing import Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import engine_from_config, pool, text

from app.config import get_settings
from app.db import Base, UtcDateTime, sync_url
from app.followups import models as _follow_up_models  # noqa: F401
from app.keys import models as _key_models  # noqa: F401
from app.moments import models as _moment_models  # noqa: F401  (registers tables)
from app.privacy import models as _privacy_models  # noqa: F401
from app.rollups import models as _rollup_models  # noqa: F401
from app.surveys import models as _survey_models  # noqa: F401
from app.touchpoints import models as _touchpoint_models  # noqa: F401
from app.webhooks import models as _webhook_models  # noqa: F401

config = context.config
if not config.get_main_option("sqlalchemy.url"):
    config.set_main_option(
        "sqlalchemy.url", sync_url(get_settings().database_url).replace("%", "%%")
    )

target_metadata = Base.metadata
MIGRATION_LOCK = 0x6D6F74_00
"""PostgreSQL advisory lock held while migrating."""


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


def run_migrations_online() -> None:
    connectable = engine_from_config(
        config.get_section(config.config_ini_section, {}),
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    with connectable.connect() as connection:
        if connection.dialect.name == "postgresql":
            # Replicas that start together migrate one at a time: the others wait here, then
            # find the schema current. Held by the session until it closes.
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK})
            connection.commit()
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            compare_type=True,
            render_item=render_item,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
    connectable.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
