"""Alerts: the ranking's alarms and missed promises pushed as webhook events, once each.

Every period the service ranks the default window (the 30 whole UTC days ending with
today) as `GET /v1/insights/weak-spots` does, and compares each moment's alarms with the
state it stored the time before:

- `confident_problem`: the moment's adjusted negative rate is confidently above its target
  or its scale family's baseline;
- `worsening`: its raw negative rate rose significantly against the previous window;
- `team_named`: a team differs significantly from the other teams of the moment.

An alarm that starts to hold sends one `moment.alert`; one that stops is recorded without
an event, so that it alerts again if it comes back. A follow-up whose promised update has
passed with no news to the client sends one `follow_up.update_overdue` per promise. One
evaluation runs at a time across workers and replicas: a PostgreSQL advisory lock, or
SQLite's single writer, held by the transaction that reads the states and records the new
ones together.
"""

import asyncio
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.alerts.models import MomentAlert
from app.db import Database, utcnow
from app.figures import window
from app.followups import service as followups_service
from app.insights import service as insights_service
from app.insights.schemas import WeakSpot
from app.moments.models import Moment
from app.webhooks import service as webhooks_service
from app.webhooks.schemas import EventType

logger = logging.getLogger(__name__)

ALERT_LOCK = 0x6D6F74_02
"""The PostgreSQL advisory lock held by the one evaluation at work."""
EVERY_MOMENT = 1_000_000
"""As many moments as the catalogue could hold: every ranked moment is looked at."""


class Alarm(NamedTuple):
    moment: str
    kind: str
    team: str
    """The team named, for `team_named`; empty otherwise."""


@dataclass(frozen=True, slots=True)
class Evaluation:
    """What one evaluation sent."""

    moment_alerts: int
    updates_overdue: int


def alarms(spot: WeakSpot) -> dict[Alarm, dict[str, Any]]:
    """The alarms that hold for one ranked moment, with the figures that raise each."""
    found: dict[Alarm, dict[str, Any]] = {}
    if spot.confident_problem:
        found[Alarm(spot.moment, "confident_problem", "")] = {
            "adjusted_negative_rate": spot.adjusted_negative_rate,
            "interval": spot.interval.model_dump(),
            "reference": spot.reference,
            "prob_worse": spot.prob_worse,
            "q_value": spot.q_value,
            "responses": spot.responses,
            "negatives": spot.negatives,
        }
    if spot.trend.worsening:
        found[Alarm(spot.moment, "worsening", "")] = {
            "adjusted_negative_rate": spot.adjusted_negative_rate,
            "previous_adjusted_negative_rate": spot.trend.previous_adjusted_negative_rate,
            "change": spot.trend.change,
            "p_value": spot.trend.p_value,
            "q_value": spot.trend.q_value,
        }
    consistency = spot.consistency
    if consistency is not None and consistency.inconsistent_teams:
        for outlier in consistency.outliers:
            found[Alarm(spot.moment, "team_named", outlier.team)] = {
                "q_value": consistency.q_value,
                **outlier.model_dump(),
            }
    return found


async def _locked(session: AsyncSession) -> bool:
    if session.get_bind().dialect.name != "postgresql":
        return True  # the write transaction holds SQLite's one write lock already
    return bool(await session.scalar(select(func.pg_try_advisory_xact_lock(ALERT_LOCK))))


async def evaluate(
    session: AsyncSession, *, now: datetime, base_url: str | None
) -> Evaluation | None:
    """Rank the default window, send the alarms that started to hold and the promises newly
    missed, and record the states; None when another evaluation holds the lock."""
    if not await _locked(session):
        return None
    span = window(None, None, now=now)
    ranked = await insights_service.weak_spots(
        session,
        span=span,
        scope=insights_service.Scope(),
        min_responses=0,
        limit=EVERY_MOMENT,
    )
    holding: dict[Alarm, dict[str, Any]] = {}
    for spot in [*ranked.data, *ranked.insufficient_data]:
        holding |= alarms(spot)
    started = await _record(session, holding, now=now)
    payloads = [
        {
            "kind": alarm.kind,
            "moment": alarm.moment,
            **({"team": alarm.team} if alarm.team else {}),
            "window": span.read().model_dump(mode="json", by_alias=True),
            "figures": holding[alarm],
            "url": _moment_url(base_url, alarm.moment),
        }
        for alarm in started
    ]
    await webhooks_service.enqueue(session, event=EventType.moment_alert, payloads=payloads)
    missed = await followups_service.take_newly_overdue_updates(session, now=now)
    await webhooks_service.enqueue(
        session,
        event=EventType.follow_up_update_overdue,
        payloads=[
            {**update, "url": _path(base_url, f"/ui/follow-ups/{update['follow_up']}")}
            for update in missed
        ],
    )
    return Evaluation(moment_alerts=len(payloads), updates_overdue=len(missed))


async def _record(
    session: AsyncSession, holding: Mapping[Alarm, object], *, now: datetime
) -> list[Alarm]:
    """Store which alarms hold now; the ones that did not hold before, in a stable order."""
    moment_ids = dict(
        (
            await session.execute(
                select(Moment.key, Moment.id).where(Moment.key.in_(_keys(holding)))
            )
        ).all()
    )
    stored = {
        Alarm(key, state.kind, state.team): state
        for state, key in (
            await session.execute(
                select(MomentAlert, Moment.key).join(Moment, Moment.id == MomentAlert.moment_id)
            )
        )
    }
    started: list[Alarm] = []
    for alarm in sorted(holding):
        state = stored.get(alarm)
        if state is None:
            session.add(
                MomentAlert(
                    moment_id=moment_ids[alarm.moment],
                    kind=alarm.kind,
                    team=alarm.team,
                    active=True,
                    changed_at=now,
                )
            )
            started.append(alarm)
        elif not state.active:
            state.active, state.changed_at = True, now
            started.append(alarm)
    for alarm, state in stored.items():
        if state.active and alarm not in holding:
            state.active, state.changed_at = False, now
    await session.flush()
    return started


def _keys(alarms: Iterable[Alarm]) -> list[str]:
    return sorted({alarm.moment for alarm in alarms})


def _path(base_url: str | None, path: str) -> str:
    return f"{(base_url or '').rstrip('/')}{path}"


def _moment_url(base_url: str | None, moment: str) -> str:
    return _path(base_url, f"/ui/moments/{moment}")


async def run_alerts(database: Database, *, interval: float, base_url: str | None) -> None:
    """Evaluate every `interval` seconds until cancelled; a failed evaluation is logged and
    retried (it changed nothing: it is one transaction)."""
    while True:
        try:
            async with database.write_sessions() as session, session.begin():
                result = await evaluate(session, now=utcnow(), base_url=base_url)
            if result is not None and (result.moment_alerts or result.updates_overdue):
                logger.info(
                    "alerts sent",
                    extra={
                        "moment_alerts": result.moment_alerts,
                        "updates_overdue": result.updates_overdue,
                    },
                )
        except Exception:
            logger.exception("evaluating the alerts failed; retrying")
        await asyncio.sleep(interval)
