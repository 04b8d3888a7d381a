"""`mot demo`: a realistic, reproducible data set to explore the service with.

A dozen moments across channels, six teams, months of touchpoints with plausible
response rates and ratings, and a few planted weak spots an analyst should find in the
last 30 days (the default window of the insights):

- `portal.password-reset` fails for about a third of the clients who try it, far over its
  target of 10%: the biggest problem, ranked first by the weak spots;
- `email.ticket-update` got worse 30 days ago (26% negative, up from 9%), which the
  weak spots flag as `worsening` against the 30 days before;
- on `service-desk.first-voice` the night shift (`desk-night`, 30% negative) does much worse
  than the other desk teams (8%): `inconsistent_teams`, with `desk-night` named `worse`;
- `service-desk.callback` is rarely rated at all: the silence endpoint flags its low
  response rate;
- the bad answers that say why mostly blame one thing: `site-error` on the password reset,
  `waited-too-long` on the first voice, `slow-reply` on the ticket updates (the leading
  factor of each, in the weak spots' `top_factors`);
- clients on the first voice lose the most time (a long wait on the line): with its volume
  it tops the weak spots ordered by `hours_lost`, where the password reset, first by
  priority, costs each client only minutes;
- two improvement actions: technicians who call ahead with their arrival time on
  `onsite.visit` 70 days before the end, after which its negative rate fell from 25% to 5%
  (the action's effect says it improved, net of the other satisfaction-scale moments),
  and a new template for `email.resolution-notice` 60 days before the end, which changed
  nothing (unclear);
- about a third of the comments are in Russian, so what clients say is read in both
  languages.

The service-desk moments and the password reset have a target of 10% negative; the other
moments are judged against their scale family's baseline.

The same seed and end date give the same data, and ids are derived from them, so running
the command twice stores nothing new.
"""

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from app.actions import service as actions_service
from app.actions.models import ImprovementAction
from app.actions.schemas import ActionCreate
from app.db import Database
from app.followups.targets import Targets
from app.moments import service as moments_service
from app.moments.models import Moment
from app.moments.schemas import Channel, MomentCreate
from app.rollups import service as rollups_service
from app.scales import SCALES, ScaleName
from app.touchpoints import service as touchpoints_service
from app.touchpoints.schemas import TouchpointCreate


@dataclass(frozen=True)
class DemoMoment:
    key: str
    name: str
    channel: str
    stage: str
    owner_team: str
    scale: ScaleName
    weight: float
    """Share of all touchpoints."""
    response_rate: float
    negative_rate: float
    teams: tuple[str, ...]


DESK = ("desk-day", "desk-evening", "desk-night")
TARGETED_OWNERS = ("service-desk", "identity")
TARGET_NEGATIVE_RATE = 0.10
MOMENTS = (
    DemoMoment(
        "service-desk.first-voice",
        "First voice on the service-desk line",
        "call",
        "request",
        "service-desk",
        ScaleName.csat5,
        0.20,
        0.35,
        0.08,
        DESK,
    ),
    DemoMoment(
        "service-desk.callback",
        "Promised callback",
        "call",
        "resolution",
        "service-desk",
        ScaleName.csat5,
        0.06,
        0.03,
        0.12,
        DESK,
    ),
    DemoMoment(
        "portal.first-link",
        "First link clicked on the portal",
        "portal",
        "request",
        "digital",
        ScaleName.thumbs,
        0.16,
        0.25,
        0.10,
        ("digital",),
    ),
    DemoMoment(
        "portal.password-reset",
        "Password reset on the portal",
        "portal",
        "request",
        "identity",
        ScaleName.smiley4,
        0.12,
        0.30,
        0.34,
        ("identity",),
    ),
    DemoMoment(
        "portal.request-form",
        "Filling in a request form",
        "portal",
        "request",
        "digital",
        ScaleName.ces7,
        0.08,
        0.28,
        0.14,
        ("digital",),
    ),
    DemoMoment(
        "email.ticket-update",
        "E-mail update on a ticket",
        "email",
        "progress",
        "service-desk",
        ScaleName.csat5,
        0.12,
        0.30,
        0.09,
        DESK,
    ),
    DemoMoment(
        "email.resolution-notice",
        "E-mail saying the ticket is solved",
        "email",
        "resolution",
        "service-desk",
        ScaleName.csat5,
        0.08,
        0.30,
        0.07,
        DESK,
    ),
    DemoMoment(
        "chat.first-reply",
        "First reply in chat",
        "chat",
        "request",
        "service-desk",
        ScaleName.thumbs,
        0.07,
        0.40,
        0.11,
        ("desk-day", "desk-evening"),
    ),
    DemoMoment(
        "onsite.visit",
        "Technician visit",
        "visit",
        "resolution",
        "field",
        ScaleName.csat5,
        0.04,
        0.45,
        0.05,
        ("field-north", "field-south"),
    ),
    DemoMoment(
        "onsite.scheduling",
        "Scheduling a visit",
        "call",
        "progress",
        "field",
        ScaleName.ces7,
        0.03,
        0.30,
        0.18,
        ("field-north", "field-south"),
    ),
    DemoMoment(
        "relationship.quarterly-survey",
        "Quarterly relationship survey",
        "email",
        "relationship",
        "account-management",
        ScaleName.nps11,
        0.02,
        0.50,
        0.25,
        ("accounts",),
    ),
    DemoMoment(
        "hardware.delivery",
        "Laptop delivery",
        "visit",
        "fulfilment",
        "field",
        ScaleName.csat5,
        0.02,
        0.40,
        0.06,
        ("field-north", "field-south"),
    ),
)

COMMENTS_NEGATIVE = (
    "Waited far too long before anyone answered.",
    "I had to explain my problem three times.",
    "The link did not work and nobody told me why.",
    "Nobody called back as promised.",
    "The reset e-mail never arrived.",
    "Nobody told me what happens next.",
)
COMMENTS_POSITIVE = (
    "Quick and friendly, thank you!",
    "Solved on the first call.",
    "Clear explanation, very helpful.",
)


COMMENTS_NEGATIVE_RU = (
    "Очень долго ждал ответа оператора.",
    "Пришлось три раза объяснять одну и ту же проблему.",
    "Ссылка не работала, и никто не объяснил почему.",
    "Обещали перезвонить и не перезвонили.",
    "Письмо для сброса пароля так и не пришло.",
)
COMMENTS_POSITIVE_RU = (
    "Быстро и вежливо, спасибо!",
    "Решили с первого звонка.",
    "Всё понятно объяснили.",
)
IN_RUSSIAN = 0.3
"""Share of comments written in Russian."""

CALL_AHEAD_DAYS_BEFORE_END = 70
TEMPLATE_DAYS_BEFORE_END = 60


def planted_actions(until: datetime) -> list[tuple[str, ActionCreate]]:
    """The demo's improvement actions: one that worked, one that changed nothing."""
    return [
        (
            "onsite.visit",
            ActionCreate(
                title="Technicians call ahead with their arrival time",
                done_at=until - timedelta(days=CALL_AHEAD_DAYS_BEFORE_END),
                description="A call half an hour before, instead of a window of half a day.",
                factor="waited-too-long",
            ),
        ),
        (
            "email.resolution-notice",
            ActionCreate(
                title="Shorter resolution e-mail template",
                done_at=until - timedelta(days=TEMPLATE_DAYS_BEFORE_END),
            ),
        ),
    ]


def _negative_rate(moment: DemoMoment, team: str, days_before_end: float) -> float:
    rate = moment.negative_rate
    if moment.key == "onsite.visit" and days_before_end > CALL_AHEAD_DAYS_BEFORE_END:
        rate = 0.25
    if moment.key == "service-desk.first-voice" and team == "desk-night":
        rate = 0.30
    if moment.key == "email.ticket-update" and days_before_end < 30:
        rate = 0.26
    return rate


def _value_for(scale_name: ScaleName, sentiment: str, rng: random.Random) -> int:
    scale = SCALES[scale_name]
    if sentiment == "negative":
        return rng.randint(scale.low, scale.negative_max)
    if sentiment == "neutral" and scale.negative_max + 1 < scale.positive_min:
        return rng.randint(scale.negative_max + 1, scale.positive_min - 1)
    return rng.randint(scale.positive_min, scale.high)


LEADING_FACTORS = {
    "portal.password-reset": "site-error",
    "service-desk.first-voice": "waited-too-long",
    "email.ticket-update": "slow-reply",
}
"""The factor most bad answers of these moments pick (a default of their channel)."""
OTHER_NEGATIVE_FACTORS = ("not-solved", "had-to-repeat", "unclear-answer")
POSITIVE_FACTORS = ("solved", "quick", "friendly")
SAID_WHY = 0.6
SAID_LOST_TIME = 0.4
LONG_WAITS = "service-desk.first-voice"


def _details(moment: DemoMoment, sentiment: str, rng: random.Random) -> dict[str, Any]:
    """Factors and lost minutes an answer gives, if it gives any."""
    details: dict[str, Any] = {}
    if sentiment != "neutral" and rng.random() < SAID_WHY:
        if sentiment == "positive":
            details["factors"] = [rng.choice(POSITIVE_FACTORS)]
        elif moment.key in LEADING_FACTORS and rng.random() < 0.7:
            details["factors"] = [LEADING_FACTORS[moment.key]]
        else:
            details["factors"] = [rng.choice(OTHER_NEGATIVE_FACTORS)]
    if rng.random() < SAID_LOST_TIME:
        if moment.key == LONG_WAITS:
            details["lost_minutes"] = rng.randint(20, 90 if sentiment == "negative" else 40)
        else:
            details["lost_minutes"] = rng.randint(0, 15 if sentiment == "negative" else 5)
    return details


def generate(*, touchpoints: int, days: int, seed: int, until: datetime) -> list[dict[str, Any]]:
    """The demo touchpoints as API payloads, oldest first."""
    rng = random.Random(seed)
    # Drawn apart, so that the touchpoints and ratings are those of demos without details.
    detail_rng = random.Random(seed + 1)
    weights = [m.weight for m in MOMENTS]
    start = until - timedelta(days=days)
    items = []
    for _ in range(touchpoints):
        offset = rng.random() * days
        # Office hours dominate: pull most contacts into 08:00-18:00.
        occurred_at = start + timedelta(
            days=int(offset), hours=rng.triangular(6, 20, 11), seconds=rng.randint(0, 3599)
        )
        items.append((occurred_at, rng.choices(MOMENTS, weights)[0]))
    items.sort(key=lambda pair: pair[0])

    payloads = []
    for number, (occurred_at, moment) in enumerate(items):
        team = rng.choice(moment.teams)
        payload: dict[str, Any] = {
            "id": f"demo-{seed}-{number:07d}",
            "moment": moment.key,
            "channel": moment.channel,
            "occurred_at": occurred_at.isoformat(),
            "client_ref": f"c-{rng.randint(1, max(50, touchpoints // 8)):06d}",
            "team": team,
            "agent": f"{team}-{rng.randint(1, 5)}",
            "source": "demo",
        }
        if rng.random() < moment.response_rate:
            days_before_end = (until - occurred_at).total_seconds() / 86400
            bad = rng.random() < _negative_rate(moment, team, days_before_end)
            sentiment = "negative" if bad else rng.choice(("neutral", "positive", "positive"))
            value = _value_for(moment.scale, sentiment, rng)
            answered = SCALES[moment.scale].sentiment(value).value
            payload["rating"] = {
                "scale": moment.scale.value,
                "value": value,
                **_details(moment, answered, detail_rng),
            }
            if rng.random() < 0.25:
                pool = COMMENTS_NEGATIVE if bad else COMMENTS_POSITIVE
                payload["comment"] = rng.choice(pool)
                # Drawn apart, like the details: the English data stays what it was.
                if detail_rng.random() < IN_RUSSIAN:
                    russian = COMMENTS_NEGATIVE_RU if bad else COMMENTS_POSITIVE_RU
                    payload["comment"] = detail_rng.choice(russian)
            payload["complaint"] = bad and rng.random() < 0.15
        payloads.append(payload)
    return payloads


async def load(
    database: Database,
    *,
    payloads: list[dict[str, Any]],
    follow_up_targets: Targets,
    batch_size: int = 1000,
    progress: Callable[[int, int], None] | None = None,
    actions: Sequence[tuple[str, ActionCreate]] = (),
) -> tuple[int, int]:
    """Catalogue the demo moments, record the improvement actions not recorded yet, and
    ingest the payloads; returns (stored, duplicates).

    `progress(done, total)` is told of the payloads ingested, at the start and after each
    batch.
    """
    stored = duplicates = 0
    if progress is not None:
        progress(0, len(payloads))
    async with database.write_sessions() as session:
        known = set((await session.scalars(select(Moment.key))).all())
        for moment in MOMENTS:
            if moment.key in known:
                continue
            data = MomentCreate(
                key=moment.key,
                name=moment.name,
                channel=Channel(moment.channel),
                stage=moment.stage,
                owner_team=moment.owner_team,
                target_negative_rate=(
                    TARGET_NEGATIVE_RATE if moment.owner_team in TARGETED_OWNERS else None
                ),
            )
            await moments_service.create_moment(session, data=data, default_target=None)
        recorded = set((await session.scalars(select(ImprovementAction.title))).all())
        for moment_key, action in actions:
            if action.title not in recorded:
                await actions_service.create_action(
                    session, moment_key=moment_key, data=action, created_by="demo"
                )
        await session.commit()
    for start in range(0, len(payloads), batch_size):
        chunk = payloads[start : start + batch_size]
        items = [(i, TouchpointCreate.model_validate(p)) for i, p in enumerate(chunk)]
        async with database.write_sessions() as session:
            report = await touchpoints_service.ingest(
                session,
                items=items,
                register_unknown_moments=True,
                default_target=None,
                follow_up_targets=follow_up_targets,
            )
            await session.commit()
        if report.errors:
            raise RuntimeError(f"demo data refused: {report.errors[0].message}")
        stored += report.created
        duplicates += report.duplicates
        if progress is not None:
            progress(start + len(chunk), len(payloads))
    # Readers would add the pending counts themselves; folded, the demo reads faster.
    await rollups_service.fold_once(database)
    return stored, duplicates


def default_until() -> datetime:
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
