"""Promises of news: a follow-up's `next_update_at` tells the client when they will hear
from us next, and a promise is kept when news reaches them by then.

News is what the client sees on their status page: a message written for them, or the
problem resolved or closed (the status they read changes). A step that makes a promise may
bring news itself ("we are on it; next update by Friday"); the promise is kept only by news
that comes after it. Several promises made before the next news are all settled by it.
Times are calendar hours: a promise names a clock time, not working hours.
"""

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from app.followups.workflow import FollowUpStatus

NEWS_STATUSES = frozenset({FollowUpStatus.resolved.value, FollowUpStatus.closed.value})


class Outcome(enum.StrEnum):
    kept = "kept"
    missed = "missed"
    pending = "pending"
    """Not due yet, and no news since."""


@dataclass(frozen=True, slots=True)
class Step:
    """What a promise needs to know of one step of a follow-up."""

    at: datetime
    status: str
    client_message: str | None
    next_update_at: datetime | None

    @property
    def is_news(self) -> bool:
        return self.client_message is not None or self.status in NEWS_STATUSES


@dataclass(frozen=True, slots=True)
class Promise:
    made_at: datetime
    due_at: datetime
    news_at: datetime | None
    """The first news after the promise was made; None while there has been none."""
    outcome: Outcome

    def waited_hours(self, now: datetime) -> float | None:
        """Hours from the promise to the news, or so far while the client still waits past
        the promised time; None for a promise not due yet without news."""
        if self.outcome is Outcome.pending:
            return None
        until = self.news_at if self.news_at is not None else now
        return (until - self.made_at).total_seconds() / 3600


def promises(steps: Iterable[Step], *, now: datetime) -> list[Promise]:
    """Every promise made by the steps (in the order they happened), with its outcome."""
    ordered = sorted(steps, key=lambda step: step.at)
    found: list[Promise] = []
    for position, step in enumerate(ordered):
        if step.next_update_at is None:
            continue
        news_at = next((later.at for later in ordered[position + 1 :] if later.is_news), None)
        found.append(
            Promise(step.at, step.next_update_at, news_at, _outcome(step, news_at, now=now))
        )
    return found


def _outcome(step: Step, news_at: datetime | None, *, now: datetime) -> Outcome:
    due = step.next_update_at
    assert due is not None
    if news_at is not None:
        return Outcome.kept if news_at <= due else Outcome.missed
    return Outcome.missed if now > due else Outcome.pending


def update_overdue(
    *,
    next_update_at: datetime | None,
    promised_at: datetime | None,
    last_news_at: datetime | None,
    now: datetime,
) -> bool:
    """The promised time has passed and the client has had no news since the promise."""
    if next_update_at is None or promised_at is None or now <= next_update_at:
        return False
    return last_news_at is None or last_news_at <= promised_at


@dataclass(frozen=True, slots=True)
class Tally:
    """Promises of a group of follow-ups, counted."""

    made: int
    kept: int
    missed: int
    pending: int
    waits: Sequence[float]
    """Hours each client waited for news (so far, where they still wait past the time)."""

    @property
    def kept_share(self) -> float | None:
        """Kept among those decided (kept or missed); None while none is."""
        decided = self.kept + self.missed
        return self.kept / decided if decided else None


def tally(found: Iterable[Promise], *, now: datetime) -> Tally:
    listed = list(found)
    outcomes = [promise.outcome for promise in listed]
    waits = [wait for promise in listed if (wait := promise.waited_hours(now)) is not None]
    return Tally(
        made=len(listed),
        kept=outcomes.count(Outcome.kept),
        missed=outcomes.count(Outcome.missed),
        pending=outcomes.count(Outcome.pending),
        waits=waits,
    )
