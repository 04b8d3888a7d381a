from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from app.inputs import InputModel


class Scope(StrEnum):
    """What a key may do. `admin` includes every other scope."""

    ingest = "ingest"
    read = "read"
    manage = "manage"
    admin = "admin"


class ApiKeyCreate(InputModel):
    name: str = Field(
        min_length=1, max_length=100, description="Who or what uses the key, e.g. `service-desk`."
    )
    scopes: list[Scope] = Field(
        min_length=1,
        max_length=4,
        description="`ingest` (post touchpoints and ratings), `read` (catalog, insights, "
        "lists), `manage` (moments, follow-ups, webhooks), `admin` (keys, erasure; includes "
        "the others).",
    )


class ApiKeyRead(BaseModel):
    id: int = Field(description="Key number.")
    name: str = Field(description="Who or what uses the key.")
    prefix: str = Field(description="First characters of the key, to recognise it.")
    scopes: list[Scope] = Field(description="What the key may do.")
    created_at: datetime = Field(description="When the key was created.")
    last_used_at: datetime | None = Field(
        description="When the key was last used (updated at most once a minute)."
    )
    revoked_at: datetime | None = Field(description="When the key was revoked, if it was.")


class ApiKeyCreated(ApiKeyRead):
    key: str = Field(description="The key itself. Shown only this once: store it now.")
