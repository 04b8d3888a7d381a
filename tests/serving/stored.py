"""What a served instance left in its database, read directly rather than through it."""

import asyncio
import time
from collections import Counter
from typing import NamedTuple

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from app.db import Database, sync_url
from app.insights import counts
from app.rollups import details as rollup_details
from app.rollups import service as rollups
from app.rollups.details import DetailKey
from app.rollups.service import Counters, RollupKey
from tests.servers import EXIT_WITHIN

FOLDED_WITHIN = 60.0


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
    """Touchpoints the rollups count, with the deltas not folded yet (as readers count
    them): must equal the rows, or a write was half done."""
    engine = create_engine(sync_url(database_url))
    try:
        with engine.connect() as connection:
            total = connection.scalar(
                text(
                    "SELECT (SELECT coalesce(sum(touchpoints), 0) FROM moment_rollup"
                    " WHERE dimension = 'all' AND grain = 'day')"
                    " + (SELECT coalesce(sum(touchpoints), 0) FROM rollup_delta)"
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


class Rollups(NamedTuple):
    """The rollups of a database, read in one snapshot."""

    stored: dict[RollupKey, Counters]
    """What the rollup rows hold."""
    counted: dict[RollupKey, Counters]
    """What readers count: the rows plus the pending deltas."""
    recount: dict[RollupKey, Counters]
    """What they should hold: counted afresh from the touchpoints."""
    pending: int
    """Deltas not folded yet."""
    details_stored: dict[DetailKey, int]
    """What the answers' detail rows hold (factors, lost time)."""
    details_counted: dict[DetailKey, int]
    """The detail rows plus their pending deltas."""
    details_recount: dict[DetailKey, int]
    """What the detail rows should hold, counted afresh from the touchpoints."""


def read_rollups(database_url: str) -> Rollups:
    """The rollups, as readers see them and as a recount finds them, in one snapshot."""

    async def read() -> Rollups:
        database = Database(database_url)
        try:
            async with database.read_sessions() as session:
                return Rollups(
                    stored=await rollups.stored(session),
                    counted=await rollups.counted(session),
                    recount=await counts.recompute(session),
                    pending=(await rollups.pending(session)).deltas,
                    details_stored=await rollup_details.stored(session),
                    details_counted=await rollup_details.counted(session),
                    details_recount=await counts.recompute_details(session),
                )
        finally:
            await database.dispose()

    return asyncio.run(read())


def wait_until_folded(database_url: str) -> None:
    """Wait until a served folder has folded every count delta."""
    engine = create_engine(sync_url(database_url))
    try:
        deadline = time.monotonic() + FOLDED_WITHIN
        with engine.connect() as connection:
            pending = text(
                "SELECT (SELECT count(*) FROM rollup_delta) + (SELECT count(*) FROM detail_delta)"
            )
            while connection.scalar(pending):
                assert time.monotonic() < deadline, "the folder never caught up"
                connection.rollback()
                time.sleep(0.05)
    finally:
        engine.dispose()
