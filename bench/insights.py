"""Insights latency: weak spots and a moment report over HTTP, at millions of touchpoints.

Generates a year of touchpoints (default 1,000,000 over 200 moments, 30 teams, 5 channels,
365 days up to now), loads them straight into a fresh database (PostgreSQL: COPY in
chunks, the touchpoint's secondary indexes and foreign key put back after the load; SQLite:
executemany), counts them into the rollups with `mot rollups rebuild`, starts two real
`mot serve` processes (1 worker each) and times over HTTP, one request at a time, after a
warm-up. One computes every answer (`MOT_FIGURES_KEPT=0`); the other keeps answers as
configured by default, and since no data arrives during the run it gives kept ones after the
first round: the two columns are a window's first read and its repeated reads.

- weak spots over the default window (no `from`/`to`: the 30 whole UTC days ending with
  today), over the 365 whole UTC days ending with today, and over the default window for
  one team;
- the report of the busiest moment over the default window (daily series, every breakdown
  and the latest negative comments).

Beside the two weak-spot windows it times the naive alternative on the database directly:
one `GROUP BY moment` over the raw touchpoints of the same window (it computes far less than
the endpoint: counts only, no previous window, no teams, no statistics). The queries take
turns, round after round, so that a burst of other work on the machine hits them all alike.
Afterwards it prints the memory of the server's processes.

    python -m bench.insights [--touchpoints 1000000] [--backends postgresql,sqlite]

Windows of whole UTC days are read from the rollups and the deltas not folded yet; no
part of a day is read from the touchpoints. The moment report's comments are.
"""

import argparse
import asyncio
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import numpy as np
import psycopg
from numpy.typing import NDArray
from sqlalchemy.engine import make_url

from app.db import Database
from app.scales import SCALES, ScaleName
from app.touchpoints import bulk, partitions
from bench.common import (
    AUTH,
    DEFAULT_POSTGRES_URL,
    MOT,
    child_environment,
    database_url,
    fresh_database,
    print_server_memory,
    running_service,
)

CHANNELS = ("call", "email", "portal", "chat", "visit")
SCALE_CHOICES = (ScaleName.csat5, ScaleName.nps11, ScaleName.ces7, ScaleName.thumbs)
AGENTS_PER_TEAM = 10
RATED = 0.35
COMMENTED = 0.25
"""Share of negative ratings that come with a comment."""
COMPLAINTS = 0.01
COMMENTS = ("waited far too long", "nobody called back", "rude on the phone", "still broken")
# The touchpoint columns the service itself writes, but for attributes (none here).
COLUMNS = tuple(name for name in bulk.COLUMNS if name != "attributes")
NULLABLE = ("rating_scale", "rating_value", "score", "sentiment", "rated_at", "comment")
# Bad answers that say why pick one of the factors every channel offers; some answers say
# how many minutes they lost.
FACTORS = ('["not-solved"]', '["had-to-repeat"]', '["unclear-answer", "not-solved"]')
SAID_WHY = 0.5
SAID_LOST = 0.3
CHUNK = 100_000
COMMIT_EVERY = 1_000_000


class Shape:
    """The data set: moments with a channel, a scale and a true negative rate each."""

    def __init__(self, *, touchpoints: int, moments: int, teams: int, days: int, seed: int):
        self.touchpoints = touchpoints
        self.days = days
        self.seed = seed
        rng = np.random.default_rng(seed)
        self.moment_keys = [f"bench.stage-{i % 8}.moment-{i:03d}" for i in range(moments)]
        self.moment_channels = rng.integers(0, len(CHANNELS), moments)
        self.moment_scales = rng.integers(0, len(SCALE_CHOICES), moments)
        self.moment_bad = rng.beta(2, 12, moments)
        # Volumes differ a lot between moments, as they do between a phone line and a visit.
        weights = rng.pareto(1.2, moments) + 1
        self.moment_weights = weights / weights.sum()
        self.teams = [f"team-{i:02d}" for i in range(teams)]
        self.end = datetime.now(UTC)

    @property
    def busiest_moment(self) -> str:
        return self.moment_keys[int(np.argmax(self.moment_weights))]

    def moment_rows(self) -> list[tuple[str, str, str, str]]:
        return [
            (key, key, CHANNELS[channel], key.split(".")[1])
            for key, channel in zip(self.moment_keys, self.moment_channels, strict=True)
        ]

    def chunks(self, moment_ids: list[int]) -> Iterator["Chunk"]:
        """The touchpoints, CHUNK at a time, for the moments of `moment_ids` (in key order)."""
        rng = np.random.default_rng(self.seed + 1)
        for first in range(0, self.touchpoints, CHUNK):
            yield self._chunk(rng, first, min(CHUNK, self.touchpoints - first), moment_ids)

    def _chunk(
        self, rng: np.random.Generator, first: int, size: int, moment_ids: list[int]
    ) -> "Chunk":
        cumulative = np.cumsum(self.moment_weights)
        m = np.minimum(np.searchsorted(cumulative, rng.random(size)), len(moment_ids) - 1)
        end = np.datetime64(self.end.replace(tzinfo=None), "us")
        span = np.timedelta64(self.days * 86_400_000_000, "us")
        offsets = (rng.random(size) * span.astype(np.int64)).astype(np.int64)
        occurred = (end - span) + offsets.astype("timedelta64[us]")
        channel = np.where(
            rng.random(size) < 0.8, self.moment_channels[m], rng.integers(0, len(CHANNELS), size)
        )
        team = rng.integers(0, len(self.teams), size)
        agent = team * AGENTS_PER_TEAM + rng.integers(0, AGENTS_PER_TEAM, size)
        rated = rng.random(size) < RATED
        scale = self.moment_scales[m]
        low, negative_max, high = (_SCALE_BOUNDS[scale, i] for i in range(3))
        bad = rng.random(size) < self.moment_bad[m]
        draw = rng.random(size)
        value = np.where(
            bad,
            low + (draw * (negative_max - low + 1)).astype(np.int64),
            negative_max + 1 + (draw * (high - negative_max)).astype(np.int64),
        )
        commented = rated & bad & (rng.random(size) < COMMENTED)
        numbers = np.arange(first, first + size).astype(str)
        occurred_text = np.datetime_as_string(occurred, unit="us")
        text = {
            "external_id": np.strings.add("bench-", np.strings.zfill(numbers, 9)),
            "content_hash": np.strings.zfill(numbers, 64),
            "moment_id": np.asarray(moment_ids)[m].astype(str),
            "channel": np.asarray(CHANNELS)[channel],
            "occurred_at": occurred_text,
            "received_at": occurred_text,
            "client_ref": np.strings.add(
                "c-", np.strings.zfill(rng.integers(1, 200_001, size).astype(str), 6)
            ),
            "team": np.asarray(self.teams)[team],
            "agent": _agent_names(self.teams)[agent],
            "source": np.full(size, "bench"),
            "rating_scale": np.asarray([s.value for s in SCALE_CHOICES])[scale],
            "rating_value": value.astype(str),
            "score": _SCORES[scale, value],
            "sentiment": _SENTIMENTS[scale, value],
            "rated_at": occurred_text,
            "comment": np.asarray(COMMENTS)[rng.integers(0, len(COMMENTS), size)],
            "complaint": rng.random(size) < COMPLAINTS,
            "factors": np.asarray(FACTORS)[rng.integers(0, len(FACTORS), size)],
            "lost_minutes": (rng.integers(0, 13, size) * 10).astype(str),
        }
        present = {name: rated for name in NULLABLE} | {
            "comment": commented,
            "factors": rated & bad & (rng.random(size) < SAID_WHY),
            "lost_minutes": rated & (rng.random(size) < SAID_LOST),
        }
        return Chunk(text, present)


def _agent_names(teams: list[str]) -> NDArray[np.str_]:
    return np.asarray([f"{team}-agent-{k + 1}" for team in teams for k in range(AGENTS_PER_TEAM)])


def _scale_tables() -> tuple[NDArray[np.int64], NDArray[np.str_], NDArray[np.str_]]:
    """Per scale of SCALE_CHOICES: (low, negative_max, high), and score and sentiment texts
    by value, as the service computes them."""
    width = max(SCALES[name].high for name in SCALE_CHOICES) + 1
    bounds = np.zeros((len(SCALE_CHOICES), 3), dtype=np.int64)
    scores = np.full((len(SCALE_CHOICES), width), "", dtype="U32")
    sentiments = np.full((len(SCALE_CHOICES), width), "", dtype="U8")
    for i, name in enumerate(SCALE_CHOICES):
        scale = SCALES[name]
        bounds[i] = (scale.low, scale.negative_max, scale.high)
        for value in range(scale.low, scale.high + 1):
            scores[i, value] = repr(scale.score(value))
            sentiments[i, value] = scale.sentiment(value).value
    return bounds, scores, sentiments


_SCALE_BOUNDS, _SCORES, _SENTIMENTS = _scale_tables()


@dataclass(frozen=True, slots=True)
class Chunk:
    """Touchpoints as columns of text (timestamps as naive UTC ISO text, complaint as
    booleans); a nullable column's value is there only where `present` says so."""

    text: dict[str, NDArray[Any]]
    present: dict[str, NDArray[np.bool_]]

    @property
    def size(self) -> int:
        return len(self.text["external_id"])

    def copy_text(self) -> str:
        """The rows in PostgreSQL's COPY text format, in `COLUMNS` order."""
        columns = []
        for name in COLUMNS:
            values = self.text[name]
            if name == "complaint":
                values = np.where(values, "t", "f")
            elif name in ("occurred_at", "received_at", "rated_at"):
                values = np.strings.add(values, "+00")
            if name in self.present:
                values = np.where(self.present[name], values, "\\N")
            columns.append(values.tolist())
        return "\n".join(map("\t".join, zip(*columns, strict=True))) + "\n"

    def sqlite_rows(self) -> list[tuple[Any, ...]]:
        """The rows as SQLite parameters, as the service stores them (naive UTC text)."""
        columns = []
        for name in COLUMNS:
            values = self.text[name]
            if name == "complaint":
                values = values.astype(np.int64)
            elif name in ("occurred_at", "received_at", "rated_at"):
                values = np.strings.replace(values, "T", " ")
            elif name in ("moment_id", "rating_value", "lost_minutes"):
                values = np.where(self.present.get(name, True), values, "0").astype(np.int64)
            elif name == "score":
                values = np.where(self.present[name], values, "0").astype(np.float64)
            objects = values.astype(object)
            if name in self.present:
                objects[~self.present[name]] = None
            columns.append(objects.tolist())
        return list(zip(*columns, strict=True))


MOMENT_INSERT = (
    "INSERT INTO moment (key, name, channel, stage, auto_follow_up, archived, auto_registered, "
    "created_at, updated_at) VALUES ({p}, {p}, {p}, {p}, true, false, false, {now}, {now})"
)
# A table's indexes that no constraint owns, and its constraints of some kinds: a bulk
# load is far faster with them built after it than maintained row by row.
_SECONDARY_INDEXES = (
    "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
    "AND tablename = %(table)s AND indexname NOT IN "
    "(SELECT conname FROM pg_constraint WHERE conrelid = %(table)s::regclass) "
    "ORDER BY indexname"
)
_CONSTRAINTS = (
    "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
    "WHERE conrelid = %(table)s::regclass AND contype = ANY(%(kinds)s) ORDER BY conname"
)


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@contextmanager
def built_after(url: str, table: str, *, constraints: str) -> Iterator[None]:
    """Without `table`'s secondary indexes and constraints of the kinds in `constraints`
    (pg_constraint.contype letters, e.g. "fu"), which are put back afterwards, as they were.
    """
    names = {"table": table, "kinds": list(constraints)}
    with psycopg.connect(_dsn(url), autocommit=True) as connection:
        indexes = connection.execute(_SECONDARY_INDEXES, names).fetchall()
        # A partitioned table's index reads "ON ONLY <table>", which would make it again
        # for the parent alone (invalid, with no index on any partition).
        create = [definition.replace(" ON ONLY ", " ON ", 1) for _, definition in indexes]
        kept = connection.execute(_CONSTRAINTS, names).fetchall()
        for name, _ in indexes:
            connection.execute(f"DROP INDEX {name}")
        for name, _ in kept:
            connection.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
    yield
    began = time.perf_counter()
    with psycopg.connect(_dsn(url), autocommit=True) as connection:
        connection.execute("SET maintenance_work_mem = '1GB'")
        for definition in create:
            connection.execute(definition)
        for name, definition in kept:
            connection.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} {definition}")
        # The schema is as the migrations made it, or the figures would mean nothing.
        assert connection.execute(_SECONDARY_INDEXES, names).fetchall() == indexes
        assert connection.execute(_CONSTRAINTS, names).fetchall() == kept
    _progress(f"  {table}: indexes and constraints built in {time.perf_counter() - began:.0f} s")


async def _make_partitions(url: str, shape: Shape) -> None:
    """The monthly partitions of every month the data covers, as the service would have made
    them month after month (otherwise every touchpoint would land in the default one)."""
    database = Database(url)
    first = (shape.end - timedelta(days=shape.days)).date()
    months = (shape.end.year - first.year) * 12 + shape.end.month - first.month
    try:
        async with database.write_sessions() as session, session.begin():
            await partitions.ensure(session, today=first, months_ahead=months + 1)
    finally:
        await database.dispose()


def load_postgres(url: str, shape: Shape) -> None:
    asyncio.run(_make_partitions(url, shape))
    with psycopg.connect(_dsn(url)) as connection:
        connection.cursor().executemany(
            MOMENT_INSERT.format(p="%s", now="now()"), shape.moment_rows()
        )
        ids = [row[0] for row in connection.execute("SELECT id FROM moment ORDER BY id")]
        connection.commit()
    with built_after(url, "touchpoint", constraints="fu"), psycopg.connect(_dsn(url)) as connection:
        began, written = time.perf_counter(), 0
        statement = f"COPY touchpoint ({', '.join(COLUMNS)}) FROM STDIN"
        cursor = connection.cursor()
        for chunk in shape.chunks(ids):
            with cursor.copy(statement) as copy:
                copy.write(chunk.copy_text())
            written += chunk.size
            if written % COMMIT_EVERY == 0:
                connection.commit()
                rate = written / (time.perf_counter() - began)
                _progress(f"  {written:,} touchpoints copied ({rate:,.0f}/s)")
        connection.commit()


def rebuild_rollups(backend: str, url: str) -> None:
    """`mot rollups rebuild`; on PostgreSQL with the rollups' secondary indexes built after."""
    command = [MOT, "rollups", "rebuild"]
    env = child_environment(MOT_DATABASE_URL=url)
    if backend != "postgresql":
        subprocess.run(command, env=env, check=True)
        return
    with built_after(url, "moment_rollup", constraints="f"):
        subprocess.run(command, env=env, check=True)


def load_sqlite(url: str, shape: Shape) -> None:
    connection = sqlite3.connect(make_url(url).database or "")
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.executemany(
            MOMENT_INSERT.format(p="?", now="CURRENT_TIMESTAMP"), shape.moment_rows()
        )
        ids = [row[0] for row in connection.execute("SELECT id FROM moment ORDER BY id")]
        placeholders = ", ".join("?" * len(COLUMNS))
        insert = f"INSERT INTO touchpoint ({', '.join(COLUMNS)}) VALUES ({placeholders})"
        for chunk in shape.chunks(ids):
            connection.executemany(insert, chunk.sqlite_rows())
        connection.commit()
    finally:
        connection.close()


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


NAIVE_QUERY = (
    "SELECT moment_id, count(*), count(rating_scale), "
    "sum(CASE WHEN sentiment = 'negative' THEN 1 ELSE 0 END) "
    "FROM touchpoint WHERE occurred_at >= {p} AND occurred_at < {p} GROUP BY moment_id"
)


@contextmanager
def naive_runner(backend: str, url: str) -> Iterator[Callable[[datetime, datetime], float]]:
    """A function timing one GROUP BY over the raw touchpoints of a window, in seconds."""
    if backend == "postgresql":
        with psycopg.connect(_dsn(url), autocommit=True) as connection:

            def on_postgres(start: datetime, end: datetime) -> float:
                began = time.perf_counter()
                connection.execute(NAIVE_QUERY.format(p="%s"), (start, end)).fetchall()
                return time.perf_counter() - began

            yield on_postgres
        return
    lite = sqlite3.connect(make_url(url).database or "")
    try:

        def on_sqlite(start: datetime, end: datetime) -> float:
            bounds = tuple(v.strftime("%Y-%m-%d %H:%M:%S.%f") for v in (start, end))
            began = time.perf_counter()
            lite.execute(NAIVE_QUERY.format(p="?"), bounds).fetchall()
            return time.perf_counter() - began

        yield on_sqlite
    finally:
        lite.close()


def p95(values: list[float]) -> float:
    if len(values) < 2:
        return max(values)
    return statistics.quantiles(values, n=20, method="inclusive")[-1]


@dataclass(frozen=True, slots=True)
class Query:
    label: str
    path: str
    params: dict[str, str]
    naive: tuple[datetime, datetime] | None = None
    """The window of the naive GROUP BY to time beside it, if any."""


def queries(shape: Shape) -> list[Query]:
    # The default window: the 30 whole UTC days ending with today.
    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(1)
    year = {"from": (end - timedelta(days=365)).isoformat(), "to": end.isoformat()}
    spots = "/v1/insights/weak-spots"
    return [
        Query("weak spots, default window", spots, {}, (end - timedelta(30), end)),
        Query("weak spots, 365 d", spots, year, (end - timedelta(365), end)),
        Query("weak spots, default window, 1 team", spots, {"team": shape.teams[0]}),
        Query("moment report, default window", f"/v1/moments/{shape.busiest_moment}/report", {}),
    ]


def time_queries(
    clients: dict[str, httpx.Client],
    naive: Callable[[datetime, datetime], float],
    listed: list[Query],
    args: argparse.Namespace,
) -> tuple[dict[tuple[str, str], list[float]], dict[str, list[float]]]:
    """Each query in turn on each service, round after round: HTTP timings by (service,
    label) and naive timings by label."""
    served: dict[tuple[str, str], list[float]] = {
        (name, query.label): [] for name in clients for query in listed
    }
    direct: dict[str, list[float]] = {query.label: [] for query in listed if query.naive}
    for round_number in range(args.warmup + args.repeats):
        for query in listed:
            for name, client in clients.items():
                began = time.perf_counter()
                response = client.get(query.path, params=query.params)
                elapsed = time.perf_counter() - began
                response.raise_for_status()
                if round_number >= args.warmup:
                    served[(name, query.label)].append(elapsed)
            if query.naive and round_number == 0:
                naive(*query.naive)  # warms the database's caches as the requests do
            if round_number < args.warmup:
                continue
            if query.naive and round_number < args.warmup + args.naive_repeats:
                direct[query.label].append(naive(*query.naive))
    return served, direct


@contextmanager
def loaded_database(backend: str, shape: Shape, args: argparse.Namespace) -> Iterator[str]:
    """A database holding the shape's touchpoints, counted into the rollups."""
    name = args.database or f"mot_bench_insights_{shape.touchpoints}"
    if args.reuse and backend == "postgresql":
        url = database_url(args.postgres_url, name)
        try:
            with psycopg.connect(_dsn(url)) as connection:
                stored = connection.execute("SELECT count(*) FROM touchpoint").fetchone()
        except psycopg.OperationalError:
            stored = None
        if stored is not None and stored[0] == shape.touchpoints:
            print(f"\n{backend}: reusing {name} ({shape.touchpoints:,} touchpoints)")
            yield url
            return
    with fresh_database(backend, postgres_url=args.postgres_url, name=name, keep=args.keep) as url:
        began = time.perf_counter()
        (load_postgres if backend == "postgresql" else load_sqlite)(url, shape)
        loaded = time.perf_counter() - began
        began = time.perf_counter()
        rebuild_rollups(backend, url)
        rebuilt = time.perf_counter() - began
        _analyze(backend, url)
        print(
            f"\n{backend}: loaded {shape.touchpoints:,} touchpoints in {loaded:.0f} s, "
            f"rollups rebuilt in {rebuilt:.0f} s"
        )
        _print_sizes(backend, url)
        yield url
        if args.keep:
            print(f"kept: {url}")


def _figures(timings: list[float]) -> str:
    return f"{statistics.median(timings) * 1000:>8.1f} /{p95(timings) * 1000:>6.1f}"


def run_backend(backend: str, shape: Shape, args: argparse.Namespace) -> None:
    with (
        loaded_database(backend, shape, args) as url,
        naive_runner(backend, url) as naive,
        running_service(url, workers=1, environment={"MOT_FIGURES_KEPT": "0"}) as computing,
        running_service(url, workers=1) as keeping,
        httpx.Client(base_url=computing.url, timeout=300, headers=AUTH) as computing_client,
        httpx.Client(base_url=keeping.url, timeout=300, headers=AUTH) as keeping_client,
    ):
        listed = queries(shape)  # after the load, which may take a while at 10M
        clients = {"computed": computing_client, "kept": keeping_client}
        served, direct = time_queries(clients, naive, listed, args)
        print(
            "median / p95 ms; computed: every request computes (MOT_FIGURES_KEPT=0); kept: "
            "the default, answers kept while the counts stay the same (no data arrives "
            "during the run)"
        )
        print(
            f"{'query':<38}{'computed':>16}{'kept':>16}{'naive GROUP BY':>16}"
            f"{'naive/computed':>16}{'naive/kept':>12}"
        )
        for query in listed:
            computed, kept = served[("computed", query.label)], served[("kept", query.label)]
            line = f"{query.label:<38}{_figures(computed)}{_figures(kept)}"
            if query.label in direct:
                naive_timings = direct[query.label]
                naive_median = statistics.median(naive_timings)
                line += (
                    f"{_figures(naive_timings)}"
                    f"{naive_median / statistics.median(computed):>16.1f}"
                    f"{naive_median / statistics.median(kept):>12.1f}"
                )
            print(line)
        requests = (args.warmup + args.repeats) * len(listed)
        print(f"server memory after {requests} requests each:")
        print_server_memory(computing.pid)
        print_server_memory(keeping.pid)


def _print_sizes(backend: str, url: str) -> None:
    """Rows per rollup breakdown, and on PostgreSQL the size of the tables with indexes."""
    statement = (
        "SELECT dimension, grain, count(*) FROM moment_rollup GROUP BY dimension, grain "
        "ORDER BY dimension, grain"
    )
    sizes = []
    if backend == "postgresql":
        with psycopg.connect(_dsn(url)) as connection:
            rows = connection.execute(statement).fetchall()
            for table in ("touchpoint", "moment_rollup", "detail_rollup"):
                # Over the partitions too: a partitioned table itself holds nothing.
                size = connection.execute(
                    "SELECT pg_size_pretty(coalesce((SELECT sum(pg_total_relation_size(relid)) "
                    "FROM pg_partition_tree(%s)), pg_total_relation_size(%s)))",
                    (table, table),
                ).fetchone()
                sizes.append(f"{table} {size[0] if size else '?'}")
    else:
        lite = sqlite3.connect(make_url(url).database or "")
        try:
            rows = lite.execute(statement).fetchall()
        finally:
            lite.close()
    print("rollup rows: " + ", ".join(f"{d}/{g} {n:,}" for d, g, n in rows))
    if sizes:
        print("with indexes: " + ", ".join(sizes))


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
    parser.add_argument("--repeats", type=int, default=50, help="requests timed per query")
    parser.add_argument("--warmup", type=int, default=5, help="rounds not timed, first")
    parser.add_argument(
        "--naive-repeats", type=int, default=15, help="naive GROUP BYs timed per window"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--backends", default="postgresql,sqlite")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument(
        "--keep", action="store_true", help="keep the loaded database (to look into it after)"
    )
    parser.add_argument(
        "--database",
        help="PostgreSQL: the database's name (default mot_bench_insights_<touchpoints>)",
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="PostgreSQL: time a database kept by --keep if it holds as many touchpoints",
    )
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
        f"{len(CHANNELS)} channels, {args.days} days up to now; {args.repeats} requests per "
        f"query after {args.warmup} rounds of warm-up, one at a time, over HTTP to `mot serve` "
        "(1 worker each: one computing every answer, one keeping them)"
    )
    for backend in args.backends.split(","):
        run_backend(backend, shape, args)


if __name__ == "__main__":
    main()
