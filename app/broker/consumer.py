"""`mot consume`: touchpoints from a RabbitMQ queue, stored through the batch path.

Delivery is at least once, storage exactly once: a message is acknowledged only after the
transaction that stored its touchpoints committed, so a consumer that dies between the two
gets it delivered again (to it or to another consumer), and the ids (given, or derived
from the message id) make the second delivery a duplicate that stores nothing.

Messages are stored a batch at a time: whatever arrives within a short window, up to the
prefetch count, goes into one `ingest` call and one transaction, then is acknowledged at
once (`multiple`). A database that fails holds the batch unacknowledged and is retried
with a growing pause until it answers; no message is dead-lettered for it.
"""

import asyncio
import logging
import signal
import time
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)
from aiormq.abc import FieldTable

from app import metrics
from app.broker import messages
from app.config import Settings
from app.db import Database, is_unavailable
from app.followups import targets as followups_targets
from app.inputs import may_hold_nul
from app.rollups import service as rollups
from app.touchpoints import service as touchpoints_service
from app.touchpoints.service import IngestReport

logger = logging.getLogger(__name__)

QUORUM: FieldTable = {"x-queue-type": "quorum"}
BATCH_WINDOW_SECONDS = 0.05
"""After a batch's first message, how long to wait for more before storing what came."""
LAG_INTERVAL_SECONDS = 2.0
"""How often the queue's backlog is read for the metrics."""
FIRST_RETRY_SECONDS = 0.5
LONGEST_RETRY_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class Route:
    """Where the touchpoints come from: the queue, its binding and the prefetch window."""

    queue: str
    exchange: str | None = None
    routing_key: str | None = None
    prefetch: int = 200

    @property
    def dead_letter_queue(self) -> str:
        return f"{self.queue}.dead"

    @classmethod
    def of(cls, settings: Settings) -> "Route":
        return cls(
            settings.amqp_queue,
            settings.amqp_exchange,
            settings.amqp_routing_key,
            settings.amqp_prefetch,
        )


def run_until_signalled(settings: Settings, *, url: str, route: Route) -> None:
    """Consume until SIGTERM or SIGINT; the batch being stored is finished first, and
    whatever is not acknowledged by then is delivered again."""

    async def _run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await consume(settings, url=url, route=route, stop=stop)

    asyncio.run(_run())


async def consume(settings: Settings, *, url: str, route: Route, stop: asyncio.Event) -> None:
    """Store touchpoints from the queue until `stop` is set."""
    connection = await _connect(url, stop)
    if connection is None:
        return
    database = Database(settings.database_url)
    background: list[asyncio.Task[None]] = []
    try:
        channel = await connection.channel(publisher_confirms=True)
        await channel.set_qos(prefetch_count=route.prefetch)
        queue = await declare(channel, route)
        inbox: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
        consumer_tag = await queue.consume(inbox.put)
        background.append(asyncio.create_task(_watch_backlog(queue)))
        if settings.fold_interval_seconds > 0:
            folder = rollups.run_folder(database, interval=settings.fold_interval_seconds)
            background.append(asyncio.create_task(folder))
        logger.info("consuming touchpoints", extra={"queue": route.queue})
        while not stop.is_set():
            batch = await _next_batch(inbox, size=route.prefetch, stop=stop)
            if batch:
                await _handle(
                    batch,
                    database=database,
                    channel=channel,
                    route=route,
                    settings=settings,
                    stop=stop,
                )
        with suppress(Exception):  # closing the connection cancels it anyway
            await queue.cancel(consumer_tag)
    finally:
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        await connection.close()
        await database.dispose()


class SetupRefused(Exception):
    """The broker refused the queues or the binding: the consumer cannot start."""


async def declare(channel: AbstractChannel, route: Route) -> AbstractQueue:
    """The queue and its dead-letter queue (durable quorum queues), and the binding.

    The exchange must exist: it belongs to the publishers, who chose its type.
    """
    try:
        await channel.declare_queue(route.dead_letter_queue, durable=True, arguments=QUORUM)
        queue = await channel.declare_queue(route.queue, durable=True, arguments=QUORUM)
    except aio_pika.exceptions.ChannelPreconditionFailed as error:
        raise SetupRefused(
            f"the queue {route.queue!r} or {route.dead_letter_queue!r} exists with other "
            f"settings than a durable quorum queue ({error})"
        ) from None
    if route.exchange:
        try:
            exchange = await channel.get_exchange(route.exchange, ensure=True)
        except aio_pika.exceptions.ChannelNotFoundEntity:
            raise SetupRefused(
                f"the exchange {route.exchange!r} does not exist: its publishers declare it"
            ) from None
        await queue.bind(exchange, routing_key=route.routing_key or route.queue)
    return queue


async def _connect(url: str, stop: asyncio.Event) -> AbstractRobustConnection | None:
    """A connection that reconnects by itself once made; the first one is retried too, so
    that a consumer may start before its broker."""
    delay = FIRST_RETRY_SECONDS
    while not stop.is_set():
        try:
            return await aio_pika.connect_robust(url)
        except (OSError, aio_pika.exceptions.AMQPConnectionError) as error:
            logger.warning(
                "RabbitMQ is unreachable; retrying in %.1f s (%s)", delay, type(error).__name__
            )
        if await _stopped_within(stop, delay):
            break
        delay = min(delay * 2, LONGEST_RETRY_SECONDS)
    return None


async def _stopped_within(stop: asyncio.Event, seconds: float) -> bool:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        return False
    return True


async def _next_batch(
    inbox: "asyncio.Queue[AbstractIncomingMessage]", *, size: int, stop: asyncio.Event
) -> list[AbstractIncomingMessage]:
    """The next message, and those that follow it within a short window, up to `size`;
    nothing when told to stop first."""
    first = asyncio.create_task(inbox.get())
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({first, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if not first.done():
        first.cancel()
        return []
    batch = [first.result()]
    deadline = time.monotonic() + BATCH_WINDOW_SECONDS
    while len(batch) < size:
        if not inbox.empty():
            batch.append(inbox.get_nowait())
            continue
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        try:
            batch.append(await asyncio.wait_for(inbox.get(), remaining))
        except TimeoutError:
            break
    return batch


@dataclass(frozen=True, slots=True)
class _Owner:
    """Which message an item of the batch came from, and at which position."""

    message: int
    position: int


async def _handle(
    batch: Sequence[AbstractIncomingMessage],
    *,
    database: Database,
    channel: AbstractChannel,
    route: Route,
    settings: Settings,
    stop: asyncio.Event,
) -> None:
    """Store a batch, dead-letter what was refused, then acknowledge the whole batch."""
    decoded = [
        messages.decode(message.body, message_id=message.message_id, app_id=message.app_id)
        for message in batch
    ]
    raw_items: list[Any] = []
    owners: list[_Owner] = []
    for number, found in enumerate(decoded):
        raw_items.extend(found.items)
        owners.extend(_Owner(number, position) for position in range(len(found.items)))
    report = IngestReport()
    if raw_items:
        nul_possible = any(may_hold_nul(message.body) for message in batch)
        stored = await _store(database, raw_items, settings=settings, nul=nul_possible, stop=stop)
        if stored is None:
            return  # stopping: not acknowledged, so delivered again
        report = stored

    errors: list[list[dict[str, Any]]] = [[] for _ in batch]
    for number, found in enumerate(decoded):
        if found.error is not None:
            errors[number].append(found.error)
    for error in report.errors:
        owner = owners[error.index]
        errors[owner.message].append(messages.item_error(error, position=owner.position))
    try:
        for message, its_errors in zip(batch, errors, strict=True):
            if its_errors:
                await _dead_letter(channel, message, its_errors, route=route)
        # Deliveries come in order on one channel: acknowledging the last one with
        # `multiple` acknowledges the whole batch.
        await batch[-1].ack(multiple=True)
    except Exception as error:
        # The channel broke (its messages come again, to be found stored) or the dead-letter
        # queue refused a letter (they are handed back, to be tried again).
        logger.warning(
            "a batch of %d messages was stored but not acknowledged; it will be delivered "
            "again (%s)",
            len(batch),
            type(error).__name__,
        )
        with suppress(Exception):
            await batch[-1].nack(multiple=True, requeue=True)
        await _stopped_within(stop, FIRST_RETRY_SECONDS)
        return
    _observe(batch, report, dead_letters=sum(1 for found in errors if found))


async def _store(
    database: Database,
    raw_items: list[Any],
    *,
    settings: Settings,
    nul: bool,
    stop: asyncio.Event,
) -> IngestReport | None:
    """Validate and store the items in one transaction, retried until it commits; None
    when told to stop before it did."""
    delay = FIRST_RETRY_SECONDS
    while True:
        items, report = touchpoints_service.validate_items(raw_items, may_hold_nul=nul)
        try:
            async with database.write_sessions() as session, session.begin():
                await touchpoints_service.ingest(
                    session,
                    items=items,
                    register_unknown_moments=settings.auto_register_moments,
                    default_target=settings.default_target_negative_rate,
                    follow_up_targets=followups_targets.from_settings(settings),
                    report=report,
                )
            return report
        except Exception as error:
            metrics.BROKER_STORE_FAILURES.inc()
            unavailable = is_unavailable(error)
            logger.warning(
                "storing %d touchpoints failed (%s); retrying in %.1f s",
                len(raw_items),
                "the database is unavailable" if unavailable else type(error).__name__,
                delay,
                exc_info=not unavailable,
            )
        if await _stopped_within(stop, delay):
            return None
        delay = min(delay * 2, LONGEST_RETRY_SECONDS)


async def _dead_letter(
    channel: AbstractChannel,
    message: AbstractIncomingMessage,
    errors: list[dict[str, Any]],
    *,
    route: Route,
) -> None:
    """Publish the original body and properties, with the errors in a header, to the
    dead-letter queue, and wait for the broker's confirmation.

    Published by the consumer rather than left to the broker's own dead-lettering (a
    rejected message and `x-dead-letter-exchange`): that would carry the message alone,
    without the reasons it was refused.
    """
    letter = aio_pika.Message(
        message.body,
        headers=messages.dead_letter_headers(message.headers, errors),
        content_type=message.content_type,
        content_encoding=message.content_encoding,
        message_id=message.message_id,
        correlation_id=message.correlation_id,
        timestamp=message.timestamp,
        app_id=message.app_id,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
    )
    await channel.default_exchange.publish(
        letter, routing_key=route.dead_letter_queue, mandatory=True
    )


def _observe(
    batch: Sequence[AbstractIncomingMessage], report: IngestReport, *, dead_letters: int
) -> None:
    metrics.BROKER_MESSAGES_CONSUMED.inc(len(batch))
    metrics.BROKER_MESSAGES_DEAD_LETTERED.inc(dead_letters)
    touchpoints = metrics.BROKER_TOUCHPOINTS
    touchpoints.labels("stored").inc(report.created)
    touchpoints.labels("duplicate").inc(report.duplicates)
    touchpoints.labels("refused").inc(len(report.errors))
    stamped = [message.timestamp for message in batch if message.timestamp is not None]
    if stamped:
        oldest = min(stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC) for stamp in stamped)
        age = (datetime.now(UTC) - oldest).total_seconds()
        metrics.BROKER_OLDEST_MESSAGE_AGE.set(max(0.0, age))


async def _watch_backlog(queue: AbstractQueue) -> None:
    """Keep the count of messages waiting in the queue in the metrics: the consumers' lag."""
    while True:
        try:
            declared = await queue.declare()
            metrics.BROKER_QUEUE_READY.set(declared.message_count or 0)
        except Exception as error:  # a broken channel: it comes back by itself
            logger.debug("reading the queue's backlog failed: %s", type(error).__name__)
        await asyncio.sleep(LAG_INTERVAL_SECONDS)
