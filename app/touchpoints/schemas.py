from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from app.errors import ErrorDetail
from app.followups.schemas import FollowUpSummary
from app.inputs import (
    BulkInputModel,
    FiniteNumbers,
    InputModel,
    IntegralFloats,
    PastTimestamp,
    WholeNumber,
)
from app.moments.factors import MAX_LOST_MINUTES, MAX_PICKED
from app.moments.schemas import Channel, FactorKey, MomentKey, TeamName
from app.scales import SCALES, ScaleName, Sentiment, normalise

COMMENT_MAX_LENGTH = 2000
ATTRIBUTES_MAX_KEYS = 20
ATTRIBUTE_VALUE_MAX_LENGTH = 256

TouchpointId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:@/+=-]+$"),
    Field(
        description="Caller-chosen idempotency key (letters, digits and `._:@/+=-`).",
        examples=["desk-call-20261123-0042"],
    ),
]
ClientRef = Annotated[
    str,
    StringConstraints(min_length=1, max_length=128, pattern=r"^[^\s\x00]+$"),
    Field(description="Opaque pseudonymous client id; never a name or e-mail address."),
]
AttributeKey = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
]
AttributeValue = Annotated[
    Annotated[str, StringConstraints(max_length=ATTRIBUTE_VALUE_MAX_LENGTH)]
    | int
    | float
    | bool
    | None,
    FiniteNumbers,
]


def _one_range_per_scale(schema: dict[str, Any]) -> None:
    # Each scale's range, in the schema: a value is valid or not by its scale. Each option
    # is the whole object with its scale fixed (client generators build a type from each
    # option alone) and requires its scale, so the options exclude each other by it.
    properties = schema["properties"]
    schema["oneOf"] = [
        {
            "type": "object",
            "properties": {
                **properties,
                "scale": {"const": scale.name.value},
                "value": {**properties["value"], "minimum": scale.low, "maximum": scale.high},
            },
            "required": schema["required"],
        }
        for scale in SCALES.values()
    ]


def _keys_by_pattern_only(schema: dict[str, Any]) -> None:
    # pydantic publishes the key pattern as `patternProperties`, which leaves keys of any
    # other form free to hold anything; the keys must match it, and every value is a scalar.
    for option in schema.get("anyOf", [schema]):
        patterns = option.pop("patternProperties", None)
        if option.get("type") == "object" and patterns:
            ((pattern, values),) = patterns.items()
            option.setdefault("propertyNames", {})["pattern"] = pattern
            option["additionalProperties"] = values


def _distinct(keys: list[str]) -> list[str]:
    if len(set(keys)) != len(keys):
        twice = next(key for key in keys if keys.count(key) > 1)
        raise ValueError(f"factor '{twice}' is given twice")
    return keys


def _absent(value: object) -> bool:
    # Left out of the content hash when absent: a retry of a post stored before answers
    # carried details still hashes as it did.
    return value is None


PickedFactors = Annotated[
    list[FactorKey],
    Field(max_length=MAX_PICKED, json_schema_extra={"uniqueItems": True}),
    AfterValidator(_distinct),
]
LostMinutes = Annotated[StrictInt, Field(ge=0, le=MAX_LOST_MINUTES), IntegralFloats]


class RatingIn(BulkInputModel):
    model_config = ConfigDict(json_schema_extra=_one_range_per_scale)

    scale: ScaleName = Field(description="Rating scale; see the scales table in the README.")
    value: WholeNumber = Field(description="The client's answer on that scale.")
    factors: PickedFactors | None = Field(
        default=None,
        exclude_if=_absent,
        description=f"Keys of the factors the client picked (at most {MAX_PICKED}, each "
        "once), from the moment's factors of this answer's sentiment "
        "(`GET /v1/moments/{key}`).",
    )
    lost_minutes: LostMinutes | None = Field(
        default=None,
        exclude_if=_absent,
        description=f"Minutes the experience cost the client, 0 to {MAX_LOST_MINUTES} "
        "(a working day).",
    )

    @field_validator("value")
    @classmethod
    def _within_scale(cls, value: int, info: ValidationInfo) -> int:
        scale = info.data.get("scale")
        if scale is not None:
            normalise(scale, value)  # raises ValueError naming the scale and allowed range
        return value


class TouchpointCreate(BulkInputModel):
    id: TouchpointId | None = Field(
        default=None, description="Idempotency key; generated when absent."
    )
    moment: MomentKey
    channel: Channel | None = Field(
        default=None, description="Channel of this contact; defaults to the moment's channel."
    )
    occurred_at: PastTimestamp | None = Field(
        default=None,
        description="When the contact happened, with a timezone offset; defaults to receipt.",
    )
    client_ref: ClientRef | None = None
    team: TeamName | None = Field(default=None, description="Team that served the client.")
    agent: TeamName | None = Field(default=None, description="Agent or bot that served them.")
    source: TeamName | None = Field(default=None, description="System that posted it.")
    rating: RatingIn | None = Field(default=None, description="The client's rating, if given.")
    comment: Annotated[str, StringConstraints(max_length=COMMENT_MAX_LENGTH)] | None = Field(
        default=None, description=f"The client's words, at most {COMMENT_MAX_LENGTH} characters."
    )
    complaint: StrictBool = Field(default=False, description="The client complained.")
    attributes: dict[AttributeKey, AttributeValue] | None = Field(
        default=None,
        max_length=ATTRIBUTES_MAX_KEYS,
        description=f"Small flat object (at most {ATTRIBUTES_MAX_KEYS} keys; values are "
        f"strings up to {ATTRIBUTE_VALUE_MAX_LENGTH} characters, numbers, booleans or null).",
        json_schema_extra=_keys_by_pattern_only,
    )

    @field_validator("attributes")
    @classmethod
    def _sorted_keys(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        # Key order carries no meaning; sorting makes equal objects serialise equally.
        return dict(sorted(value.items())) if value is not None else None


class TouchpointBatch(BaseModel):
    # Items stay raw here and are validated afterwards (as TouchpointCreate), so that one
    # bad item is reported on its own instead of failing the whole batch.
    model_config = ConfigDict(extra="forbid")

    touchpoints: list[Any] = Field(
        min_length=1,
        description="Touchpoints, each as in `POST /v1/touchpoints`.",
        json_schema_extra={"items": {"$ref": "#/components/schemas/TouchpointCreate"}},
    )


class RatingUpdate(RatingIn, InputModel):
    rated_at: PastTimestamp | None = Field(
        default=None, description="When the client answered; defaults to now."
    )


class RatingRead(BaseModel):
    scale: ScaleName = Field(description="Scale of the answer.")
    value: int = Field(description="The answer on its scale.")
    score: float = Field(description="The answer mapped onto 0..100.")
    sentiment: Sentiment = Field(description="negative, neutral or positive, by the scale's bands.")
    rated_at: datetime = Field(description="When the client answered (UTC).")
    factors: list[str] | None = Field(
        default=None, description="Keys of the factors picked with the answer; null: none."
    )
    lost_minutes: int | None = Field(
        default=None, description="Minutes the client said they lost; null: not said."
    )


class PastRating(RatingRead):
    replaced_at: datetime = Field(description="When a newer answer replaced it (UTC).")


class TouchpointRead(BaseModel):
    id: str = Field(description="Idempotency key, given or generated.")
    moment: str = Field(description="Key of the moment.")
    channel: Channel = Field(description="Channel of the contact.")
    occurred_at: datetime = Field(description="When the contact happened (UTC).")
    received_at: datetime = Field(description="When the service stored it (UTC).")
    client_ref: str | None = Field(description="Pseudonymous client id.")
    team: str | None = Field(description="Team that served the client.")
    agent: str | None = Field(description="Agent that served the client.")
    source: str | None = Field(description="System that posted it.")
    rating: RatingRead | None = Field(description="Latest rating, null while unrated.")
    comment: str | None = Field(description="The client's words.")
    complaint: bool = Field(description="The client complained.")
    attributes: dict[str, Any] | None = Field(description="Caller's extra attributes.")


class TouchpointDetail(TouchpointRead):
    rating_history: list[PastRating] = Field(
        description="Earlier ratings that later ones replaced, oldest first."
    )


class TouchpointPage(BaseModel):
    data: list[TouchpointRead] = Field(description="Touchpoints, newest first.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null: last.")


class JourneyStep(TouchpointRead):
    follow_up: FollowUpSummary | None = Field(
        description="The follow-up this touchpoint opened, if any: a client with an open "
        "problem must always know where it stands."
    )


class ClientJourney(BaseModel):
    client_ref: str = Field(description="The client.")
    data: list[JourneyStep] = Field(
        description="The client's touchpoints in the order they lived them, oldest first, "
        "with their ratings and follow-ups."
    )
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null: last.")


class ItemStatus(StrEnum):
    created = "created"
    duplicate = "duplicate"


class BatchItemResult(BaseModel):
    index: int = Field(description="Position of the item in the request.")
    id: str = Field(description="Idempotency key of the stored touchpoint.")
    status: ItemStatus = Field(description="created, or duplicate of an earlier identical post.")


class BatchItemError(BaseModel):
    index: int = Field(description="Position of the item in the request.")
    id: str | None = Field(description="The item's id, where it gave a valid one.")
    code: Literal["validation_failed", "conflict"] = Field(description="Why it was refused.")
    message: str = Field(description="Human-readable reason.")
    details: list[ErrorDetail] = Field(description="Fields at fault, relative to the item.")


class BatchResult(BaseModel):
    accepted: int = Field(description="Items stored by this request.")
    duplicates: int = Field(description="Items already stored with the same content (retries).")
    rejected: int = Field(description="Items refused; see `errors`.")
    items: list[BatchItemResult] = Field(description="Stored and duplicate items, by index.")
    errors: list[BatchItemError] = Field(description="Refused items, by index, with reasons.")
