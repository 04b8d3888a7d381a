"""Broker ingest throughput: `mot consume` with one and with two consumers, beside the HTTP
batch path and the raw bulk insert, in the same run.

For each backend, N touchpoints (default 20,000; the workload of `bench.ingest`: 200
moments, 30 teams, two in three rated, a quarter negative) go in three ways, each into a
fresh database:
- HTTP: `POST /v1/touchpoints/batch` of a `mot serve --workers 2`, batches of 1,000, 8 in
  flight, exactly as `bench.ingest` measures it;
- broker: one touchpoint a message (as systems that publish events send them; change it
  with `--per-message`), published with publisher confirms (500 unconfirmed at most)
  through the default exchange to a fresh quorum queue, then drained by 1 (then 2)
  `mot consume --prefetch 200`; the rate counts from the first touchpoint found stored
  (the database is polled every 50 ms) to the last, so that neither the publisher nor
  the consumers' start is in it (the publisher's rate is printed apart);
- raw: the fastest raw path of the same driver (`bench.ingest`'s reference).
Ratios are printed side by side, and each broker run is checked: every touchpoint stored
once, the rollups equal to a recount, a follow-up for every negative.

    python -m bench.consume [--touchpoints 20000] [--repeat 1] [--backends sqlite,postgresql]

RabbitMQ is `--amqp-url` (default amqp://guest:guest@127.0.0.1:5672/). The publisher, the
broker, the consumers and the database share this machine's CPUs: the figures are a floor.
"""

import argparse
import asyncio
import json
import sqlite3
import statistics
import subprocess
import time
import uuid
from dataclasses import dataclass

import aio_pika
import psycopg
from sqlalchemy.engine import make_url

from app.broker.consumer import QUORUM
from bench.common import DEFAULT_POSTGRES_URL, MOT, child_environment, fresh_database
from bench.ingest import Check, check, chunks, make_touchpoints, negatives, run_raw, run_service

UNCONFIRMED = 500
PREFETCH = 200
SAMPLE_SECONDS = 0.05


def stored_count(backend: str, url: str) -> int:
    statement = "SELECT count(*) FROM touchpoint"
    if backend == "postgresql":
        dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(dsn) as postgres:
            row = postgres.execute(statement).fetchone()
        return int(row[0]) if row else 0
    lite = sqlite3.connect(make_url(url).database or "")
    try:
        return int(lite.execute(statement).fetchone()[0])
    finally:
        lite.close()


@dataclass(frozen=True, slots=True)
class BrokerRun:
    rate: float
    """Touchpoints stored a second, from the first stored until the last."""
    publish_rate: float
    """Messages published a second, confirmed by the broker."""
    check: Check


async def _publish(bodies: list[bytes], *, amqp_url: str, queue: str) -> float:
    """Publish every body, UNCONFIRMED at a time; messages a second."""
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        exchange = channel.default_exchange
        started = time.perf_counter()
        for start in range(0, len(bodies), UNCONFIRMED):
            await asyncio.gather(
                *(
                    exchange.publish(
                        aio_pika.Message(body, message_id=f"bench-{start + n}"), routing_key=queue
                    )
                    for n, body in enumerate(bodies[start : start + UNCONFIRMED])
                )
            )
        return len(bodies) / (time.perf_counter() - started)
    finally:
        await connection.close()


def _storing_rate(backend: str, url: str, total: int) -> float:
    """Touchpoints a second from the first time some are found stored until all are."""
    first_seen = first_count = None
    while (stored := stored_count(backend, url)) < total:
        if stored and first_seen is None:
            first_seen, first_count = time.perf_counter(), stored
        time.sleep(SAMPLE_SECONDS)
    if first_seen is None or first_count is None:
        raise RuntimeError("stored everything within one sample: use more touchpoints")
    return (total - first_count) / (time.perf_counter() - first_seen)


async def _declare(amqp_url: str, queue: str, *, delete: bool = False) -> None:
    """Declare the queue and its dead-letter queue, as the consumers do (or delete both)."""
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        for name in (queue, f"{queue}.dead"):
            declared = await channel.declare_queue(name, durable=True, arguments=QUORUM)
            if delete:
                await declared.delete(if_unused=False, if_empty=False)
    finally:
        await connection.close()


def run_broker(
    backend: str, bodies: list[bytes], total: int, consumers: int, args: argparse.Namespace
) -> BrokerRun:
    """The queue filled first, then drained by `consumers` processes."""
    queue = f"mot.bench.{uuid.uuid4().hex[:8]}"
    name = "mot_bench_consume"
    with fresh_database(backend, postgres_url=args.postgres_url, name=name) as url:
        asyncio.run(_declare(args.amqp_url, queue))
        processes: list[subprocess.Popen[bytes]] = []
        try:
            publish_rate = asyncio.run(_publish(bodies, amqp_url=args.amqp_url, queue=queue))
            env = child_environment(
                MOT_DATABASE_URL=url, MOT_AMQP_URL=args.amqp_url, MOT_LOG_LEVEL="warning"
            )
            command = [MOT, "consume", "--queue", queue, "--prefetch", str(PREFETCH)]
            processes = [
                subprocess.Popen([*command, "--no-migrate"], env=env) for _ in range(consumers)
            ]
            rate = _storing_rate(backend, url, total)
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait(timeout=60)
            asyncio.run(_declare(args.amqp_url, queue, delete=True))
        return BrokerRun(rate, publish_rate, asyncio.run(check(url)))


def verdict(found: Check, total: int, follow_ups: int) -> str:
    good = found.differing == 0 and found.counted == found.touchpoints == total
    good = good and found.follow_ups == follow_ups
    return "ok" if good else f"WRONG ({found})"


HEADER = (
    f"{'backend':<11}{'run':>4}{'raw /s':>9}{'HTTP /s':>9}{'1 cons /s':>11}{'2 cons /s':>11}"
    f"{'HTTP/raw':>10}{'1/raw':>7}{'2/raw':>7}{'1/HTTP':>8}{'2/HTTP':>8}"
    f"{'publish /s':>12}  checks (1 consumer, 2 consumers)"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--touchpoints", type=int, default=20_000)
    parser.add_argument("--per-message", type=int, default=1, help="touchpoints a message")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument("--amqp-url", default="amqp://guest:guest@127.0.0.1:5672/")
    parser.add_argument("--workers", type=int, default=2, help="HTTP: `mot serve --workers`")
    parser.add_argument("--concurrency", type=int, default=8, help="HTTP: requests in flight")
    args = parser.parse_args()

    items = make_touchpoints(args.touchpoints)
    http_bodies = [json.dumps({"touchpoints": chunk}).encode() for chunk in chunks(items, 1000)]
    broker_bodies: list[bytes] = [
        json.dumps(chunk[0] if args.per_message == 1 else chunk).encode()
        for chunk in chunks(items, args.per_message)
    ]
    follow_ups = negatives(items)
    print(
        f"{args.touchpoints:,} touchpoints per run; HTTP: batches of 1,000, "
        f"{args.concurrency} in flight, `mot serve --workers {args.workers}`; broker: "
        f"{args.per_message} touchpoint(s) a message ({len(broker_bodies):,} messages), "
        f"`mot consume --prefetch {PREFETCH}`; {args.repeat} repeat(s)"
    )
    print(HEADER)
    rates: dict[str, list[dict[str, float]]] = {}
    for number in range(1, args.repeat + 1):
        for backend in args.backends.split(","):
            raw = args.touchpoints / run_raw(backend, items, args)
            http = args.touchpoints / run_service(backend, http_bodies, args).seconds
            runs = [run_broker(backend, broker_bodies, args.touchpoints, n, args) for n in (1, 2)]
            one, two = (run.rate for run in runs)
            publish = runs[0].publish_rate
            checks = ", ".join(verdict(run.check, args.touchpoints, follow_ups) for run in runs)
            print(
                f"{backend:<11}{number:>4}{raw:>9,.0f}{http:>9,.0f}{one:>11,.0f}{two:>11,.0f}"
                f"{http / raw:>10.3f}{one / raw:>7.3f}{two / raw:>7.3f}{one / http:>8.2f}"
                f"{two / http:>8.2f}{publish:>12,.0f}  {checks}",
                flush=True,
            )
            rates.setdefault(backend, []).append({"raw": raw, "http": http, "one": one, "two": two})
    print()
    for backend, found in rates.items():
        median = {key: statistics.median(run[key] for run in found) for key in found[0]}
        print(
            f"{backend}: median raw {median['raw']:,.0f}/s, HTTP {median['http']:,.0f}/s, "
            f"broker {median['one']:,.0f}/s with one consumer, {median['two']:,.0f}/s with two"
        )


if __name__ == "__main__":
    main()
