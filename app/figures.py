"""What every figure served under `/v1/insights` shares, whichever domain computes it: the
window of time it is read over (the `from` and `to` query, their defaults and limits) and
the router it is served by.

Insights, follow-ups and surveys all serve figures; this module sits below the three so
that none of them reaches into another for it.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, params
from pydantic import BaseModel, ConfigDict, Field

from app.db import utcnow
from app.errors import ErrorDetail, ValidationFailed, error_responses
from app.inputs import Timestamp

DEFAULT_WINDOW = timedelta(days=30)
MAX_WINDOW = timedelta(days=3 * 366)


class WindowRead(BaseModel):
    from_: datetime = Field(alias="from", description="Start of the window (inclusive, UTC).")
    to: datetime = Field(description="End of the window (exclusive, UTC).")
    previous_from: datetime = Field(
        description="Start of the previous window of equal length, used for trends."
    )
    previous_to: datetime = Field(description="End of the previous window (= `from`).")

    model_config = ConfigDict(frozen=True, populate_by_name=True, serialize_by_alias=True)


@dataclass(frozen=True, slots=True)
class Window:
    start: datetime
    end: datetime

    @property
    def whole_days(self) -> bool:
        """Both bounds fall on a UTC midnight: the window (and the one before it) is read
        from the counts alone, never from the touchpoints."""
        midnight = time(0)
        return all(bound.astimezone(UTC).time() == midnight for bound in (self.start, self.end))

    @property
    def previous(self) -> "Window":
        return Window(self.start - (self.end - self.start), self.start)

    def read(self) -> WindowRead:
        previous = self.previous
        return WindowRead.model_validate(
            {
                "from": self.start,
                "to": self.end,
                "previous_from": previous.start,
                "previous_to": previous.end,
            }
        )


def window(start: datetime | None, end: datetime | None, *, now: datetime) -> Window:
    """The window asked for: `to` defaults to the end of today (the next UTC midnight), `from`
    to 30 days before `to`.

    The default is whole UTC days, so that it is answered from the counts alone and repeated
    calls give the same figures until new data arrives.
    """
    end = end or datetime.combine(now.astimezone(UTC).date() + timedelta(days=1), time(0), UTC)
    start = start or end - DEFAULT_WINDOW
    if start >= end:
        raise ValidationFailed(
            "The window is empty: `from` must be before `to`.",
            details=[ErrorDetail(field="query.from", message="not before `to`", type="window")],
        )
    if end - start > MAX_WINDOW:
        raise ValidationFailed(
            f"The window is longer than {MAX_WINDOW.days} days.",
            details=[
                ErrorDetail(
                    field="query.from",
                    message=f"more than {MAX_WINDOW.days} days before `to`",
                    type="window",
                )
            ],
        )
    return Window(start, end)


FromQuery = Annotated[
    Timestamp | None,
    Query(
        alias="from",
        description="Window start, inclusive (RFC 3339 with an offset). Default: 30 days "
        "before `to`.",
    ),
]
ToQuery = Annotated[
    Timestamp | None,
    Query(
        alias="to",
        description="Window end, exclusive (RFC 3339 with an offset). Default: the coming UTC "
        "midnight, so that the default window is whole UTC days ending with today.",
    ),
]


def _window(start: FromQuery = None, end: ToQuery = None) -> Window:
    return window(start, end, now=utcnow())


WindowDep = Annotated[Window, Depends(_window)]


def figures_router(*, guard: params.Depends) -> APIRouter:
    """A router for the figures a domain serves under `/v1/insights` (follow-ups, surveys):
    the path and tag of the insights. `guard` is the read-scope check of the API keys,
    `requires(Scope.read)`, passed in because this module knows no domain."""
    return APIRouter(
        prefix="/v1/insights",
        tags=["insights"],
        responses=error_responses(401, 403),
        dependencies=[guard],
    )


def json_response(figures: BaseModel) -> Response:
    """Figures as the JSON FastAPI would make of them, serialised once: handing the model
    back to the route would have it validated again against the response model first,
    which costs more than serialising a ranking of hundreds of moments."""
    return Response(content=figures.model_dump_json(by_alias=True), media_type="application/json")
