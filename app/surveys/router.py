import re
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Request, Response, status
from fastapi.responses import HTMLResponse
from sqlalchemy.ext.asyncio import AsyncSession

from app import pages
from app.config import Settings, SettingsDep
from app.csv_response import CSV_RESPONSE, FormatQuery, csv_response, wants_csv
from app.db import ReplicaSessionDep, SessionDep, WriteSessionDep, utcnow
from app.errors import NotFound, error_responses
from app.figures import WindowDep, figures_router
from app.followups import targets as followups_targets
from app.idempotency.router import IdempotentRoute
from app.keys.access import requires
from app.keys.schemas import Scope
from app.scales import SCALES, Sentiment
from app.surveys import lost_time, service, tokens
from app.surveys.schemas import (
    SurveyBatchCreate,
    SurveyBatchError,
    SurveyBatchResult,
    SurveyCreate,
    SurveyFigures,
    SurveyLinks,
    SurveyReach,
)
from app.surveys.tokens import Language, SurveyClaims
from app.touchpoints.schemas import COMMENT_MAX_LENGTH

router = APIRouter(
    tags=["surveys"],
    responses=error_responses(401, 403, 422),
    dependencies=[requires(Scope.ingest)],
    route_class=IdempotentRoute,
)
page_router = APIRouter(include_in_schema=False)
insights_router = figures_router(guard=requires(Scope.read))

# Mail security scanners and link previewers fetch every link of a message before the
# client sees it (or instead of the client); their fetches must not answer a survey. They
# are named, never guessed from a fragment: "bot" alone is in phone names (CUBOT X30), and
# a click that is not recorded is lost without a trace.
_LINK_SCANNER = re.compile(
    r"""
    # Mail security gateways and link protection.
    \b(?:barracuda|mimecast|proofpoint|urldefense|safelinks|symantec|trend\ ?micro)\b
    # Microsoft Office checking a link before the browser opens it, and Outlook previews.
    | \bmicrosoft\ office\b | \bms-office\b
    # Crawlers, chat and social link previewers that announce themselves: "Googlebot/2.1",
    # "Slackbot-LinkExpanding", "facebookexternalhit", "Baiduspider".
    | \b[a-z]*bot/[0-9] | \b(?:adsbot-google|slackbot|telegrambot|applebot)\b
    | \bfacebookexternalhit\b | \bwhatsapp/ | \b(?:bing|skypeuri)preview\b
    | \b[a-z]*(?:spider|crawler)\b
    # Browsers driven by programs, which scanners use to open links in a sandbox.
    | \bheadlesschrome\b
    # The convention of crawlers: a URL about themselves in the user agent.
    | \(\+https?:// | ;\ \+https?://
    """,
    re.IGNORECASE | re.VERBOSE,
)


def is_link_scanner(user_agent: str) -> bool:
    """Whether the user agent is a known mail scanner, crawler or link previewer."""
    return _LINK_SCANNER.search(user_agent) is not None


def _is_prefetch(request: Request) -> bool:
    """A HEAD request, or a GET from a known mail scanner or link previewer."""
    return request.method == "HEAD" or is_link_scanner(request.headers.get("user-agent", ""))


# A one-click answer exactly as the links write it: no sign, no leading zero, no decimals.
_ANSWER = re.compile(r"0|[1-9][0-9]?")


_INVALID_STATUS = {
    "malformed": status.HTTP_404_NOT_FOUND,
    "signature": status.HTTP_404_NOT_FOUND,
    "expired": status.HTTP_410_GONE,
    "gone": status.HTTP_410_GONE,
}


@router.post(
    "/v1/touchpoints/{touchpoint_id}/survey",
    response_model=SurveyLinks,
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(404, 422),
    summary="Signed survey links for a touchpoint",
)
async def create_survey(
    touchpoint_id: Annotated[str, Path(min_length=1, max_length=64, description="Touchpoint id.")],
    options: SurveyCreate,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
) -> SurveyLinks:
    """One link per scale value (one-click buttons for an e-mail) and one to a page with
    every value. Links are signed, expire, and carry nothing personal."""
    issued, errors = await _issue(session, request, settings, [touchpoint_id], options)
    if errors:
        raise NotFound(errors[0].message)
    return issued[0]


@router.post(
    "/v1/surveys/batch",
    response_model=SurveyBatchResult,
    summary="Signed survey links for many touchpoints",
)
async def create_surveys(
    batch: SurveyBatchCreate, request: Request, session: SessionDep, settings: SettingsDep
) -> SurveyBatchResult:
    """Links for up to 1,000 touchpoints at once; unknown ids are listed in `errors`."""
    unique_ids = list(dict.fromkeys(batch.touchpoints))
    issued, errors = await _issue(session, request, settings, unique_ids, batch)
    return SurveyBatchResult(data=issued, errors=errors)


async def _issue(
    session: AsyncSession,
    request: Request,
    settings: Settings,
    external_ids: list[str],
    options: SurveyCreate,
) -> tuple[list[SurveyLinks], list[SurveyBatchError]]:
    return await service.issue_links(
        session,
        external_ids=external_ids,
        options=options,
        default_days=settings.survey_link_days,
        key=pages.signing_key(settings),
        base_url=pages.public_base_url(request, settings),
        now=utcnow(),
    )


def _invalid(request: Request, reason: str) -> HTMLResponse:
    text = pages.TEXTS[Language.en]
    message = {"expired": text["expired"], "gone": text["gone"]}.get(reason, text["malformed"])
    return pages.render(
        request, "invalid.html", Language.en, _INVALID_STATUS.get(reason, 404), message=message
    )


def _claims(token: str, settings: Settings) -> SurveyClaims:
    return tokens.verify(token, key=pages.signing_key(settings), now=utcnow())


@page_router.api_route("/s/{token}", methods=["GET", "HEAD"], response_class=HTMLResponse)
async def survey_page(
    token: str, request: Request, session: WriteSessionDep, settings: SettingsDep
) -> Response:
    try:
        claims = _claims(token, settings)
        await service.touchpoint_of(session, claims=claims)
    except tokens.InvalidToken as invalid:
        return _invalid(request, invalid.reason)
    if not _is_prefetch(request):
        await service.record_open(session, claims=claims, answered=False)
    return pages.render(request, "survey.html", claims.language, **_survey_context(token, claims))


def _survey_context(token: str, claims: SurveyClaims) -> dict[str, Any]:
    scale = SCALES[claims.scale]
    text = pages.TEXTS[claims.language]
    return {
        "values": list(range(scale.low, scale.high + 1)),
        "page_url": f"/s/{token}",
        "low_label": text["low"],
        "high_label": text["high"],
    }


@page_router.api_route("/s/{token}/{value}", methods=["GET", "HEAD"], response_class=HTMLResponse)
async def one_click_answer(
    token: str, value: str, request: Request, session: WriteSessionDep, settings: SettingsDep
) -> Response:
    try:
        claims = _claims(token, settings)
        await service.touchpoint_of(session, claims=claims)
    except tokens.InvalidToken as invalid:
        return _invalid(request, invalid.reason)
    if not _ANSWER.fullmatch(value):
        return _bad_value(request, claims)
    if _is_prefetch(request):
        # Answer the probe, record nothing: the client's own click will.
        return pages.render(
            request, "survey.html", claims.language, **_survey_context(token, claims)
        )
    try:
        sentiment = await service.answer(
            session,
            claims=claims,
            value=int(value),
            follow_up_targets=followups_targets.from_settings(settings),
        )
    except service.UnknownAnswer:
        return _bad_value(request, claims)
    await service.record_open(session, claims=claims, answered=True)
    factors = await service.factors_offered(session, claims=claims, sentiment=sentiment)
    language = claims.language
    return pages.render(
        request,
        "thanks.html",
        language,
        negative=sentiment is Sentiment.negative,
        saved=False,
        page_url=f"/s/{token}",
        factors=[(f.key, f.ru if language is Language.ru else f.en) for f in factors],
        lost_time=[(choice.minutes, choice.label(language)) for choice in lost_time.CHOICES],
    )


def _bad_value(request: Request, claims: SurveyClaims) -> HTMLResponse:
    text = pages.TEXTS[claims.language]
    return pages.render(request, "invalid.html", claims.language, 422, message=text["bad_value"])


@page_router.post("/s/{token}/comment", response_class=HTMLResponse)
async def comment_page(
    token: str,
    request: Request,
    session: WriteSessionDep,
    settings: SettingsDep,
    comment: Annotated[str, Form(max_length=COMMENT_MAX_LENGTH)] = "",
    factor: Annotated[list[str] | None, Form()] = None,
    lost_minutes: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    """What the client adds after answering: a comment, the factors tapped (`factor`, once
    per choice) and the time lost (one of the page's choices)."""
    try:
        claims = _claims(token, settings)
        # What the client typed is kept, less any NUL (which PostgreSQL text cannot hold):
        # a client's form is not refused over an invisible character.
        sentiment = await service.save_details(
            session,
            claims=claims,
            comment=comment.replace("\x00", "").strip(),
            factors=factor or [],
            lost_minutes=lost_time.chosen(lost_minutes),
        )
    except tokens.InvalidToken as invalid:
        return _invalid(request, invalid.reason)
    return pages.render(
        request,
        "thanks.html",
        claims.language,
        negative=sentiment is Sentiment.negative,
        saved=True,
        page_url=f"/s/{token}",
    )


@insights_router.get(
    "/surveys",
    response_model=SurveyFigures,
    responses={**CSV_RESPONSE, **error_responses(422)},
    summary="Survey reach: issued, opened, answered",
)
async def survey_figures(
    request: Request, session: ReplicaSessionDep, span: WindowDep, output: FormatQuery = None
) -> SurveyFigures | Response:
    """Surveys issued in the window, how many were opened and answered, per moment: the
    response rate of the clients actually asked. As CSV: one row for all moments (an empty
    `moment`), then one per moment."""
    figures = await service.figures(session, start=span.start, end=span.end)
    if not wants_csv(request, output):
        return figures
    rows = [figures.total, *figures.by_moment]
    return csv_response(SurveyReach, rows, filename="surveys.csv")
