"""A client's full history (ratings, re-ratings, a survey, a follow-up, webhook deliveries)
and a raw view of every table, to check what erasure and purge leave behind."""

from typing import Any

import httpx
from sqlalchemy import create_engine, select, update

import app.main  # noqa: F401  (importing the app registers every model)
from app.db import Base, sync_url
from app.webhooks.models import WebhookDelivery
from tests.payloads import touchpoint

NEGATIVE = {"scale": "csat5", "value": 1}
TABLES_ABOUT_TOUCHPOINTS = (
    "touchpoint",
    "rating_history",
    "survey",
    "follow_up",
    "follow_up_event",
    "webhook_delivery",
)


async def register_webhook(client: httpx.AsyncClient) -> None:
    """A webhook for every event; nothing sends in these tests, so deliveries stay pending."""
    response = await client.post(
        "/v1/webhooks",
        json={
            "url": "http://127.0.0.1:9/hook",
            "events": ["rating.negative", "follow_up.opened", "follow_up.status_changed"],
        },
    )
    assert response.status_code == 201, response.text


async def live(
    client: httpx.AsyncClient, *, client_ref: str, prefix: str, day: str, **fields: Any
) -> list[str]:
    """Four touchpoints of one client on `day` (YYYY-MM-DD), with everything that can hang
    off a touchpoint; returns their ids.

    `{prefix}-neg`: a negative rating with a comment, whose follow-up is acknowledged (two
    steps, three webhook deliveries); `{prefix}-rerated`: rated twice (a rating in the
    history); `{prefix}-surveyed`: survey links issued; `{prefix}-plain`: nothing more.
    """
    ref = {"client_ref": client_ref}
    items = [
        touchpoint(
            id=f"{prefix}-neg",
            occurred_at=f"{day}T09:00:00Z",
            rating=NEGATIVE,
            comment=f"{prefix}: nobody called back",
            **ref,
            **fields,
        ),
        touchpoint(
            id=f"{prefix}-rerated",
            occurred_at=f"{day}T10:00:00Z",
            rating={"scale": "csat5", "value": 4},
            **ref,
            **fields,
        ),
        touchpoint(id=f"{prefix}-surveyed", occurred_at=f"{day}T11:00:00Z", **ref, **fields),
        touchpoint(
            id=f"{prefix}-plain",
            occurred_at=f"{day}T12:00:00Z",
            channel="visit",
            team="onsite",
            **ref,
        ),
    ]
    posted = await client.post("/v1/touchpoints/batch", json={"touchpoints": items})
    assert posted.json()["accepted"] == 4, posted.text
    rerated = await client.put(
        f"/v1/touchpoints/{prefix}-rerated/rating", json={"scale": "csat5", "value": 5}
    )
    assert rerated.status_code == 200, rerated.text
    surveyed = await client.post(
        f"/v1/touchpoints/{prefix}-surveyed/survey", json={"scale": "csat5"}
    )
    assert surveyed.status_code == 201, surveyed.text
    follow_up = await follow_up_of(client, f"{prefix}-neg")
    moved = await client.post(
        f"/v1/follow-ups/{follow_up}/events",
        json={"status": "acknowledged", "actor": "ana", "client_message": "Sorry: why?"},
    )
    assert moved.status_code == 200, moved.text
    return [item["id"] for item in items]


async def follow_up_of(client: httpx.AsyncClient, touchpoint_id: str) -> int:
    response = await client.get("/v1/follow-ups", params={"limit": 500})
    (number,) = [f["id"] for f in response.json()["data"] if f["touchpoint"] == touchpoint_id]
    return int(number)


async def move(client: httpx.AsyncClient, touchpoint_id: str, *statuses: str) -> None:
    """Move the touchpoint's follow-up through these statuses."""
    follow_up = await follow_up_of(client, touchpoint_id)
    for status in statuses:
        response = await client.post(
            f"/v1/follow-ups/{follow_up}/events", json={"status": status, "actor": "ana"}
        )
        assert response.status_code == 200, response.text


def mark_delivered(database_url: str, *, touchpoint_id: str, event: str) -> None:
    """Record the delivery of `event` about the touchpoint as sent, as the sender would."""
    engine = create_engine(sync_url(database_url))
    try:
        with engine.begin() as connection:
            deliveries = connection.execute(
                select(WebhookDelivery.id, WebhookDelivery.payload).where(
                    WebhookDelivery.event == event
                )
            ).all()
            (number,) = [d for d, p in deliveries if p["data"].get("touchpoint") == touchpoint_id]
            connection.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id == number)
                .values(state="delivered", last_status=204)
            )
    finally:
        engine.dispose()


Rows = dict[str, list[dict[str, Any]]]


def table_rows(database_url: str) -> Rows:
    """Every row of every table, in primary-key order."""
    engine = create_engine(sync_url(database_url))
    try:
        with engine.connect() as connection:
            return {
                table.name: [
                    dict(row._mapping)
                    for row in connection.execute(
                        select(table).order_by(*table.primary_key.columns)
                    )
                ]
                for table in Base.metadata.sorted_tables
            }
    finally:
        engine.dispose()


def mentioning(rows: Rows, *needles: str) -> list[tuple[str, dict[str, Any]]]:
    """(table, row) of every row in which one of `needles` appears, in any column."""
    return [
        (table, row)
        for table, table_rows in rows.items()
        for row in table_rows
        if any(needle in str(value) for value in row.values() for needle in needles)
    ]
