"""What the published OpenAPI description says about the API as a whole: its tags, licence,
contact and servers, and the operation ids that generated clients name their functions by."""

from collections import Counter
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute

from app.config import Settings

LICENSE = {"name": "Apache-2.0", "identifier": "Apache-2.0"}
CONTACT = {"name": "The mot maintainers"}

TAGS: list[dict[str, Any]] = [
    {"name": "health", "description": "Liveness and readiness, for load balancers; no key."},
    {
        "name": "moments",
        "description": "The catalogue of moments of truth: the kinds of contact clients have.",
    },
    {
        "name": "touchpoints",
        "description": "Single contacts with a client, one at a time or in batches, with the "
        "client's rating where one was given.",
    },
    {
        "name": "insights",
        "description": "Figures read from the touchpoints: weak spots, hotspots, reports, "
        "consistency between teams, silence, the overview and the survey and follow-up "
        "figures.",
    },
    {"name": "clients", "description": "One client's journey through the moments."},
    {"name": "surveys", "description": "Survey links sent to clients after a touchpoint."},
    {
        "name": "follow-ups",
        "description": "Bad experiences followed up: opened by a negative rating or a "
        "complaint (or by hand), and moved along their workflow.",
    },
    {
        "name": "improvement actions",
        "description": "Changes made to a moment, each with the negative rate before and "
        "after it and the change net of the other moments of its scale family.",
    },
    {"name": "webhooks", "description": "Subscriptions to events, delivered by signed POST."},
    {"name": "keys", "description": "API keys and their scopes."},
    {"name": "privacy", "description": "A client's erasure, and the audit of what was done."},
]


def servers(settings: Settings) -> list[dict[str, str]]:
    """The service's public address where one is set; else the address the description
    was read from, which is where the service answers."""
    if settings.public_url:
        return [{"url": settings.public_url.rstrip("/") or "/"}]
    return [{"url": "/", "description": "The address this description was read from."}]


def operation_id(route: APIRoute) -> str:
    """The route function's name: what a generated client calls the operation."""
    return route.name


class DuplicateOperationId(RuntimeError):
    """Two operations would publish the same id, and a client generated from the
    description would lose one of them."""


def check_operation_ids(app: FastAPI) -> None:
    """Refuse an app in which two published operations share a route function name (or one
    route function answers several methods): each operation needs an id of its own."""
    uses: Counter[str] = Counter()
    for route in app.routes:
        if isinstance(route, APIRoute) and route.include_in_schema:
            uses[operation_id(route)] += len(route.methods or ())
    repeated = sorted(name for name, count in uses.items() if count > 1)
    if repeated:
        raise DuplicateOperationId(
            "Each published route needs a function name of its own (its OpenAPI operation "
            f"id): {', '.join(repeated)} name more than one operation."
        )
