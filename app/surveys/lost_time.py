"""The time a client says an experience cost them, asked on the survey page as a few
choices rather than a number: a person estimates "about an hour", not "52 minutes".

Each choice is stored as the minutes it stands for (`lost_minutes`), so the page's answers
and the API's integers are counted together. The values are the middles of the ranges a
person means, kept round so that a mean of them reads as a person would read it.
"""

from dataclasses import dataclass

from app.surveys.tokens import Language


@dataclass(frozen=True, slots=True)
class LostTimeChoice:
    minutes: int
    en: str
    ru: str

    def label(self, language: Language) -> str:
        return self.ru if language is Language.ru else self.en


CHOICES: tuple[LostTimeChoice, ...] = (
    LostTimeChoice(0, "None", "Нисколько"),
    LostTimeChoice(10, "Under 15 minutes", "Меньше 15 минут"),
    LostTimeChoice(30, "15 to 45 minutes", "15–45 минут"),
    LostTimeChoice(60, "About an hour", "Около часа"),
    LostTimeChoice(120, "Two hours or so", "Часа два"),
    LostTimeChoice(240, "Half a day", "Полдня"),
    LostTimeChoice(480, "A whole day", "Целый день"),
)
_BY_MINUTES = {choice.minutes: choice for choice in CHOICES}


def chosen(form_value: str) -> int | None:
    """The minutes of a choice as the page posts it, or None for no choice (or one the page
    never offered: a form that was changed by hand is not refused, its choice is ignored)."""
    if not form_value.isdigit():
        return None
    minutes = int(form_value)
    return minutes if minutes in _BY_MINUTES else None
