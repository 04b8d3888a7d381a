from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from app.followups.workflow import FollowUpReason, FollowUpStatus
from app.inputs import InputModel, Timestamp

Actor = Field(min_length=1, max_length=100, description="Who acts: a person or a system.")


class FollowUpCreate(InputModel):
    touchpoint: str = Field(min_length=1, max_length=64, description="Touchpoint id.")
    actor: str = Actor
    note: str | None = Field(default=None, max_length=4000, description="Internal note.")


class FollowUpEventCreate(InputModel):
    status: FollowUpStatus = Field(description="Status to move to.")
    actor: str = Actor
    note: str | None = Field(
        default=None, max_length=4000, description="Internal note; never shown to the client."
    )
    client_message: str | None = Field(
        default=None, max_length=2000, description="Message shown to the client."
    )
    next_update_at: Timestamp | None = Field(
        default=None, description="When the client is promised the next update."
    )
    root_cause: str | None = Field(
        default=None,
        max_length=4000,
        description="Root cause; accepted only when moving to resolved or closed.",
    )


class FollowUpEventRead(BaseModel):
    status: FollowUpStatus = Field(description="Status the follow-up moved to.")
    actor: str = Field(description="Who moved it.")
    at: datetime = Field(description="When.")
    note: str | None = Field(description="Internal note.")
    client_message: str | None = Field(description="Message shown to the client.")
    next_update_at: datetime | None = Field(
        default=None, description="The next update this step promised the client, if any."
    )


class FollowUpRead(BaseModel):
    id: int = Field(description="Follow-up number.")
    touchpoint: str = Field(description="Touchpoint id.")
    moment: str = Field(description="Moment key.")
    team: str | None = Field(description="Team that served the client.")
    reason: FollowUpReason = Field(description="What opened it.")
    status: FollowUpStatus = Field(description="Current status.")
    opened_at: datetime = Field(description="When it was opened.")
    acknowledged_at: datetime | None = Field(description="First acknowledgement.")
    resolved_at: datetime | None = Field(description="Latest resolution.")
    closed_at: datetime | None = Field(description="Latest closing.")
    next_update_at: datetime | None = Field(description="Next update promised to the client.")
    update_overdue: bool = Field(
        description="The promised update is past due and the client has had no news since "
        "the promise (news: a message for the client, or the problem resolved or closed)."
    )
    last_update_at: datetime | None = Field(
        description="When the client last had news; null if never."
    )
    acknowledge_due_at: datetime = Field(
        description="Acknowledge by then (target MOT_ACKNOWLEDGE_WITHIN_HOURS working hours)."
    )
    resolve_due_at: datetime = Field(
        description="Resolve by then (target MOT_RESOLVE_WITHIN_HOURS working hours)."
    )
    overdue: bool = Field(description="Not acknowledged, or not resolved, by its due time.")
    root_cause: str | None = Field(description="Root cause, set once resolved.")
    allowed_transitions: list[FollowUpStatus] = Field(description="Statuses it may move to next.")


class FollowUpDetail(FollowUpRead):
    events: list[FollowUpEventRead] = Field(description="Every step, oldest first.")
    status_url: str | None = Field(
        default=None,
        description="Signed link to the page where the client follows the status "
        "(messages for the client only; nothing internal).",
    )


class FollowUpSummary(BaseModel):
    id: int = Field(description="Follow-up number.")
    status: FollowUpStatus = Field(description="Current status.")
    overdue: bool = Field(description="Not acknowledged, or not resolved, by its due time.")


class FollowUpPage(BaseModel):
    data: list[FollowUpRead] = Field(description="Follow-ups, newest first.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null: last.")


class Durations(BaseModel):
    median: float | None = Field(description="Median, in hours; null when none.")
    p90: float | None = Field(description="90th percentile, in hours; null when none.")


class PromiseFigures(BaseModel):
    made: int = Field(description="Updates promised to clients (`next_update_at` set on a step).")
    kept: int = Field(description="Promises followed by news to the client by the promised time.")
    missed: int = Field(
        description="Promises whose news came late, or has not come and is past due."
    )
    pending: int = Field(description="Promises not due yet, with no news since.")
    kept_share: float | None = Field(
        description="Kept among the promises decided (kept or missed); null if none is."
    )
    updates_overdue: int = Field(
        description="Follow-ups whose promised update is past due now, with no news since."
    )
    wait_for_news_hours: Durations = Field(
        description="Calendar hours from a promise to the news that followed it; a client "
        "still waiting past the promised time counts with the wait so far (a lower bound)."
    )


class FollowUpFigures(BaseModel):
    key: str | None = Field(description="Moment key or team; null for all follow-ups.")
    follow_ups: int = Field(description="Follow-ups opened in the window.")
    unsettled: int = Field(description="Not yet resolved or closed.")
    overdue: int = Field(description="Overdue now.")
    acknowledged: int = Field(description="Acknowledged at least once.")
    resolved: int = Field(description="Resolved at least once.")
    time_to_acknowledge: Durations = Field(
        description="Opening to first acknowledgement, in working hours."
    )
    time_to_resolve: Durations = Field(
        description="Opening to latest resolution, in working hours."
    )
    acknowledged_within_target: float | None = Field(
        description="Share of the follow-ups acknowledged by their due time (null if none due "
        "yet); an unacknowledged follow-up past its due time counts as missed."
    )
    resolved_within_target: float | None = Field(
        description="Share resolved by their due time, the same way."
    )
    promises: PromiseFigures = Field(description="Updates promised to clients, and kept.")


class FollowUpInsights(BaseModel):
    from_: datetime = Field(alias="from", description="Window start (opened at or after).")
    to: datetime = Field(description="Window end (opened before).")
    acknowledge_target_hours: float = Field(description="Target, in working hours.")
    resolve_target_hours: float = Field(description="Target, in working hours.")
    total: FollowUpFigures = Field(description="All follow-ups of the window.")
    by_moment: list[FollowUpFigures] = Field(description="Per moment, most follow-ups first.")
    by_team: list[FollowUpFigures] = Field(description="Per team, most follow-ups first.")

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)
