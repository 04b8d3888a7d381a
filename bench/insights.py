"""Insights latency: weak spots and a moment report over HTTP, at millions of touchpoints.

Generates a year of touchpoints (default 1,000,000 over 200 moments, 30 teams, 5 channels,
365 days up to now), loads them straight into a fresh database (PostgreSQL: COPY; SQLite:
executemany), counts them into the rollups with `mot rollups rebuild`, starts a real
`mot serve`, and times each query over HTTP, one request at a time:

- weak spots over the last 30 and 365 days, with and without a team filter;
- the report of one moment over the last 30 days (daily series and every breakdown).

Beside each weak-spot window it times the naive alternative: one `GROUP BY moment` over
the raw touchpoints of the same window, run directly on the database (it computes far
less than the endpoint: counts only, no previous window, no teams, no statistics).

    python -m bench.insights [--touchpoints 1000000] [--backends postgresql,sqlite]

Windows end "now", as the default window does, so they start and end in the middle of a
UTC day: those partial days are read from the touchpoints, the rest from the rollups.
"""

import argparse
import hashlib
import itertools
import os
import random
import sqlite3
import statistics
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
from sqlalchemy.engine import make_url

from app.scales import SCALES, ScaleName
from app.touchpoints import bulk
from bench.common import AUTH, DEFAULT_POSTGRES_URL, MOT, fresh_database, running_service

CHANNELS = ("call", "email", "portal", "chat", "visit")
SCALE_CHOICES = (ScaleName.csat5, ScaleName.nps11, ScaleName.ces7, ScaleName.thumbs)
# The touchpoint columns the service itself writes, but for attributes (none here).
COLUMNS = tuple(name for name in bulk.COLUMNS if name != "attributes")
CHUNK = 100_000


class Shape:
    """The data set: moments with a channel, a scale and a true negative rate each."""

    def __init__(self, *, touchpoints: int, moments: int, teams: int, days: int, seed: int):
        self.touchpoints = touchpoints
        self.days = days
        self.seed = seed
        rng = random.Random(seed)
        self.moment_keys = [f"bench.stage-{i % 8}.moment-{i:03d}" for i in range(moments)]
        self.moment_channels = [rng.choice(CHANNELS) for _ in range(moments)]
        self.moment_scales = [rng.choice(SCALE_CHOICES) for _ in range(moments)]
        self.moment_bad = [rng.betavariate(2, 12) for _ in range(moments)]
        # Volumes differ a lot between moments, as they do between a phone line and a visit.
        weights = [rng.paretovariate(1.2) for _ in range(moments)]
        self.moment_weights = [w / sum(weights) for w in weights]
        self.teams = [f"team-{i:02d}" for i in range(teams)]
        self.end = datetime.now(UTC)

    def rows(self, moment_ids: list[int]) -> Iterator[list[tuple[Any, ...]]]:
        """Touchpoint rows in `COLUMNS` order, CHUNK at a time."""
        rng = random.Random(self.seed + 1)
        start = self.end - timedelta(days=self.days)
        span = (self.end - start).total_seconds()
        positions = range(len(moment_ids))
        chunk: list[tuple[Any, ...]] = []
        # Cumulative weights once, not per draw: draws stay O(log moments) at 10M touchpoints.
        cumulative = list(itertools.accumulate(self.moment_weights))
        for number in range(self.touchpoints):
            m = rng.choices(positions, cum_weights=cumulative)[0]
            occurred = start + timedelta(seconds=rng.random() * span)
            channel = self.moment_channels[m] if rng.random() < 0.8 else rng.choice(CHANNELS)
            team = rng.choice(self.teams)
            rating: tuple[Any, ...] = (None, None, None, None, None)
            if rng.random() < 0.35:
                rating = self._rating(rng, m, occurred)
            chunk.append(
                (
                    f"bench-{number:09d}",
                    hashlib.sha256(str(number).encode()).hexdigest(),
                    moment_ids[m],
                    channel,
                    occurred,
                    occurred,
                    f"c-{rng.randint(1, 200_000):06d}",
                    team,
                    f"{team}-agent-{rng.randint(1, 10)}",
                    "bench",
                    *rating,
                    None,
                    rng.random() < 0.01,
                )
            )
            if len(chunk) == CHUNK:
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    def _rating(self, rng: random.Random, m: int, occurred: datetime) -> tuple[Any, ...]:
        scale = SCALES[self.moment_scales[m]]
        if rng.random() < self.moment_bad[m]:
            value = rng.randint(scale.low, scale.negative_max)
        else:
            value = rng.randint(scale.negative_max + 1, scale.high)
        return (scale.name.value, value, scale.score(value), scale.sentiment(value).value, occurred)


MOMENT_INSERT = (
    "INSERT INTO moment (key, name, channel, stage, auto_follow_up, archived, auto_registered, "
    "created_at, updated_at) VALUES ({p}, {p}, {p}, {p}, true, false, false, {now}, {now})"
)


def _moment_rows(shape: Shape) -> list[tuple[str, str, str, str]]:
    return [
        (key, key, channel, key.split(".")[1])
        for key, channel in zip(shape.moment_keys, shape.moment_channels, strict=True)
    ]


def load_postgres(url: str, shape: Shape) -> None:
    with psycopg.connect(_dsn(url)) as connection:
        connection.cursor().executemany(
            MOMENT_INSERT.format(p="%s", now="now()"), _moment_rows(shape)
        )
        ids = [row[0] for row in connection.execute("SELECT id FROM moment ORDER BY id")]
        with connection.cursor().copy(f"COPY touchpoint ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            for chunk in shape.rows(ids):
                for row in chunk:
                    copy.write_row(row)
        connection.commit()


def load_sqlite(url: str, shape: Shape) -> None:
    connection = sqlite3.connect(make_url(url).database or "")
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.executemany(
            MOMENT_INSERT.format(p="?", now="CURRENT_TIMESTAMP"), _moment_rows(shape)
        )
        ids = [row[0] for row in connection.execute("SELECT id FROM moment ORDER BY id")]
        placeholders = ", ".join("?" * len(COLUMNS))
        insert = f"INSERT INTO touchpoint ({', '.join(COLUMNS)}) VALUES ({placeholders})"
        for chunk in shape.rows(ids):
            connection.executemany(insert, [tuple(map(_sqlite_value, row)) for row in chunk])
        connection.commit()
    finally:
        connection.close()


def _sqlite_value(value: Any) -> Any:
    # The service stores SQLite timestamps as naive UTC text.
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


NAIVE_QUERY = (
    "SELECT moment_id, count(*), count(rating_scale), "
    "sum(CASE WHEN sentiment = 'negative' THEN 1 ELSE 0 END) "
    "FROM touchpoint WHERE occurred_at >= {p} AND occurred_at < {p} GROUP BY moment_id"
)


def naive_seconds(backend: str, url: str, start: datetime, end: datetime, repeats: int) -> float:
    """Median time of one GROUP BY over the raw touchpoints of the window."""
    timings = []
    if backend == "postgresql":
        with psycopg.connect(_dsn(url)) as connection:
            for _ in range(repeats):
                began = time.perf_counter()
                connection.execute(NAIVE_QUERY.format(p="%s"), (start, end)).fetchall()
                timings.append(time.perf_counter() - began)
    else:
        lite = sqlite3.connect(make_url(url).database or "")
        try:
            bounds = (_sqlite_value(start), _sqlite_value(end))
            for _ in range(repeats):
                began = time.perf_counter()
                lite.execute(NAIVE_QUERY.format(p="?"), bounds).fetchall()
                timings.append(time.perf_counter() - began)
        finally:
            lite.close()
    return statistics.median(timings)


def latencies(client: httpx.Client, path: str, params: dict[str, str], repeats: int) -> list[float]:
    client.get(path, params=params).raise_for_status()  # warm caches and the worker
    timings = []
    for _ in range(repeats):
        began = time.perf_counter()
        response = client.get(path, params=params)
        timings.append(time.perf_counter() - began)
        response.raise_for_status()
    return timings


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[-1]


def run_backend(backend: str, shape: Shape, args: argparse.Namespace) -> None:
    with fresh_database(backend, postgres_url=args.postgres_url, name="mot_bench_insights") as url:
        began = time.perf_counter()
        (load_postgres if backend == "postgresql" else load_sqlite)(url, shape)
        loaded = time.perf_counter() - began
        began = time.perf_counter()
        env = {**os.environ, "MOT_DATABASE_URL": url}
        subprocess.run([MOT, "rollups", "rebuild"], env=env, check=True)
        rebuilt = time.perf_counter() - began
        _analyze(backend, url)
        print(
            f"\n{backend}: loaded {shape.touchpoints:,} touchpoints in {loaded:.0f} s, "
            f"rollups rebuilt in {rebuilt:.0f} s"
        )
        print(f"{'query':<36}{'median ms':>11}{'p95 ms':>9}{'naive GROUP BY ms':>19}")
        with (
            running_service(url, workers=1) as base_url,
            httpx.Client(base_url=base_url, timeout=120, headers=AUTH) as client,
        ):
            now = datetime.now(UTC)
            team = shape.teams[0]
            for days in (30, 365):
                start = now - timedelta(days=days)
                naive = naive_seconds(backend, url, start, now, repeats=5)
                for label, params in (
                    (f"weak-spots {days} d", {}),
                    (f"weak-spots {days} d, team", {"team": team}),
                ):
                    timings = latencies(
                        client,
                        "/v1/insights/weak-spots",
                        {"from": start.isoformat(), "to": now.isoformat(), **params},
                        args.repeats,
                    )
                    naive_text = f"{naive * 1000:>19.0f}" if not params else f"{'':>19}"
                    _print_row(label, timings, naive_text)
            key = shape.moment_keys[
                max(range(len(shape.moment_keys)), key=lambda i: shape.moment_weights[i])
            ]
            timings = latencies(client, f"/v1/moments/{key}/report", {}, args.repeats)
            _print_row("moment report 30 d (busiest moment)", timings, "")


def _print_row(label: str, timings: list[float], naive_text: str) -> None:
    median = statistics.median(timings) * 1000
    print(f"{label:<36}{median:>11.1f}{p95(timings) * 1000:>9.1f}{naive_text}")


def _analyze(backend: str, url: str) -> None:
    # Fresh bulk loads have no planner statistics until autovacuum gets to them.
    if backend == "postgresql":
        with psycopg.connect(_dsn(url), autocommit=True) as connection:
            connection.execute("VACUUM ANALYZE")
    else:
        lite = sqlite3.connect(make_url(url).database or "")
        try:
            lite.execute("ANALYZE")
        finally:
            lite.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--touchpoints", type=int, default=1_000_000)
    parser.add_argument("--moments", type=int, default=200)
    parser.add_argument("--teams", type=int, default=30)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--repeats", type=int, default=40, help="requests timed per query")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--backends", default="postgresql,sqlite")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    args = parser.parse_args()
    shape = Shape(
        touchpoints=args.touchpoints,
        moments=args.moments,
        teams=args.teams,
        days=args.days,
        seed=args.seed,
    )
    print(
        f"{args.touchpoints:,} touchpoints, {args.moments} moments, {args.teams} teams, "
        f"{len(CHANNELS)} channels, {args.days} days; {args.repeats} requests per query, "
        "one at a time, over HTTP to `mot serve` (1 worker)"
    )
    for backend in args.backends.split(","):
        run_backend(backend, shape, args)


if __name__ == "__main__":
    main()
