"""Improvement actions: record, list and remove them, and measure each one's effect.

The effect reads the counts of whole UTC days (rollups and their pending deltas, through
`insights.counts`) of every moment over the action's two windows, and leaves the
statistics to `insights.effects`.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from pydantic import TypeAdapter
from sqlalchemy import Select, delete, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from app.actions.models import ImprovementAction
from app.actions.schemas import (
    ActionCreate,
    ActionRead,
    EffectMethodRead,
    EffectRead,
    EffectUnavailableRead,
    OthersRead,
    PeriodRead,
    RateRead,
    WindowsRead,
)
from app.errors import NotFound
from app.inputs import Timestamp
from app.insights import counts, effects
from app.insights.schemas import IntervalRead
from app.insights.stats import CREDIBLE_LOWER, CREDIBLE_UPPER, Counts
from app.moments import service as moments_service
from app.moments.models import Moment
from app.pagination import RowId, decode_cursor, encode_cursor
from app.rollups.reads import Slice
from app.rollups.tally import Tally
from app.scales import ScaleFamily

_position = TypeAdapter(tuple[Timestamp, RowId])
"""The lists' sort key in their cursors: `done_at` and the action's number."""


class Listed(NamedTuple):
    """An action and the key of its moment."""

    action: ImprovementAction
    moment_key: str


@dataclass(frozen=True, slots=True)
class Measure:
    """How effects are measured: the washout and the length of the windows, in days."""

    washout_days: int = effects.DEFAULT_WASHOUT_DAYS
    window_days: int = effects.DEFAULT_WINDOW_DAYS

    def read(self) -> EffectMethodRead:
        return EffectMethodRead(
            washout_days=self.washout_days,
            window_days=self.window_days,
            prior="jeffreys-beta(1/2,1/2)",
            credible_level=round(CREDIBLE_UPPER - CREDIBLE_LOWER, 6),
            draws=effects.DRAWS,
            seed=effects.SEED,
            min_responses=effects.MIN_RESPONSES,
        )


@dataclass(frozen=True, slots=True)
class CatalogueFilter:
    """Which moments' actions the catalogue lists: by journey stage and key prefix."""

    stage: str | None = None
    moment_prefix: str | None = None


# --- writing ---


async def create_action(
    session: AsyncSession, *, moment_key: str, data: ActionCreate, created_by: str
) -> Listed:
    """Record an action on a moment; 404 if the moment is unknown."""
    moment = await moments_service.get_moment(session, key=moment_key)
    action = ImprovementAction(moment_id=moment.id, **data.model_dump(), created_by=created_by)
    session.add(action)
    await session.flush()
    return Listed(action, moment.key)


async def delete_action(session: AsyncSession, *, moment_key: str, action_id: int) -> None:
    """Remove an action of a moment; 404 if the moment has no such action."""
    moment = await moments_service.get_moment(session, key=moment_key)
    removed = await session.scalar(
        delete(ImprovementAction)
        .where(ImprovementAction.id == action_id, ImprovementAction.moment_id == moment.id)
        .returning(ImprovementAction.id)
    )
    if removed is None:
        raise NotFound(f"Moment '{moment_key}' has no action {action_id}.")


# --- listing ---


def _listing() -> Select[ImprovementAction, str]:
    return (
        select(ImprovementAction, Moment.key)
        .join(Moment, Moment.id == ImprovementAction.moment_id)
        .order_by(ImprovementAction.done_at.desc(), ImprovementAction.id.desc())
    )


async def list_actions(
    session: AsyncSession,
    *,
    moment_key: str | None,
    catalogue: CatalogueFilter,
    cursor: str | None,
    limit: int,
) -> tuple[list[Listed], str | None]:
    """One page of actions (with their moment's key), newest `done_at` first: of one moment
    (404 if unknown) or of the catalogue's moments the filter admits."""
    query = _listing()
    if moment_key is not None:
        moment = await moments_service.get_moment(session, key=moment_key)
        query = query.where(ImprovementAction.moment_id == moment.id)
    if catalogue.stage is not None:
        query = query.where(Moment.stage == catalogue.stage)
    if catalogue.moment_prefix is not None:
        query = query.where(Moment.key.startswith(catalogue.moment_prefix, autoescape=True))
    if cursor is not None:
        done_at, row_id = decode_cursor(cursor, _position)
        query = query.where(
            tuple_(ImprovementAction.done_at, ImprovementAction.id) < (done_at, row_id)
        )
    found = (await session.execute(query.limit(limit + 1))).all()
    rows = [Listed(action, moment_key) for action, moment_key in found]
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1].action
    return rows[:limit], encode_cursor(last.done_at.isoformat(), last.id)


# --- effects ---


class _Counts:
    """Every moment's counts per scale family over windows, each window read once."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.read: dict[tuple[datetime, datetime], dict[int, Tally]] = {}

    async def of(self, start: datetime, end: datetime) -> dict[int, Tally]:
        found = self.read.get((start, end))
        if found is None:
            # Whole UTC days: answered by the rollups and their deltas alone.
            cells = await counts.tallies(self.session, start=start, end=end, part=Slice())
            found = self.read[(start, end)] = {
                moment_id: t for (moment_id, _, _), t in cells.items()
            }
        return found


def _family_counts(tally: Tally | None, family: ScaleFamily) -> Counts:
    rated, negative = (tally.families() if tally is not None else {}).get(family, (0, 0))
    return Counts(rated, negative)


def _dominant_family(*tallies: Tally | None) -> ScaleFamily | None:
    """The family of most of the answers over both windows (ties: the first in order)."""
    totals: dict[ScaleFamily, int] = {}
    for tally in tallies:
        if tally is None:
            continue
        for family, (rated, _) in tally.families().items():
            totals[family] = totals.get(family, 0) + rated
    if not totals:
        return None
    return max(ScaleFamily, key=lambda family: totals.get(family, 0))


async def _effect(
    found: _Counts, moment_id: int, windows: effects.Windows, now: datetime
) -> EffectRead | EffectUnavailableRead:
    if not windows.complete(now):
        return EffectUnavailableRead(
            reason=effects.Unavailable.after_window_incomplete,
            message="The after window has not ended yet.",
            available_at=windows.after_end,
        )
    before = await found.of(windows.before_start, windows.before_end)
    after = await found.of(windows.after_start, windows.after_end)
    family = _dominant_family(before.get(moment_id), after.get(moment_id))
    mine = [
        None if family is None else _family_counts(window.get(moment_id), family)
        for window in (before, after)
    ]
    if family is None or not all(c is not None and effects.enough(c) for c in mine):
        return EffectUnavailableRead(
            reason=effects.Unavailable.too_few_responses,
            message=f"Each window needs at least {effects.MIN_RESPONSES} rated responses of "
            "the moment's scale family.",
            available_at=None,
        )
    # Others answered in both windows only: a moment answered in one window alone would
    # shift the pooled rate by who is in the pool, not by what happened.
    others = [
        other
        for other in sorted(before.keys() & after.keys())
        if other != moment_id
        and _family_counts(before[other], family).responses > 0
        and _family_counts(after[other], family).responses > 0
    ]
    pooled = [
        Counts(
            sum(_family_counts(window[o], family).responses for o in others),
            sum(_family_counts(window[o], family).negatives for o in others),
        )
        for window in (before, after)
    ]
    mine_before, mine_after = (c if c is not None else Counts(0, 0) for c in mine)
    result = effects.effect(
        mine_before,
        mine_after,
        others_before=pooled[0],
        others_after=pooled[1],
        others_moments=len(others),
    )
    return _effect_read(result, family)


def _rate_read(rate: effects.Rate) -> RateRead:
    return RateRead(
        responses=rate.responses,
        negatives=rate.negatives,
        negative_rate=rate.observed,
        posterior_mean=rate.mean,
        interval=IntervalRead(lower=rate.lower, upper=rate.upper),
    )


def _effect_read(result: effects.Effect, family: ScaleFamily) -> EffectRead:
    others = result.others
    net = (
        None
        if result.net_lower is None or result.net_upper is None
        else IntervalRead(lower=result.net_lower, upper=result.net_upper)
    )
    return EffectRead(
        family=family.value,
        before=_rate_read(result.before),
        after=_rate_read(result.after),
        change=result.change,
        interval=IntervalRead(lower=result.lower, upper=result.upper),
        prob_improved=result.prob_improved,
        others=None
        if others is None
        else OthersRead(
            moments=others.moments,
            before=_rate_read(others.before),
            after=_rate_read(others.after),
            change=others.change,
            interval=IntervalRead(lower=others.lower, upper=others.upper),
        ),
        net_change=result.net_change,
        net_interval=net,
        prob_improved_net=result.prob_improved_net,
        verdict=result.verdict,
    )


async def reads(
    session: AsyncSession,
    *,
    rows: Sequence[Listed],
    measure: Measure,
    now: datetime,
) -> list[ActionRead]:
    """The actions as the API shows them, each with its windows and its effect."""
    found = _Counts(session)
    shown = []
    for action, moment_key in rows:
        windows = effects.windows(
            action.done_at, washout_days=measure.washout_days, window_days=measure.window_days
        )
        outcome = await _effect(found, action.moment_id, windows, now)
        shown.append(
            ActionRead(
                id=action.id,
                moment=moment_key,
                title=action.title,
                description=action.description,
                factor=action.factor,
                done_at=action.done_at,
                created_by=action.created_by,
                created_at=action.created_at,
                windows=WindowsRead(
                    before=PeriodRead(from_=windows.before_start, to=windows.before_end),
                    after=PeriodRead(from_=windows.after_start, to=windows.after_end),
                ),
                effect=outcome if isinstance(outcome, EffectRead) else None,
                effect_unavailable=outcome if isinstance(outcome, EffectUnavailableRead) else None,
            )
        )
    return shown
