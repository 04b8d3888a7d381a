"""Broker messages as touchpoints: reading a body, naming its items, and the errors that
send a message to the dead-letter queue. No broker and no database here."""

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from app.errors import ErrorDetail
from app.touchpoints.schemas import BatchItemError

ERRORS_HEADER = "x-mot-errors"
"""Header of a dead letter: the reasons, as a JSON list of errors."""
ERROR_COUNT_HEADER = "x-mot-error-count"
"""Header of a dead letter: how many errors there were, when the list is cut short."""
MAX_ERRORS_IN_HEADER = 100
# A message's headers travel in one frame (128 KiB by default): a list of a thousand bad
# items would not fit, and the first hundred reasons tell enough.


@dataclass(slots=True)
class Decoded:
    """A message's touchpoint items, raw (validated later, with the batch), or the reason
    the body holds no touchpoint at all."""

    items: list[Any] = field(default_factory=list)
    error: dict[str, Any] | None = None


def derived_id(message_id: str, position: int) -> str:
    """The id of a touchpoint that names none, from the broker's message id and the item's
    position in the message: a redelivered or republished message names the same ids, so
    it is stored once."""
    digest = hashlib.sha256(message_id.encode()).hexdigest()[:40]
    return f"amqp-{digest}-{position}"


def decode(body: bytes, *, message_id: str | None, app_id: str | None) -> Decoded:
    """The touchpoints of a body: one JSON object, or a non-empty JSON list of them.

    An item without an `id` gets one derived from `message_id` (when the message has
    one), and an item without a `source` is from the publishing application (`app_id`).
    """
    try:
        content = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        return Decoded(error=message_error(f"The body is not JSON: {error}.", "json_invalid"))
    items = content if isinstance(content, list) else [content]
    if not items:
        return Decoded(error=message_error("The body is an empty list.", "too_short"))
    named: list[Any] = []
    for position, item in enumerate(items):
        if isinstance(item, dict):
            if item.get("id") is None and message_id:
                item = {**item, "id": derived_id(message_id, position)}
            if item.get("source") is None and app_id:
                item = {**item, "source": app_id}
        named.append(item)
    return Decoded(items=named)


def message_error(message: str, kind: str) -> dict[str, Any]:
    """An error about the whole message (no item position), shaped like an item's."""
    detail = ErrorDetail(field="body", message=message, type=kind)
    return {
        "index": None,
        "id": None,
        "code": "validation_failed",
        "message": "The message holds no touchpoint.",
        "details": [detail.model_dump(mode="json")],
    }


def item_error(error: BatchItemError, *, position: int) -> dict[str, Any]:
    """An item's error, with `index` its position in its message."""
    return {**error.model_dump(mode="json"), "index": position}


def dead_letter_headers(
    headers: dict[str, Any] | None, errors: list[dict[str, Any]]
) -> dict[str, Any]:
    """The headers of a dead letter: the original ones, and the reasons."""
    shown = errors[:MAX_ERRORS_IN_HEADER]
    return {
        **(headers or {}),
        ERRORS_HEADER: json.dumps(shown, separators=(",", ":"), ensure_ascii=False),
        ERROR_COUNT_HEADER: len(errors),
    }
