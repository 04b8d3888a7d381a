"""mot behind PgBouncer in transaction mode (`MOT_DATABASE_POOLER=transaction`).

PgBouncer gives each transaction whichever of its two server connections is free: a
statement the driver prepared in one transaction is missing from the next, and a lock
or a setting a session kept stays behind on a server connection for other clients.
"""

from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from app import migrate
from app.config import Settings
from app.db import Database
from app.keys.schemas import Scope
from app.main import create_app
from app.moments.models import Moment
from app.rollups import service as rollups_service
from tests.conftest import POSTGRES_URL, create_key
from tests.payloads import touchpoint
from tests.postgres_processes import pgbouncer

pytestmark = pytest.mark.anyio

WINDOW = {"from": "2026-10-05T00:00:00Z", "to": "2026-10-12T00:00:00Z"}
# More than psycopg's default prepare threshold (5): the same statement runs prepared from
# its sixth time on, unless the driver is told never to prepare.
REPEATS = 8


@pytest.fixture(scope="module")
def pooler_port(backend: str) -> Iterator[int]:
    if backend != "postgresql":
        pytest.skip("PgBouncer pools PostgreSQL connections")
    server = make_url(POSTGRES_URL)
    with pgbouncer(server_host=server.host or "127.0.0.1", server_port=server.port or 5432) as port:
        yield port


def _through_pooler(url: str, port: int) -> str:
    return make_url(url).set(host="127.0.0.1", port=port).render_as_string(hide_password=False)


def _batch() -> list[dict[str, Any]]:
    # pooled.bad: 6 of 10 answers negative (csat5 1), pooled.good: 1 of 10 (csat5 2).
    values = {"pooled.bad": [1] * 6 + [5] * 4, "pooled.good": [2] + [5] * 9}
    return [
        touchpoint(
            moment=moment,
            occurred_at="2026-10-06T09:00:00Z",
            client_ref=f"c-{moment}-{number}",
            rating={"scale": "csat5", "value": value},
        )
        for moment, answers in values.items()
        for number, value in enumerate(answers)
    ]


async def test_the_api_and_the_folder_work_through_pgbouncer_in_transaction_mode(
    database_url: str, pooler_port: int
) -> None:
    settings = Settings(
        _env_file=None,
        database_url=_through_pooler(database_url, pooler_port),
        database_pooler="transaction",
    )
    app = create_app(settings)
    database = app.state.database
    try:
        key = await create_key(database, Scope.admin)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://test",
            headers={"Authorization": f"Bearer {key}"},
        ) as client:
            posted = await client.post("/v1/touchpoints/batch", json={"touchpoints": _batch()})
            assert posted.status_code == 200, posted.text
            assert posted.json()["accepted"] == 20

            for _ in range(REPEATS):
                spots = await client.get("/v1/insights/weak-spots", params=WINDOW)
                assert spots.status_code == 200, spots.text
            counted = {
                item["moment"]: (item["responses"], item["negatives"])
                for item in spots.json()["data"]
            }
            assert counted == {"pooled.bad": (10, 6), "pooled.good": (10, 1)}

            queue = await client.get("/v1/follow-ups", params={"moment": "pooled.bad"})
            opened = queue.json()["data"]
            assert len(opened) == 6
            for follow_up in opened[:REPEATS]:
                moved = await client.post(
                    f"/v1/follow-ups/{follow_up['id']}/events",
                    json={"status": "acknowledged", "actor": "ana"},
                )
                assert moved.status_code == 200, moved.text
            detail = await client.get(f"/v1/follow-ups/{opened[0]['id']}")
            assert detail.json()["status"] == "acknowledged"

            for _ in range(REPEATS):
                assert await rollups_service.fold_once(database) is not None
            after_fold = await client.get("/v1/insights/weak-spots", params=WINDOW)
            assert after_fold.json()["data"] == spots.json()["data"]
    finally:
        await database.dispose()


async def test_a_statement_run_often_runs_again_in_the_next_transaction(
    database_url: str, pooler_port: int
) -> None:
    # The driver forgets what it prepared on a rollback, not on a commit: a statement it
    # prepared in one committed transaction is sent by name in the next, to a server
    # connection that never saw it.
    database = Database(_through_pooler(database_url, pooler_port), pooler="transaction")
    try:
        for _ in range(2):
            async with database.write_sessions() as session, session.begin():
                for _ in range(REPEATS):
                    assert await session.scalar(select(func.count()).select_from(Moment)) == 0
    finally:
        await database.dispose()


def _advisory_locks_held(database_url: str) -> int:
    name = make_url(database_url).database
    with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
        row = connection.execute(
            "SELECT count(*) FROM pg_locks JOIN pg_database AS d ON d.oid = pg_locks.database "
            "WHERE locktype = 'advisory' AND d.datname = %s",
            (name,),
        ).fetchone()
    assert row is not None
    held: int = row[0]
    return held


def test_migrating_through_pgbouncer_leaves_no_lock_behind(
    empty_database_url: str, pooler_port: int
) -> None:
    pooled = _through_pooler(empty_database_url, pooler_port)
    migrate.upgrade(pooled)
    # The pooler keeps its server connections open after the migration's client left: a
    # lock held by the session would still be held, and the next migration would wait on it.
    assert _advisory_locks_held(empty_database_url) == 0
    assert migrate.current_revisions_sync(pooled) == migrate.head_revisions(pooled)
