"""The follow-up workflow: statuses and the moves allowed between them (pure)."""

from enum import StrEnum


class Status(StrEnum):
    open = "open"
    acknowledged = "acknowledged"
    in_progress = "in_progress"
    resolved = "resolved"
    closed = "closed"
    reopened = "reopened"


class Reason(StrEnum):
    negative_rating = "negative_rating"
    complaint = "complaint"
    manual = "manual"


# Solve first, look for causes afterwards: a root cause can be set only once resolved.
TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.open: frozenset({Status.acknowledged, Status.in_progress, Status.resolved}),
    Status.acknowledged: frozenset({Status.in_progress, Status.resolved}),
    Status.in_progress: frozenset({Status.resolved}),
    Status.resolved: frozenset({Status.closed, Status.reopened}),
    Status.closed: frozenset({Status.reopened}),
    Status.reopened: frozenset({Status.acknowledged, Status.in_progress, Status.resolved}),
}
ROOT_CAUSE_STATUSES = frozenset({Status.resolved, Status.closed})


def allowed(current: Status) -> list[Status]:
    """The statuses a follow-up in `current` may move to, in workflow order."""
    return [status for status in Status if status in TRANSITIONS[current]]


def can_move(current: Status, target: Status) -> bool:
    return target in TRANSITIONS[current]
