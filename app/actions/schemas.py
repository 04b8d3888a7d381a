from datetime import datetime, timedelta
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator
from pydantic_core import PydanticCustomError

from app.db import utcnow
from app.inputs import InputModel, Timestamp
from app.insights.effects import Unavailable, Verdict
from app.insights.schemas import IntervalRead

DONE_AT_TOLERANCE = timedelta(minutes=1)
"""How far ahead of the server clock `done_at` may lie: clocks drift, plans are no actions."""

Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
FactorKey = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Description = Annotated[str, StringConstraints(max_length=4000)]


class ActionCreate(InputModel):
    title: Title = Field(description="What was changed, 1-200 characters.")
    done_at: Timestamp = Field(
        description="When the change took effect (RFC 3339 with an offset); at most a minute "
        "ahead of the server clock. Its UTC day separates the before and after windows."
    )
    description: Description | None = Field(default=None, description="More about the change.")
    factor: FactorKey | None = Field(
        default=None,
        description="Key of the factor the change targets (what went wrong), at most 100 "
        "characters; free text.",
    )

    @field_validator("done_at")
    @classmethod
    def _not_ahead(cls, value: datetime) -> datetime:
        if value > utcnow() + DONE_AT_TOLERANCE:
            raise PydanticCustomError(
                "datetime_future", "lies in the future (more than a minute ahead of the server)"
            )
        return value


class Schema(BaseModel):
    model_config = ConfigDict(frozen=True)


class PeriodRead(Schema):
    model_config = ConfigDict(frozen=True, populate_by_name=True, serialize_by_alias=True)

    from_: datetime = Field(alias="from", description="Start, inclusive (a UTC midnight).")
    to: datetime = Field(description="End, exclusive (a UTC midnight).")


class WindowsRead(Schema):
    before: PeriodRead = Field(description="The whole UTC days before the day of the action.")
    after: PeriodRead = Field(
        description="As many days, from the end of the washout after the day of the action."
    )


class RateRead(Schema):
    responses: int = Field(description="Rated responses on the scale family compared.")
    negatives: int = Field(description="Negative ones among them.")
    negative_rate: float | None = Field(description="negatives / responses; null without any.")
    posterior_mean: float = Field(
        description="Mean of the Jeffreys posterior Beta(negatives + 1/2, responses - "
        "negatives + 1/2)."
    )
    interval: IntervalRead = Field(description="90% credible interval of the negative rate.")


class OthersRead(Schema):
    moments: int = Field(
        description="Other moments of the same scale family answered in both windows, pooled."
    )
    before: RateRead = Field(description="Their pooled negative rate before.")
    after: RateRead = Field(description="Their pooled negative rate after.")
    change: float = Field(description="Their change, after - before.")
    interval: IntervalRead = Field(description="90% credible interval of their change.")


class EffectRead(Schema):
    family: str = Field(
        description="The scale family compared: the one of most of the moment's answers "
        "(satisfaction, nps or effort); only its answers are counted, the moment's and the "
        "others' alike."
    )
    before: RateRead = Field(description="The moment's negative rate in the before window.")
    after: RateRead = Field(description="The moment's negative rate in the after window.")
    change: float = Field(
        description="after - before, as a fraction (posterior means); negative when the "
        "negative rate fell."
    )
    interval: IntervalRead = Field(description="90% credible interval of the change.")
    prob_improved: float = Field(description="Posterior probability that the rate fell.")
    others: OthersRead | None = Field(
        description="The other moments of the family over the same windows; null when none "
        "had enough responses in both."
    )
    net_change: float | None = Field(
        description="Difference in differences: the change minus the others' change; "
        "negative when the moment improved more than the others. Null without others."
    )
    net_interval: IntervalRead | None = Field(description="90% credible interval of net_change.")
    prob_improved_net: float | None = Field(
        description="Posterior probability that the moment improved more than the others."
    )
    verdict: Verdict = Field(
        description="`improved` when the 90% interval of the net change (of the change, "
        "without others) lies below 0, `worsened` when above, else `unclear`."
    )


class EffectUnavailableRead(Schema):
    reason: Unavailable = Field(
        description="`after_window_incomplete`: the after window has not ended yet; "
        "`too_few_responses`: a window holds fewer responses than the minimum."
    )
    message: str = Field(description="The reason in words.")
    available_at: datetime | None = Field(
        description="When the after window ends and the effect can be measured (UTC); null "
        "unless the window is incomplete."
    )


class ActionRead(Schema):
    id: int = Field(description="The action's number.")
    moment: str = Field(description="Key of the moment changed.")
    title: str = Field(description="What was changed.")
    description: str | None = Field(description="More about the change.")
    factor: str | None = Field(description="Key of the factor the change targets.")
    done_at: datetime = Field(description="When the change took effect (UTC).")
    created_by: str = Field(description="Name of the API key that recorded the action.")
    created_at: datetime = Field(description="When it was recorded (UTC).")
    windows: WindowsRead = Field(description="The before and after windows compared.")
    effect: EffectRead | None = Field(
        description="The measured effect; null while it cannot be measured "
        "(see `effect_unavailable`)."
    )
    effect_unavailable: EffectUnavailableRead | None = Field(
        description="Why `effect` is null; null when there is an effect."
    )


class EffectMethodRead(Schema):
    washout_days: int = Field(description="Whole days skipped after the day of the action.")
    window_days: int = Field(description="Length of each window, in whole UTC days.")
    prior: str = Field(description="Prior of each window's negative rate.")
    credible_level: float = Field(description="Level of the credible intervals.")
    draws: int = Field(description="Monte Carlo draws of each posterior.")
    seed: int = Field(description="Seed of the draws: the same counts give the same figures.")
    min_responses: int = Field(description="Fewest responses in each window for an effect.")


class ActionPage(Schema):
    data: list[ActionRead] = Field(description="Actions, the most recent `done_at` first.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null: last.")
    method: EffectMethodRead = Field(description="How the effects were measured.")
