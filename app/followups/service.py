"""Follow-ups: opened on bad experiences, moved through the workflow, every step kept."""

import json
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, cast

from pydantic import TypeAdapter
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    Select,
    String,
    Table,
    Text,
    and_,
    bindparam,
    func,
    insert,
    literal,
    or_,
    select,
    true,
    tuple_,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload
from sqlalchemy.sql.dml import Insert, ReturningInsert

from app import metrics
from app.db import UtcDateTime, one_of, utcnow
from app.errors import Conflict, ErrorDetail, NotFound, ValidationFailed
from app.followups import promises, workflow
from app.followups.models import FollowUp, FollowUpEvent
from app.followups.schemas import (
    Durations,
    FollowUpCreate,
    FollowUpDetail,
    FollowUpEventCreate,
    FollowUpEventRead,
    FollowUpFigures,
    FollowUpInsights,
    FollowUpRead,
    FollowUpSummary,
    PromiseFigures,
)
from app.followups.targets import Targets, working_hours_between
from app.followups.workflow import FollowUpReason, FollowUpStatus
from app.inputs import Timestamp
from app.moments.models import Moment
from app.pagination import RowId, decode_cursor, encode_cursor
from app.touchpoints.models import Touchpoint
from app.webhooks import service as webhooks_service
from app.webhooks.schemas import EventType

SYSTEM_ACTOR = "mot"


class StoredTouchpoint(NamedTuple):
    """What a follow-up takes from its touchpoint's row: its id, moment and team."""

    id: int
    moment_id: int
    team: str | None


@dataclass(frozen=True, slots=True)
class BadExperience:
    """A touchpoint that calls for a follow-up, and why."""

    external_id: str
    reason: FollowUpReason
    row: StoredTouchpoint | None = None
    """The touchpoint's row, when the caller has just written it: not read back then."""


class _Opening(NamedTuple):
    """A follow-up to open: the touchpoint's row id, moment, team and the reason."""

    touchpoint_id: int
    moment_id: int
    team: str | None
    reason: str


class _Opened(NamedTuple):
    follow_up_id: int
    touchpoint_id: int


class _Times(NamedTuple):
    """When the follow-ups of one call open, and are due: the same for all of them."""

    now: datetime
    acknowledge_due: datetime
    resolve_due: datetime


async def open_for(
    session: AsyncSession, experiences: Sequence[BadExperience], *, targets: Targets
) -> None:
    """Open a follow-up for each bad experience whose moment asks for it, unless it has one."""
    if not experiences:
        return
    reasons = {experience.external_id: experience.reason for experience in experiences}
    rows_seen = await _rows_to_follow(session, experiences)
    if not rows_seen:
        return
    openings = [
        _Opening(touchpoint_id, moment_id, team, reasons[external_id].value)
        for touchpoint_id, external_id, moment_id, team in rows_seen
    ]
    now = utcnow()
    # Every follow-up of the batch opens at the same time, so their due times are the same.
    times = _Times(now, targets.acknowledge_due(now), targets.resolve_due(now))
    if session.get_bind().dialect.name == "postgresql":
        opened = await _open_on_postgresql(session, openings, times)
    else:
        opened = await _open_on_sqlite(session, openings, times)
    external_ids = {touchpoint_id: external_id for touchpoint_id, external_id, _, _ in rows_seen}
    opened_by_reason = Counter(reasons[external_ids[row.touchpoint_id]] for row in opened)
    for reason, count in opened_by_reason.items():
        metrics.count_on_commit(session, metrics.FOLLOW_UPS_OPENED.labels(reason.value), count)
    await webhooks_service.enqueue(
        session,
        event=EventType.follow_up_opened,
        payloads=[
            {
                "follow_up": row.follow_up_id,
                "touchpoint": external_ids[row.touchpoint_id],
                "reason": reasons[external_ids[row.touchpoint_id]].value,
            }
            for row in opened
        ],
    )


async def _rows_to_follow(
    session: AsyncSession, experiences: Sequence[BadExperience]
) -> list[tuple[int, str, int, str | None]]:
    """(row id, external id, moment id, team) of the experiences whose moment opens
    follow-ups by itself, in row id order."""
    known = [(e.external_id, e.row) for e in experiences if e.row is not None]
    if len(known) < len(experiences):
        # Looking the rows up by external id probes every partition's index: only done for
        # touchpoints the caller did not just write.
        found = await session.execute(
            select(Touchpoint.id, Touchpoint.external_id, Touchpoint.moment_id, Touchpoint.team)
            .join(Moment, Moment.id == Touchpoint.moment_id)
            .where(
                one_of(session, Touchpoint.external_id, [e.external_id for e in experiences]),
                Moment.auto_follow_up,
            )
            .order_by(Touchpoint.id)
        )
        return [(row[0], row[1], row[2], row[3]) for row in found.all()]
    moment_ids = sorted({row.moment_id for _, row in known})
    following = set(
        await session.scalars(
            select(Moment.id).where(Moment.id.in_(moment_ids), Moment.auto_follow_up)
        )
    )
    return sorted(
        (row.id, external_id, row.moment_id, row.team)
        for external_id, row in known
        if row.moment_id in following
    )


_follow_up = cast(Table, FollowUp.__table__)
_follow_up_event = cast(Table, FollowUpEvent.__table__)
_OPENED_COLUMNS = (
    "touchpoint_id",
    "moment_id",
    "team",
    "reason",
    "status",
    "opened_at",
    "acknowledge_due_at",
    "resolve_due_at",
    "updated_at",
)


def _opening_statement() -> Select[int, int]:
    """Follow-ups and their first events in one PostgreSQL statement of constant text.

    The follow-ups come as one array parameter per column, whatever their number: the
    text is the same for every batch, so the server can prepare it, where a multi-row
    VALUES would be a statement of thousands of parameters to parse anew for every batch.
    """
    now = bindparam("now", type_=UtcDateTime())
    bad = (
        func.unnest(
            bindparam("touchpoint_ids", type_=postgresql.ARRAY(BigInteger)),
            bindparam("moment_ids", type_=postgresql.ARRAY(Integer)),
            bindparam("teams", type_=postgresql.ARRAY(String)),
            bindparam("reasons", type_=postgresql.ARRAY(String)),
        )
        .table_valued("touchpoint_id", "moment_id", "team", "reason")
        .render_derived(name="bad")
    )
    opened = (
        postgresql.insert(_follow_up)
        .from_select(
            list(_OPENED_COLUMNS),
            select(
                bad.c.touchpoint_id,
                bad.c.moment_id,
                bad.c.team,
                bad.c.reason,
                literal(FollowUpStatus.open.value),
                now,
                bindparam("acknowledge_due", type_=UtcDateTime()),
                bindparam("resolve_due", type_=UtcDateTime()),
                now,
            )
            # In touchpoint order, the same for every request: two requests opening
            # follow-ups on the same touchpoints wait for each other, never deadlock.
            .order_by(bad.c.touchpoint_id),
        )
        .on_conflict_do_nothing(index_elements=["touchpoint_id"])
        .returning(_follow_up.c.id, _follow_up.c.touchpoint_id)
        .cte("opened")
    )
    first_events = (
        insert(_follow_up_event)
        .from_select(
            ["follow_up_id", "status", "actor", "at"],
            select(opened.c.id, literal(FollowUpStatus.open.value), literal(SYSTEM_ACTOR), now),
        )
        .cte("first_events")
    )
    return select(opened.c.id, opened.c.touchpoint_id).add_cte(first_events)


_OPENING = _opening_statement()


async def _open_on_postgresql(
    session: AsyncSession, openings: Sequence[_Opening], times: _Times
) -> list[_Opened]:
    columns = {
        "touchpoint_ids": [row.touchpoint_id for row in openings],
        "moment_ids": [row.moment_id for row in openings],
        "teams": [row.team for row in openings],
        "reasons": [row.reason for row in openings],
    }
    result = await session.execute(_OPENING, {**columns, **times._asdict()})
    return [_Opened(*row) for row in result.all()]


def _sqlite_opening_statements() -> tuple[ReturningInsert[int, int], Insert]:
    """The same two inserts on SQLite, which has neither arrays nor inserts in a WITH: the
    follow-ups come as one JSON text of rows, their first events as one of their ids."""
    bad = func.json_each(bindparam("rows", type_=Text)).table_valued("value")

    def field(position: int) -> ColumnElement[Any]:
        return func.json_extract(bad.c.value, f"$[{position}]")

    now = bindparam("now", type_=UtcDateTime())
    opened = (
        sqlite.insert(_follow_up)
        .from_select(
            list(_OPENED_COLUMNS),
            select(
                *(field(position) for position in range(4)),
                literal(FollowUpStatus.open.value),
                now,
                bindparam("acknowledge_due", type_=UtcDateTime()),
                bindparam("resolve_due", type_=UtcDateTime()),
                now,
            )
            # WHERE keeps SQLite from reading ON CONFLICT as a join clause.
            .where(true()),
        )
        .on_conflict_do_nothing(index_elements=["touchpoint_id"])
        .returning(_follow_up.c.id, _follow_up.c.touchpoint_id)
    )
    ids = func.json_each(bindparam("ids", type_=Text)).table_valued("value")
    first_events = insert(_follow_up_event).from_select(
        ["follow_up_id", "status", "actor", "at"],
        select(ids.c.value, literal(FollowUpStatus.open.value), literal(SYSTEM_ACTOR), now),
    )
    return opened, first_events


_SQLITE_OPENING, _SQLITE_FIRST_EVENTS = _sqlite_opening_statements()


async def _open_on_sqlite(
    session: AsyncSession, openings: Sequence[_Opening], times: _Times
) -> list[_Opened]:
    rows = json.dumps([tuple(row) for row in openings])
    result = await session.execute(_SQLITE_OPENING, {"rows": rows, **times._asdict()})
    opened = sorted(_Opened(follow_up, touchpoint) for follow_up, touchpoint in result.all())
    if opened:
        ids = json.dumps([row.follow_up_id for row in opened])
        await session.execute(_SQLITE_FIRST_EVENTS, {"ids": ids, "now": times.now})
    return opened


async def create(
    session: AsyncSession, *, data: FollowUpCreate, targets: Targets
) -> FollowUpDetail:
    """Open a follow-up by hand; a touchpoint has at most one."""
    # Locked against deletion, as a foreign key would: the follow-up never outlives an
    # erasure or a purge running meanwhile.
    touchpoint = await session.scalar(
        select(Touchpoint)
        .where(Touchpoint.external_id == data.touchpoint)
        .with_for_update(key_share=True)
    )
    if touchpoint is None:
        raise NotFound(f"No touchpoint with id '{data.touchpoint}'.")
    existing = await session.scalar(
        select(FollowUp.id).where(FollowUp.touchpoint_id == touchpoint.id)
    )
    if existing is not None:
        raise Conflict(
            f"Touchpoint '{data.touchpoint}' already has follow-up {existing}; "
            "reopen that one instead.",
            details=[
                ErrorDetail(field="body.touchpoint", message="has a follow-up", type="conflict")
            ],
        )
    now = utcnow()
    follow_up = FollowUp(
        touchpoint_id=touchpoint.id,
        moment_id=touchpoint.moment_id,
        team=touchpoint.team,
        reason=FollowUpReason.manual.value,
        status=FollowUpStatus.open.value,
        opened_at=now,
        acknowledge_due_at=targets.acknowledge_due(now),
        resolve_due_at=targets.resolve_due(now),
        updated_at=now,
    )
    session.add(follow_up)
    await session.flush()
    session.add(
        FollowUpEvent(
            follow_up_id=follow_up.id,
            status=FollowUpStatus.open.value,
            actor=data.actor,
            at=now,
            note=data.note,
        )
    )
    await session.flush()
    metrics.count_on_commit(session, metrics.FOLLOW_UPS_OPENED.labels(FollowUpReason.manual.value))
    await webhooks_service.enqueue(
        session,
        event=EventType.follow_up_opened,
        payloads=[{"follow_up": follow_up.id, "touchpoint": data.touchpoint, "reason": "manual"}],
    )
    return await get(session, follow_up_id=follow_up.id)


async def summaries_for(
    session: AsyncSession, *, external_ids: Sequence[str]
) -> dict[str, FollowUpSummary]:
    """The follow-up of each of these touchpoints that has one, by touchpoint id."""
    if not external_ids:
        return {}
    rows = await session.execute(
        select(FollowUp, Touchpoint.external_id)
        .join(Touchpoint, Touchpoint.id == FollowUp.touchpoint_id)
        .where(one_of(session, Touchpoint.external_id, external_ids))
    )
    now = utcnow()
    return {
        external_id: FollowUpSummary(
            id=follow_up.id,
            status=FollowUpStatus(follow_up.status),
            overdue=is_overdue(follow_up, now=now),
        )
        for follow_up, external_id in rows.all()
    }


def _read_query() -> Select[FollowUp, str, str]:
    return (
        select(FollowUp, Touchpoint.external_id, Moment.key)
        .join(Touchpoint, Touchpoint.id == FollowUp.touchpoint_id)
        .join(Moment, Moment.id == FollowUp.moment_id)
    )


def _fields(follow_up: FollowUp, touchpoint: str, moment: str) -> dict[str, Any]:
    status = FollowUpStatus(follow_up.status)
    return {
        "id": follow_up.id,
        "touchpoint": touchpoint,
        "moment": moment,
        "team": follow_up.team,
        "reason": follow_up.reason,
        "status": status,
        "opened_at": follow_up.opened_at,
        "acknowledged_at": follow_up.acknowledged_at,
        "resolved_at": follow_up.resolved_at,
        "closed_at": follow_up.closed_at,
        "next_update_at": follow_up.next_update_at,
        "update_overdue": _update_overdue(follow_up, now=utcnow()),
        "last_update_at": follow_up.last_news_at,
        "acknowledge_due_at": follow_up.acknowledge_due_at,
        "resolve_due_at": follow_up.resolve_due_at,
        "overdue": is_overdue(follow_up, now=utcnow()),
        "root_cause": follow_up.root_cause,
        "allowed_transitions": workflow.allowed(status),
    }


async def get(session: AsyncSession, *, follow_up_id: int) -> FollowUpDetail:
    row = (
        await session.execute(
            _read_query().where(FollowUp.id == follow_up_id).options(selectinload(FollowUp.events))
        )
    ).one_or_none()
    if row is None:
        raise NotFound(f"No follow-up {follow_up_id}.")
    follow_up, touchpoint, moment = row
    events = [FollowUpEventRead.model_validate(e, from_attributes=True) for e in follow_up.events]
    return FollowUpDetail(**_fields(follow_up, touchpoint, moment), events=events)


AWAITING_ACKNOWLEDGEMENT = (FollowUpStatus.open.value, FollowUpStatus.reopened.value)
SETTLED = (FollowUpStatus.resolved.value, FollowUpStatus.closed.value)


def is_overdue(follow_up: FollowUp, *, now: datetime) -> bool:
    """Not acknowledged, or not resolved, by its due time."""
    return (
        follow_up.status in AWAITING_ACKNOWLEDGEMENT and now > follow_up.acknowledge_due_at
    ) or (follow_up.status not in SETTLED and now > follow_up.resolve_due_at)


def _update_overdue(follow_up: FollowUp, *, now: datetime) -> bool:
    return promises.update_overdue(
        next_update_at=follow_up.next_update_at,
        promised_at=follow_up.promised_at,
        last_news_at=follow_up.last_news_at,
        now=now,
    )


def _update_overdue_clause(now: datetime) -> ColumnElement[bool]:
    """`promises.update_overdue` as a condition on the row."""
    return and_(
        FollowUp.next_update_at < now,
        FollowUp.promised_at.is_not(None),
        or_(FollowUp.last_news_at.is_(None), FollowUp.last_news_at <= FollowUp.promised_at),
    )


async def take_newly_overdue_updates(
    session: AsyncSession, *, now: datetime
) -> list[dict[str, Any]]:
    """The follow-ups whose promised update is overdue and not yet announced, as alert
    payloads; each is marked announced, so that a promise is announced once."""
    rows = await session.execute(
        select(FollowUp, Moment.key)
        .join(Moment, Moment.id == FollowUp.moment_id)
        .where(
            _update_overdue_clause(now),
            or_(
                FollowUp.overdue_alerted_at.is_(None),
                FollowUp.overdue_alerted_at < FollowUp.promised_at,
            ),
        )
        .order_by(FollowUp.id)
        .with_for_update(of=FollowUp)
    )
    payloads = []
    for follow_up, moment in rows:
        follow_up.overdue_alerted_at = now
        payloads.append(
            {
                "follow_up": follow_up.id,
                "moment": moment,
                "team": follow_up.team,
                "status": follow_up.status,
                "promised_at": _stamp(follow_up.promised_at),
                "next_update_at": _stamp(follow_up.next_update_at),
                "last_update_at": _stamp(follow_up.last_news_at),
            }
        )
    await session.flush()
    return payloads


def _stamp(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _overdue_clause(now: datetime) -> ColumnElement[bool]:
    return or_(
        and_(FollowUp.status.in_(AWAITING_ACKNOWLEDGEMENT), FollowUp.acknowledge_due_at < now),
        and_(FollowUp.status.not_in(SETTLED), FollowUp.resolve_due_at < now),
    )


@dataclass(frozen=True, slots=True)
class FollowUpFilter:
    status: FollowUpStatus | None = None
    moment: str | None = None
    team: str | None = None
    opened_from: datetime | None = None
    opened_to: datetime | None = None
    overdue: bool | None = None
    update_overdue: bool | None = None


async def list_follow_ups(
    session: AsyncSession, *, filters: FollowUpFilter, cursor: str | None, limit: int
) -> tuple[list[FollowUpRead], str | None]:
    """One page, newest first; the cursor is the (opened_at, id) of the page's last row."""
    query = _read_query().order_by(FollowUp.opened_at.desc(), FollowUp.id.desc())
    if filters.status is not None:
        query = query.where(FollowUp.status == filters.status.value)
    if filters.moment is not None:
        query = query.where(Moment.key == filters.moment)
    if filters.team is not None:
        query = query.where(FollowUp.team == filters.team)
    if filters.opened_from is not None:
        query = query.where(FollowUp.opened_at >= filters.opened_from)
    if filters.opened_to is not None:
        query = query.where(FollowUp.opened_at < filters.opened_to)
    if filters.overdue is not None:
        overdue = _overdue_clause(utcnow())
        query = query.where(overdue if filters.overdue else ~overdue)
    if filters.update_overdue is not None:
        late = _update_overdue_clause(utcnow())
        query = query.where(late if filters.update_overdue else ~late)
    if cursor is not None:
        opened_at, row_id = decode_cursor(cursor, _position)
        query = query.where(tuple_(FollowUp.opened_at, FollowUp.id) < (opened_at, row_id))
    rows = (await session.execute(query.limit(limit + 1))).all()
    page = [FollowUpRead(**_fields(*row)) for row in rows[:limit]]
    if len(rows) <= limit:
        return page, None
    last = rows[limit - 1][0]
    return page, encode_cursor(last.opened_at.isoformat(), last.id)


_position = TypeAdapter(tuple[Timestamp, RowId])
"""The list's sort key in its cursors: `opened_at` and the row's number."""


async def add_event(
    session: AsyncSession, *, follow_up_id: int, event: FollowUpEventCreate, targets: Targets
) -> FollowUpDetail:
    """Move the follow-up to `event.status`; illegal moves are refused naming the legal ones."""
    follow_up = await session.scalar(
        select(FollowUp).where(FollowUp.id == follow_up_id).with_for_update()
    )
    if follow_up is None:
        raise NotFound(f"No follow-up {follow_up_id}.")
    current = FollowUpStatus(follow_up.status)
    if not workflow.can_move(current, event.status):
        legal = ", ".join(workflow.allowed(current)) or "none"
        raise Conflict(
            f"A follow-up that is {current.value} cannot move to {event.status.value}; "
            f"allowed: {legal}.",
            details=[
                ErrorDetail(field="body.status", message=f"allowed: {legal}", type="transition")
            ],
        )
    if event.root_cause is not None and event.status not in workflow.ROOT_CAUSE_STATUSES:
        raise ValidationFailed(
            "A root cause is recorded once the problem is resolved, not before.",
            details=[
                ErrorDetail(field="body.root_cause", message="only when resolved", type="order")
            ],
        )
    now = utcnow()
    follow_up.status = event.status.value
    follow_up.updated_at = now
    if event.status is FollowUpStatus.acknowledged and follow_up.acknowledged_at is None:
        follow_up.acknowledged_at = now
    if event.status is FollowUpStatus.resolved:
        follow_up.resolved_at = now
    if event.status is FollowUpStatus.closed:
        follow_up.closed_at = now
    if event.status is FollowUpStatus.reopened:
        # A reopened problem is a fresh promise: acknowledge and solve it in time again.
        follow_up.acknowledge_due_at = targets.acknowledge_due(now)
        follow_up.resolve_due_at = targets.resolve_due(now)
    if event.next_update_at is not None:
        follow_up.next_update_at = event.next_update_at
        follow_up.promised_at = now
    if event.client_message is not None or event.status.value in promises.NEWS_STATUSES:
        follow_up.last_news_at = now
    if event.root_cause is not None:
        follow_up.root_cause = event.root_cause
    session.add(
        FollowUpEvent(
            follow_up_id=follow_up.id,
            status=event.status.value,
            actor=event.actor,
            at=now,
            note=event.note,
            client_message=event.client_message,
            next_update_at=event.next_update_at,
        )
    )
    await session.flush()
    await webhooks_service.enqueue(
        session,
        event=EventType.follow_up_status_changed,
        payloads=[
            {"follow_up": follow_up.id, "status": event.status.value, "previous": current.value}
        ],
    )
    return await get(session, follow_up_id=follow_up.id)


@dataclass(frozen=True, slots=True)
class ClientMessage:
    at: datetime
    text: str


@dataclass(frozen=True, slots=True)
class ClientView:
    """All a client may see of a follow-up: no note, no actor, no root cause, no team."""

    status: FollowUpStatus
    next_update_at: datetime | None
    last_update_at: datetime | None
    messages: list[ClientMessage]


async def link_nonce(session: AsyncSession, *, follow_up_id: int) -> int | None:
    """The random number signed into the follow-up's status link beside its number."""
    return await session.scalar(select(FollowUp.link_nonce).where(FollowUp.id == follow_up_id))


async def client_view(
    session: AsyncSession, *, follow_up_id: int, nonce: int | None
) -> ClientView | None:
    """What the client's status link shows; None when the follow-up it was issued for is
    not stored any more (the number alone is not enough: the nonce must match too)."""
    follow_up = await session.scalar(
        select(FollowUp).where(FollowUp.id == follow_up_id).options(selectinload(FollowUp.events))
    )
    if follow_up is None or follow_up.link_nonce != nonce:
        return None
    return ClientView(
        status=FollowUpStatus(follow_up.status),
        next_update_at=follow_up.next_update_at,
        last_update_at=follow_up.last_news_at,
        messages=[
            ClientMessage(event.at, event.client_message)
            for event in follow_up.events
            if event.client_message
        ],
    )


# --- figures ---


@dataclass(frozen=True, slots=True)
class _Timing:
    moment: str
    team: str | None
    settled: bool
    overdue: bool
    acknowledge_hours: float | None
    resolve_hours: float | None
    acknowledged_in_time: bool | None
    resolved_in_time: bool | None
    promised: Sequence[promises.Promise]
    update_overdue: bool


def _step(event: FollowUpEvent) -> promises.Step:
    return promises.Step(event.at, event.status, event.client_message, event.next_update_at)


def _in_time(done_at: datetime | None, due_at: datetime, now: datetime) -> bool | None:
    """Done by the due time; None while not done and not yet due."""
    if done_at is not None:
        return done_at <= due_at
    return False if now > due_at else None


def _percentile(values: Sequence[float], share: float) -> float | None:
    """Nearest-rank percentile."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def _durations(hours: Sequence[float]) -> Durations:
    return Durations(median=_percentile(hours, 0.5), p90=_percentile(hours, 0.9))


def _promise_figures(timings: Sequence[_Timing], *, now: datetime) -> PromiseFigures:
    counted = promises.tally((promise for t in timings for promise in t.promised), now=now)
    return PromiseFigures(
        made=counted.made,
        kept=counted.kept,
        missed=counted.missed,
        pending=counted.pending,
        kept_share=counted.kept_share,
        updates_overdue=sum(t.update_overdue for t in timings),
        wait_for_news_hours=_durations(counted.waits),
    )


def _figures(key: str | None, timings: Sequence[_Timing], *, now: datetime) -> FollowUpFigures:
    acknowledged = [t.acknowledge_hours for t in timings if t.acknowledge_hours is not None]
    resolved = [t.resolve_hours for t in timings if t.resolve_hours is not None]

    def share(flags: list[bool | None]) -> float | None:
        decided = [flag for flag in flags if flag is not None]
        return sum(decided) / len(decided) if decided else None

    return FollowUpFigures(
        key=key,
        follow_ups=len(timings),
        unsettled=sum(not t.settled for t in timings),
        overdue=sum(t.overdue for t in timings),
        acknowledged=len(acknowledged),
        resolved=len(resolved),
        time_to_acknowledge=_durations(acknowledged),
        time_to_resolve=_durations(resolved),
        acknowledged_within_target=share([t.acknowledged_in_time for t in timings]),
        resolved_within_target=share([t.resolved_in_time for t in timings]),
        promises=_promise_figures(timings, now=now),
    )


def _grouped(
    timings: Sequence[_Timing], key: Callable[[_Timing], str | None], *, now: datetime
) -> list[FollowUpFigures]:
    groups: dict[str, list[_Timing]] = {}
    for timing in timings:
        name = key(timing)
        if name is not None:
            groups.setdefault(name, []).append(timing)
    figures = [_figures(name, members, now=now) for name, members in groups.items()]
    return sorted(figures, key=lambda f: (-f.follow_ups, f.key or ""))


async def figures(
    session: AsyncSession, *, start: datetime, end: datetime, targets: Targets
) -> FollowUpInsights:
    """Counts, times to acknowledge and resolve (working hours), shares within target, and
    the updates promised to clients and kept."""
    rows = await session.execute(
        select(FollowUp, Moment.key)
        .join(Moment, Moment.id == FollowUp.moment_id)
        .where(FollowUp.opened_at >= start, FollowUp.opened_at < end)
        .options(selectinload(FollowUp.events))
    )
    now = utcnow()
    calendar = targets.calendar
    timings = [
        _Timing(
            moment=key,
            team=follow_up.team,
            settled=follow_up.status in SETTLED,
            overdue=is_overdue(follow_up, now=now),
            acknowledge_hours=(
                None
                if follow_up.acknowledged_at is None
                else working_hours_between(follow_up.opened_at, follow_up.acknowledged_at, calendar)
            ),
            resolve_hours=(
                None
                if follow_up.resolved_at is None
                else working_hours_between(follow_up.opened_at, follow_up.resolved_at, calendar)
            ),
            acknowledged_in_time=_in_time(
                follow_up.acknowledged_at, follow_up.acknowledge_due_at, now
            ),
            resolved_in_time=_in_time(follow_up.resolved_at, follow_up.resolve_due_at, now),
            promised=promises.promises(map(_step, follow_up.events), now=now),
            update_overdue=_update_overdue(follow_up, now=now),
        )
        for follow_up, key in rows.all()
    ]
    return FollowUpInsights.model_validate(
        {
            "from": start,
            "to": end,
            "acknowledge_target_hours": targets.acknowledge_hours,
            "resolve_target_hours": targets.resolve_hours,
            "total": _figures(None, timings, now=now),
            "by_moment": _grouped(timings, lambda t: t.moment, now=now),
            "by_team": _grouped(timings, lambda t: t.team, now=now),
        }
    )
