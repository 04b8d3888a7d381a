"""Ingest throughput: the HTTP batch endpoint of a real `mot serve` against a raw bulk insert.

For each backend it posts N touchpoints (default 200,000) in batches through
`POST /v1/touchpoints/batch` of a `mot serve` process (2 workers by default), with several
requests in flight, and prints touchpoints per second. Beside it, the same rows go into
an identical fresh schema by the fastest raw path of the same driver family (PostgreSQL:
psycopg COPY; SQLite: executemany in one transaction), and the ratio is printed.

    python -m bench.ingest [--touchpoints 200000] [--backends sqlite,postgresql]

The client runs on the same machine as the server and the database, so all three share
the CPUs: the figures are a floor for a machine where they do not.
"""

import argparse
import asyncio
import hashlib
import json
import random
import sqlite3
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
from sqlalchemy.engine import make_url

from app.scales import ScaleName, normalise
from bench.common import AUTH, DEFAULT_POSTGRES_URL, fresh_database, running_service

MOMENTS = [f"bench.moment-{i:02d}" for i in range(50)]
CHANNELS = ["call", "email", "portal", "chat", "visit"]
SCALES = [ScaleName.csat5, ScaleName.nps11, ScaleName.ces7, ScaleName.thumbs]
RAW_COLUMNS = (
    "external_id, content_hash, moment_id, channel, occurred_at, received_at, client_ref, "
    "team, agent, source, rating_scale, rating_value, score, sentiment, rated_at, comment, "
    "complaint, attributes"
)


def make_touchpoints(count: int, seed: int = 1) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    start = datetime(2026, 6, 1, tzinfo=UTC)
    items = []
    for i in range(count):
        item: dict[str, Any] = {
            "id": f"bench-{i:08d}",
            "moment": rng.choice(MOMENTS),
            "channel": rng.choice(CHANNELS),
            "occurred_at": (start + timedelta(seconds=i * 37)).isoformat(),
            "client_ref": f"c-{rng.randint(1, 50_000):06d}",
            "team": f"team-{rng.randint(1, 30):02d}",
            "agent": f"agent-{rng.randint(1, 300):03d}",
            "source": "bench",
        }
        if rng.random() < 0.4:
            scale = rng.choice(SCALES)
            low, high = {"csat5": (1, 5), "nps11": (0, 10), "ces7": (1, 7), "thumbs": (0, 1)}[
                scale.value
            ]
            item["rating"] = {"scale": scale.value, "value": rng.randint(low, high)}
        items.append(item)
    return items


def chunks(items: list[dict[str, Any]], size: int) -> Iterable[list[dict[str, Any]]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


async def post_all(base_url: str, bodies: list[bytes], concurrency: int) -> float:
    """Post every body, `concurrency` at a time; returns elapsed seconds."""
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    headers = {"content-type": "application/json", **AUTH}
    # A fresh connection per request: a worker busy with a batch does not accept, so the
    # next connection goes to an idle one. Kept-alive connections would stay wherever
    # they were first accepted, often all on one worker.
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=0)

    async with httpx.AsyncClient(base_url=base_url, timeout=120, limits=limits) as client:

        async def worker() -> None:
            while not queue.empty():
                body = queue.get_nowait()
                response = await client.post("/v1/touchpoints/batch", content=body, headers=headers)
                result = response.json()
                if response.status_code != 200 or result["rejected"]:
                    raise RuntimeError(f"batch refused: {response.text[:300]}")

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - started


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


def raw_postgres(url: str, items: list[dict[str, Any]]) -> float:
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn) as connection:
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--touchpoints", type=int, default=200_000)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--concurrency",
        type=int,
        default=8,
        help="requests in flight, each on its own connection (spread over the workers)",
    )
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    args = parser.parse_args()

    items = make_touchpoints(args.touchpoints)
    bodies = [
        json.dumps({"touchpoints": chunk}).encode() for chunk in chunks(items, args.batch_size)
    ]
    print(
        f"{args.touchpoints:,} touchpoints, batches of {args.batch_size}, "
        f"{args.workers} workers, {args.concurrency} requests in flight"
    )
    print(f"{'backend':<12}{'HTTP batch /s':>16}{'raw insert /s':>16}{'ratio':>8}")
    for backend in args.backends.split(","):
        with fresh_database(
            backend, postgres_url=args.postgres_url, name="mot_bench_ingest"
        ) as url:
            with running_service(url, workers=args.workers) as base_url:
                http_seconds = asyncio.run(post_all(base_url, bodies, args.concurrency))
        with fresh_database(backend, postgres_url=args.postgres_url, name="mot_bench_raw") as url:
            raw = raw_postgres if backend == "postgresql" else raw_sqlite
            raw_seconds = raw(url, items)
        http_rate = args.touchpoints / http_seconds
        raw_rate = args.touchpoints / raw_seconds
        print(f"{backend:<12}{http_rate:>16,.0f}{raw_rate:>16,.0f}{http_rate / raw_rate:>8.2f}")


if __name__ == "__main__":
    main()
