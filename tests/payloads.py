"""Tiny builders for request bodies."""

from typing import Any


def touchpoint(**fields: Any) -> dict[str, Any]:
    """A valid touchpoint body; keyword arguments replace or add fields."""
    body: dict[str, Any] = {
        "moment": "service-desk.first-voice",
        "channel": "call",
        "occurred_at": "2026-11-02T09:30:00Z",
        "client_ref": "c-0001",
        "team": "desk-day",
    }
    body.update(fields)
    return body
