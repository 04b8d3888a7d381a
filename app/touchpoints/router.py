from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response, status

from app.config import SettingsDep
from app.db import ReplicaSessionDep, SessionDep
from app.errors import Conflict, LimitExceeded, NotFound, ValidationFailed, error_responses
from app.followups import service as followups_service
from app.followups import targets as followups_targets
from app.idempotency.router import IdempotentRoute
from app.inputs import NulChecked, Timestamp, may_hold_nul
from app.keys.access import requires
from app.keys.schemas import Scope
from app.moments.schemas import Channel
from app.pagination import DEFAULT_PAGE_SIZE, CursorQuery, LimitQuery
from app.scales import Sentiment
from app.touchpoints import service
from app.touchpoints.schemas import (
    BatchResult,
    ClientJourney,
    ItemStatus,
    JourneyStep,
    RatingUpdate,
    TouchpointBatch,
    TouchpointCreate,
    TouchpointDetail,
    TouchpointPage,
)

router = APIRouter(
    prefix="/v1/touchpoints",
    tags=["touchpoints"],
    responses=error_responses(401, 403, 422),
    route_class=IdempotentRoute,
)
clients_router = APIRouter(
    prefix="/v1/clients",
    tags=["clients"],
    responses=error_responses(401, 403, 422),
    dependencies=[requires(Scope.read)],
)

IdPath = Annotated[str, Path(min_length=1, max_length=64, description="Touchpoint id.")]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=TouchpointDetail,
    responses={
        200: {"model": TouchpointDetail, "description": "A retry: already stored, unchanged."},
        **error_responses(409, 422),
    },
    summary="Post one touchpoint",
    dependencies=[requires(Scope.ingest)],
)
async def create_touchpoint(
    data: Annotated[TouchpointCreate, NulChecked()],
    session: SessionDep,
    settings: SettingsDep,
    response: Response,
) -> TouchpointDetail:
    """Store a touchpoint. Posting the same `id` with the same content again is a safe
    retry (200, nothing stored); the same `id` with other content is refused (409)."""
    report = await service.ingest(
        session,
        items=[(0, data)],
        register_unknown_moments=settings.auto_register_moments,
        default_target=settings.default_target_negative_rate,
        follow_up_targets=followups_targets.from_settings(settings),
    )
    if report.errors:
        error = report.errors[0]
        raised = Conflict if error.code == "conflict" else ValidationFailed
        details = [d.model_copy(update={"field": f"body.{d.field}"}) for d in error.details]
        raise raised(error.message, details=details)
    (result,) = report.results
    if result.status is ItemStatus.duplicate:
        response.status_code = status.HTTP_200_OK
    return await service.get_touchpoint(session, external_id=result.external_id)


@router.post(
    "/batch",
    response_model=BatchResult,
    responses=error_responses(422),
    summary="Post many touchpoints",
    dependencies=[requires(Scope.ingest)],
)
async def create_touchpoints(
    batch: TouchpointBatch, request: Request, session: SessionDep, settings: SettingsDep
) -> Response:
    """Store every valid item, count retries as duplicates, and report each refused item
    with its index and reasons. One bad item never loses the good ones."""
    if len(batch.touchpoints) > settings.batch_max_items:
        raise LimitExceeded(
            f"A batch may carry at most {settings.batch_max_items} touchpoints "
            f"(got {len(batch.touchpoints)}); split it.",
        )
    # One search of the body instead of a NUL check on every field of every item.
    nul_possible = may_hold_nul(await request.body())
    items, report = service.validate_items(batch.touchpoints, may_hold_nul=nul_possible)
    await service.ingest(
        session,
        items=items,
        register_unknown_moments=settings.auto_register_moments,
        default_target=settings.default_target_negative_rate,
        follow_up_targets=followups_targets.from_settings(settings),
        report=report,
    )
    return Response(content=report.as_json(), media_type="application/json")


@router.get(
    "",
    response_model=TouchpointPage,
    responses=error_responses(422),
    summary="List touchpoints",
    dependencies=[requires(Scope.read)],
)
async def list_touchpoints(
    session: ReplicaSessionDep,
    moment: Annotated[str | None, Query(max_length=100, description="Moment key.")] = None,
    channel: Annotated[Channel | None, Query(description="Channel.")] = None,
    team: Annotated[str | None, Query(max_length=100, description="Team.")] = None,
    client_ref: Annotated[str | None, Query(max_length=128, description="Client.")] = None,
    occurred_from: Annotated[
        Timestamp | None,
        Query(alias="from", description="Occurred at or after (RFC 3339 with an offset)."),
    ] = None,
    occurred_to: Annotated[
        Timestamp | None,
        Query(alias="to", description="Occurred before (RFC 3339 with an offset)."),
    ] = None,
    has_rating: Annotated[bool | None, Query(description="Rated or unrated only.")] = None,
    sentiment: Annotated[Sentiment | None, Query(description="Sentiment of the rating.")] = None,
    cursor: CursorQuery = None,
    limit: LimitQuery = DEFAULT_PAGE_SIZE,
) -> TouchpointPage:
    filters = service.TouchpointFilter(
        moment=moment,
        channel=channel,
        team=team,
        client_ref=client_ref,
        occurred_from=occurred_from,
        occurred_to=occurred_to,
        has_rating=has_rating,
        sentiment=sentiment,
    )
    page, next_cursor = await service.list_touchpoints(
        session, filters=filters, cursor=cursor, limit=limit
    )
    return TouchpointPage(data=page, next_cursor=next_cursor)


@router.get(
    "/{touchpoint_id}",
    response_model=TouchpointDetail,
    responses=error_responses(404),
    summary="One touchpoint",
    dependencies=[requires(Scope.read)],
)
async def get_touchpoint(touchpoint_id: IdPath, session: SessionDep) -> TouchpointDetail:
    return await service.get_touchpoint(session, external_id=touchpoint_id)


@router.put(
    "/{touchpoint_id}/rating",
    response_model=TouchpointDetail,
    responses=error_responses(404, 422),
    summary="Record a late rating",
    dependencies=[requires(Scope.ingest)],
)
async def rate_touchpoint(
    touchpoint_id: IdPath, rating: RatingUpdate, session: SessionDep, settings: SettingsDep
) -> TouchpointDetail:
    """Set the touchpoint's rating (e.g. from a survey sent after the contact). The rating
    it replaces is kept in `rating_history`; repeating the current rating changes nothing."""
    return await service.rate(
        session,
        external_id=touchpoint_id,
        rating=rating,
        follow_up_targets=followups_targets.from_settings(settings),
    )


@clients_router.get(
    "/{client_ref}/journey",
    response_model=ClientJourney,
    responses=error_responses(404, 422),
    summary="One client's journey",
)
async def client_journey(
    client_ref: Annotated[
        str, Path(min_length=1, max_length=128, description="The client's pseudonymous id.")
    ],
    session: ReplicaSessionDep,
    cursor: CursorQuery = None,
    limit: LimitQuery = DEFAULT_PAGE_SIZE,
) -> ClientJourney:
    """The client's touchpoints in time order, with their ratings and follow-ups: the
    sequence of moments as the client lived them."""
    page, next_cursor = await service.list_touchpoints(
        session,
        filters=service.TouchpointFilter(client_ref=client_ref),
        cursor=cursor,
        limit=limit,
        oldest_first=True,
    )
    if not page and cursor is None:
        raise NotFound(f"No touchpoints for client '{client_ref}'.")
    follow_ups = await followups_service.summaries_for(
        session, external_ids=[step.id for step in page]
    )
    steps = [JourneyStep(**step.model_dump(), follow_up=follow_ups.get(step.id)) for step in page]
    return ClientJourney(client_ref=client_ref, data=steps, next_cursor=next_cursor)
