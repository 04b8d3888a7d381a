"""What a served instance left in its database, read directly rather than through it."""

import time
from collections import Counter

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from app.db import sync_url
from tests.servers import EXIT_WITHIN


def stored_ids(database_url: str) -> Counter[str]:
    """How many rows each external id has, read from the database behind the server."""
    engine = create_engine(sync_url(database_url))
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT external_id, count(*) FROM touchpoint GROUP BY external_id")
            )
            return Counter({external_id: count for external_id, count in rows})
    finally:
        engine.dispose()


def counted_touchpoints(database_url: str) -> int:
    """Touchpoints the rollups count: must equal the rows, or a write was half done."""
    engine = create_engine(sync_url(database_url))
    try:
        with engine.connect() as connection:
            total = connection.scalar(
                text(
                    "SELECT coalesce(sum(touchpoints), 0) FROM moment_rollup"
                    " WHERE dimension = 'all' AND grain = 'day'"
                )
            )
            return int(total or 0)
    finally:
        engine.dispose()


def wait_until_disconnected(database_url: str) -> None:
    """Wait until no other session is open on the database (PostgreSQL; SQLite has none).

    A killed server's PostgreSQL sessions live on until they notice the dead socket, and
    one may still be committing what it received: only then is the database what the
    crash left behind.
    """
    if make_url(database_url).get_backend_name() != "postgresql":
        return
    engine = create_engine(sync_url(database_url))
    others = text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        " AND backend_type = 'client backend'"
    )
    try:
        deadline = time.monotonic() + EXIT_WITHIN
        with engine.connect() as connection:
            while connection.scalar(others):
                assert time.monotonic() < deadline, "a killed server's sessions stayed open"
                connection.rollback()  # a fresh snapshot of pg_stat_activity each time
                time.sleep(0.05)
    finally:
        engine.dispose()
