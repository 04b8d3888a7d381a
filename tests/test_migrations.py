import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, create_engine, inspect, text

import app.main  # noqa: F401  (importing the app registers every model)
from app import migrate
from app.db import Base, sync_url
from app.touchpoints import partitions
from app.touchpoints.models import POSTGRESQL_ONLY
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
    "improvement_action",
}

LINKED = ("touchpoint", "follow_up")


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
            opts: dict[str, Any] = {"compare_type": True}
            if connection.dialect.name == "postgresql":
                opts["include_object"] = partitions.same_on_postgresql
            context = MigrationContext.configure(connection, opts=opts)
            differences = compare_metadata(context, Base.metadata)
            only_here: list[Any] = []
            if connection.dialect.name == "postgresql":
                only_here = compare_metadata(
                    MigrationContext.configure(
                        connection,
                        opts={
                            "compare_type": True,
                            "include_name": lambda name, type_, _parents: (
                                type_ != "table" or name in POSTGRESQL_ONLY.tables
                            ),
                        },
                    ),
                    POSTGRESQL_ONLY,
                )
    finally:
        engine.dispose()
    assert differences == []
    assert only_here == []


def _insert_moment(connection: Connection) -> None:
    connection.execute(
        text(
            "INSERT INTO moment (id, key, name, channel, auto_follow_up, archived, "
            "auto_registered, created_at, updated_at) VALUES (1, 'm.one', 'One', 'call', "
            "true, false, true, :now, :now)"
        ),
        {"now": datetime(2026, 10, 1, tzinfo=UTC)},
    )


def test_rollups_migration_counts_touchpoints_stored_before_it(empty_database_url: str) -> None:
    migrate.upgrade(empty_database_url, "0001")
    engine = create_engine(sync_url(empty_database_url))
    try:
        with engine.begin() as connection:
            _insert_moment(connection)
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


def test_delivery_ids_migration_gives_each_stored_delivery_an_id_of_its_own(
    empty_database_url: str,
) -> None:
    migrate.upgrade(empty_database_url, "0008")
    now = datetime(2026, 12, 1, tzinfo=UTC)
    engine = create_engine(sync_url(empty_database_url))
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO webhook (id, url, events, secret, active, created_at) "
                    "VALUES (1, 'https://hooks.example.com/', '[]', 's', true, :now)"
                ),
                {"now": now},
            )
            for _ in range(3):
                connection.execute(
                    text(
                        "INSERT INTO webhook_delivery (webhook_id, event, payload, state, "
                        "attempts, next_attempt_at, created_at) VALUES (1, 'rating.negative', "
                        "'{}', 'pending', 0, :now, :now)"
                    ),
                    {"now": now},
                )
        migrate.upgrade(empty_database_url)
        with engine.connect() as connection:
            ids = connection.execute(text("SELECT delivery_id FROM webhook_delivery")).scalars()
            delivery_ids = list(ids)
    finally:
        engine.dispose()
    assert len(set(delivery_ids)) == 3
    assert all(len(delivery_id) == 36 for delivery_id in delivery_ids)
    migrate.downgrade(empty_database_url, "0008")


def _insert_touchpoint(connection: Connection, external_id: str) -> int:
    row = connection.execute(
        text(
            "INSERT INTO touchpoint (external_id, content_hash, moment_id, channel, occurred_at, "
            "received_at, client_ref, complaint, comment) VALUES (:id, 'h', 1, 'call', :at, :at, "
            ":id, false, :comment) RETURNING id"
        ),
        {"id": external_id, "at": datetime(2026, 11, 2, 9, tzinfo=UTC), "comment": external_id},
    ).one()
    return int(row[0])


def _insert_follow_up(connection: Connection, touchpoint_id: int) -> int:
    at = datetime(2026, 11, 2, 10, tzinfo=UTC)
    row = connection.execute(
        text(
            "INSERT INTO follow_up (touchpoint_id, moment_id, reason, status, opened_at, "
            "acknowledge_due_at, resolve_due_at, updated_at) VALUES (:tp, 1, 'complaint', "
            "'open', :at, :at, :at, :at) RETURNING id"
        ),
        {"tp": touchpoint_id, "at": at},
    ).one()
    connection.execute(
        text(
            "INSERT INTO follow_up_event (follow_up_id, status, actor, at, client_message) "
            "VALUES (:id, 'open', 'ana', :at, 'We are on it.')"
        ),
        {"id": row[0], "at": at},
    )
    return int(row[0])


def _delete_touchpoint(connection: Connection, touchpoint_id: int) -> None:
    # In the order of the foreign keys: SQLite here does not cascade.
    follow_ups = "SELECT id FROM follow_up WHERE touchpoint_id = :id"
    connection.execute(
        text(f"DELETE FROM follow_up_event WHERE follow_up_id IN ({follow_ups})"),
        {"id": touchpoint_id},
    )
    connection.execute(
        text("DELETE FROM follow_up WHERE touchpoint_id = :id"), {"id": touchpoint_id}
    )
    connection.execute(text("DELETE FROM touchpoint WHERE id = :id"), {"id": touchpoint_id})


def _rows(connection: Connection, table: str) -> list[dict[str, Any]]:
    rows = connection.execute(text(f"SELECT * FROM {table} ORDER BY id")).mappings().all()
    return [dict(row) for row in rows]


def test_never_reused_ids_migration_keeps_every_row_and_the_links_sent_for_them(
    empty_database_url: str,
) -> None:
    migrate.upgrade(empty_database_url, "0008")
    engine = create_engine(sync_url(empty_database_url))
    try:
        with engine.begin() as connection:
            _insert_moment(connection)
            kept = _insert_touchpoint(connection, "kept")
            _insert_follow_up(connection, kept)
            _delete_touchpoint(connection, _insert_touchpoint(connection, "erased"))
            before = {table: _rows(connection, table) for table in LINKED}

        # Up to this migration only: later ones may add columns of their own.
        migrate.upgrade(empty_database_url, "0009")
        with engine.begin() as connection:
            for table in LINKED:
                after = _rows(connection, table)
                # Every row as it was; the rows stored before keep no nonce, so that the
                # links sent for them stay valid.
                assert [row.pop("link_nonce", None) for row in after] == [None] * len(after)
                assert after == before[table]
            assert len(_rows(connection, "follow_up_event")) == 1
            # From now on a deleted number is never given out again, and new rows draw a
            # nonce.
            newest = _insert_touchpoint(connection, "newest")
            newest_follow_up = _insert_follow_up(connection, newest)
            _delete_touchpoint(connection, newest)
            following = _insert_touchpoint(connection, "following")
            assert following > newest
            assert _insert_follow_up(connection, following) > newest_follow_up
            nonces = connection.execute(
                text(
                    "SELECT touchpoint.link_nonce, follow_up.link_nonce FROM touchpoint JOIN "
                    "follow_up ON follow_up.touchpoint_id = touchpoint.id "
                    "WHERE touchpoint.id = :id"
                ),
                {"id": following},
            ).one()
            assert all(0 <= nonce < 2**52 for nonce in nonces)

        migrate.downgrade(empty_database_url, "0008")
        with engine.connect() as connection:
            assert [row["external_id"] for row in _rows(connection, "touchpoint")] == [
                "kept",
                "following",
            ]
            for table in LINKED:
                columns = {column["name"] for column in inspect(connection).get_columns(table)}
                assert "link_nonce" not in columns
    finally:
        engine.dispose()


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


def test_partitions_migration_moves_every_touchpoint_into_the_partition_of_its_month(
    empty_database_url: str,
) -> None:
    migrate.upgrade(empty_database_url, "0014")
    engine = create_engine(sync_url(empty_database_url))
    stored = {
        "june": datetime(2026, 6, 30, 23, 59, tzinfo=UTC),
        "ancient": datetime(2003, 1, 1, tzinfo=UTC),
    }
    try:
        with engine.begin() as connection:
            _insert_moment(connection)
            for external_id, at in stored.items():
                connection.execute(
                    text(
                        "INSERT INTO touchpoint (external_id, content_hash, moment_id, channel, "
                        "occurred_at, received_at, complaint) VALUES (:id, :hash, 1, 'call', :at, "
                        ":at, false)"
                    ),
                    {"id": external_id, "hash": f"hash-{external_id}", "at": at},
                )
            before = _rows(connection, "touchpoint")

        migrate.upgrade(empty_database_url, "0016")
        with engine.connect() as connection:
            # Other migrations on the way may add columns of their own.
            after = [
                {name: row[name] for name in before[0]} for row in _rows(connection, "touchpoint")
            ]
            assert after == before
            if connection.dialect.name == "postgresql":
                where = connection.execute(
                    text(
                        "SELECT external_id, touchpoint.tableoid::regclass::text, content_hash "
                        "FROM touchpoint JOIN touchpoint_key USING (external_id, content_hash)"
                    )
                ).all()
                assert sorted(tuple(row) for row in where) == [
                    ("ancient", "touchpoint_y2003m01", "hash-ancient"),
                    ("june", "touchpoint_y2026m06", "hash-june"),
                ]
                # New rows still draw their numbers from the same sequence.
                (number,) = connection.execute(
                    text(
                        "INSERT INTO touchpoint (external_id, content_hash, moment_id, channel, "
                        "occurred_at, received_at, complaint) VALUES ('next', 'h', 1, 'call', "
                        "now(), now(), false) RETURNING id"
                    )
                ).one()
                assert number > max(row["id"] for row in before)
                connection.rollback()

        migrate.downgrade(empty_database_url, "0014")
        with engine.connect() as connection:
            assert _rows(connection, "touchpoint") == before
            uniques = inspect(connection).get_unique_constraints("touchpoint")
            assert [unique["column_names"] for unique in uniques] == [["external_id"]]
            assert "touchpoint_key" not in inspect(connection).get_table_names()
    finally:
        engine.dispose()
