"""The catalogue page under `/ui/`: every moment with its figures, and changing its target
and owner team.

The moments are `GET /v1/moments`, their volume and response rate over the window those
of `GET /v1/insights/weak-spots` (every moment with touchpoints, `min_responses=0`), the
silent marks those of `GET /v1/insights/silence`; a change is `PATCH /v1/moments/{key}`,
with the same validation, behind the session's CSRF token and the manage scope.
"""

from dataclasses import dataclass, field
from typing import Annotated
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Form, Path, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import SessionDep
from app.errors import NotFound, ValidationFailed
from app.insights import service as insights_service
from app.insights.schemas import SilenceSignal
from app.moments import service as moments_service
from app.moments.models import Moment
from app.moments.schemas import MomentRead, MomentUpdate
from app.pagination import MAX_PAGE_SIZE
from app.ui.access import Viewer, ViewerDep, check_csrf, may_manage
from app.ui.router import DAYS, View, ViewDep, refused_unless_manager, render, tidied
from app.ui.views import percent

router = APIRouter(prefix="/ui", include_in_schema=False)

KeyPath = Annotated[str, Path(max_length=100)]
WINDOW_FIELDS = ("days", "from", "to")
SIGNALS = {
    SilenceSignal.low_response_rate: "silent: under half the overall response rate",
    SilenceSignal.no_bad_news: "silent: no bad news over a high volume",
}
WHOLE = insights_service.Scope()
"""The catalogue lists every moment: only the window applies, not the overview's filters."""


@dataclass(frozen=True, slots=True)
class CatalogueRow:
    key: str
    name: str
    channel: str
    stage: str
    owner_team: str
    target: str
    touchpoints: int
    response_rate: str
    silent: list[str]
    archived: bool


async def all_moments(session: AsyncSession) -> list[Moment]:
    """Every catalogued moment in key order, page by page as `GET /v1/moments` gives them."""
    moments: list[Moment] = []
    cursor: str | None = None
    while True:
        page, cursor = await moments_service.list_moments(
            session,
            channel=None,
            owner_team=None,
            archived=None,
            cursor=cursor,
            limit=MAX_PAGE_SIZE,
        )
        moments.extend(page)
        if cursor is None:
            return moments


async def _rows(session: AsyncSession, view: View) -> list[CatalogueRow]:
    moments = await all_moments(session)
    counted = await insights_service.volumes(session, span=view.span, scope=WHOLE)
    silence = await insights_service.silence(session, span=view.span, scope=WHOLE)
    silent = {item.moment: [SIGNALS[signal] for signal in item.signals] for item in silence.data}
    rows = []
    for moment in moments:
        tally = counted.get(moment.key)
        rows.append(
            CatalogueRow(
                key=moment.key,
                name=moment.name,
                channel=moment.channel,
                stage=moment.stage or "",
                owner_team=moment.owner_team or "",
                target=percent(moment.target_negative_rate),
                touchpoints=0 if tally is None else tally.touchpoints,
                response_rate=percent(
                    None if tally is None else tally.responses / tally.touchpoints
                ),
                silent=silent.get(moment.key, []),
                archived=moment.archived,
            )
        )
    return rows


def _window_form(request: Request) -> dict[str, str]:
    return {name: request.query_params.get(name, "") for name in WINDOW_FIELDS}


def _window_query(view: View) -> str:
    return urlencode({name: value for name, value in view.params.items() if name in WINDOW_FIELDS})


@router.get("/moments")
async def catalogue(
    request: Request, session: SessionDep, viewer: ViewerDep, view: ViewDep
) -> Response:
    """Every moment with its channel, stage, owner, target, volume and response rate."""
    if isinstance(view, ValidationFailed):
        return render(
            request,
            "catalogue.html",
            status_code=422,
            viewer=viewer,
            error=view.message,
            view=None,
            form=_window_form(request),
            days_choices=DAYS,
            rows=[],
            may_manage=may_manage(viewer),
            window="",
        )
    if (tidy := tidied(request, f"/ui/moments?{_window_query(view)}")) is not None:
        return tidy
    return render(
        request,
        "catalogue.html",
        viewer=viewer,
        error=None,
        view=view,
        form=_window_form(request),
        days_choices=DAYS,
        rows=await _rows(session, view),
        may_manage=may_manage(viewer),
        window=_window_query(view),
    )


@dataclass(frozen=True, slots=True)
class EditForm:
    """The edit form's fields, as sent, and the error of each refused one."""

    target: str = ""
    owner_team: str = ""
    errors: dict[str, str] = field(default_factory=dict)


def _form_of(moment: MomentRead) -> EditForm:
    target = moment.target_negative_rate
    return EditForm(
        target="" if target is None else repr(target), owner_team=moment.owner_team or ""
    )


def _back(window: str) -> str:
    """The catalogue with the window it was left at; nothing else from the form is kept."""
    kept = {name: value for name, value in parse_qsl(window) if name in WINDOW_FIELDS}
    return f"/ui/moments?{urlencode(kept)}"


def _missing(request: Request, viewer: Viewer, message: str) -> Response:
    return render(request, "moment_missing.html", status_code=404, viewer=viewer, message=message)


async def _edit_page(
    request: Request,
    session: AsyncSession,
    viewer: Viewer,
    key: str,
    *,
    window: str,
    form: EditForm | None = None,
    status_code: int = 200,
) -> Response:
    try:
        moment = MomentRead.model_validate(await moments_service.get_moment(session, key=key))
    except NotFound as missing:
        return _missing(request, viewer, missing.message)
    return render(
        request,
        "moment_edit.html",
        status_code=status_code,
        viewer=viewer,
        moment=moment,
        form=form or _form_of(moment),
        may_manage=may_manage(viewer),
        window=window,
        back=_back(window),
        target=percent(moment.target_negative_rate),
    )


@router.get("/moments/{key}/edit")
async def edit_form(
    request: Request, session: SessionDep, viewer: ViewerDep, key: KeyPath, view: ViewDep
) -> Response:
    """The form changing a moment's target and owner team (read keys see why they cannot)."""
    window = "" if isinstance(view, ValidationFailed) else _window_query(view)
    return await _edit_page(request, session, viewer, key, window=window)


def _target(text: str) -> float | str | None:
    """The form's target for the API's validation: empty is null (no target), a number is
    a number, anything else is passed on as sent, to be refused as the API refuses it."""
    text = text.strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        return text


FIELDS = {"target_negative_rate": "target", "owner_team": "owner_team"}


def _errors(invalid: ValidationError) -> dict[str, str]:
    errors: dict[str, str] = {}
    for problem in invalid.errors():
        name = FIELDS.get(str(problem["loc"][0]) if problem["loc"] else "", "target")
        errors.setdefault(name, problem["msg"])
    return errors


@router.post("/moments/{key}/edit")
async def edit(
    request: Request,
    session: SessionDep,
    viewer: ViewerDep,
    key: KeyPath,
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    target: Annotated[str, Form(max_length=200)] = "",
    owner_team: Annotated[str, Form(max_length=1000)] = "",
    window: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Change the target and owner team as `PATCH /v1/moments/{key}` does; back to the list."""
    check_csrf(viewer, csrf_token)
    if (refused := refused_unless_manager(request, viewer, "Changing a moment")) is not None:
        return refused
    try:
        data = MomentUpdate.model_validate(
            {"target_negative_rate": _target(target), "owner_team": owner_team.strip() or None}
        )
    except ValidationError as invalid:
        form = EditForm(target=target, owner_team=owner_team, errors=_errors(invalid))
        return await _edit_page(
            request, session, viewer, key, window=window, form=form, status_code=422
        )
    try:
        await moments_service.update_moment(session, key=key, data=data)
    except NotFound as missing:
        return _missing(request, viewer, missing.message)
    return RedirectResponse(f"{_back(window)}#moment-{key}", status_code=303)
