from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, StrictInt

from app.inputs import InputModel, IntegralFloats
from app.scales import ScaleName
from app.surveys.tokens import Language
from app.touchpoints.schemas import TouchpointId

ExpiresInDays = Annotated[StrictInt, Field(ge=1, le=365), IntegralFloats]


class SurveyCreate(InputModel):
    scale: ScaleName = Field(description="Scale the client answers on.")
    expires_in_days: ExpiresInDays | None = Field(
        default=None, description="Days the links stay valid; default MOT_SURVEY_LINK_DAYS."
    )
    language: Language = Field(default=Language.en, description="Language of the pages.")


class SurveyBatchCreate(SurveyCreate):
    touchpoints: list[TouchpointId] = Field(
        min_length=1, max_length=1000, description="Ids of the touchpoints to survey."
    )


class SurveyLink(BaseModel):
    value: int = Field(description="The answer this link records in one click.")
    url: str = Field(description="Opening it records the answer and thanks the client.")


class SurveyLinks(BaseModel):
    touchpoint: str = Field(description="Touchpoint id.")
    scale: ScaleName = Field(description="Scale of the answers.")
    language: Language = Field(description="Language of the pages.")
    expires_at: datetime = Field(description="When the links stop working.")
    page_url: str = Field(description="A page with every answer, for clients to choose.")
    links: list[SurveyLink] = Field(description="One link per value, for one-click buttons.")


class SurveyBatchError(BaseModel):
    touchpoint: str = Field(description="The id that got no links.")
    code: str = Field(description="Why: `not_found`.")
    message: str = Field(description="Human-readable reason.")


class SurveyBatchResult(BaseModel):
    data: list[SurveyLinks] = Field(description="Links per touchpoint, in the order asked.")
    errors: list[SurveyBatchError] = Field(description="Ids that got no links.")


class SurveyReach(BaseModel):
    moment: str | None = Field(description="Moment key; null for all moments.")
    issued: int = Field(description="Touchpoints surveyed (links issued) in the window.")
    opened: int = Field(description="Of those, opened by the client at least once.")
    answered: int = Field(description="Of those, answered at least once.")
    open_rate: float | None = Field(description="opened / issued.")
    answer_rate: float | None = Field(description="answered / issued: the survey response rate.")


class SurveyFigures(BaseModel):
    total: SurveyReach = Field(description="All moments.")
    by_moment: list[SurveyReach] = Field(description="Per moment, most issued first.")
