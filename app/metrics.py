"""Prometheus metrics: what is counted, counting once a transaction commits, `/metrics`.

The metric objects live here, once per process: the registry is process-wide, and a
process may create many apps (the tests do), which must all count into the same metrics.

Served by several worker processes (`mot serve --workers N`), the service runs in
prometheus_client's multiprocess mode: `PROMETHEUS_MULTIPROC_DIR` names a directory where
every worker writes its values, read when prometheus_client is imported, and `/metrics`
adds up the files of all workers, whichever worker answers.

`mot consume` is a process of its own: it serves its metrics (the `mot_broker_*` ones, and
the ingest counts it adds to) on the port given by `--metrics-port`.
"""

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import APIRouter, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

MULTIPROCESS_DIRECTORY = "PROMETHEUS_MULTIPROC_DIR"

HTTP_REQUESTS = Counter(
    "mot_http_requests",
    "HTTP requests answered, by method, route template and status.",
    ["method", "route", "status"],
)
HTTP_REQUEST_DURATION = Histogram(
    "mot_http_request_duration_seconds",
    "Time to answer an HTTP request, by method and route template.",
    ["method", "route"],
)
TOUCHPOINTS_INGESTED = Counter(
    "mot_touchpoints_ingested",
    "Touchpoints posted (single or batch), by outcome: created, duplicate (a retry, "
    "nothing stored), conflict (an id reused for other content) or invalid.",
    ["outcome"],
)
LATE_RATINGS = Counter(
    "mot_late_ratings",
    "Ratings recorded after the touchpoint (API or survey answer), by outcome: recorded, "
    "or unchanged (the same rating again).",
    ["outcome"],
)
FOLLOW_UPS_OPENED = Counter(
    "mot_follow_ups_opened",
    "Follow-ups opened, by reason: negative_rating, complaint or manual.",
    ["reason"],
)
WEBHOOK_DELIVERIES = Counter(
    "mot_webhook_deliveries",
    "Webhook delivery attempts, by outcome: delivered, retrying (failed, another attempt "
    "is scheduled) or failed (failed for the last time; given up).",
    ["outcome"],
)

DELTAS_FOLDED = Counter(
    "mot_rollup_deltas_folded",
    "Count deltas moved into the rollups by the folder.",
)
FOLD_DURATION = Histogram(
    "mot_rollup_fold_duration_seconds",
    "Time one fold of the pending count deltas took.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
# Whichever worker folded last knows the current figure: the most recent value wins.
PENDING_DELTAS = Gauge(
    "mot_rollup_pending_deltas",
    "Deltas of the counts and of the answers' details written but not yet folded into the "
    "rollups (readers add them).",
    multiprocess_mode="mostrecent",
)
OLDEST_PENDING = Gauge(
    "mot_rollup_oldest_pending_seconds",
    "Age of the oldest count delta not yet folded: the folder's lag.",
    multiprocess_mode="mostrecent",
)

BROKER_MESSAGES_CONSUMED = Counter(
    "mot_broker_messages_consumed",
    "Messages `mot consume` took from its queue and acknowledged, once their touchpoints "
    "were stored (or dead-lettered).",
)
BROKER_MESSAGES_DEAD_LETTERED = Counter(
    "mot_broker_messages_dead_lettered",
    "Messages sent to the dead-letter queue `<queue>.dead` with their errors: not JSON, no "
    "touchpoint, or holding at least one refused item (its good items are stored).",
)
BROKER_TOUCHPOINTS = Counter(
    "mot_broker_touchpoints",
    "Touchpoints of acknowledged messages, by outcome: stored, duplicate (already stored: "
    "a redelivery or a retry) or refused (dead-lettered with its errors).",
    ["outcome"],
)
BROKER_STORE_FAILURES = Counter(
    "mot_broker_store_failures",
    "Batches of messages whose transaction failed (the database unavailable, mostly); "
    "each is retried, unacknowledged, until it commits.",
)
BROKER_QUEUE_READY = Gauge(
    "mot_broker_queue_messages_ready",
    "Messages waiting in the queue, not yet delivered to a consumer: the consumers' lag.",
    multiprocess_mode="mostrecent",
)
BROKER_OLDEST_MESSAGE_AGE = Gauge(
    "mot_broker_oldest_message_age_seconds",
    "Age, by its `timestamp` property, of the oldest message of the last batch stored: how "
    "long touchpoints waited in the broker.",
    multiprocess_mode="mostrecent",
)

_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def method_label(method: str) -> str:
    """The method as a label: any other word a client sends counts as `other`, so that
    clients cannot create series at will."""
    return method if method in _KNOWN_METHODS else "other"


def observe_request(*, method: str, route: str, status: int, seconds: float) -> None:
    """Count one answered HTTP request and its duration."""
    HTTP_REQUESTS.labels(method=method, route=route, status=str(status)).inc()
    HTTP_REQUEST_DURATION.labels(method=method, route=route).observe(seconds)


def observe_pending(*, deltas: int, oldest_age: float) -> None:
    """Record what the folder left pending after a fold."""
    PENDING_DELTAS.set(deltas)
    OLDEST_PENDING.set(oldest_age)


_PENDING = "mot_metrics_pending"


def count_on_commit(session: AsyncSession, counter: Counter, amount: float = 1) -> None:
    """Add `amount` to `counter` (a labelled child) once the session's transaction commits.

    A rolled-back transaction stored nothing, so what it would have counted is dropped.
    """
    if amount:
        session.info.setdefault(_PENDING, []).append((counter, amount))


@event.listens_for(Session, "after_commit")
def _count_committed(session: Session) -> None:
    # Also called when a savepoint is released: only the outermost commit counts.
    if session.in_nested_transaction():
        return
    for counter, amount in session.info.pop(_PENDING, ()):
        counter.inc(amount)


@event.listens_for(Session, "after_transaction_end")
def _drop_uncommitted(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        session.info.pop(_PENDING, None)


@contextmanager
def shared_by_workers(workers: int) -> Iterator[None]:
    """With more than one worker, have them keep their values in one fresh directory.

    Set before the workers start: they inherit the environment, and prometheus_client
    reads it when they import it. A directory the operator names is used as it is.
    """
    if workers == 1 or MULTIPROCESS_DIRECTORY in os.environ:
        yield
        return
    directory = tempfile.mkdtemp(prefix="mot-metrics-")
    os.environ[MULTIPROCESS_DIRECTORY] = directory
    try:
        yield
    finally:
        del os.environ[MULTIPROCESS_DIRECTORY]
        shutil.rmtree(directory, ignore_errors=True)


router = APIRouter(include_in_schema=False)


# A plain function: FastAPI runs it in a thread, where reading the workers' files does not
# hold up the event loop.
@router.get("/metrics")
def metrics() -> Response:
    """The metrics in Prometheus' text format, added up across worker processes."""
    registry = REGISTRY
    if MULTIPROCESS_DIRECTORY in os.environ:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
