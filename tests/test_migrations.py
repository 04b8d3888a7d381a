import subprocess
import sys
from datetime import UTC, datetime

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

import app.main  # noqa: F401  (importing the app registers every model)
from app import migrate
from app.db import Base, sync_url
from tests.servers import command_environment

TABLES = {
    "moment",
    "touchpoint",
    "rating_history",
    "moment_rollup",
    "follow_up",
    "follow_up_event",
    "webhook",
    "webhook_delivery",
    "api_key",
    "audit_entry",
}


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


def test_rollups_migration_counts_touchpoints_stored_before_it(empty_database_url: str) -> None:
    migrate.upgrade(empty_database_url, "0001")
    engine = create_engine(sync_url(empty_database_url))
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO moment (id, key, name, channel, auto_follow_up, archived, "
                    "auto_registered, created_at, updated_at) VALUES (1, 'm.one', 'One', 'call', "
                    "true, false, true, :now, :now)"
                ),
                {"now": datetime(2026, 10, 1, tzinfo=UTC)},
            )
            for number, (scale, value, sentiment, team) in enumerate(
                [
                    ("csat5", 1, "negative", "red"),
                    ("nps11", 9, "positive", None),
                    (None, None, None, "red"),
                ]
            ):
                connection.execute(
                    text(
                        "INSERT INTO touchpoint (external_id, content_hash, moment_id, channel, "
                        "occurred_at, received_at, team, rating_scale, rating_value, sentiment, "
                        "complaint) VALUES (:id, 'h', 1, 'call', :at, :at, :team, :scale, "
                        ":value, :sentiment, :complaint)"
                    ),
                    {
                        "id": f"t{number}",
                        "at": datetime(2026, 10, 31, 23, 30, tzinfo=UTC),
                        "team": team,
                        "scale": scale,
                        "value": value,
                        "sentiment": sentiment,
                        "complaint": number == 0,
                    },
                )
        migrate.upgrade(empty_database_url)
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT dimension, grain, member, touchpoints, complaints, csat5_1, nps11_9, "
                    "responses, negatives "
                    "FROM moment_rollup ORDER BY dimension, grain, member"
                )
            ).all()
    finally:
        engine.dispose()
    assert [tuple(row) for row in rows] == [
        ("agent", "day", "", 3, 1, 1, 1, 2, 1),
        ("all", "day", "", 3, 1, 1, 1, 2, 1),
        ("all", "month", "", 3, 1, 1, 1, 2, 1),
        ("channel", "day", "call", 3, 1, 1, 1, 2, 1),
        ("channel", "month", "call", 3, 1, 1, 1, 2, 1),
        ("team", "day", "", 1, 0, 0, 1, 1, 0),
        ("team", "day", "red", 2, 1, 1, 0, 1, 1),
        ("team", "month", "", 1, 0, 0, 1, 1, 0),
        ("team", "month", "red", 2, 1, 1, 0, 1, 1),
    ]


# Imports the command and everything a migration needs, then waits for a line on stdin:
# several processes told to go at once migrate at the same instant, not one import apart.
_MIGRATE_ON_CUE = """
import sys
import alembic.command
import app.cli
import app.main
sys.stdin.readline()
sys.argv = ["mot", "migrate"]
app.cli.main()
"""


def test_instances_migrating_an_empty_database_at_once_all_succeed(
    empty_database_url: str,
) -> None:
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _MIGRATE_ON_CUE],
            env=command_environment(empty_database_url),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    try:
        for process in processes:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        outcomes = [process.communicate(timeout=120) for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    for process, (out, err) in zip(processes, outcomes, strict=True):
        assert process.returncode == 0, err
        assert "latest migration" in out
    assert migrate.current_revisions_sync(empty_database_url) == migrate.head_revisions(
        empty_database_url
    )
    assert TABLES <= _tables(empty_database_url)
