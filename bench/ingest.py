"""Ingest throughput: the HTTP batch endpoint of a real `mot serve` against a raw bulk insert.

For each backend it posts N touchpoints (default 30,000; PERFORMANCE.md's figures are of
60,000) in batches of 1,000 through `POST /v1/touchpoints/batch` of a `mot serve` process
(2 workers by default), 8 requests in flight, each on a new connection, and prints
touchpoints per second. Beside it, the same rows go into an identical fresh schema by the
fastest raw path of the same driver family (PostgreSQL: psycopg COPY; SQLite: executemany
in one transaction), and the ratio is printed. Service and raw runs alternate, `--repeat`
times (the order flips every repeat), so that other work on the machine weighs on both
alike; each run has a fresh database.

The workload is the one PERFORMANCE.md describes: 200 moments, 30 teams of 10 agents,
5 channels, two touchpoints in three rated on csat5 and a quarter of all of them negative
(1 or 2, so each opens a follow-up), all in June 2026, posted in time order.

While the service ingests, the folder's lag (the age of the oldest count delta not folded
yet) is sampled every 100 ms, from /metrics (`mot_rollup_oldest_pending_seconds`) and from
the database itself: p95 and max of the samples. After the last batch it measures how long
until no count delta is pending, then checks that the rollups equal a recount from the
touchpoints (every breakdown, day and month) and that every negative touchpoint opened a
follow-up. It ends with the memory of the server's processes after the last run.

    python -m bench.ingest [--touchpoints 30000] [--repeat 3] [--backends sqlite,postgresql]

The client runs on the same machine as the server and the database, so all three share
the CPUs: the figures are a floor for a machine where they do not.
"""

import argparse
import asyncio
import hashlib
import json
import random
import sqlite3
import statistics
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from sqlalchemy.engine import make_url

from app.db import Database
from app.insights import counts
from app.rollups import service as rollups
from app.scales import ScaleName, normalise
from bench.common import (
    AUTH,
    DEFAULT_POSTGRES_URL,
    ProcessMemory,
    Service,
    fresh_database,
    running_service,
    server_memory,
    worker_pids,
)

MOMENTS = [f"bench.moment-{i:03d}" for i in range(200)]
TEAMS = [f"team-{i:02d}" for i in range(30)]
AGENTS_PER_TEAM = 10
CHANNELS = ["call", "email", "portal", "chat", "visit"]
MONTH = datetime(2026, 6, 1, tzinfo=UTC)
MONTH_SECONDS = 30 * 86_400
RATED = 2 / 3
NEGATIVE = 1 / 4
"""Share of all touchpoints rated negative (csat5 1 or 2)."""
SAMPLE_SECONDS = 0.1
RAW_COLUMNS = (
    "external_id, content_hash, moment_id, channel, occurred_at, received_at, client_ref, "
    "team, agent, source, rating_scale, rating_value, score, sentiment, rated_at, comment, "
    "complaint, attributes"
)


def make_touchpoints(count: int, seed: int = 1) -> list[dict[str, Any]]:
    """`count` touchpoints spread evenly over June 2026, in time order."""
    rng = random.Random(seed)
    items = []
    for i in range(count):
        team = rng.choice(TEAMS)
        item: dict[str, Any] = {
            "id": f"bench-{i:08d}",
            "moment": rng.choice(MOMENTS),
            "channel": rng.choice(CHANNELS),
            "occurred_at": (MONTH + timedelta(seconds=i * MONTH_SECONDS / count)).isoformat(),
            "client_ref": f"c-{rng.randint(1, 50_000):06d}",
            "team": team,
            "agent": f"{team}-agent-{rng.randint(1, AGENTS_PER_TEAM)}",
            "source": "bench",
        }
        draw = rng.random()
        if draw < NEGATIVE:
            item["rating"] = {"scale": "csat5", "value": rng.randint(1, 2)}
        elif draw < RATED:
            item["rating"] = {"scale": "csat5", "value": rng.randint(3, 5)}
        items.append(item)
    return items


def negatives(items: list[dict[str, Any]]) -> int:
    return sum(1 for item in items if item.get("rating", {}).get("value", 5) <= 2)


def chunks(items: list[dict[str, Any]], size: int) -> Iterable[list[dict[str, Any]]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# --- the service ---


@dataclass
class Lag:
    """The folder's lag while the batches went in, one sample every SAMPLE_SECONDS: as
    /metrics said, and as the database said."""

    metric_ages: list[float] = field(default_factory=list)
    """`mot_rollup_oldest_pending_seconds`."""
    metric_pending: list[float] = field(default_factory=list)
    """`mot_rollup_pending_deltas`."""
    ages: list[float] = field(default_factory=list)
    """Age of the oldest row of `rollup_delta` (0 when there is none)."""
    pending: list[float] = field(default_factory=list)
    """Rows of `rollup_delta`."""
    workers: set[int] = field(default_factory=set)
    """Every worker process seen serving: more than `--workers` means some were replaced."""


def metric_values(text: str) -> dict[str, float]:
    """Samples of the Prometheus text by name (labels dropped; the last one wins)."""
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


class PendingReader:
    """Count deltas pending and the age of the oldest, read from the database itself."""

    STATEMENT = "SELECT count(*), min(recorded_at) FROM rollup_delta"

    def __init__(self, backend: str, url: str) -> None:
        self.postgres: psycopg.Connection[Any] | None = None
        self.lite: sqlite3.Connection | None = None
        if backend == "postgresql":
            self.postgres = psycopg.connect(_dsn(url), autocommit=True)
        else:
            self.lite = sqlite3.connect(
                make_url(url).database or "", isolation_level=None, check_same_thread=False
            )

    def read(self) -> tuple[int, float]:
        if self.postgres is not None:
            row = self.postgres.execute(self.STATEMENT).fetchone()
        else:
            assert self.lite is not None
            row = self.lite.execute(self.STATEMENT).fetchone()
        if not row or not row[0]:
            return 0, 0.0
        oldest = row[1]
        if isinstance(oldest, str):  # SQLite: naive UTC text
            oldest = datetime.fromisoformat(oldest).replace(tzinfo=UTC)
        return int(row[0]), max(0.0, (datetime.now(UTC) - oldest).total_seconds())

    def close(self) -> None:
        if self.postgres is not None:
            self.postgres.close()
        if self.lite is not None:
            self.lite.close()


def _new_connection_client(base_url: str, concurrency: int) -> httpx.AsyncClient:
    # A fresh connection per request: a worker busy with a batch does not accept, so the
    # next connection goes to an idle one. Kept-alive connections would stay wherever
    # they were first accepted, often all on one worker.
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=0)
    return httpx.AsyncClient(base_url=base_url, timeout=120, limits=limits, headers=AUTH)


async def _every_sample(stop: asyncio.Event, sample: Callable[[], Awaitable[None]]) -> None:
    while not stop.is_set():
        began = time.perf_counter()
        await sample()
        await asyncio.sleep(max(0.0, SAMPLE_SECONDS - (time.perf_counter() - began)))


async def sample_metrics(base_url: str, lag: Lag, stop: asyncio.Event) -> None:
    async with _new_connection_client(base_url, 1) as client:

        async def sample() -> None:
            values = metric_values((await client.get("/metrics")).text)
            lag.metric_ages.append(values.get("mot_rollup_oldest_pending_seconds", 0.0))
            lag.metric_pending.append(values.get("mot_rollup_pending_deltas", 0.0))

        await _every_sample(stop, sample)


async def sample_database(
    reader: PendingReader, server_pid: int, lag: Lag, stop: asyncio.Event
) -> None:
    async def sample() -> None:
        pending, age = await asyncio.to_thread(reader.read)
        lag.pending.append(pending)
        lag.ages.append(age)
        lag.workers.update(worker_pids(server_pid))

    await _every_sample(stop, sample)


async def post_all(
    service: Service, bodies: list[bytes], concurrency: int, reader: PendingReader, lag: Lag
) -> float:
    """Post every body, `concurrency` at a time, sampling the folder's lag meanwhile;
    returns elapsed seconds."""
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    headers = {"content-type": "application/json"}

    async with _new_connection_client(service.url, concurrency) as client:

        async def worker() -> None:
            while not queue.empty():
                body = queue.get_nowait()
                response = await client.post("/v1/touchpoints/batch", content=body, headers=headers)
                result = response.json()
                if response.status_code != 200 or result["rejected"]:
                    raise RuntimeError(f"batch refused: {response.text[:300]}")

        stop = asyncio.Event()
        samplers = [
            asyncio.create_task(sample_metrics(service.url, lag, stop)),
            asyncio.create_task(sample_database(reader, service.pid, lag, stop)),
        ]
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
        stop.set()
        await asyncio.gather(*samplers)
        return elapsed


def seconds_to_drain(reader: PendingReader, *, limit: float = 300) -> float:
    """Seconds until the folder has left no count delta pending."""
    started = time.perf_counter()
    while reader.read()[0]:
        if time.perf_counter() - started > limit:
            raise RuntimeError(f"count deltas still pending after {limit:.0f} s")
        time.sleep(0.05)
    return time.perf_counter() - started


@dataclass(frozen=True, slots=True)
class Check:
    """The rollups against a recount, and the follow-ups against the negatives."""

    rows: int
    differing: int
    touchpoints: int
    counted: int
    """Touchpoints in the `all` day rollups plus pending deltas."""
    follow_ups: int


async def check(url: str) -> Check:
    database = Database(url)
    try:
        async with database.read_sessions() as session:
            expected = await counts.recompute(session)
            found = await rollups.counted(session)
            touchpoints = await session.scalar(text("SELECT count(*) FROM touchpoint"))
            follow_ups = await session.scalar(text("SELECT count(*) FROM follow_up"))
    finally:
        await database.dispose()
    differing = sum(
        1 for key in expected.keys() | found.keys() if expected.get(key) != found.get(key)
    )
    counted = sum(
        counters[0]
        for (dimension, grain, *_), counters in found.items()
        if dimension == "all" and grain == "day"
    )
    return Check(len(expected), differing, int(touchpoints or 0), counted, int(follow_ups or 0))


@dataclass(frozen=True, slots=True)
class ServiceRun:
    seconds: float
    lag: Lag
    drain: float
    folds: int
    fold_seconds: float
    check: Check
    memory: list[ProcessMemory]


def run_service(backend: str, bodies: list[bytes], args: argparse.Namespace) -> ServiceRun:
    with fresh_database(backend, postgres_url=args.postgres_url, name="mot_bench_ingest") as url:
        reader = PendingReader(backend, url)
        with running_service(url, workers=args.workers) as service:
            lag = Lag()
            try:
                seconds = asyncio.run(post_all(service, bodies, args.concurrency, reader, lag))
                drain = seconds_to_drain(reader)
            finally:
                reader.close()
            values = metric_values(httpx.get(f"{service.url}/metrics", headers=AUTH).text)
            memory = server_memory(service.pid)
        folds = int(values.get("mot_rollup_fold_duration_seconds_count", 0))
        fold_seconds = values.get("mot_rollup_fold_duration_seconds_sum", 0.0)
        return ServiceRun(seconds, lag, drain, folds, fold_seconds, asyncio.run(check(url)), memory)


# --- the raw path ---


def raw_rows(items: list[dict[str, Any]], moment_ids: dict[str, int]) -> list[tuple[Any, ...]]:
    now = datetime.now(UTC)
    rows = []
    for item in items:
        rating = item.get("rating")
        normal = normalise(ScaleName(rating["scale"]), rating["value"]) if rating else None
        digest = hashlib.sha256(json.dumps(item, sort_keys=True).encode()).hexdigest()
        rows.append(
            (
                item["id"],
                digest,
                moment_ids[item["moment"]],
                item["channel"],
                datetime.fromisoformat(item["occurred_at"]),
                now,
                item["client_ref"],
                item["team"],
                item["agent"],
                item["source"],
                normal.scale.value if normal else None,
                normal.value if normal else None,
                normal.score if normal else None,
                normal.sentiment.value if normal else None,
                now if normal else None,
                None,
                False,
                None,
            )
        )
    return rows


def _register_moments_sql() -> str:
    return (
        "INSERT INTO moment (key, name, channel, auto_follow_up, archived, auto_registered, "
        "created_at, updated_at) VALUES (%s, %s, 'other', true, false, false, now(), now())"
    )


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def raw_postgres(url: str, items: list[dict[str, Any]]) -> float:
    with psycopg.connect(_dsn(url)) as connection:
        with connection.cursor() as cursor:
            cursor.executemany(_register_moments_sql(), [(m, m) for m in MOMENTS])
            cursor.execute("SELECT key, id FROM moment")
            moment_ids: dict[str, int] = dict(cursor.fetchall())
        connection.commit()
        rows = raw_rows(items, moment_ids)
        started = time.perf_counter()
        with connection.cursor() as cursor:
            with cursor.copy(f"COPY touchpoint ({RAW_COLUMNS}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        connection.commit()
        return time.perf_counter() - started


def raw_sqlite(url: str, items: list[dict[str, Any]]) -> float:
    path = make_url(url).database or ""
    connection = sqlite3.connect(path)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")
        connection.executemany(
            _register_moments_sql().replace("%s", "?").replace("now()", "CURRENT_TIMESTAMP"),
            [(m, m) for m in MOMENTS],
        )
        moment_ids = dict(connection.execute("SELECT key, id FROM moment").fetchall())
        connection.commit()
        rows = [
            tuple(v.strftime("%Y-%m-%d %H:%M:%S.%f") if isinstance(v, datetime) else v for v in row)
            for row in raw_rows(items, moment_ids)
        ]
        placeholders = ", ".join("?" * len(rows[0]))
        started = time.perf_counter()
        connection.executemany(
            f"INSERT INTO touchpoint ({RAW_COLUMNS}) VALUES ({placeholders})", rows
        )
        connection.commit()
        return time.perf_counter() - started
    finally:
        connection.close()


def run_raw(backend: str, items: list[dict[str, Any]], args: argparse.Namespace) -> float:
    with fresh_database(backend, postgres_url=args.postgres_url, name="mot_bench_raw") as url:
        return (raw_postgres if backend == "postgresql" else raw_sqlite)(url, items)


# --- the runs and their figures ---


def quantile95(values: list[float]) -> float:
    if len(values) < 2:
        return max(values, default=0.0)
    return statistics.quantiles(values, n=20, method="inclusive")[-1]


HEADER = (
    f"{'backend':<11}{'run':>4}{'HTTP /s':>9}{'raw /s':>9}{'ratio':>7}"
    f"{'lag s: database p95':>21}{'max':>6}{'metrics p95':>13}{'max':>6}"
    f"{'pending max':>13}{'drain s':>9}{'folds':>7}{'fold ms':>9}{'busy':>6}{'workers':>9}  check"
)
HEADER_NOTE = (
    "lag: age of the oldest pending count delta, sampled every 100 ms while ingesting, from "
    "the database and from /metrics; pending max: most count deltas pending (database); "
    "drain: seconds from the last answer until none is pending; folds: how many, and their "
    "mean duration (mot_rollup_fold_duration_seconds); busy: their total time over the run's "
    "(ingest and drain); workers: worker processes seen "
    "serving (more than started: the supervisor replaced some)"
)


def print_run(
    backend: str,
    number: int,
    served: ServiceRun,
    raw_seconds: float,
    total: int,
    expected_follow_ups: int,
) -> float:
    http_rate, raw_rate = total / served.seconds, total / raw_seconds
    lag, found = served.lag, served.check
    good = found.differing == 0 and found.counted == found.touchpoints == total
    verdict = "rollups = recount" if good else "ROLLUPS DIFFER FROM A RECOUNT"
    mean_fold = served.fold_seconds / served.folds * 1000 if served.folds else 0.0
    busy = served.fold_seconds / (served.seconds + served.drain)
    print(
        f"{backend:<11}{number:>4}{http_rate:>9,.0f}{raw_rate:>9,.0f}{http_rate / raw_rate:>7.3f}"
        f"{quantile95(lag.ages):>21.2f}{max(lag.ages, default=0):>6.2f}"
        f"{quantile95(lag.metric_ages):>13.2f}{max(lag.metric_ages, default=0):>6.2f}"
        f"{max(lag.pending, default=0):>13,.0f}{served.drain:>9.2f}"
        f"{served.folds:>7}{mean_fold:>9.0f}{busy:>6.0%}{len(lag.workers):>9}  {verdict} "
        f"({found.differing} of {found.rows:,} rows differ, {found.counted:,} of "
        f"{found.touchpoints:,} touchpoints counted), "
        f"{found.follow_ups:,} follow-ups of {expected_follow_ups:,} negatives",
        flush=True,
    )
    return http_rate / raw_rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--touchpoints", type=int, default=30_000)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--concurrency",
        type=int,
        default=8,
        help="requests in flight, each on its own connection (spread over the workers)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="service and raw runs each")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    args = parser.parse_args()

    items = make_touchpoints(args.touchpoints)
    bodies = [
        json.dumps({"touchpoints": chunk}).encode() for chunk in chunks(items, args.batch_size)
    ]
    expected_follow_ups = negatives(items)
    print(
        f"{args.touchpoints:,} touchpoints per run ({len(MOMENTS)} moments, {len(TEAMS)} teams, "
        f"{len(CHANNELS)} channels, {RATED:.0%} rated on csat5, {NEGATIVE:.0%} negative, "
        f"June 2026); batches of {args.batch_size:,}, {args.concurrency} requests in flight, "
        f"`mot serve --workers {args.workers}`; {args.repeat} repeats, service and raw "
        "alternating"
    )
    print(HEADER)
    print(f"({HEADER_NOTE})")
    backends = args.backends.split(",")
    ratios: dict[str, list[float]] = {backend: [] for backend in backends}
    rates: dict[str, list[tuple[float, float]]] = {backend: [] for backend in backends}
    memory: dict[str, list[ProcessMemory]] = {}
    for number in range(1, args.repeat + 1):
        for backend in backends:
            if number % 2:
                served = run_service(backend, bodies, args)
                raw_seconds = run_raw(backend, items, args)
            else:
                raw_seconds = run_raw(backend, items, args)
                served = run_service(backend, bodies, args)
            ratios[backend].append(
                print_run(
                    backend, number, served, raw_seconds, args.touchpoints, expected_follow_ups
                )
            )
            rates[backend].append(
                (args.touchpoints / served.seconds, args.touchpoints / raw_seconds)
            )
            memory[backend] = served.memory
    print()
    for backend in backends:
        http = statistics.median(rate for rate, _ in rates[backend])
        raw = statistics.median(rate for _, rate in rates[backend])
        print(
            f"{backend}: median HTTP {http:,.0f}/s, raw {raw:,.0f}/s; ratio per repeat: median "
            f"{statistics.median(ratios[backend]):.3f} (min {min(ratios[backend]):.3f}, max "
            f"{max(ratios[backend]):.3f})"
        )
        print("  server memory at the end of the last run:")
        for process in memory[backend]:
            print(f"    {process}")


if __name__ == "__main__":
    main()
