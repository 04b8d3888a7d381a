"""The hotspots page (`/ui/hotspots`): moments by team or channel, each cell coloured and
labelled by its excess bad experiences, from the same answer as `/v1/insights/hotspots`.

The page only places and rounds the answer's figures: the colour band of a cell is its
excess against the largest excess of the matrix.
"""

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import ReplicaSessionDep
from app.errors import ErrorDetail, ValidationFailed
from app.figures import json_response
from app.insights import service as insights_service
from app.insights.schemas import HotspotCell, HotspotDimension, HotspotsRead
from app.moments.schemas import Channel
from app.ui.access import ViewerDep
from app.ui.router import DAYS, View, ViewDep, render, tidied
from app.ui.views import percent

router = APIRouter(prefix="/ui", include_in_schema=False)

ByQuery = Annotated[str | None, Query(max_length=10)]
BANDS = 4


def excess_text(excess: float) -> str:
    """Excess clients with one decimal and a sign: `+12.3`, `-0.4`, `0.0`."""
    rounded = round(excess, 1)
    return "0.0" if rounded == 0 else f"{rounded:+.1f}"


def band(excess: float, largest: float) -> str:
    """The colour class of a cell: `hot-1`..`hot-4` by its share of the largest excess,
    `cool` at or under none."""
    if excess < 0.05 or largest <= 0:
        return "cool"
    return f"hot-{min(BANDS, 1 + int(BANDS * excess / largest * 0.999))}"


@dataclass(frozen=True, slots=True)
class Cell:
    member: str
    excess: str
    css: str
    strongest: bool
    title: str


@dataclass(frozen=True, slots=True)
class Row:
    rank: int
    moment: str
    name: str
    rate: str
    reference: str
    cells: list[Cell | None]


def matrix(result: HotspotsRead) -> list[Row]:
    """The answer's rows with one cell per column, None where the member has no touchpoints."""
    largest = max((c.excess for row in result.data for c in row.cells), default=0.0)

    def cell(found: HotspotCell) -> Cell:
        return Cell(
            member=found.member,
            excess=excess_text(found.excess),
            css=band(found.excess, largest),
            strongest=found.strongest,
            title=f"{found.responses} responses, {percent(found.negative_rate)} raw, "
            f"{percent(found.adjusted_negative_rate)} adjusted",
        )

    rows = []
    for row in result.data:
        by_member = {found.member: found for found in row.cells}
        rows.append(
            Row(
                rank=row.rank,
                moment=row.moment,
                name=row.name,
                rate=percent(row.adjusted_negative_rate),
                reference=percent(row.reference),
                cells=[
                    cell(by_member[member]) if member in by_member else None
                    for member in result.members
                ],
            )
        )
    return rows


def _by(text: str | None) -> HotspotDimension | ValidationFailed:
    if not text:
        return HotspotDimension.team
    if text not in HotspotDimension.__members__:
        message = "`by` is `team` or `channel`."
        return ValidationFailed(
            message, details=[ErrorDetail(field="query.by", message=message, type="value")]
        )
    return HotspotDimension(text)


async def _hotspots(session: AsyncSession, view: View, by: HotspotDimension) -> HotspotsRead:
    return await insights_service.hotspots(session, span=view.span, scope=view.scope, by=by)


@router.get("/hotspots")
async def hotspots_page(
    request: Request,
    session: ReplicaSessionDep,
    viewer: ViewerDep,
    view: ViewDep,
    by: ByQuery = None,
) -> Response:
    """Moments by team (or channel), as `/v1/insights/hotspots` gives them."""
    dimension = _by(by)
    form = {name: request.query_params.get(name, "") for name in ("days", "from", "to")}
    form |= {name: request.query_params.get(name, "") for name in ("channel", "team")}
    form |= {name: request.query_params.get(name, "") for name in ("stage", "moment", "by")}
    common: dict[str, Any] = {
        "viewer": viewer,
        "form": form,
        "channels": list(Channel),
        "days_choices": DAYS,
    }
    if isinstance(view, ValidationFailed) or isinstance(dimension, ValidationFailed):
        refusal = view if isinstance(view, ValidationFailed) else dimension
        assert isinstance(refusal, ValidationFailed)
        message = refusal.message
        return render(request, "hotspots.html", status_code=422, error=message, view=None, **common)
    if (tidy := tidied(request, f"/ui/hotspots?{view.query(by=dimension.value)}")) is not None:
        return tidy
    result = await _hotspots(session, view, dimension)
    return render(
        request,
        "hotspots.html",
        error=None,
        view=view,
        by=dimension.value,
        result=result,
        rows=matrix(result),
        **common,
    )


@router.get("/hotspots.json")
async def hotspots_json(
    session: ReplicaSessionDep, _viewer: ViewerDep, view: ViewDep, by: ByQuery = None
) -> Response:
    """The exact figures of the matrix, as the API gives them."""
    dimension = _by(by)
    if isinstance(view, ValidationFailed):
        raise view
    if isinstance(dimension, ValidationFailed):
        raise dimension
    result = await _hotspots(session, view, dimension)
    return json_response(result)
