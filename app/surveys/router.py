from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Request, Response, status
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from app.config import Settings, SettingsDep
from app.db import SessionDep, utcnow
from app.errors import NotFound, error_responses
from app.surveys import service, tokens
from app.surveys.schemas import SurveyBatchCreate, SurveyBatchResult, SurveyCreate, SurveyLinks
from app.surveys.tokens import Language, SurveyClaims
from app.touchpoints.scales import SCALES, Sentiment

router = APIRouter(tags=["surveys"], responses=error_responses(422))
pages = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=FilePath(__file__).parent / "templates")

TEXTS: dict[Language, dict[str, str]] = {
    Language.en: {
        "title": "How did we do?",
        "question": "How was your experience?",
        "thanks_title": "Thank you!",
        "thanks_body": "Your answer helps us keep doing what works.",
        "sorry_title": "We are sorry it was not good.",
        "sorry_body": "Thank you for telling us: it is how we find what to fix. "
        "We will look into it.",
        "sorry_question": "What went wrong, and how can we help?",
        "comment_question": "Anything you would like to add?",
        "send": "Send",
        "comment_saved": "Thank you, we have your comment.",
        "change_answer": "Clicked the wrong answer?",
        "change_link": "Choose again",
        "invalid_title": "This link does not work",
        "malformed": "The link is incomplete or was changed. Please use the link exactly as "
        "you received it.",
        "expired": "The link has expired. Thank you all the same.",
        "bad_value": "That answer is not one of the choices.",
        "low": "Very bad",
        "high": "Very good",
    },
    Language.ru: {
        "title": "Как мы справились?",
        "question": "Как вы оцениваете обращение?",
        "thanks_title": "Спасибо!",
        "thanks_body": "Ваш ответ помогает нам сохранять то, что работает.",
        "sorry_title": "Нам жаль, что всё прошло плохо.",
        "sorry_body": "Спасибо, что сказали: так мы узнаём, что исправить. Мы разберёмся.",
        "sorry_question": "Что пошло не так и чем мы можем помочь?",
        "comment_question": "Хотите что-нибудь добавить?",
        "send": "Отправить",
        "comment_saved": "Спасибо, ваш комментарий получен.",
        "change_answer": "Ошиблись с ответом?",
        "change_link": "Выбрать снова",
        "invalid_title": "Ссылка не работает",
        "malformed": "Ссылка неполная или изменена. Откройте её в точности как получили.",
        "expired": "Срок действия ссылки истёк. Всё равно спасибо.",
        "bad_value": "Такого варианта ответа нет.",
        "low": "Очень плохо",
        "high": "Очень хорошо",
    },
}
_INVALID_STATUS = {
    "malformed": status.HTTP_404_NOT_FOUND,
    "signature": status.HTTP_404_NOT_FOUND,
    "expired": status.HTTP_410_GONE,
    "gone": status.HTTP_410_GONE,
}


def _key(settings: Settings) -> bytes:
    return settings.secret_key.get_secret_value().encode()


def _base_url(request: Request, settings: Settings) -> str:
    return (settings.public_url or str(request.base_url)).rstrip("/")


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
    issued, errors = await service.issue_links(
        session,
        external_ids=[touchpoint_id],
        options=options,
        default_days=settings.survey_link_days,
        key=_key(settings),
        base_url=_base_url(request, settings),
        now=utcnow(),
    )
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
    issued, errors = await service.issue_links(
        session,
        external_ids=list(dict.fromkeys(batch.touchpoints)),
        options=batch,
        default_days=settings.survey_link_days,
        key=_key(settings),
        base_url=_base_url(request, settings),
        now=utcnow(),
    )
    return SurveyBatchResult(data=issued, errors=errors)


def _page(
    request: Request, name: str, language: Language, status_code: int = 200, **context: Any
) -> HTMLResponse:
    text = TEXTS[language]
    return templates.TemplateResponse(
        request,
        name,
        {"lang": language.value, "text": text, "title": text["title"], **context},
        status_code=status_code,
        headers={"cache-control": "no-store", "referrer-policy": "no-referrer"},
    )


def _invalid(request: Request, reason: str) -> HTMLResponse:
    text = TEXTS[Language.en]
    message = text["expired"] if reason in ("expired", "gone") else text["malformed"]
    return _page(
        request, "invalid.html", Language.en, _INVALID_STATUS.get(reason, 404), message=message
    )


def _claims(token: str, settings: Settings) -> SurveyClaims:
    return tokens.verify(token, key=_key(settings), now=utcnow())


@pages.get("/s/{token}", response_class=HTMLResponse)
async def survey_page(token: str, request: Request, settings: SettingsDep) -> Response:
    try:
        claims = _claims(token, settings)
    except tokens.InvalidToken as invalid:
        return _invalid(request, invalid.reason)
    scale = SCALES[claims.scale]
    text = TEXTS[claims.language]
    return _page(
        request,
        "survey.html",
        claims.language,
        values=list(range(scale.low, scale.high + 1)),
        page_url=f"/s/{token}",
        low_label=text["low"],
        high_label=text["high"],
    )


@pages.api_route("/s/{token}/{value}", methods=["GET", "HEAD"], response_class=HTMLResponse)
async def one_click_answer(
    token: str, value: int, request: Request, session: SessionDep, settings: SettingsDep
) -> Response:
    try:
        claims = _claims(token, settings)
        if request.method == "HEAD":
            # Mail scanners probe links before the client opens them: answer, record nothing.
            return Response(status_code=200, media_type="text/html")
        sentiment = await service.answer(session, claims=claims, value=value)
    except tokens.InvalidToken as invalid:
        return _invalid(request, invalid.reason)
    except service.UnknownAnswer:
        text = TEXTS[claims.language]
        return _page(request, "invalid.html", claims.language, 422, message=text["bad_value"])
    return _page(
        request,
        "thanks.html",
        claims.language,
        negative=sentiment is Sentiment.negative,
        saved=False,
        page_url=f"/s/{token}",
    )


@pages.post("/s/{token}/comment", response_class=HTMLResponse)
async def comment_page(
    token: str,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    comment: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    try:
        claims = _claims(token, settings)
        if comment.strip():
            await service.save_comment(session, claims=claims, comment=comment.strip())
    except tokens.InvalidToken as invalid:
        return _invalid(request, invalid.reason)
    return _page(
        request, "thanks.html", claims.language, negative=False, saved=True, page_url=f"/s/{token}"
    )
