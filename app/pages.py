"""Client-facing HTML pages (survey and follow-up status): templates and their words.

Server-rendered, no JavaScript, no external assets; English and Russian.
"""

from enum import StrEnum
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from app.config import Settings

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")


# The language of the pages (and of the tokens that link to them). No docstring: an enum's
# docstring would become its description in the OpenAPI schema.
class Language(StrEnum):
    en = "en"
    ru = "ru"


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
        "factors_question_negative": "What went wrong? Tap all that apply.",
        "factors_question": "What made it so? Tap all that apply.",
        "lost_time_question": "How much of your working time did it cost you?",
        "send": "Send",
        "comment_saved": "Thank you, we have your comment.",
        "change_answer": "Clicked the wrong answer?",
        "change_link": "Choose again",
        "invalid_title": "This link does not work",
        "malformed": "The link is incomplete or was changed. Please use the link exactly as "
        "you received it.",
        "expired": "The link has expired. Thank you all the same.",
        "gone": "What this link was about is no longer kept here, so there is nothing more to "
        "see or answer. Thank you all the same.",
        "bad_value": "That answer is not one of the choices.",
        "low": "Very bad",
        "high": "Very good",
        "status_title": "Where your request stands",
        "status_now": "Status",
        "status_open": "Received: we will get back to you",
        "status_acknowledged": "We are on it",
        "status_in_progress": "Being worked on",
        "status_resolved": "Solved",
        "status_closed": "Closed",
        "status_reopened": "Opened again: we are on it",
        "messages": "Messages from us",
        "no_messages": "No messages yet.",
        "next_update": "Next update by",
        "last_update": "Last update",
        "no_update_yet": "No update yet.",
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
        "factors_question_negative": "Что пошло не так? Отметьте всё, что подходит.",
        "factors_question": "Что на это повлияло? Отметьте всё, что подходит.",
        "lost_time_question": "Сколько рабочего времени это у вас отняло?",
        "send": "Отправить",
        "comment_saved": "Спасибо, ваш комментарий получен.",
        "change_answer": "Ошиблись с ответом?",
        "change_link": "Выбрать снова",
        "invalid_title": "Ссылка не работает",
        "malformed": "Ссылка неполная или изменена. Откройте её в точности как получили.",
        "expired": "Срок действия ссылки истёк. Всё равно спасибо.",
        "gone": "То, о чём была эта ссылка, здесь больше не хранится: смотреть и отвечать "
        "больше не на что. Всё равно спасибо.",
        "bad_value": "Такого варианта ответа нет.",
        "low": "Очень плохо",
        "high": "Очень хорошо",
        "status_title": "Состояние вашего обращения",
        "status_now": "Статус",
        "status_open": "Получено: мы свяжемся с вами",
        "status_acknowledged": "Мы занимаемся этим",
        "status_in_progress": "В работе",
        "status_resolved": "Решено",
        "status_closed": "Закрыто",
        "status_reopened": "Открыто снова: мы занимаемся этим",
        "messages": "Наши сообщения",
        "no_messages": "Сообщений пока нет.",
        "next_update": "Следующее обновление до",
        "last_update": "Последнее обновление",
        "no_update_yet": "Обновлений пока не было.",
    },
}


def render(
    request: Request, name: str, language: Language, status_code: int = 200, **context: Any
) -> HTMLResponse:
    """A client-facing page, never cached, never leaking its URL as a referrer."""
    text = TEXTS[language]
    return templates.TemplateResponse(
        request,
        name,
        {"lang": language.value, "text": text, "title": text["title"], **context},
        status_code=status_code,
        headers={"cache-control": "no-store", "referrer-policy": "no-referrer"},
    )


def signing_key(settings: Settings) -> bytes:
    """The key page tokens are signed with."""
    return settings.secret_key.get_secret_value().encode()


def public_base_url(request: Request, settings: Settings) -> str:
    """Where clients reach the service: MOT_PUBLIC_URL, else the URL the request came to."""
    return (settings.public_url or str(request.base_url)).rstrip("/")
