"""Factors: what a client may say went wrong or well, per sentiment of the answer.

A moment lists its own (`Moment.factors`) or, while it lists none, takes its channel's
defaults below. A factor's key is what answers carry and what the counts are kept by: a
moment that renames a label keeps its counts, one that drops a key stops offering it.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from app.scales import Sentiment

MAX_PER_SENTIMENT = 10
"""Factors a moment may list per sentiment: a client reads them all before choosing."""
MAX_PICKED = 5
"""Factors one answer may pick."""
MAX_LOST_MINUTES = 480
"""Largest time lost an answer may give: a working day. Longer losses are rare, and
are better told in words; a typo of an extra digit would weigh on a mean for months."""


@dataclass(frozen=True, slots=True)
class Factor:
    key: str
    sentiment: Sentiment
    en: str
    ru: str

    def as_json(self) -> dict[str, Any]:
        """As stored in `Moment.factors` and published."""
        return {
            "key": self.key,
            "sentiment": self.sentiment.value,
            "label": {"en": self.en, "ru": self.ru},
        }


def _factors(sentiment: Sentiment, *labels: tuple[str, str, str]) -> list[Factor]:
    return [Factor(key, sentiment, en, ru) for key, en, ru in labels]


_NEGATIVE_COMMON = (
    ("not-solved", "My problem was not solved", "Проблему не решили"),
    ("had-to-repeat", "I had to repeat myself", "Пришлось повторять одно и то же"),
    ("unclear-answer", "The answer was unclear", "Ответ был непонятным"),
)
_POSITIVE_COMMON = (
    ("solved", "My problem was solved", "Проблему решили"),
    ("quick", "Quick", "Быстро"),
    ("friendly", "Friendly and polite", "Вежливо и доброжелательно"),
)
_NEUTRAL = (
    ("took-long", "It took longer than I hoped", "Заняло больше времени, чем хотелось"),
    ("partly-solved", "Only partly solved", "Решили лишь отчасти"),
)
_CHANNEL_NEGATIVE: dict[str, tuple[tuple[str, str, str], ...]] = {
    "call": (
        ("waited-too-long", "I waited too long on the line", "Слишком долго ждал на линии"),
        ("transferred", "I was passed from one to another", "Переводили от одного к другому"),
    ),
    "email": (
        ("slow-reply", "The reply took too long", "Ответ пришёл слишком поздно"),
        ("template-reply", "A template reply, not about my case", "Шаблонный ответ не по делу"),
    ),
    "portal": (
        ("hard-to-find", "Hard to find what I needed", "Трудно найти нужное"),
        ("site-error", "The site did not work", "Сайт не работал"),
    ),
    "chat": (
        ("waited-too-long", "I waited too long for an answer", "Слишком долго ждал ответа"),
        ("bot-loop", "The bot went round in circles", "Бот ходил по кругу"),
    ),
    "visit": (
        ("waited-too-long", "I waited too long", "Слишком долго ждал"),
        ("came-again", "I had to come again", "Пришлось прийти ещё раз"),
    ),
    "other": (("waited-too-long", "I waited too long", "Слишком долго ждал"),),
}


def _defaults(channel: str) -> list[Factor]:
    negative = (*_CHANNEL_NEGATIVE.get(channel, _CHANNEL_NEGATIVE["other"]), *_NEGATIVE_COMMON)
    return [
        *_factors(Sentiment.negative, *negative),
        *_factors(Sentiment.neutral, *_NEUTRAL),
        *_factors(Sentiment.positive, *_POSITIVE_COMMON),
    ]


DEFAULTS: dict[str, list[Factor]] = {channel: _defaults(channel) for channel in _CHANNEL_NEGATIVE}
"""The factors of a moment that lists none, by the moment's channel."""


def _parsed(stored: Sequence[dict[str, Any]]) -> list[Factor]:
    return [
        Factor(
            item["key"],
            Sentiment(item["sentiment"]),
            item["label"]["en"],
            item["label"].get("ru") or item["label"]["en"],
        )
        for item in stored
    ]


def of_moment(
    stored: Sequence[dict[str, Any]] | None, *, channel: str, sentiment: Sentiment | None = None
) -> list[Factor]:
    """A moment's factors (its own list, or its channel's defaults while it has none), all
    of them or those of one sentiment, in the order they are offered."""
    factors = _parsed(stored) if stored is not None else DEFAULTS.get(channel, DEFAULTS["other"])
    return [f for f in factors if sentiment is None or f.sentiment is sentiment]


def offered(stored: Sequence[dict[str, Any]] | None, *, channel: str) -> dict[str, Sentiment]:
    """The sentiment of each factor key a moment offers: what an answer's keys are checked
    against."""
    return {factor.key: factor.sentiment for factor in of_moment(stored, channel=channel)}


NOT_OFFERED = "not a factor of this moment"


def misfits(
    keys: Sequence[str], sentiment: Sentiment, offers: dict[str, Sentiment]
) -> list[tuple[str, str]]:
    """(key, reason) of every picked key the moment does not offer for this sentiment."""
    found = []
    for key in keys:
        of = offers.get(key)
        if of is None:
            found.append((key, NOT_OFFERED))
        elif of is not sentiment:
            found.append((key, f"a {of.value} factor, given with a {sentiment.value} answer"))
    return found
