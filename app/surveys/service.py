"""Survey links: issue signed links for touchpoints, record one-click answers and comments."""

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import dialect_insert, one_of, utcnow
from app.followups.targets import Targets
from app.moments import factors as moment_factors
from app.moments.models import Moment
from app.scales import SCALES, Sentiment, normalise
from app.surveys import tokens
from app.surveys.models import Survey
from app.surveys.schemas import (
    SurveyBatchError,
    SurveyCreate,
    SurveyFigures,
    SurveyLink,
    SurveyLinks,
    SurveyReach,
)
from app.surveys.tokens import SurveyClaims
from app.touchpoints import service as touchpoints_service
from app.touchpoints.models import Touchpoint
from app.touchpoints.schemas import RatingUpdate


class UnknownAnswer(Exception):
    """The value is not on the token's scale."""


async def issue_links(
    session: AsyncSession,
    *,
    external_ids: Sequence[str],
    options: SurveyCreate,
    default_days: int,
    key: bytes,
    base_url: str,
    now: datetime,
) -> tuple[list[SurveyLinks], list[SurveyBatchError]]:
    """Signed links for each touchpoint; ids not stored are reported, not fatal."""
    # Locked against deletion, as a foreign key would: the survey records written below
    # then never outlive an erasure or a purge running meanwhile.
    rows = await session.execute(
        select(Touchpoint.external_id, Touchpoint.id, Touchpoint.link_nonce)
        .where(one_of(session, Touchpoint.external_id, external_ids))
        .order_by(Touchpoint.id)
        .with_for_update(key_share=True)
    )
    stored = {row.external_id: row for row in rows.all()}
    expires_at = now + timedelta(days=options.expires_in_days or default_days)
    scale = SCALES[options.scale]
    issued, errors = [], []
    for external_id in external_ids:
        row = stored.get(external_id)
        if row is None:
            errors.append(
                SurveyBatchError(
                    touchpoint=external_id,
                    code="not_found",
                    message=f"No touchpoint with id '{external_id}'.",
                )
            )
            continue
        claims = SurveyClaims(row.id, options.scale, expires_at, options.language, row.link_nonce)
        page_url = f"{base_url}/s/{tokens.issue(claims, key=key)}"
        issued.append(
            SurveyLinks(
                touchpoint=external_id,
                scale=options.scale,
                language=options.language,
                expires_at=expires_at,
                page_url=page_url,
                links=[
                    SurveyLink(value=value, url=f"{page_url}/{value}")
                    for value in range(scale.low, scale.high + 1)
                ],
            )
        )
    await _record_issued(
        session,
        touchpoint_ids=[stored[i.touchpoint].id for i in issued],
        scale=options.scale.value,
        now=now,
    )
    return issued, errors


async def _record_issued(
    session: AsyncSession, *, touchpoint_ids: Sequence[int], scale: str, now: datetime
) -> None:
    if not touchpoint_ids:
        return
    insert = dialect_insert(session, Survey.__table__).values(
        [
            {"touchpoint_id": touchpoint_id, "scale": scale, "issued_at": now}
            for touchpoint_id in sorted(touchpoint_ids)
        ]
    )
    # Issuing again (a reminder) keeps the first issue time: the survey is the same one.
    await session.execute(insert.on_conflict_do_nothing(index_elements=["touchpoint_id"]))


async def record_open(session: AsyncSession, *, claims: SurveyClaims, answered: bool) -> None:
    """Count a link opened by the client (and an answer, when it was a one-click answer)."""
    now = utcnow()
    values: dict[str, Any] = {
        "opens": Survey.opens + 1,
        "opened_at": func.coalesce(Survey.opened_at, now),
    }
    if answered:
        values |= {
            "answers": Survey.answers + 1,
            "answered_at": func.coalesce(Survey.answered_at, now),
        }
    await session.execute(
        update(Survey).where(Survey.touchpoint_id == claims.touchpoint_id).values(**values)
    )


async def touchpoint_of(session: AsyncSession, *, claims: SurveyClaims) -> Touchpoint:
    """The touchpoint a genuine token was issued for; InvalidToken("gone") if it is not
    stored any more.

    Its number alone is not enough: the row there must also hold the nonce the token was
    signed with, or it is another touchpoint than the one the client was asked about.
    """
    touchpoint = await session.get(Touchpoint, claims.touchpoint_id)
    if touchpoint is None or touchpoint.link_nonce != claims.nonce:
        # Signed by us, so it existed: it has been erased or purged since.
        raise tokens.InvalidToken("gone")
    return touchpoint


async def answer(
    session: AsyncSession, *, claims: SurveyClaims, value: int, follow_up_targets: Targets
) -> Sentiment:
    """Record the client's answer (the last answer wins; earlier ones stay in the history)."""
    try:
        rating = normalise(claims.scale, value)
    except ValueError:
        raise UnknownAnswer(str(value)) from None
    touchpoint = await touchpoint_of(session, claims=claims)
    await touchpoints_service.rate(
        session,
        external_id=touchpoint.external_id,
        rating=RatingUpdate(scale=claims.scale, value=value),
        follow_up_targets=follow_up_targets,
    )
    return rating.sentiment


async def factors_offered(
    session: AsyncSession, *, claims: SurveyClaims, sentiment: Sentiment
) -> list[moment_factors.Factor]:
    """The factors the client may pick with an answer of `sentiment`, in the order the
    moment lists them."""
    touchpoint = await touchpoint_of(session, claims=claims)
    moment = (
        await session.execute(
            select(Moment.factors, Moment.channel).where(Moment.id == touchpoint.moment_id)
        )
    ).one()
    return moment_factors.of_moment(moment.factors, channel=moment.channel, sentiment=sentiment)


async def save_details(
    session: AsyncSession,
    *,
    claims: SurveyClaims,
    comment: str,
    factors: Sequence[str],
    lost_minutes: int | None,
) -> Sentiment | None:
    """Keep what the client added after answering: the comment (the latest wins), and the
    factors and time lost of the current answer. Returns the answer's sentiment (None if
    the client has not answered), which the page thanks them for.

    Factor keys the answer's moment does not offer for its sentiment are dropped, not
    refused: the client is not at fault for a form the moment changed since it was shown.
    """
    touchpoint = await touchpoint_of(session, claims=claims)
    # Locked: the counts move from the details read here to the new ones, which an answer
    # changed meanwhile (a second tab, the API) would make wrong.
    await session.refresh(touchpoint, with_for_update=True)
    if comment:
        touchpoint.comment = comment
        await session.flush()
    if touchpoint.sentiment is None:
        return None  # nothing answered yet: the details would describe no answer
    sentiment = Sentiment(touchpoint.sentiment)
    if not factors and lost_minutes is None:
        return sentiment
    offered = {f.key for f in await factors_offered(session, claims=claims, sentiment=sentiment)}
    picked = [key for key in dict.fromkeys(factors) if key in offered][: moment_factors.MAX_PICKED]
    await touchpoints_service.describe_answer(
        session, touchpoint=touchpoint, factors=picked, lost_minutes=lost_minutes
    )
    return sentiment


def _reach(moment: str | None, issued: int, opened: int, answered: int) -> SurveyReach:
    return SurveyReach(
        moment=moment,
        issued=issued,
        opened=opened,
        answered=answered,
        open_rate=opened / issued if issued else None,
        answer_rate=answered / issued if issued else None,
    )


async def figures(session: AsyncSession, *, start: datetime, end: datetime) -> SurveyFigures:
    """Issued, opened and answered surveys of the window, per moment."""
    rows = await session.execute(
        select(
            Moment.key,
            func.count(),
            func.count(Survey.opened_at),
            func.count(Survey.answered_at),
        )
        .select_from(Survey)
        .join(Touchpoint, Touchpoint.id == Survey.touchpoint_id)
        .join(Moment, Moment.id == Touchpoint.moment_id)
        .where(Survey.issued_at >= start, Survey.issued_at < end)
        .group_by(Moment.key)
    )
    per_moment = [_reach(key, issued, opened, answered) for key, issued, opened, answered in rows]
    per_moment.sort(key=lambda reach: (-reach.issued, reach.moment or ""))
    return SurveyFigures(
        total=_reach(
            None,
            sum(r.issued for r in per_moment),
            sum(r.opened for r in per_moment),
            sum(r.answered for r in per_moment),
        ),
        by_moment=per_moment,
    )
