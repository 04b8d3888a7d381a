"""The analyst pages under `/ui/`: sign-in, sign-out and the overview.

Rendered on the server from the same service functions as the REST API, with no script at
all and a Content-Security-Policy that allows none; styles come from one static file.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, FastAPI, Form, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.db import ReplicaSessionDep, utcnow
from app.errors import ErrorDetail, ValidationFailed
from app.figures import Window, json_response, window
from app.insights import router as insights_router
from app.insights import service as insights_service
from app.insights.schemas import WeakSpotsRead
from app.keys import service as keys_service
from app.keys.schemas import Scope
from app.moments.schemas import Channel
from app.pages import templates
from app.pagination import MAX_PAGE_SIZE
from app.ui import access, views
from app.ui.access import Viewer, ViewerDep, may_manage

STATIC = Path(__file__).parent.parent / "static"
DAYS = (7, 30, 90, 365)
DEFAULT_DAYS = 30
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "cache-control": "no-store",
    "referrer-policy": "same-origin",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
}

router = APIRouter(prefix="/ui", include_in_schema=False)


def render(request: Request, name: str, *, status_code: int = 200, **context: Any) -> HTMLResponse:
    """An analyst page with the security headers every page carries."""
    return templates.TemplateResponse(
        request, f"ui/{name}", context, status_code=status_code, headers=HEADERS
    )


def tidied(request: Request, address: str) -> RedirectResponse | None:
    """A page's form sends its empty fields too: to the page's own `address`, which leaves
    them out, so that a view's address is the one it is shared by."""
    if any(not value for value in request.query_params.values()):
        return RedirectResponse(address, status_code=303)
    return None


def refused_unless_manager(request: Request, viewer: Viewer, change: str) -> HTMLResponse | None:
    """The 403 page for a `change` that needs the manage scope, or None when the key has it."""
    if may_manage(viewer):
        return None
    return render(
        request,
        "refused.html",
        status_code=403,
        viewer=viewer,
        message=f"{change} needs a key with the manage scope; nothing was changed.",
    )


def _local(target: str | None) -> str:
    """Where to go after sign-in: a page of `/ui/`, never another site."""
    if target and target.startswith("/ui/") and "\\" not in target:
        return target
    return "/ui/"


# --- sign-in and sign-out ---


def _sign_in_page(
    request: Request, target: str, *, error: str | None = None, status_code: int = 200
) -> HTMLResponse:
    settings: Settings = request.app.state.settings
    nonce, token = access.sign_in_nonce(settings)
    page = render(
        request,
        "sign_in.html",
        status_code=status_code,
        next=target,
        error=error,
        csrf_token=token,
        viewer=None,
    )
    access.remember_sign_in(request, page, settings, nonce)
    return page


@router.get("/sign-in")
async def sign_in_form(
    request: Request, next_: Annotated[str | None, Query(alias="next", max_length=2000)] = None
) -> HTMLResponse:
    return _sign_in_page(request, _local(next_))


@router.post("/sign-in")
async def sign_in(
    request: Request,
    key: Annotated[str, Form(max_length=500)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    next_: Annotated[str, Form(alias="next", max_length=2000)] = "/ui/",
) -> Response:
    settings: Settings = request.app.state.settings
    access.check_sign_in_form(request, settings, csrf_token)
    async with request.app.state.database.read_sessions() as session:
        found = await keys_service.authenticate(
            session, key_hash=keys_service.hash_key(key.strip())
        )
    if found is None:
        return _sign_in_page(
            request,
            _local(next_),
            error="That key is not valid: it is unknown or was revoked.",
            status_code=401,
        )
    if not keys_service.grants(found, Scope.read):
        return _sign_in_page(
            request,
            _local(next_),
            error="That key lacks the read scope the pages need.",
            status_code=403,
        )
    response = RedirectResponse(_local(next_), status_code=303)
    access.start_session(request, response, settings, found.id)
    return response


@router.post("/sign-out")
async def sign_out(
    viewer: ViewerDep, csrf_token: Annotated[str, Form(max_length=200)] = ""
) -> Response:
    access.check_csrf(viewer, csrf_token)
    response = RedirectResponse("/ui/sign-in", status_code=303)
    access.end_session(response)
    return response


# --- the view: window and filters, kept in the URL ---


@dataclass(frozen=True, slots=True)
class View:
    span: Window
    scope: insights_service.Scope
    days: int | None
    first_day: date
    last_day: date
    params: dict[str, str]
    """The query of this view, empty fields left out."""

    def query(self, **changes: str | None) -> str:
        params = {**self.params, **changes}
        return urlencode({name: value for name, value in params.items() if value})

    def api_query(self) -> str:
        params = {
            "from": self.span.start.isoformat().replace("+00:00", "Z"),
            "to": self.span.end.isoformat().replace("+00:00", "Z"),
            "channel": self.scope.channel,
            "team": self.scope.team,
            "stage": self.scope.stage,
            "moment": self.scope.moment_prefix,
            "limit": str(MAX_PAGE_SIZE),
        }
        return urlencode({name: value for name, value in params.items() if value})


def _refused(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(
        message, details=[ErrorDetail(field=f"query.{field}", message=message, type="value")]
    )


def _day(field: str, text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise _refused(field, f"`{field}` is not a date (YYYY-MM-DD).") from None


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), UTC)


async def _view(
    days: Annotated[str | None, Query(max_length=4)] = None,
    start: Annotated[str | None, Query(alias="from", max_length=10)] = None,
    end: Annotated[str | None, Query(alias="to", max_length=10)] = None,
    channel: Annotated[str | None, Query(max_length=20)] = None,
    team: Annotated[str | None, Query(max_length=100)] = None,
    stage: Annotated[str | None, Query(max_length=50)] = None,
    moment: Annotated[str | None, Query(max_length=100)] = None,
) -> View | ValidationFailed:
    """The window and filters asked for; a refusal is returned, to be shown on the page."""
    try:
        return _parse_view(days, start, end, channel, team, stage, moment)
    except ValidationFailed as refusal:
        return refusal


def _parse_view(
    days: str | None,
    start: str | None,
    end: str | None,
    channel: str | None,
    team: str | None,
    stage: str | None,
    moment: str | None,
) -> View:
    if days and (not days.isdigit() or int(days) not in DAYS):
        raise _refused("days", f"`days` is one of {', '.join(map(str, DAYS))}.")
    length = int(days) if days else DEFAULT_DAYS
    if channel and channel not in Channel.__members__:
        raise _refused("channel", f"`{channel}` is not a channel.")
    now = utcnow()
    default_end = _midnight(now.astimezone(UTC).date() + timedelta(days=1))
    # The last day is shown and asked for inclusive; the window's end is the next midnight.
    last = _midnight(_day("to", end) + timedelta(days=1)) if end else default_end
    first = _midnight(_day("from", start)) if start else last - timedelta(days=length)
    span = window(first, last, now=now)
    custom = bool(start or end)
    params = {
        "days": None if custom else str(length),
        "from": start or None,
        "to": end or None,
        "channel": channel or None,
        "team": team or None,
        "stage": stage or None,
        "moment": moment or None,
    }
    return View(
        span=span,
        scope=insights_service.Scope(
            channel=channel or None,
            team=team or None,
            stage=stage or None,
            moment_prefix=moment or None,
        ),
        days=None if custom else length,
        first_day=span.start.date(),
        last_day=(span.end - timedelta(days=1)).date(),
        params={name: value for name, value in params.items() if value},
    )


ViewDep = Annotated[View | ValidationFailed, Depends(_view)]


async def _weak_spots(request: Request, session: AsyncSession, view: View) -> WeakSpotsRead:
    """Every ranked moment of the view, as `/v1/insights/weak-spots` gives them (kept
    figures too)."""
    return await insights_service.weak_spots(
        session,
        span=view.span,
        scope=view.scope,
        min_responses=0,
        limit=MAX_PAGE_SIZE,
        kept_figures=request.app.state.kept_figures,
    )


@router.get("/")
async def overview(
    request: Request, session: ReplicaSessionDep, viewer: ViewerDep, view: ViewDep
) -> Response:
    """Headline figures of the window and the ranked weak spots, as the API gives them."""
    if isinstance(view, ValidationFailed):
        return render(
            request,
            "overview.html",
            status_code=422,
            viewer=viewer,
            error=view.message,
            view=None,
            form=_form(request),
            channels=list(Channel),
            days_choices=DAYS,
        )
    if (tidy := tidied(request, f"/ui/?{view.query()}")) is not None:
        return tidy
    summary = await insights_service.overview(session, span=view.span, scope=view.scope)
    spots = await _weak_spots(request, session, view)
    table, scale = views.rows(spots)
    return render(
        request,
        "overview.html",
        viewer=viewer,
        error=None,
        view=view,
        form=_form(request),
        channels=list(Channel),
        days_choices=DAYS,
        figures=views.headline(summary),
        rows=table,
        scale=views.percent(scale),
        bar_width=views.BAR_WIDTH,
        range_width=views.RANGE_WIDTH,
        moments_ranked=spots.moments_ranked,
        apart=len(spots.insufficient_data),
    )


@router.get("/weak-spots.json")
async def weak_spots_json(
    request: Request, session: ReplicaSessionDep, _viewer: ViewerDep, view: ViewDep
) -> Response:
    """The exact figures of the overview's table, as the API gives them."""
    if isinstance(view, ValidationFailed):
        raise view
    result = await _weak_spots(request, session, view)
    return json_response(result)


@router.get("/weak-spots.csv")
async def weak_spots_csv(
    request: Request, session: ReplicaSessionDep, _viewer: ViewerDep, view: ViewDep
) -> Response:
    if isinstance(view, ValidationFailed):
        raise view
    return insights_router.weak_spots_csv(await _weak_spots(request, session, view))


def _form(request: Request) -> dict[str, str]:
    """The filter form's fields as they were sent, to fill it in again."""
    names = ("days", "from", "to", "channel", "team", "stage", "moment")
    return {name: request.query_params.get(name, "") for name in names}


def install(app: FastAPI) -> None:
    """Serve the analyst pages, their style sheet, and the way to sign-in for a page."""
    app.include_router(router)
    app.mount("/ui/static", StaticFiles(directory=STATIC), name="ui-static")
    app.add_exception_handler(access.SignInRequired, _to_sign_in)
    app.add_exception_handler(access.CsrfRefused, _csrf_refused)


async def _to_sign_in(request: Request, _exc: Exception) -> Response:
    target = request.url.path
    if request.url.query:
        target += f"?{request.url.query}"
    if request.method != "GET":
        target = "/ui/"
    response = RedirectResponse(
        f"/ui/sign-in?{urlencode({'next': _local(target)})}", status_code=303
    )
    access.end_session(response)
    return response


async def _csrf_refused(request: Request, exc: Exception) -> Response:
    message = exc.message if isinstance(exc, access.CsrfRefused) else "Refused."
    return render(request, "refused.html", status_code=403, message=message, viewer=None)
