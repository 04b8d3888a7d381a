from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field


class AuditAction(StrEnum):
    erasure = "erasure"
    purge = "purge"


class RemovedCounts(BaseModel):
    """How many rows of each kind an erasure or a purge removed (or, dry, would remove)."""

    touchpoints: int = Field(default=0, description="Touchpoints deleted.")
    comments: int = Field(default=0, description="Of those, touchpoints that held a comment.")
    rating_history: int = Field(default=0, description="Replaced ratings deleted.")
    surveys: int = Field(default=0, description="Survey records (issues, opens, answers).")
    follow_ups: int = Field(default=0, description="Follow-ups deleted, whatever their status.")
    follow_up_events: int = Field(default=0, description="Steps of those follow-ups deleted.")
    webhook_deliveries: int = Field(
        default=0, description="Webhook notifications not yet sent, deleted: never sent."
    )
    webhook_payloads_scrubbed: int = Field(
        default=0,
        description="Webhook notifications already sent (or given up), whose payload was "
        'replaced by `{"erased": true}`; the record of the delivery stays.',
    )

    def plus(self, other: "RemovedCounts") -> "RemovedCounts":
        """The sum of two counts, kind by kind."""
        return RemovedCounts(
            **{
                name: getattr(self, name) + getattr(other, name)
                for name in RemovedCounts.model_fields
            }
        )


class ErasureRead(BaseModel):
    erased: RemovedCounts = Field(description="What was erased, per kind; zeros if nothing.")
    client_hash: str = Field(
        description="The keyed hash the audit log knows the client by (hex HMAC-SHA256)."
    )
    audit_entry: int = Field(description="Number of the audit entry recording the erasure.")


class AuditEntryRead(BaseModel):
    id: int = Field(description="Entry number; entries are listed newest first.")
    at: datetime = Field(description="When the erasure or purge was done.")
    action: AuditAction = Field(
        description="`erasure` (one client, on request) or `purge` (touchpoints past the "
        "retention period)."
    )
    client_hash: str | None = Field(
        description="Erasure: hex HMAC-SHA256 of the client ref under the service secret; "
        "the ref itself is never stored. Null for a purge."
    )
    key_id: int | None = Field(description="Number of the API key that asked; null: command.")
    key_prefix: str | None = Field(description="Prefix of that key, to recognise it.")
    occurred_before: datetime | None = Field(
        description="Purge: touchpoints that occurred before this time were purged."
    )
    counts: RemovedCounts = Field(description="What was removed, per kind.")


class AuditPage(BaseModel):
    data: list[AuditEntryRead] = Field(description="Audit entries, newest first.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null: last.")
