"""The counts on their way from writers to readers, with real processes: exact throughout.

Writers append count deltas, a folder moves committed ones into the rollups, readers add
the two in one snapshot. These tests run that path as it runs in production (served
workers, folders racing for their lock, replicas sharing a database, a folder killed
mid-fold) and check that no figure ever counts a change twice, misses one or shows half
of one.
"""

import asyncio
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection

from app import migrate
from app.db import Database, sync_url
from app.rollups import service as rollups
from tests.payloads import touchpoint
from tests.servers import MOT, Served, command_environment
from tests.serving.stored import (
    read_rollups,
    stored_ids,
    wait_until_disconnected,
    wait_until_folded,
)

pytestmark = pytest.mark.slow

FOLD_WITHIN = 120.0
# Folds far more often than by default, so that they interleave with every write and read.
FAST_FOLDS = {"MOT_FOLD_INTERVAL_SECONDS": "0.05"}


@pytest.fixture
def postgres_url(backend: str, database_url: str) -> str:
    """The test's database: PostgreSQL only, where processes really run side by side."""
    if backend != "postgresql":
        pytest.skip("SQLite has one writer at a time and no advisory locks")
    return database_url


@contextmanager
def _connected(database_url: str) -> Iterator[Connection]:
    """A connection of the test's own, in autocommit; closed, not pooled, at the end."""
    engine = create_engine(sync_url(database_url), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as opened:
            yield opened
    finally:
        engine.dispose()


# --- a fold killed half-way ---

# Touchpoints written straight into the tables, one count delta each, as if ingested with
# no folder running: four moments, seven teams, three channels, fifty agents, two ratings in
# three, a complaint in eleven; a minute apart from the 20th of August on, so that they
# span three months.
_LOAD = text(
    """
    INSERT INTO touchpoint (external_id, content_hash, moment_id, channel, occurred_at,
        received_at, client_ref, team, agent, rating_scale, rating_value, score, sentiment,
        complaint)
    SELECT 'bulk-' || i, md5(i::text) || md5(i::text),
        (SELECT min(id) FROM moment) + i % 4, (ARRAY['call', 'email', 'chat'])[1 + i % 3],
        timestamptz '2026-08-20 00:00:00+00' + i * interval '61 seconds', now(),
        'client-' || i % 1000, 'team-' || i % 7, 'agent-' || i % 50,
        CASE WHEN i % 3 > 0 THEN 'csat5' END, CASE WHEN i % 3 > 0 THEN 1 + i % 5 END,
        CASE WHEN i % 3 > 0 THEN 25.0 * (i % 5) END,
        CASE WHEN i % 3 = 0 THEN NULL WHEN i % 5 < 2 THEN 'negative'
            WHEN i % 5 = 2 THEN 'neutral' ELSE 'positive' END,
        i % 11 = 0
    FROM generate_series(CAST(:first AS int), CAST(:last AS int)) AS i
    """
)
_DELTA_COLUMNS = (
    "recorded_at, moment_id, day, team, channel, agent, rating_scale, rating_value, "
    "touchpoints, complaints, ratings"
)
_DELTA_VALUES = (
    "now(), moment_id, CAST(timezone('UTC', occurred_at) AS date), coalesce(team, ''), "
    "channel, coalesce(agent, ''), rating_scale, rating_value, {sign}, "
    "{sign} * CAST(complaint AS int), {sign} * CAST(rating_scale IS NOT NULL AS int)"
)
_ADDED = text(
    f"INSERT INTO rollup_delta ({_DELTA_COLUMNS}) "
    f"SELECT {_DELTA_VALUES.format(sign=1)} FROM touchpoint WHERE id > CAST(:after AS bigint)"
)
# A team erased altogether: the folder must empty and delete its rollup rows.
_ERASED = text(
    f"WITH gone AS (DELETE FROM touchpoint WHERE team = 'team-3' RETURNING *) "
    f"INSERT INTO rollup_delta ({_DELTA_COLUMNS}) "
    f"SELECT {_DELTA_VALUES.format(sign=-1)} FROM gone"
)
_FOLDING = text(
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
    " AND state = 'active' AND wait_event_type = 'Lock'"
    " AND query LIKE 'WITH moved AS (DELETE FROM rollup_delta%'"
)


def _load(connection: Connection, first: int, last: int) -> None:
    """Touchpoints `first` to `last` with their count deltas, not folded."""
    after = connection.scalar(text("SELECT coalesce(max(id), 0) FROM touchpoint"))
    connection.execute(_LOAD, {"first": first, "last": last})
    connection.execute(_ADDED, {"after": after})


async def _fold_once(database_url: str) -> None:
    """One fold, as the folder of a served instance does it."""
    database = Database(database_url)
    try:
        assert await rollups.fold_once(database)
    finally:
        await database.dispose()


def _fold(environment: dict[str, str]) -> str:
    """Run `mot rollups fold` to the end; what it printed."""
    folded = subprocess.run(
        [MOT, "rollups", "fold"], env=environment, capture_output=True, timeout=FOLD_WITHIN
    )
    assert folded.returncode == 0, folded.stderr.decode()
    return folded.stdout.decode()


def test_a_fold_killed_half_way_loses_and_doubles_nothing(postgres_url: str) -> None:
    environment = command_environment(postgres_url)
    with _connected(postgres_url) as connection:
        connection.execute(
            text(
                "INSERT INTO moment (key, name, channel, auto_follow_up, archived,"
                " auto_registered, created_at, updated_at) SELECT 'bulk.' || n, 'Bulk ' || n,"
                " 'call', false, false, false, now(), now() FROM generate_series(1, 4) AS n"
            )
        )
        # Some counts folded already, many more pending: adds, and the removal of a team.
        _load(connection, 1, 5_000)
        asyncio.run(_fold_once(postgres_url))
        _load(connection, 5_001, 30_000)
        connection.execute(_ERASED)
    before = read_rollups(postgres_url)
    assert before.pending > 25_000
    assert before.counted == before.recount

    # A row lock on one of the rollup rows the fold will add to holds the fold statement
    # half-way, its deltas deleted and part of the rollups written, in the transaction of
    # the folder: the folder is killed right there.
    engine = create_engine(sync_url(postgres_url))
    try:
        with engine.connect() as locker, engine.connect() as watcher:
            locker.execute(
                text(
                    "SELECT 1 FROM moment_rollup WHERE dimension = 'team'"
                    " ORDER BY grain DESC, period DESC, moment_id DESC, member DESC"
                    " LIMIT 1 FOR UPDATE"
                )
            )
            fold = subprocess.Popen(
                [MOT, "rollups", "fold"],
                env=environment,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            deadline = time.monotonic() + FOLD_WITHIN
            while not watcher.scalar(_FOLDING):
                watcher.rollback()  # a fresh snapshot of pg_stat_activity each time
                if fold.poll() is not None:
                    output = fold.communicate()[0].decode()
                    raise AssertionError(f"the fold ended before it was killed: {output}")
                assert time.monotonic() < deadline, "the fold never reached the rollups"
                time.sleep(0.01)
            fold.send_signal(signal.SIGKILL)
            assert fold.wait(timeout=FOLD_WITHIN) == -signal.SIGKILL
            locker.rollback()
    finally:
        engine.dispose()
    # The killed folder's session finishes its statement, finds its client gone and ends,
    # its transaction rolled back.
    wait_until_disconnected(postgres_url)

    after = read_rollups(postgres_url)
    assert after.pending == before.pending
    assert after.stored == before.stored
    assert after.counted == before.counted == after.recount

    # Nothing is left locked: the next fold moves every delta, once.
    assert f"rollups: {before.pending} count deltas folded" in _fold(environment)
    final = read_rollups(postgres_url)
    assert final.pending == 0
    assert final.stored == final.recount == before.counted
    assert not [key for key in final.stored if key[4] == "team-3"]


# --- erasures racing ingest ---

ERASED_CLIENTS = tuple(f"erased-{number}" for number in range(6))
KEPT_CLIENT = "kept"
STREAMS = ("a", "b", "c")
BATCHES = 12
BATCH_SIZE = 50


def _raced_batch(stream: str, number: int) -> list[dict[str, Any]]:
    """Touchpoints of every erased client and one kept client, across two months' ends."""
    refs = (*ERASED_CLIENTS, KEPT_CLIENT)
    first = datetime(2026, 9, 25, tzinfo=UTC)
    items = []
    for item in range(BATCH_SIZE):
        position = number * BATCH_SIZE + item
        body = touchpoint(
            id=f"{stream}-{number:03d}-{item:02d}",
            moment=f"erase.{item % 3}",
            client_ref=refs[position % len(refs)],
            team=f"team-{item % 4}",
            occurred_at=(first + timedelta(minutes=97 * position)).isoformat(),
            complaint=item % 9 == 0,
        )
        if item % 4:
            value = 1 + position % 5
            body["rating"] = {"scale": "csat5", "value": value, "lost_minutes": position % 7 * 10}
            if value <= 2:
                body["rating"]["factors"] = ["not-solved", "had-to-repeat"][: 1 + position % 2]
        items.append(body)
    return items


def _post_stream(server: Served, stream: str) -> list[tuple[list[dict[str, Any]], Any]]:
    """Post the stream's batches one after the other; each batch with its answer."""
    answers = []
    with server.client() as http:
        for number in range(BATCHES):
            batch = _raced_batch(stream, number)
            response = http.post("/v1/touchpoints/batch", json={"touchpoints": batch})
            assert response.status_code == 200, response.text
            answers.append((batch, response.json()))
    return answers


def _erase_until(server: Served, refs: tuple[str, ...], done: threading.Event) -> Counter[str]:
    """Erase the clients over and over until told to stop; touchpoints erased per client."""
    erased: Counter[str] = Counter()
    with server.client() as http:
        while not done.is_set():
            for ref in refs:
                response = http.delete(f"/v1/clients/{ref}")
                assert response.status_code == 200, response.text
                erased[ref] += response.json()["erased"]["touchpoints"]
    return erased


def _stored_per_client(database_url: str) -> Counter[str]:
    with _connected(database_url) as connection:
        rows = connection.execute(text("SELECT client_ref, count(*) FROM touchpoint GROUP BY 1"))
        return Counter({ref: count for ref, count in rows})


def test_erasing_clients_while_their_touchpoints_arrive_leaves_exact_counts(
    postgres_url: str, tmp_path: Path
) -> None:
    done = threading.Event()
    with (
        Served(postgres_url, tmp_path / "serve.log", workers=2, env=FAST_FOLDS) as server,
        ThreadPoolExecutor(len(STREAMS) + 2) as pool,
    ):
        posting = [pool.submit(_post_stream, server, stream) for stream in STREAMS]
        erasing = [
            pool.submit(_erase_until, server, refs, done)
            for refs in (ERASED_CLIENTS[0::2], ERASED_CLIENTS[1::2])
        ]
        try:
            answers = [answer for future in posting for answer in future.result()]
        finally:
            done.set()
        erased = sum((future.result() for future in erasing), Counter[str]())
        wait_until_folded(postgres_url)
        log = server.log

    posted: Counter[str] = Counter()
    for batch, result in answers:
        assert (result["accepted"], result["errors"]) == (len(batch), []), result
        posted.update(item["client_ref"] for item in batch)
    # Every touchpoint is either still stored or was erased by exactly one erasure.
    stored = _stored_per_client(postgres_url)
    assert stored + erased == posted
    assert stored[KEPT_CLIENT] == posted[KEPT_CLIENT]
    assert all(erased[ref] for ref in ERASED_CLIENTS), erased
    counted = read_rollups(postgres_url)
    assert counted.pending == 0
    assert counted.stored == counted.recount
    assert counted.details_stored == counted.details_recount
    assert counted.details_stored
    assert "Traceback" not in log, log


# --- reads during ingest ---

# A window whose bounds fall inside days and that spans the end of October: its figures add
# the touchpoints of the two edge days to the counts of the whole days between.
READ_WINDOW = {"from": "2026-10-20T06:00:00Z", "to": "2026-11-10T13:00:00Z"}
# Where each batch puts its touchpoints: on the window's first instant, on both sides of
# its edges and of midnights, across the month's end (in another offset too), before the
# window (in the previous one, which the overview reads as well) and after it.
INSIDE = (
    "2026-10-20T06:00:00Z",
    "2026-10-20T23:59:59Z",
    "2026-10-21T00:00:00Z",
    "2026-10-31T23:59:59Z",
    "2026-10-31T20:30:00-05:00",
    "2026-11-01T00:00:00Z",
    "2026-11-09T23:59:59Z",
    "2026-11-10T00:00:00Z",
    "2026-11-10T12:59:59Z",
    "2026-11-10T14:00:00+03:00",
)
BEFORE = ("2026-10-20T05:59:59Z", "2026-10-01T12:00:00Z", "2026-10-20T08:00:00+03:00")
AFTER = ("2026-11-10T13:00:00Z", "2026-11-10T23:00:00Z", "2026-11-20T12:00:00Z")
SPREAD = 8
"""Touchpoints of each batch on other whole days of the window, a different day each time."""
READ_BATCHES = 30


def _read_batch(stream: int, number: int) -> list[dict[str, Any]]:
    """One batch: the same count of touchpoints, responses and complaints in the window,
    and before it, every time."""
    first_day = datetime(2026, 10, 21, 3, tzinfo=UTC)
    spread = [
        (first_day + timedelta(days=(number + 7 * stream + 3 * item) % 20)).isoformat()
        for item in range(SPREAD)
    ]
    items = []
    for position, occurred_at in enumerate((*INSIDE, *spread, *BEFORE, *AFTER)):
        body = touchpoint(
            id=f"read-{stream}-{number:03d}-{position:02d}",
            moment=f"read.{position % 3}",
            occurred_at=occurred_at,
            complaint=position % 5 == 0,
        )
        if position % 4:
            body["rating"] = {"scale": "nps11", "value": position % 11}
        items.append(body)
    return items


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _in_window(batch: list[dict[str, Any]], start: str, end: str) -> dict[str, list[int]]:
    """Touchpoints, responses and complaints of each moment in [start, end)."""
    figures: dict[str, list[int]] = {}
    for item in batch:
        if _at(start) <= _at(item["occurred_at"]) < _at(end):
            cell = figures.setdefault(item["moment"], [0, 0, 0])
            cell[0] += 1
            cell[1] += "rating" in item
            cell[2] += item["complaint"]
    return figures


def _batches_seen(totals: dict[str, list[int]], per_batch: dict[str, list[int]]) -> int:
    """How many whole batches the figures count; fails if they count part of one."""
    if not totals:
        return 0
    key = next(iter(per_batch))
    batches = totals.get(key, [0])[0] // per_batch[key][0]
    whole = {key: [batches * figure for figure in cell] for key, cell in per_batch.items()}
    assert totals == whole, f"not {batches} whole batches: {totals}"
    return batches


def _ingest(server: Served, stream: int) -> None:
    """Post the stream's batches, every third one twice (a retry adds nothing)."""
    with server.client() as http:
        for number in range(READ_BATCHES):
            body = {"touchpoints": _read_batch(stream, number)}
            for _ in range(2 if number % 3 == 0 else 1):
                response = http.post("/v1/touchpoints/batch", json=body)
                assert response.status_code == 200, response.text
                assert response.json()["rejected"] == 0, response.text


def _read_until(server: Served, done: threading.Event) -> list[int]:
    """Read the window's overview and weak spots over and over until ingest is done, and
    once more; how many batches each read counted."""
    start, end = _at(READ_WINDOW["from"]), _at(READ_WINDOW["to"])
    batch = _read_batch(0, 0)
    per_moment = _in_window(batch, READ_WINDOW["from"], READ_WINDOW["to"])
    before = _in_window(batch, (start - (end - start)).isoformat(), READ_WINDOW["from"])
    seen: list[int] = []
    with server.client() as http:
        last = False
        while not last:
            last = done.is_set()
            overview = http.get("/v1/insights/overview", params=READ_WINDOW)
            assert overview.status_code == 200, overview.text
            # One snapshot: the window and the one before it count the same batches.
            in_window, in_previous = (
                _batches_seen(
                    {"": [figures[name] for name in ("touchpoints", "responses", "complaints")]},
                    {"": [sum(cell[i] for cell in expected.values()) for i in range(3)]},
                )
                for figures, expected in (
                    (overview.json()["current"], per_moment),
                    (overview.json()["previous"], before),
                )
            )
            assert in_window == in_previous, overview.json()
            seen.append(in_window)
            spots = http.get("/v1/insights/weak-spots", params=READ_WINDOW)
            assert spots.status_code == 200, spots.text
            ranked = spots.json()["data"] + spots.json()["insufficient_data"]
            figures = {
                s["moment"]: [s["touchpoints"], s["responses"], s["complaints"]] for s in ranked
            }
            seen.append(_batches_seen(figures, per_moment))
    return seen


def test_reads_during_ingest_see_whole_batches_only_and_never_fewer(
    postgres_url: str, tmp_path: Path
) -> None:
    done = threading.Event()
    streams = 2
    with (
        Served(postgres_url, tmp_path / "serve.log", workers=2, env=FAST_FOLDS) as server,
        ThreadPoolExecutor(streams + 2) as pool,
    ):
        readers = [pool.submit(_read_until, server, done) for _ in range(2)]
        ingesting = [pool.submit(_ingest, server, stream) for stream in range(streams)]
        try:
            for future in ingesting:
                future.result()
        finally:
            done.set()
        reads = [future.result() for future in readers]
        wait_until_folded(postgres_url)
        log = server.log

    total = streams * READ_BATCHES
    for seen in reads:
        # Ingest only adds: each read counts at least what the one before it counted, and
        # the last one, after the ingest, all of it.
        assert seen == sorted(seen), seen
        assert seen[-1] == total, seen
    # The reads really overlapped the ingest.
    assert any(0 < batches < total for seen in reads for batches in seen), reads
    counted_rollups = read_rollups(postgres_url)
    assert counted_rollups.stored == counted_rollups.recount
    assert "Traceback" not in log, log


# --- two replicas on one database ---

REPLICATED = 800
REPLICA_BATCH = 100


@pytest.fixture
def empty_postgres_url(backend: str, empty_database_url: str) -> str:
    """A PostgreSQL database never migrated: replicas starting on it migrate it."""
    if backend != "postgresql":
        pytest.skip("SQLite has one writer at a time and no advisory locks")
    return empty_database_url


def _replicated_touchpoint(number: int) -> dict[str, Any]:
    """Touchpoint `number`, the same whichever replica it is posted to."""
    body = touchpoint(
        id=f"rep-{number:04d}",
        moment=f"replica.{number % 4}",
        client_ref=f"c-{number % 29}",
        team=f"team-{number % 3}",
        occurred_at=(datetime(2026, 10, 29, tzinfo=UTC) + timedelta(hours=number // 7)).isoformat(),
        complaint=number % 13 == 0,
    )
    if number % 3:
        body["rating"] = {"scale": "ces7", "value": 1 + number % 7}
    return body


def _post_replicated(server: Served, offset: int, reverse: bool) -> list[tuple[int, Any]]:
    """Post every touchpoint, in batches shifted by `offset`, first to last or reversed."""
    starts = list(range(-offset, REPLICATED, REPLICA_BATCH))
    answers = []
    with server.client() as http:
        for start in reversed(starts) if reverse else starts:
            numbers = range(max(start, 0), min(start + REPLICA_BATCH, REPLICATED))
            batch = [_replicated_touchpoint(number) for number in numbers]
            if reverse:
                batch.reverse()
            response = http.post("/v1/touchpoints/batch", json={"touchpoints": batch})
            assert response.status_code == 200, response.text
            answers.append((len(batch), response.json()))
    return answers


def _pending_deltas(server: Served) -> float:
    with server.client() as http:
        response = http.get("/metrics")
    assert response.status_code == 200, response.text
    for family in text_string_to_metric_families(response.text):
        if family.name == "mot_rollup_pending_deltas":
            (sample,) = family.samples
            return float(sample.value)
    raise AssertionError("no mot_rollup_pending_deltas in /metrics")


def test_two_replicas_started_together_share_one_database_exactly(
    empty_postgres_url: str, tmp_path: Path
) -> None:
    replicas = [
        Served(empty_postgres_url, tmp_path / f"replica{number}.log", workers=2)
        for number in range(2)
    ]
    with ExitStack() as running, ThreadPoolExecutor(4) as pool:
        # Both start on an empty database at once: their migrations race.
        for replica in replicas:
            replica.launch()
            running.push(replica)
        for replica in replicas:
            replica.wait_until_ready()
        # Every touchpoint posted twice to each replica, all four streams at once.
        posting = [
            pool.submit(_post_replicated, replica, offset, reverse)
            for replica in replicas
            for offset, reverse in ((0, False), (REPLICA_BATCH // 2, True))
        ]
        answers = [answer for future in posting for answer in future.result()]
        # The folders catch up, and then say so.
        wait_until_folded(empty_postgres_url)
        deadline = time.monotonic() + FOLD_WITHIN
        while any(_pending_deltas(replica) for replica in replicas):
            assert time.monotonic() < deadline, "the metrics never said the folders caught up"
            time.sleep(0.1)
        logs = [replica.log for replica in replicas]

    for size, result in answers:
        assert result["accepted"] + result["duplicates"] + result["rejected"] == size, result
        assert (result["rejected"], result["errors"]) == (0, []), result
    assert sum(result["accepted"] for _, result in answers) == REPLICATED
    every_id = {_replicated_touchpoint(number)["id"] for number in range(REPLICATED)}
    assert stored_ids(empty_postgres_url) == dict.fromkeys(every_id, 1)
    counted = read_rollups(empty_postgres_url)
    assert counted.pending == 0
    assert counted.stored == counted.recount
    assert sum(v[0] for k, v in counted.stored.items() if k[:2] == ("all", "day")) == REPLICATED
    with _connected(empty_postgres_url) as connection:
        versions = connection.execute(text("SELECT version_num FROM alembic_version")).all()
        keys = connection.scalar(text("SELECT count(*) FROM api_key"))
    assert {version for (version,) in versions} == migrate.head_revisions(empty_postgres_url)
    assert len(versions) == 1
    assert keys == 1
    # One replica migrated; the other waited for it, then found the schema current.
    assert [("Running upgrade" in log) for log in logs].count(True) == 1, logs
    for log in logs:
        assert "Traceback" not in log, log
