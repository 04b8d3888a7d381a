"""The follow-up pages under `/ui/`: the queue, one follow-up's timeline, and moving it along.

Every figure and every move goes through the follow-ups service, as the REST API's do: the
queue is `GET /v1/follow-ups` with `overdue=true`, then with `overdue=false`; a move is
`POST /v1/follow-ups/{id}/events`, with the same checks, behind the session's CSRF token
and the manage scope.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Path, Query, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.db import MAX_INTEGER_ID, ReplicaSessionDep, SessionDep, utcnow
from app.errors import Conflict, NotFound, ValidationFailed
from app.followups import router as followups_router
from app.followups import service as followups_service
from app.followups import targets as followups_targets
from app.followups.schemas import FollowUpEventCreate, FollowUpRead
from app.followups.workflow import FollowUpStatus
from app.pagination import MAX_PAGE_SIZE
from app.ui.access import Viewer, ViewerDep, check_csrf, may_manage
from app.ui.router import refused_unless_manager, render, tidied

router = APIRouter(prefix="/ui", include_in_schema=False)

IdPath = Annotated[int, Path(ge=1, le=MAX_INTEGER_ID)]
OVERDUE_CHOICES = ("true", "false")
FILTERS = ("status", "moment", "team", "overdue")


def age(since: datetime, now: datetime) -> str:
    """How long ago, for people: days and hours, hours and minutes, or minutes."""
    minutes = max(int((now - since).total_seconds() // 60), 0)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min"


def due(follow_up: FollowUpRead) -> tuple[str, datetime | None]:
    """What the follow-up waits for next and by when; nothing once settled."""
    if follow_up.status.value in followups_service.AWAITING_ACKNOWLEDGEMENT:
        return "acknowledge", follow_up.acknowledge_due_at
    if follow_up.status.value in followups_service.SETTLED:
        return "", None
    return "resolve", follow_up.resolve_due_at


def when(moment: datetime | None) -> str:
    return "" if moment is None else moment.strftime("%Y-%m-%d %H:%M UTC")


@dataclass(frozen=True, slots=True)
class QueueRow:
    id: int
    status: str
    overdue: bool
    update_overdue: bool
    age: str
    due_for: str
    due_at: str
    moment: str
    team: str
    reason: str


def _rows(follow_ups: list[FollowUpRead], now: datetime) -> list[QueueRow]:
    rows = []
    for follow_up in follow_ups:
        due_for, due_at = due(follow_up)
        rows.append(
            QueueRow(
                id=follow_up.id,
                status=follow_up.status.value,
                overdue=follow_up.overdue,
                update_overdue=follow_up.update_overdue,
                age=age(follow_up.opened_at, now),
                due_for=due_for,
                due_at=when(due_at),
                moment=follow_up.moment,
                team=follow_up.team or "",
                reason=follow_up.reason.value,
            )
        )
    return rows


@dataclass(frozen=True, slots=True)
class Section:
    """One part of the queue (overdue, or on time), a page of the API's list."""

    key: str
    title: str
    rows: list[QueueRow]
    next_query: str | None


def _query(params: dict[str, str], **changes: str | None) -> str:
    merged = {**params, **changes}
    return urlencode({name: value for name, value in merged.items() if value})


async def _section(
    session: AsyncSession,
    *,
    key: str,
    title: str,
    overdue: bool,
    filters: followups_service.FollowUpFilter,
    cursor: str | None,
    params: dict[str, str],
    now: datetime,
) -> Section:
    scoped = followups_service.FollowUpFilter(
        status=filters.status, moment=filters.moment, team=filters.team, overdue=overdue
    )
    page, next_cursor = await followups_service.list_follow_ups(
        session, filters=scoped, cursor=cursor, limit=MAX_PAGE_SIZE
    )
    return Section(
        key=key,
        title=title,
        rows=_rows(page, now),
        next_query=None if next_cursor is None else _query(params, **{key: next_cursor}),
    )


@router.get("/follow-ups")
async def queue(
    request: Request,
    session: ReplicaSessionDep,
    viewer: ViewerDep,
    state: Annotated[str | None, Query(alias="status", max_length=20)] = None,
    moment: Annotated[str | None, Query(max_length=100)] = None,
    team: Annotated[str | None, Query(max_length=100)] = None,
    overdue: Annotated[str | None, Query(max_length=5)] = None,
    late: Annotated[str | None, Query(max_length=200)] = None,
    rest: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """The follow-up queue: the overdue first, then the others, newest first in each."""
    form = {name: request.query_params.get(name, "") for name in FILTERS}
    params = {name: value for name, value in form.items() if value}

    def refused(message: str) -> Response:
        return render(
            request,
            "follow_ups.html",
            status_code=422,
            viewer=viewer,
            error=message,
            form=form,
            statuses=list(FollowUpStatus),
            sections=[],
            params=params,
        )

    if state and state not in FollowUpStatus.__members__:
        return refused(f"`{state}` is not a status.")
    if overdue and overdue not in OVERDUE_CHOICES:
        return refused("`overdue` is true or false.")
    if (tidy := tidied(request, f"/ui/follow-ups?{_query(params)}")) is not None:
        return tidy
    filters = followups_service.FollowUpFilter(
        status=FollowUpStatus(state) if state else None, moment=moment or None, team=team or None
    )
    now = utcnow()
    parts = [("late", "Overdue", True), ("rest", "On time", False)]
    cursors = {"late": late, "rest": rest}
    sections = []
    try:
        for key, title, is_overdue in parts:
            if overdue and (overdue == "true") != is_overdue:
                continue
            sections.append(
                await _section(
                    session,
                    key=key,
                    title=title,
                    overdue=is_overdue,
                    filters=filters,
                    cursor=cursors[key],
                    params=params,
                    now=now,
                )
            )
    except ValidationFailed as refusal:  # a cursor not of ours
        return refused(refusal.message)
    return render(
        request,
        "follow_ups.html",
        viewer=viewer,
        error=None,
        form=form,
        statuses=list(FollowUpStatus),
        sections=sections,
        params=params,
    )


@dataclass(frozen=True, slots=True)
class MoveForm:
    """The move form's fields, as sent, to fill it in again after a refusal."""

    status: str = ""
    actor: str = ""
    note: str = ""
    client_message: str = ""
    root_cause: str = ""


async def _detail_page(
    request: Request,
    session: AsyncSession,
    viewer: Viewer,
    follow_up_id: int,
    *,
    form: MoveForm | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    settings: Settings = request.app.state.settings
    try:
        detail = await followups_service.get(session, follow_up_id=follow_up_id)
    except NotFound as missing:
        return render(
            request,
            "follow_up_missing.html",
            status_code=404,
            viewer=viewer,
            message=missing.message,
        )
    detail = await followups_router.with_status_url(detail, request, session, settings)
    due_for, due_at = due(detail)
    return render(
        request,
        "follow_up.html",
        status_code=status_code,
        viewer=viewer,
        follow_up=detail,
        age=age(detail.opened_at, utcnow()),
        due_for=due_for,
        due_at=when(due_at),
        when=when,
        may_manage=may_manage(viewer),
        form=form or MoveForm(actor=viewer.name),
        error=error,
    )


@router.get("/follow-ups/{follow_up_id}")
async def follow_up_page(
    request: Request, session: SessionDep, viewer: ViewerDep, follow_up_id: IdPath
) -> Response:
    """One follow-up: where it stands, its timeline, and (with manage) the move form."""
    return await _detail_page(request, session, viewer, follow_up_id)


def _event(form: MoveForm) -> FollowUpEventCreate:
    return FollowUpEventCreate.model_validate(
        {
            "status": form.status,
            "actor": form.actor.strip(),
            "note": form.note.strip() or None,
            "client_message": form.client_message.strip() or None,
            "root_cause": form.root_cause.strip() or None,
        }
    )


def _validation_message(error: ValidationError) -> str:
    problems = [
        f"{'.'.join(map(str, problem['loc']))}: {problem['msg']}" for problem in error.errors()
    ]
    return "Please check the form: " + "; ".join(problems) + "."


@router.post("/follow-ups/{follow_up_id}/events")
async def move(
    request: Request,
    session: SessionDep,
    viewer: ViewerDep,
    follow_up_id: IdPath,
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    status: Annotated[str, Form(max_length=20)] = "",
    actor: Annotated[str, Form(max_length=200)] = "",
    note: Annotated[str, Form(max_length=8000)] = "",
    client_message: Annotated[str, Form(max_length=4000)] = "",
    root_cause: Annotated[str, Form(max_length=8000)] = "",
) -> Response:
    """Move the follow-up along as `POST /v1/follow-ups/{id}/events` does; back to its page."""
    check_csrf(viewer, csrf_token)
    if (refused := refused_unless_manager(request, viewer, "Moving a follow-up")) is not None:
        return refused
    form = MoveForm(status, actor, note, client_message, root_cause)
    settings: Settings = request.app.state.settings
    try:
        event = _event(form)
        await followups_service.add_event(
            session,
            follow_up_id=follow_up_id,
            event=event,
            targets=followups_targets.from_settings(settings),
        )
    except ValidationError as invalid:
        message = _validation_message(invalid)
    except (Conflict, ValidationFailed) as refusal:
        message = refusal.message
    except NotFound:
        return await _detail_page(request, session, viewer, follow_up_id)
    else:
        return RedirectResponse(f"/ui/follow-ups/{follow_up_id}#latest", status_code=303)
    # Nothing of a refused move is kept, whatever the service had read or locked.
    await session.rollback()
    return await _detail_page(
        request, session, viewer, follow_up_id, form=form, error=message, status_code=422
    )
