from datetime import datetime
from enum import StrEnum

from pydantic import AnyHttpUrl, BaseModel, Field

from app.inputs import InputModel


class EventType(StrEnum):
    follow_up_opened = "follow_up.opened"
    follow_up_status_changed = "follow_up.status_changed"
    rating_negative = "rating.negative"
    moment_alert = "moment.alert"
    follow_up_update_overdue = "follow_up.update_overdue"


class WebhookCreate(InputModel):
    url: AnyHttpUrl = Field(description="Where notifications are POSTed.")
    events: list[EventType] = Field(
        min_length=1, max_length=len(EventType), description="Event types to receive."
    )


class DeliveryRead(BaseModel):
    id: int = Field(description="Delivery number.")
    delivery_id: str = Field(
        description="Sent as the `X-Mot-Delivery` header, the same on every attempt: "
        "delivery is at least once, and receivers drop repeats on this id."
    )
    event: EventType = Field(description="Event type.")
    state: str = Field(description="`pending`, `delivered` or `failed` (gave up).")
    attempts: int = Field(description="Attempts made.")
    last_status: int | None = Field(description="HTTP status of the last attempt.")
    last_error: str | None = Field(description="Error of the last attempt, if any.")
    next_attempt_at: datetime = Field(description="When the next attempt is due.")
    delivered_at: datetime | None = Field(description="When it was delivered.")


class WebhookRead(BaseModel):
    id: int = Field(description="Webhook number.")
    url: str = Field(description="Where notifications are POSTed.")
    events: list[EventType] = Field(description="Event types it receives.")
    active: bool = Field(description="Receives notifications.")
    created_at: datetime = Field(description="When it was registered.")


class WebhookCreated(WebhookRead):
    secret: str = Field(
        description="Key of the `X-Mot-Signature` HMAC-SHA256 header; shown only once."
    )


class WebhookDetail(WebhookRead):
    deliveries: list[DeliveryRead] = Field(description="The latest deliveries, newest first.")
