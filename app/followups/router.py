from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response, status
from fastapi.responses import HTMLResponse
from sqlalchemy.ext.asyncio import AsyncSession

from app import pages
from app.config import Settings, SettingsDep
from app.csv_response import CSV_RESPONSE, FormatQuery, csv_response, wants_csv
from app.db import MAX_INTEGER_ID, ReplicaSessionDep, SessionDep
from app.errors import error_responses
from app.figures import WindowDep, figures_router
from app.followups import service, targets
from app.followups.schemas import (
    FollowUpCreate,
    FollowUpDetail,
    FollowUpEventCreate,
    FollowUpFigures,
    FollowUpInsights,
    FollowUpPage,
)
from app.followups.workflow import FollowUpStatus
from app.idempotency.router import IdempotentRoute
from app.inputs import Timestamp
from app.keys.access import requires
from app.keys.schemas import Scope
from app.pagination import DEFAULT_PAGE_SIZE, CursorQuery, LimitQuery
from app.surveys import tokens

router = APIRouter(
    prefix="/v1/follow-ups",
    tags=["follow-ups"],
    responses=error_responses(401, 403, 422),
    route_class=IdempotentRoute,
)
page_router = APIRouter(include_in_schema=False)
insights_router = figures_router(guard=requires(Scope.read))

IdPath = Annotated[int, Path(ge=1, le=MAX_INTEGER_ID, description="Follow-up number.")]


@router.post(
    "",
    response_model=FollowUpDetail,
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(404, 409, 422),
    summary="Open a follow-up by hand",
    dependencies=[requires(Scope.manage)],
)
async def create_follow_up(
    data: FollowUpCreate, request: Request, session: SessionDep, settings: SettingsDep
) -> FollowUpDetail:
    """Negative ratings and complaints open follow-ups by themselves; this opens one for any
    other touchpoint (one per touchpoint)."""
    detail = await service.create(session, data=data, targets=targets.from_settings(settings))
    return await with_status_url(detail, request, session, settings)


@router.get(
    "", response_model=FollowUpPage, summary="List follow-ups", dependencies=[requires(Scope.read)]
)
async def list_follow_ups(
    session: ReplicaSessionDep,
    state: Annotated[
        FollowUpStatus | None, Query(alias="status", description="Current status.")
    ] = None,
    moment: Annotated[str | None, Query(max_length=100, description="Moment key.")] = None,
    team: Annotated[str | None, Query(max_length=100, description="Team.")] = None,
    opened_from: Annotated[
        Timestamp | None, Query(alias="from", description="Opened at or after.")
    ] = None,
    opened_to: Annotated[Timestamp | None, Query(alias="to", description="Opened before.")] = None,
    overdue: Annotated[
        bool | None, Query(description="Only overdue (true) or only on time (false).")
    ] = None,
    update_overdue: Annotated[
        bool | None,
        Query(
            description="Only those whose promised update is past due with no news to the "
            "client since (true), or only the others (false)."
        ),
    ] = None,
    cursor: CursorQuery = None,
    limit: LimitQuery = DEFAULT_PAGE_SIZE,
) -> FollowUpPage:
    filters = service.FollowUpFilter(
        status=state,
        moment=moment,
        team=team,
        opened_from=opened_from,
        opened_to=opened_to,
        overdue=overdue,
        update_overdue=update_overdue,
    )
    page, next_cursor = await service.list_follow_ups(
        session, filters=filters, cursor=cursor, limit=limit
    )
    return FollowUpPage(data=page, next_cursor=next_cursor)


@router.get(
    "/{follow_up_id}",
    response_model=FollowUpDetail,
    responses=error_responses(404),
    summary="One follow-up",
    dependencies=[requires(Scope.read)],
)
async def get_follow_up(
    follow_up_id: IdPath, request: Request, session: SessionDep, settings: SettingsDep
) -> FollowUpDetail:
    detail = await service.get(session, follow_up_id=follow_up_id)
    return await with_status_url(detail, request, session, settings)


@router.post(
    "/{follow_up_id}/events",
    response_model=FollowUpDetail,
    responses=error_responses(404, 409, 422),
    summary="Move a follow-up along",
    dependencies=[requires(Scope.manage)],
)
async def add_follow_up_event(
    follow_up_id: IdPath,
    event: FollowUpEventCreate,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
) -> FollowUpDetail:
    """open -> acknowledged -> in_progress -> resolved -> closed, and reopened from resolved
    or closed. An illegal move is a 409 naming the allowed ones. A root cause is accepted
    only when resolving or closing: solve first, look for causes afterwards."""
    detail = await service.add_event(
        session, follow_up_id=follow_up_id, event=event, targets=targets.from_settings(settings)
    )
    return await with_status_url(detail, request, session, settings)


async def with_status_url(
    detail: FollowUpDetail, request: Request, session: AsyncSession, settings: Settings
) -> FollowUpDetail:
    """The follow-up with the signed link to the client's status page (also the pages')."""
    nonce = await service.link_nonce(session, follow_up_id=detail.id)
    claims = tokens.StatusClaims(detail.id, pages.Language.en, nonce)
    token = tokens.issue_status(claims, key=pages.signing_key(settings))
    base = pages.public_base_url(request, settings)
    return detail.model_copy(update={"status_url": f"{base}/f/{token}"})


@page_router.api_route("/f/{token}", methods=["GET", "HEAD"], response_class=HTMLResponse)
async def status_page(
    token: str, request: Request, session: SessionDep, settings: SettingsDep
) -> Response:
    """The client's view: status, when they last had news, messages meant for them, the
    next update promised."""
    try:
        claims = tokens.verify_status(token, key=pages.signing_key(settings))
    except tokens.InvalidToken:
        text = pages.TEXTS[pages.Language.en]
        return pages.render(
            request, "invalid.html", pages.Language.en, 404, message=text["malformed"]
        )
    language = claims.language
    view = await service.client_view(session, follow_up_id=claims.follow_up_id, nonce=claims.nonce)
    if view is None:
        text = pages.TEXTS[language]
        return pages.render(request, "invalid.html", language, 410, message=text["gone"])
    text = pages.TEXTS[language]
    return pages.render(
        request,
        "status.html",
        language,
        title=text["status_title"],
        status_label=text[f"status_{view.status.value}"],
        next_update_at=view.next_update_at,
        last_update_at=view.last_update_at,
        messages=view.messages,
    )


@insights_router.get(
    "/follow-ups",
    response_model=FollowUpInsights,
    responses={**CSV_RESPONSE, **error_responses(422)},
    summary="How well the loop is closed",
)
async def follow_up_figures(
    request: Request,
    session: ReplicaSessionDep,
    settings: SettingsDep,
    span: WindowDep,
    output: FormatQuery = None,
) -> FollowUpInsights | Response:
    """Follow-ups opened in the window: counts, median and p90 time to acknowledge and to
    resolve in working hours, and the share done within target; overall, per moment and
    per team. As CSV: one row for all follow-ups, then one per moment and per team, told
    apart by the `group` column."""
    figures = await service.figures(
        session, start=span.start, end=span.end, targets=targets.from_settings(settings)
    )
    if not wants_csv(request, output):
        return figures
    rows = [figures.total, *figures.by_moment, *figures.by_team]
    groups = ["all"] + ["moment"] * len(figures.by_moment) + ["team"] * len(figures.by_team)
    return csv_response(FollowUpFigures, rows, filename="follow-ups.csv", leading={"group": groups})
