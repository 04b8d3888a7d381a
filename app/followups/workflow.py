"""The follow-up workflow: statuses and the moves allowed between them (pure)."""

from enum import StrEnum


class FollowUpStatus(StrEnum):
    """Where a follow-up stands in its workflow."""

    open = "open"
    acknowledged = "acknowledged"
    in_progress = "in_progress"
    resolved = "resolved"
    closed = "closed"
    reopened = "reopened"


class FollowUpReason(StrEnum):
    """What opened a follow-up."""

    negative_rating = "negative_rating"
    complaint = "complaint"
    manual = "manual"


# Solve first, look for causes afterwards: a root cause can be set only once resolved.
TRANSITIONS: dict[FollowUpStatus, frozenset[FollowUpStatus]] = {
    FollowUpStatus.open: frozenset(
        {FollowUpStatus.acknowledged, FollowUpStatus.in_progress, FollowUpStatus.resolved}
    ),
    FollowUpStatus.acknowledged: frozenset({FollowUpStatus.in_progress, FollowUpStatus.resolved}),
    FollowUpStatus.in_progress: frozenset({FollowUpStatus.resolved}),
    FollowUpStatus.resolved: frozenset({FollowUpStatus.closed, FollowUpStatus.reopened}),
    FollowUpStatus.closed: frozenset({FollowUpStatus.reopened}),
    FollowUpStatus.reopened: frozenset(
        {FollowUpStatus.acknowledged, FollowUpStatus.in_progress, FollowUpStatus.resolved}
    ),
}
ROOT_CAUSE_STATUSES = frozenset({FollowUpStatus.resolved, FollowUpStatus.closed})


def allowed(current: FollowUpStatus) -> list[FollowUpStatus]:
    """The statuses a follow-up in `current` may move to, in workflow order."""
    return [status for status in FollowUpStatus if status in TRANSITIONS[current]]


def can_move(current: FollowUpStatus, target: FollowUpStatus) -> bool:
    return target in TRANSITIONS[current]
