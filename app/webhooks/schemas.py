from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import AnyHttpUrl, BaseModel, Field

from app.inputs import InputModel

PING = "ping"
"""The event of a test notification: sent on request only, never subscribed to."""


class EventType(StrEnum):
    follow_up_opened = "follow_up.opened"
    follow_up_status_changed = "follow_up.status_changed"
    rating_negative = "rating.negative"
    moment_alert = "moment.alert"
    follow_up_update_overdue = "follow_up.update_overdue"


class DeliveryState(StrEnum):
    pending = "pending"
    delivered = "delivered"
    failed = "failed"


Events = list[EventType]


class WebhookCreate(InputModel):
    url: AnyHttpUrl = Field(description="Where notifications are POSTed.")
    events: Events = Field(
        min_length=1, max_length=len(EventType), description="Event types to receive."
    )


class WebhookUpdate(InputModel):
    url: AnyHttpUrl | None = Field(
        default=None,
        description="Where notifications are POSTed from now on, checked like at registration.",
    )
    events: Events | None = Field(
        default=None,
        min_length=1,
        max_length=len(EventType),
        description="Event types to receive from now on.",
    )
    paused: bool | None = Field(
        default=None,
        description="`true`: nothing is sent; events that happen meanwhile are not queued, "
        "and deliveries already queued wait. `false`: sending resumes.",
    )


class SecretRotation(InputModel):
    overlap_hours: float = Field(
        default=24,
        ge=0,
        le=24 * 30,
        description="How long the replaced secret keeps signing beside the new one, "
        "in hours (0: it stops at once).",
    )


class DeliveryRead(BaseModel):
    id: int = Field(description="Delivery number.")
    delivery_id: str = Field(
        description="Sent as the `webhook-id` header (and the deprecated `X-Mot-Delivery`), "
        "the same on every attempt and redelivery: delivery is at least once, and receivers "
        "drop repeats on this id."
    )
    event: EventType | Literal["ping"] = Field(description="Event type.")
    state: DeliveryState = Field(
        description="`pending` (queued or being retried), `delivered`, or `failed` (gave up; "
        "it can be redelivered)."
    )
    attempts: int = Field(description="Attempts made.")
    last_status: int | None = Field(description="HTTP status of the last attempt.")
    last_error: str | None = Field(description="Error of the last attempt, if any.")
    next_attempt_at: datetime = Field(description="When the next attempt is due.")
    created_at: datetime = Field(description="When it was queued.")
    delivered_at: datetime | None = Field(description="When it was delivered.")


class DeliveryPage(BaseModel):
    data: list[DeliveryRead] = Field(description="Deliveries, newest first.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null: last.")


class WebhookRead(BaseModel):
    id: int = Field(description="Webhook number.")
    url: str = Field(description="Where notifications are POSTed.")
    events: Events = Field(description="Event types it receives.")
    paused: bool = Field(description="Paused: nothing is sent until it is resumed.")
    active: bool = Field(description="Not paused (the opposite of `paused`).")
    previous_secret_expires_at: datetime | None = Field(
        description="Until when the secret replaced by the last rotation still signs beside "
        "the current one; null when only the current one signs."
    )
    created_at: datetime = Field(description="When it was registered.")


class WebhookCreated(WebhookRead):
    secret: str = Field(
        description="The signing secret, `whsec_<base64 key>` as Standard Webhooks "
        "verifiers take it; shown only once."
    )


class WebhookDetail(WebhookRead):
    deliveries: list[DeliveryRead] = Field(description="The latest deliveries, newest first.")
