"""`mot consume` against a real RabbitMQ: exactly-once storage across crashes, dead letters
with their reasons, the exchange binding, and a database outage the consumer rides out.

RabbitMQ is the one at `MOT_TEST_AMQP_URL` (default 127.0.0.1:5672, guest); the tests skip
when it is unreachable, unless `MOT_TEST_REQUIRE_RABBITMQ=1`. Each test uses queues of its
own, deleted afterwards.
"""

import asyncio
import functools
import hashlib
import json
import os
import random
import signal
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aio_pika
import psycopg
import pytest
from aio_pika.abc import AbstractChannel, AbstractQueue, AbstractRobustConnection
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from app.broker.consumer import QUORUM
from app.db import sync_url
from tests.conftest import POSTGRES_URL
from tests.payloads import touchpoint
from tests.servers import EXIT_WITHIN, MOT, command_environment
from tests.serving.stored import read_rollups, stored_ids

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

RABBITMQ_URL = os.environ.get("MOT_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
REQUIRE_RABBITMQ = os.environ.get("MOT_TEST_REQUIRE_RABBITMQ") == "1"
PREFETCH = 10
"""Small, so that a stream makes many batches and a kill lands among them."""
SETTLED_WITHIN = 60.0


@dataclass
class Broker:
    connection: AbstractRobustConnection
    channel: AbstractChannel
    queue: AbstractQueue
    dead: AbstractQueue

    async def publish(self, body: bytes, *, message_id: str, app_id: str | None = None) -> None:
        """Publish to the queue through the default exchange; returns once confirmed."""
        message = aio_pika.Message(
            body,
            message_id=message_id,
            app_id=app_id,
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        await self.channel.default_exchange.publish(message, routing_key=self.queue.name)

    async def publish_all(self, messages: list["Published"]) -> None:
        """Publish in order, many confirmations awaited at once."""
        for start in range(0, len(messages), 50):
            await asyncio.gather(
                *(
                    self.publish(m.body, message_id=m.message_id, app_id=m.app_id)
                    for m in messages[start : start + 50]
                )
            )

    async def ready(self) -> int:
        """Messages waiting in the queue."""
        return (await self.queue.declare()).message_count or 0

    async def consumers(self) -> int:
        return (await self.queue.declare()).consumer_count or 0

    async def take_dead_letters(self, into: dict[str, list[dict[str, Any]]]) -> None:
        """Move every dead letter waiting into `into`: message id -> its errors."""
        while (letter := await self.dead.get(fail=False)) is not None:
            assert letter.message_id is not None
            headers = letter.headers or {}
            errors = json.loads(str(headers["x-mot-errors"]))
            assert headers["x-mot-error-count"] == len(errors)
            into[letter.message_id] = errors
            await letter.ack()


@pytest.fixture
async def broker() -> AsyncIterator[Broker]:
    try:
        connection = await aio_pika.connect_robust(RABBITMQ_URL, timeout=3)
    except Exception as error:
        message = f"RabbitMQ unreachable at {RABBITMQ_URL}: {type(error).__name__}: {error}"
        if REQUIRE_RABBITMQ:
            pytest.fail(message)
        pytest.skip(message)
    name = f"mot.test.{uuid.uuid4().hex[:12]}"
    try:
        channel = await connection.channel()
        # Declared here as the consumer declares them, so that nothing published before a
        # consumer starts is lost.
        queue = await channel.declare_queue(name, durable=True, arguments=QUORUM)
        dead = await channel.declare_queue(f"{name}.dead", durable=True, arguments=QUORUM)
        yield Broker(connection, channel, queue, dead)
        await queue.delete(if_unused=False, if_empty=False)
        await dead.delete(if_unused=False, if_empty=False)
    finally:
        await connection.close()


class Consumer:
    """`mot consume` as a real process, started, killed and stopped."""

    def __init__(self, database_url: str, queue: str, log_path: Path, *options: str) -> None:
        self.command = [MOT, "consume", "--queue", queue, "--prefetch", str(PREFETCH)]
        self.command += ["--no-migrate", *options]
        self.env = command_environment(database_url, MOT_AMQP_URL=RABBITMQ_URL)
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert self.process is None, "already running"
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )

    def kill(self) -> None:
        """SIGKILL: no batch gets to finish, no message to be acknowledged."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=EXIT_WITHIN)
        self.process = None

    def terminate(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        status = self.process.wait(timeout=EXIT_WITHIN)
        self.process = None
        return status

    def stop_if_running(self) -> None:
        if self.process is not None:
            self.kill()

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


async def start_all(consumers: list[Consumer], broker: Broker) -> None:
    """Start the consumers and return once each consumes from the queue."""
    for consumer in consumers:
        consumer.start()
    deadline = time.monotonic() + SETTLED_WITHIN
    while await broker.consumers() < len(consumers):
        for consumer in consumers:
            assert consumer.process is not None
            assert consumer.process.poll() is None, f"mot consume exited\n{consumer.log}"
        assert time.monotonic() < deadline, "the consumers never started consuming"
        await asyncio.sleep(0.05)


def derived(message_id: str, position: int) -> str:
    """The id the README promises for an item without one."""
    return f"amqp-{hashlib.sha256(message_id.encode()).hexdigest()[:40]}-{position}"


@dataclass
class Published:
    message_id: str
    body: bytes
    app_id: str | None


@dataclass
class Stream:
    messages: list[Published]
    sources: dict[str, str]
    """Every valid touchpoint's id, and the source it must be stored with."""
    negatives: int
    invalid: dict[str, list[tuple[int | None, str | None]]]
    """Message id -> the (position, field) of each error its dead letter must carry
    (field None: any)."""


def _rated(number: int, offset: int) -> dict[str, Any]:
    return touchpoint(
        occurred_at=f"2026-11-{1 + number % 28:02d}T09:{offset:02d}:00Z",
        client_ref=f"c-{number:04d}",
        rating={"scale": "csat5", "value": (number + offset) % 5 + 1},
    )


def _negatives(body: Any) -> int:
    items = body if isinstance(body, list) else [body]
    return sum(item["rating"]["value"] <= 2 for item in items)


def make_stream(messages: int = 150, duplicates: int = 25) -> Stream:
    """Valid messages of three shapes, a few invalid ones, and repeats of valid ones."""
    published: list[Published] = []
    sources: dict[str, str] = {}
    for number in range(messages):
        message_id = f"msg-{number}"
        item = functools.partial(_rated, number)
        if number % 3 == 0:  # a list without ids, from the desk's system
            items = [item(offset) for offset in range(4)]
            published.append(Published(message_id, json.dumps(items).encode(), "desk"))
            sources.update({derived(message_id, position): "desk" for position in range(4)})
        elif number % 3 == 1:  # one touchpoint naming its id and source
            body = {**item(0), "id": f"tp-{number}", "source": "portal"}
            published.append(Published(message_id, json.dumps(body).encode(), "ignored"))
            sources[f"tp-{number}"] = "portal"
        else:  # one touchpoint without an id
            published.append(Published(message_id, json.dumps(item(0)).encode(), "chat"))
            sources[derived(message_id, 0)] = "chat"
    good_in_mixed = touchpoint(id="tp-mixed-good", source="mail")
    invalid: dict[str, tuple[bytes, list[tuple[int | None, str | None]]]] = {
        "bad-json": (b"{not json", [(None, "body")]),
        "bad-number": (b"42", [(0, None)]),
        "bad-empty": (b"[]", [(None, "body")]),
        "bad-scale": (
            json.dumps(touchpoint(rating={"scale": "csat5", "value": 9})).encode(),
            [(0, "rating.value")],
        ),
        "bad-mixed": (
            json.dumps([good_in_mixed, touchpoint(moment="Not A Key")]).encode(),
            [(1, "moment")],
        ),
    }
    sources["tp-mixed-good"] = "mail"
    negatives = sum(_negatives(json.loads(message.body)) for message in published)
    rng = random.Random(5)
    repeats = rng.sample(published, duplicates)
    for message_id, (invalid_body, _) in invalid.items():
        published.insert(rng.randrange(len(published)), Published(message_id, invalid_body, None))
    for repeat in repeats:  # a publisher's retry: the same message again, later
        later = published.index(repeat) + 1
        published.insert(rng.randrange(later, len(published) + 1), repeat)
    return Stream(
        published,
        sources,
        negatives,
        {message_id: expected for message_id, (_, expected) in invalid.items()},
    )


def stored_sources(database_url: str) -> dict[str, str | None]:
    engine = create_engine(sync_url(database_url))
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT external_id, source FROM touchpoint"))
            return {external_id: source for external_id, source in rows}
    finally:
        engine.dispose()


def follow_ups(database_url: str) -> int:
    engine = create_engine(sync_url(database_url))
    try:
        with engine.connect() as connection:
            return int(connection.scalar(text("SELECT count(*) FROM follow_up")) or 0)
    finally:
        engine.dispose()


async def wait_for_stored(database_url: str, *, more_than: int, consumers: list[Consumer]) -> int:
    deadline = time.monotonic() + SETTLED_WITHIN
    while (stored := sum(stored_ids(database_url).values())) <= more_than:
        assert time.monotonic() < deadline, f"nothing more stored\n{consumers[0].log}"
        await asyncio.sleep(0.01)
    return stored


async def test_every_touchpoint_is_stored_once_across_kills_and_bad_ones_are_dead_lettered(
    broker: Broker, database_url: str, tmp_path: Path
) -> None:
    stream = make_stream()
    # SQLite has one writer at a time: one consumer; PostgreSQL: two sharing the queue.
    count = 1 if make_url(database_url).get_backend_name() == "sqlite" else 2
    consumers = [
        Consumer(database_url, broker.queue.name, tmp_path / f"consumer-{n}.log")
        for n in range(count)
    ]
    thirds = [stream.messages[: len(stream.messages) // 3]]
    thirds.append(stream.messages[len(thirds[0]) : 2 * len(thirds[0])])
    thirds.append(stream.messages[2 * len(thirds[0]) :])
    dead_letters: dict[str, list[dict[str, Any]]] = {}
    try:
        stored = 0
        for third in thirds[:2]:
            await broker.publish_all(third)
            await start_all(consumers, broker)
            stored = await wait_for_stored(database_url, more_than=stored, consumers=consumers)
            for consumer in consumers:
                consumer.kill()
            stored = sum(stored_ids(database_url).values())
            assert stored < len(stream.sources), "the kill came after the stream was stored"
        await start_all(consumers, broker)
        await broker.publish_all(thirds[2])

        deadline = time.monotonic() + SETTLED_WITHIN
        while True:
            await broker.take_dead_letters(dead_letters)
            settled = (
                sum(stored_ids(database_url).values()) == len(stream.sources)
                and dead_letters.keys() == stream.invalid.keys()
                and await broker.ready() == 0
            )
            if settled:
                break
            assert time.monotonic() < deadline, f"never settled\n{consumers[0].log}"
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # the last redelivered duplicates get acknowledged
        for consumer in consumers:
            assert consumer.terminate() == 0, consumer.log
        await broker.take_dead_letters(dead_letters)
    finally:
        for consumer in consumers:
            consumer.stop_if_running()

    assert stored_ids(database_url) == Counter(dict.fromkeys(stream.sources, 1))
    assert stored_sources(database_url) == stream.sources
    assert follow_ups(database_url) == stream.negatives
    assert dead_letters.keys() == stream.invalid.keys()
    for message_id, expected in stream.invalid.items():
        errors = dead_letters[message_id]
        assert len(errors) == len(expected), (message_id, errors)
        for error, (position, field) in zip(errors, expected, strict=True):
            assert error["index"] == position, (message_id, error)
            assert error["code"] == "validation_failed"
            assert error["details"], (message_id, error)
            if field is not None:
                assert error["details"][0]["field"] == field, (message_id, error)
    assert await broker.ready() == 0, "a message was left unacknowledged"
    found = await asyncio.to_thread(read_rollups, database_url)
    assert found.counted == found.recount


async def test_binds_to_an_exchange_and_dead_letters_a_reused_id_with_body_and_properties(
    broker: Broker, database_url: str, tmp_path: Path
) -> None:
    exchange = await broker.channel.declare_exchange(
        f"{broker.queue.name}.x", aio_pika.ExchangeType.TOPIC, auto_delete=True
    )
    options = ("--exchange", exchange.name, "--routing-key", "touchpoints.#")
    consumer = Consumer(database_url, broker.queue.name, tmp_path / "consumer.log", *options)

    async def publish(routing_key: str, body: dict[str, Any], message_id: str) -> None:
        message = aio_pika.Message(
            json.dumps(body).encode(),
            message_id=message_id,
            app_id="desk",
            content_type="application/json",
        )
        await exchange.publish(message, routing_key=routing_key, mandatory=False)

    reused = touchpoint(id="tp-1", team="desk-night")
    try:
        await start_all([consumer], broker)
        await publish("other.desk", touchpoint(id="tp-not-routed"), "elsewhere")
        await publish("touchpoints.desk", touchpoint(id="tp-1", team="desk-day"), "first")
        await wait_for_stored(database_url, more_than=0, consumers=[consumer])
        await publish("touchpoints.desk", reused, "second")
        deadline = time.monotonic() + SETTLED_WITHIN
        while (letter := await broker.dead.get(fail=False)) is None:
            assert time.monotonic() < deadline, consumer.log
            await asyncio.sleep(0.02)
        assert consumer.terminate() == 0, consumer.log
    finally:
        consumer.stop_if_running()
    assert stored_sources(database_url) == {"tp-1": "desk"}
    assert json.loads(letter.body) == reused
    assert (letter.message_id, letter.app_id) == ("second", "desk")
    assert letter.content_type == "application/json"
    headers = letter.headers or {}
    (error,) = json.loads(str(headers["x-mot-errors"]))
    assert (error["index"], error["id"], error["code"]) == (0, "tp-1", "conflict")


def _postgres_admin(sql: str) -> None:
    with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
        connection.execute(sql)  # the database names are the fixtures', never input


async def test_a_database_outage_holds_messages_until_it_ends(
    broker: Broker, database_url: str, tmp_path: Path
) -> None:
    if make_url(database_url).get_backend_name() != "postgresql":
        pytest.skip("an outage is made by refusing connections to a PostgreSQL database")
    name = make_url(database_url).database
    consumer = Consumer(database_url, broker.queue.name, tmp_path / "consumer.log")
    try:
        await start_all([consumer], broker)
        _postgres_admin(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")
        _postgres_admin(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{name}' AND pid <> pg_backend_pid()"
        )
        ids = [f"tp-{n}" for n in range(20)]
        for id_ in ids:
            await broker.publish(json.dumps(touchpoint(id=id_)).encode(), message_id=id_)
        await asyncio.sleep(1.5)  # a few failed attempts
        assert not (await broker.dead.declare()).message_count
        _postgres_admin(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
        deadline = time.monotonic() + SETTLED_WITHIN
        while sum(stored_ids(database_url).values()) < len(ids):
            assert time.monotonic() < deadline, consumer.log
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.3)
        assert consumer.terminate() == 0, consumer.log
    finally:
        _postgres_admin(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
        consumer.stop_if_running()
    assert stored_ids(database_url) == Counter(dict.fromkeys(ids, 1))
    assert "touchpoints failed" in consumer.log
    assert await broker.ready() == 0
    assert not (await broker.dead.declare()).message_count
