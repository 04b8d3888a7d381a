from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    StrictBool,
    StrictFloat,
    StringConstraints,
    field_validator,
)
from pydantic.json_schema import JsonSchemaValue, SkipJsonSchema
from pydantic_core import CoreSchema, PydanticCustomError

from app.inputs import InputModel
from app.moments.factors import MAX_PER_SENTIMENT
from app.scales import Sentiment


class Channel(StrEnum):
    call = "call"
    email = "email"
    portal = "portal"
    chat = "chat"
    visit = "visit"
    other = "other"


MOMENT_KEY_PATTERN = r"^[a-z0-9]+(?:[.-][a-z0-9]+)*$"

MomentKey = Annotated[
    str,
    StringConstraints(max_length=100, pattern=MOMENT_KEY_PATTERN),
    Field(
        description="Lower-case slug: letters, digits, dots and dashes, at most 100 characters, "
        "e.g. `service-desk.first-voice`.",
        examples=["service-desk.first-voice"],
    ),
]
NOT_BLANK = r"^[^\x00]*[^\s\x00][^\x00]*$"


class _PublishedNotBlank:
    """Publishes that a name must hold something besides white space (and no NUL), so that
    generated clients and fuzzers refuse what validation refuses: a blank name is stripped
    to nothing, then too short. Validation itself stays with the constraints, so that a NUL
    is still named as one."""

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        published = handler(schema)
        published["pattern"] = NOT_BLANK
        return published


TeamName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    _PublishedNotBlank(),
]
ShortText = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    _PublishedNotBlank(),
]
StageName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=50),
    _PublishedNotBlank(),
]
Description = Annotated[str, StringConstraints(max_length=4000)]
TargetRate = Annotated[StrictFloat, Field(ge=0, le=1, allow_inf_nan=False)]


FACTOR_KEY_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
FactorKey = Annotated[
    str,
    StringConstraints(min_length=1, max_length=40, pattern=FACTOR_KEY_PATTERN),
    Field(
        description="Lower-case slug of letters, digits and dashes, at most 40 characters.",
        examples=["waited-too-long"],
    ),
]
FactorLabelText = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    _PublishedNotBlank(),
]


class FactorLabel(InputModel):
    en: FactorLabelText = Field(description="The label in English.")
    ru: FactorLabelText | None = Field(
        default=None, description="The label in Russian; the English one when absent."
    )


class FactorIn(InputModel):
    key: FactorKey
    sentiment: Sentiment = Field(description="The answers this factor is offered with.")
    label: FactorLabel = Field(description="What the client reads.")


def _distinct_keys(factors: list[FactorIn]) -> list[FactorIn]:
    # Refusals on meaning a JSON Schema cannot state (unique by one property of the items,
    # a count per sentiment): named by their own error types.
    seen: set[str] = set()
    for factor in factors:
        if factor.key in seen:
            raise PydanticCustomError(
                "duplicate_factor", "factor '{key}' is listed twice", {"key": factor.key}
            )
        seen.add(factor.key)
    for sentiment in Sentiment:
        if sum(f.sentiment is sentiment for f in factors) > MAX_PER_SENTIMENT:
            raise PydanticCustomError(
                "too_many_factors",
                "at most {limit} {sentiment} factors",
                {"limit": MAX_PER_SENTIMENT, "sentiment": sentiment.value},
            )
    return factors


FactorList = Annotated[
    list[FactorIn],
    Field(
        max_length=3 * MAX_PER_SENTIMENT,
        description=f"The factors clients may pick, at most {MAX_PER_SENTIMENT} per "
        "sentiment, keys unique. `null`: the defaults of the moment's channel; `[]`: none.",
    ),
    AfterValidator(_distinct_keys),
]


class FactorLabelRead(BaseModel):
    en: str = Field(description="The label in English.")
    ru: str = Field(description="The label in Russian.")


class FactorRead(BaseModel):
    key: str = Field(description="What answers carry and counts are kept by.")
    sentiment: Sentiment = Field(description="The answers this factor is offered with.")
    label: FactorLabelRead = Field(description="What the client reads.")


class MomentCreate(InputModel):
    key: MomentKey
    name: ShortText | None = Field(default=None, description="Display name; defaults to the key.")
    description: Description | None = Field(default=None, description="What happens here.")
    channel: Channel = Field(default=Channel.other, description="The usual channel of the moment.")
    stage: StageName | None = Field(
        default=None, description="Journey stage, e.g. `request` or `resolution`."
    )
    owner_team: TeamName | None = Field(default=None, description="Team answerable for it.")
    target_negative_rate: TargetRate | None = Field(
        default=None,
        description="Acceptable share of negative ratings (0..1). Omitted: the service default; "
        "`null`: no target, rankings compare with the baseline.",
    )
    auto_follow_up: StrictBool = Field(
        default=True, description="Open a follow-up on each negative rating or complaint."
    )
    factors: FactorList | None = None


def _without_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


_NOT_NULL: Any = Field(default=None, json_schema_extra=_without_default)


class MomentUpdate(InputModel):
    """Fields to change; fields left out stay as they are. `null` clears an optional field
    (description, stage, owner team, target; factors go back to the channel's defaults);
    the others may be left out but not cleared."""

    # Left out, these are None here; the schema offers neither null (`_not_null` refuses
    # it) nor a default of null.
    name: ShortText | SkipJsonSchema[None] = _NOT_NULL
    description: Description | None = None
    channel: Channel | SkipJsonSchema[None] = _NOT_NULL
    stage: StageName | None = None
    owner_team: TeamName | None = None
    target_negative_rate: TargetRate | None = None
    auto_follow_up: StrictBool | SkipJsonSchema[None] = _NOT_NULL
    archived: StrictBool | SkipJsonSchema[None] = _NOT_NULL
    factors: FactorList | None = None

    @field_validator("name", "channel", "auto_follow_up", "archived", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("may be omitted but not null")
        return value


class MomentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    key: str = Field(description="The moment's unique key.")
    name: str = Field(description="Display name.")
    description: str | None = Field(description="What happens at this moment.")
    channel: Channel = Field(description="The usual channel of the moment.")
    stage: str | None = Field(description="Journey stage.")
    owner_team: str | None = Field(description="Team answerable for the moment.")
    target_negative_rate: float | None = Field(
        description="Acceptable share of negative ratings; null: compared with the baseline."
    )
    auto_follow_up: bool = Field(description="Whether bad experiences open follow-ups.")
    factors: list[FactorRead] = Field(
        validation_alias="offered_factors",
        description="The factors clients may pick with an answer, per sentiment.",
    )
    factors_default: bool = Field(
        validation_alias="offers_default_factors",
        description="true: the moment lists no factors of its own and offers its channel's "
        "defaults.",
    )
    archived: bool = Field(description="Archived moments still accept touchpoints.")
    auto_registered: bool = Field(
        description="Registered automatically because a touchpoint named it."
    )
    created_at: datetime = Field(description="When the moment was catalogued (UTC).")
    updated_at: datetime = Field(description="Last change (UTC).")


class MomentPage(BaseModel):
    data: list[MomentRead] = Field(description="Moments in key order.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null: last.")
