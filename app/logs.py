"""Logging: one JSON object a line, carrying the id of the request being served, and the
ids of the trace and span when tracing is on (see `app.tracing`).

Nothing a client sent reaches a log line: the access line names the route template, never
the path or query string (see `app.access_log`), and tracebacks keep exception types and
frames but never exception messages, which may quote the input that caused them.
"""

import logging
import traceback
from contextvars import ContextVar
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter as PlainJsonFormatter

try:
    from opentelemetry import trace
except ImportError:  # tracing is optional: the `otel` extra
    trace = None  # type: ignore[assignment]

REQUEST_ID_HEADER = "x-request-id"

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
"""The id of the request this code runs for; None outside requests (startup, background)."""

_ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None]


class JsonFormatter(PlainJsonFormatter):
    """`time`, `level`, `logger`, `message`, `request_id` during a request, `trace_id` and
    `span_id` within a span, and any extras."""

    def __init__(self) -> None:
        super().__init__(
            "{asctime}{levelname}{name}{message}",
            style="{",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            # uvicorn attaches an ANSI-coloured copy of some messages.
            reserved_attrs=[*RESERVED_ATTRS, "color_message"],
        )

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        moment = datetime.fromtimestamp(record.created, UTC)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def formatException(self, ei: _ExcInfo) -> str:
        return redacted_traceback(ei[1])

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        super().add_fields(log_data, record, message_dict)
        current = request_id.get()
        if current is not None:
            log_data.setdefault("request_id", current)
        if trace is not None:
            span = trace.get_current_span().get_span_context()
            if span.is_valid:
                # The hex forms every tracing backend searches by.
                log_data.setdefault("trace_id", format(span.trace_id, "032x"))
                log_data.setdefault("span_id", format(span.span_id, "016x"))


def redacted_traceback(error: BaseException | None) -> str:
    """The traceback of `error` and of the errors it came from, without their messages.

    A database error quotes the row it refused and a validation error the value; what
    stays (types, files, lines and the code on them) locates the fault without the data.
    """
    return "" if error is None else _redacted(error, seen=set())


def _redacted(error: BaseException, *, seen: set[int]) -> str:
    seen.add(id(error))
    parts = []
    cause, context = error.__cause__, error.__context__
    if cause is not None and id(cause) not in seen:
        parts += [_redacted(cause, seen=seen), _DIRECT_CAUSE]
    elif context is not None and not error.__suppress_context__ and id(context) not in seen:
        parts += [_redacted(context, seen=seen), _DURING_HANDLING]
    kind = type(error)
    frames = "".join(traceback.format_tb(error.__traceback__))
    parts.append(
        f"Traceback (most recent call last):\n{frames}"
        f"{kind.__module__}.{kind.__qualname__}: (message withheld from logs)"
    )
    return "\n".join(parts)


_DIRECT_CAUSE = "\nThe above exception was the direct cause of the following exception:\n"
_DURING_HANDLING = "\nDuring handling of the above exception, another exception occurred:\n"


def config(level: str) -> dict[str, Any]:
    """The `logging.config` dictionary of the service, for `dictConfig` and uvicorn.

    Every logger, uvicorn's included, writes JSON lines to stderr through the root
    handler. uvicorn's access log stays off: `app.access_log` writes a safer one.
    """
    level = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "app.logs.JsonFormatter"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {
            "uvicorn": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.access": {"handlers": [], "propagate": False},
            # httpx logs every webhook POST with its URL, where receivers often keep a secret.
            "httpx": {"level": "WARNING"},
            "httpcore": {"level": "WARNING"},
        },
    }
