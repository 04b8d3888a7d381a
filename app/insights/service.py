"""Insights: ranked weak spots, moment reports, consistency, silence and headline figures.

Counts come from the rollups and their pending deltas (`counts.tallies`); the statistics
from `stats`; this module joins them to the moments catalogue and shapes the answers.
"""

from collections import Counter
from collections.abc import Collection, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from typing import Any, NamedTuple

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import NotFound
from app.figures import Window
from app.insights import counts, details, stats, words
from app.insights.kept import KeptFigures
from app.insights.schemas import (
    BreakdownRow,
    CesRead,
    ConsistencyItem,
    ConsistencyList,
    ConsistencyRead,
    Distribution,
    EstimateRead,
    FactorLabelText,
    FactorShareRead,
    FamilyBaseline,
    Granularity,
    Headline,
    HeadlineChange,
    HotspotCell,
    HotspotDimension,
    HotspotRow,
    HotspotsRead,
    IntervalRead,
    LostTimeRead,
    MethodRead,
    MomentFactorsRead,
    MomentReport,
    MomentTotals,
    NativeFigures,
    NegativeComment,
    Overview,
    SentimentFactors,
    SeriesPoint,
    SilenceItem,
    SilenceList,
    SilenceSignal,
    TeamLimits,
    TeamOutlierRead,
    TeamRate,
    TermKind,
    TestsRead,
    TopFactorRead,
    TrendRead,
    WeakSpot,
    WeakSpotOrder,
    WeakSpotsRead,
    WordExample,
    WordRead,
    WordsLanguage,
    WordsMethod,
    WordsRead,
)
from app.moments import factors as moment_factors
from app.moments.models import Moment
from app.rollups import epoch
from app.rollups.details import DetailTally
from app.rollups.reads import CellKey, Slice
from app.rollups.service import Dimension
from app.rollups.tally import Tally, total
from app.scales import SCALES, ScaleFamily, ScaleName, Sentiment
from app.touchpoints.models import Touchpoint

NEGATIVE_COMMENTS = 20
METHOD_DESCRIPTION = (
    "Empirical-Bayes beta-binomial shrinkage of each moment's negative rate towards its scale "
    "families' baseline, prior strength by the method of moments; priority = touchpoints x "
    "(adjusted rate - reference), reference = target if set else baseline; Bayesian q-values "
    "of prob_worse; trend by the one-sided conditional exact test of two binomials "
    "(one-sided Fisher) with Benjamini-Hochberg across moments; team consistency by Pearson "
    "chi-square, its p-value from the chi-square distribution where every expected count is "
    "at least 5 and else from a seeded Monte Carlo test conditional on the margins, with "
    "Benjamini-Hochberg across moments; teams named by a two-sided Fisher exact test of each "
    "team against the other teams pooled, Holm-adjusted within the moment. Top factors: "
    "each factor's share of the negative answers, shrunk the same way towards its share over "
    "every moment offering it; lost time: mean (95% Student t) and median (order statistics) "
    "of the minutes answers gave, hours lost = touchpoints x mean / 60."
)
TESTS = TestsRead(
    trend="fisher-exact-one-sided",
    consistency="pearson-chi-square",
    chi_square_min_expected=stats.CHI2_MIN_EXPECTED,
    monte_carlo_draws=stats.MONTE_CARLO_DRAWS,
    monte_carlo_seed=stats.MONTE_CARLO_SEED,
    teams="fisher-exact-two-sided-vs-others-holm",
    team_alpha=stats.TEAM_ALPHA,
)


# --- windows and filters ---


class CatalogEntry(NamedTuple):
    """What the insights show of a catalogued moment: read as plain rows, not ORM objects."""

    id: int
    key: str
    name: str
    stage: str | None
    owner_team: str | None
    target_negative_rate: float | None
    channel: str
    factors: list[dict[str, Any]] | None

    def offered(self, sentiment: Sentiment) -> list[moment_factors.Factor]:
        """The factors the moment offers with answers of `sentiment`."""
        return moment_factors.of_moment(self.factors, channel=self.channel, sentiment=sentiment)


_CATALOG = select(
    Moment.id,
    Moment.key,
    Moment.name,
    Moment.stage,
    Moment.owner_team,
    Moment.target_negative_rate,
    Moment.channel,
    Moment.factors,
)


@dataclass(frozen=True, slots=True)
class Scope:
    """Which touchpoints count: filters on the touchpoint and on the moment."""

    team: str | None = None
    channel: str | None = None
    stage: str | None = None
    moment_prefix: str | None = None

    def admits(self, moment: CatalogEntry) -> bool:
        if self.stage is not None and moment.stage != self.stage:
            return False
        return self.moment_prefix is None or moment.key.startswith(self.moment_prefix)

    def slice(self, by: Dimension = Dimension.all) -> Slice:
        return Slice(by=by, team=self.team, channel=self.channel)


async def _admitted(session: AsyncSession, scope: Scope) -> dict[int, CatalogEntry]:
    """The catalogued moments the scope's moment filters let in, by id."""
    entries = map(CatalogEntry._make, (await session.execute(_CATALOG)).all())
    return {entry.id: entry for entry in entries if scope.admits(entry)}


async def _per_moment(
    session: AsyncSession, span: Window, part: Slice, admitted: Mapping[int, CatalogEntry]
) -> dict[int, Tally]:
    return (await moment_tallies(session, spans=[span], part=part, admitted=admitted))[0]


async def moment_tallies(
    session: AsyncSession,
    *,
    spans: Sequence[Window],
    part: Slice,
    admitted: Mapping[int, CatalogEntry],
) -> list[dict[int, Tally]]:
    """Per window: the counts of each admitted moment with touchpoints in it, by moment id.
    The windows are read together (one statement for their whole days)."""
    found = await counts.window_tallies(
        session, windows=[(span.start, span.end) for span in spans], part=part
    )
    return [_by_moment(cells, admitted) for cells in found]


def _by_moment(
    cells: Mapping[CellKey, Tally], admitted: Mapping[int, CatalogEntry]
) -> dict[int, Tally]:
    per_moment: dict[int, Tally] = {}
    for (moment_id, _, _), tally in cells.items():
        if moment_id in per_moment:
            per_moment[moment_id].merge(tally)
        else:
            per_moment[moment_id] = tally  # the found tallies are this function's own
    return {
        moment_id: tally
        for moment_id, tally in per_moment.items()
        if moment_id in admitted and tally.touchpoints > 0
    }


async def _team_counts(
    session: AsyncSession, span: Window, scope: Scope, admitted: Mapping[int, CatalogEntry]
) -> dict[int, list[stats.TeamCounts]]:
    """Responses and negatives per team of each admitted moment, for the teams with enough
    responses to be compared (the others would be left out of the test anyway)."""
    found = await counts.response_counts(
        session,
        start=span.start,
        end=span.end,
        part=scope.slice(Dimension.team),
        min_responses=stats.TEAM_MIN_RESPONSES,
    )
    teams: dict[int, list[stats.TeamCounts]] = {}
    for (moment_id, team), (responses, negatives) in sorted(found.items()):
        # Touchpoints posted without a team belong to no team: they are not compared.
        if moment_id in admitted and team:
            teams.setdefault(moment_id, []).append(stats.TeamCounts(team, responses, negatives))
    return teams


# --- shared pieces of answers ---


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _native(tally: Tally) -> NativeFigures:
    ces_counts = tally.value_counts(ScaleName.ces7)
    ces = stats.ces_mean(ces_counts)
    return NativeFigures(
        csat=_estimate(stats.csat_top_two_box(tally.value_counts(ScaleName.csat5))),
        nps=_estimate(stats.net_promoter_score(tally.value_counts(ScaleName.nps11))),
        ces=None if ces is None else CesRead(mean=ces, responses=sum(ces_counts.values())),
    )


def _estimate(estimate: stats.Estimate | None) -> EstimateRead | None:
    if estimate is None:
        return None
    return EstimateRead(
        value=estimate.value,
        lower=estimate.lower,
        upper=estimate.upper,
        responses=estimate.responses,
    )


def _moment_input(key: str, tally: Tally, target: float | None) -> stats.MomentInput:
    return stats.MomentInput(
        key=key,
        touchpoints=tally.touchpoints,
        families=tuple(
            stats.FamilyCounts(family, rated, negative)
            for family, (rated, negative) in tally.families().items()
        ),
        target_negative_rate=target,
    )


def _baselines(priors: Mapping[ScaleFamily, stats.FamilyPrior]) -> list[FamilyBaseline]:
    return [
        FamilyBaseline(
            family=prior.family.value,
            baseline=prior.baseline,
            prior_strength=prior.kappa,
            responses=prior.responses,
            moments=prior.moments,
        )
        for prior in sorted(priors.values(), key=lambda p: p.family)
    ]


def _consistency_read(
    result: stats.TeamConsistency | None, q_value: float | None
) -> ConsistencyRead | None:
    if result is None:
        return None
    return ConsistencyRead(
        teams=result.teams,
        chi_square=result.statistic,
        df=result.df,
        phi=result.dispersion,
        min_expected=result.min_expected,
        test=result.test,
        p_value=result.p_value,
        q_value=q_value,
        inconsistent_teams=q_value is not None and q_value <= stats.Q_THRESHOLD,
        outliers=[
            TeamOutlierRead(
                team=o.team,
                direction=o.direction,
                responses=o.responses,
                negatives=o.negatives,
                negative_rate=o.rate,
                others_responses=o.others_responses,
                others_negatives=o.others_negatives,
                others_negative_rate=o.others_rate,
                p_value=o.p_value,
                adjusted_p_value=o.adjusted_p_value,
            )
            for o in result.outliers
        ],
    )


# --- weak spots ---


async def weak_spots(
    session: AsyncSession,
    *,
    span: Window,
    scope: Scope,
    min_responses: int,
    limit: int,
    order: WeakSpotOrder = WeakSpotOrder.priority,
    kept_figures: KeptFigures | None = None,
) -> WeakSpotsRead:
    """Moments ranked by priority (or by hours lost), with confidence, trend, team
    consistency, reasons, leading negative factors and lost time.

    With `kept_figures`, a window of whole UTC days is answered from there when the counts and
    the catalog are those it was computed from (`app.insights.kept`)."""
    admitted = await _admitted(session, scope)
    if kept_figures is None or not span.whole_days:
        return await _weak_spots(session, span, scope, admitted, min_responses, limit, order)
    asked = ("weak-spots", span, scope, min_responses, limit, order)
    question = await _question(session, asked, admitted)
    found = kept_figures.get(question, WeakSpotsRead)
    if found is None:
        found = await _weak_spots(session, span, scope, admitted, min_responses, limit, order)
        kept_figures.put(question, found)
    return found


async def _question(
    session: AsyncSession, asked: tuple[Hashable, ...], catalog: Mapping[int, CatalogEntry]
) -> tuple[Hashable, ...]:
    """The key of an answer over whole UTC days: what was asked, the counts the session's
    snapshot sees and the catalog as read (`app.insights.kept`)."""
    return (*asked, await epoch.state(session), repr(sorted(catalog.items())))


async def _weak_spots(
    session: AsyncSession,
    span: Window,
    scope: Scope,
    admitted: Mapping[int, CatalogEntry],
    min_responses: int,
    limit: int,
    order: WeakSpotOrder,
) -> WeakSpotsRead:
    current, before = await moment_tallies(
        session, spans=[span, span.previous], part=scope.slice(), admitted=admitted
    )
    answered = await counts.details(
        session, start=span.start, end=span.end, part=scope.slice(), sentiment=Sentiment.negative
    )

    @cache
    def lost(moment_id: int) -> details.LostTime | None:
        # On demand: only the moments shown need it, unless they are ordered by it.
        found = answered.get(moment_id)
        return None if found is None else details.lost_time(found.lost)

    # Filtered to one team, there are no teams to compare.
    teams = {} if scope.team is not None else await _team_counts(session, span, scope, admitted)

    by_key = {admitted[i].key: i for i in current}
    inputs = [
        _moment_input(m.key, current[i], m.target_negative_rate)
        for i, m in admitted.items()
        if i in current
    ]
    previous_inputs = [
        _moment_input(m.key, before[i], m.target_negative_rate)
        for i, m in admitted.items()
        if i in before
    ]
    priors, previous_priors = stats.family_priors(inputs), stats.family_priors(previous_inputs)
    ranked = stats.rank(inputs, priors)
    previous = stats.adjust(previous_inputs, previous_priors)
    trends = {t.key: t for t in stats.trends(stats.trend_inputs(ranked, previous))}
    previous_by_key = {item.key: item for item in previous}
    consistency = stats.team_consistencies([teams.get(by_key[item.key], []) for item in ranked])
    consistency_q = stats.consistency_q_values(consistency)
    shares = stats.window_shares(
        touchpoints=[item.touchpoints for item in ranked],
        responses=[item.responses for item in ranked],
        complaints=[current[by_key[item.key]].complaints for item in ranked],
    )

    def spot(position: int) -> WeakSpot:
        item, result, q_value = ranked[position], consistency[position], consistency_q[position]
        moment = admitted[by_key[item.key]]
        tally = current[moment.id]
        trend = trends[item.key]
        return WeakSpot(
            rank=rank_of[position],
            moment=moment.key,
            name=moment.name,
            stage=moment.stage,
            owner_team=moment.owner_team,
            touchpoints=item.touchpoints,
            responses=item.responses,
            negatives=item.negatives,
            response_rate=_share(item.responses, item.touchpoints),
            negative_rate=_share(item.negatives, item.responses),
            adjusted_negative_rate=item.rate,
            interval=IntervalRead(lower=item.posterior.lower, upper=item.posterior.upper),
            baseline=item.prior.baseline,
            prior_strength=item.prior.kappa,
            target_negative_rate=item.target_negative_rate,
            reference=item.reference,
            priority=item.priority,
            prob_worse=item.prob_worse,
            q_value=item.q_value,
            confident_problem=item.confident_problem,
            low_data=item.low_data,
            mean_score=tally.mean_score(),
            complaints=tally.complaints,
            trend=_trend_read(trend, previous_by_key.get(item.key)),
            consistency=_consistency_read(result, q_value),
            native=_native(tally),
            reasons=stats.reasons(
                touchpoints=item.touchpoints,
                responses=item.responses,
                complaints=tally.complaints,
                rate=item.rate,
                target=item.target_negative_rate,
                confident_problem=item.confident_problem,
                worsening=trend.worsening,
                consistency_q=q_value,
                window=shares,
            ),
            top_factors=_top_factors(moment, negative_factors.get(moment.id, [])),
            lost_time=_lost_time_read(lost(moment.id), item.touchpoints),
        )

    # Every moment is ranked (baselines, q-values and corrections need them all); only the
    # ones shown are turned into response objects.
    positions = list(range(len(ranked)))
    if order is WeakSpotOrder.hours_lost:
        # Stable: moments losing the same hours (or none said) stay in priority order.
        positions.sort(key=lambda i: -_hours_lost(lost(by_key[ranked[i].key]), ranked[i]))
    listed = [i for i in positions if ranked[i].responses >= min_responses]
    apart = [i for i in positions if ranked[i].responses < min_responses]
    rank_of = {i: place + 1 for place, i in enumerate(positions)}
    shown = {by_key[ranked[i].key] for i in (*listed[:limit], *apart[:limit])}
    negative_factors = _factor_shares(admitted, current, answered, Sentiment.negative, shown)
    return WeakSpotsRead(
        window=span.read(),
        method=MethodRead(
            name="empirical-bayes-beta-binomial",
            description=METHOD_DESCRIPTION,
            credible_level=round(stats.CREDIBLE_UPPER - stats.CREDIBLE_LOWER, 6),
            q_threshold=stats.Q_THRESHOLD,
            low_data_responses=stats.LOW_DATA_RESPONSES,
            trend_min_responses=stats.TREND_MIN_RESPONSES,
            team_min_responses=stats.TEAM_MIN_RESPONSES,
            tests=TESTS,
            baselines=_baselines(priors),
            previous_baselines=_baselines(previous_priors),
        ),
        moments_ranked=len(ranked),
        data=[spot(i) for i in listed[:limit]],
        insufficient_data=[spot(i) for i in apart[:limit]],
    )


def _factor_shares(
    admitted: Mapping[int, CatalogEntry],
    current: Mapping[int, Tally],
    answered: Mapping[int, DetailTally],
    sentiment: Sentiment,
    shown: Collection[int],
) -> dict[int, list[details.FactorShare]]:
    """The shrunk shares of the factors the `shown` moments offer for answers of
    `sentiment`; the priors pool every moment with touchpoints."""
    offered = {i: [f.key for f in admitted[i].offered(sentiment)] for i in current}
    picked = {
        i: {key: n for (of, key), n in tally.factors.items() if of == sentiment.value}
        for i, tally in answered.items()
    }
    answers = {i: tally.sentiments()[sentiment] for i, tally in current.items()}
    return details.shrunk_shares(picked, answers, offered, of=shown)


def _labels(moment: CatalogEntry) -> dict[str, FactorLabelText]:
    return {
        factor.key: FactorLabelText(en=factor.en, ru=factor.ru)
        for factor in moment_factors.of_moment(moment.factors, channel=moment.channel)
    }


def _top_factors(moment: CatalogEntry, shares: list[details.FactorShare]) -> list[TopFactorRead]:
    labels = _labels(moment)
    return [
        TopFactorRead(
            key=share.key,
            label=labels[share.key],
            picked=share.picked,
            adjusted_share=share.adjusted_share,
            interval=_interval(share),
        )
        for share in details.leading(shares)
    ]


def _interval(share: details.FactorShare) -> IntervalRead:
    lower, upper = share.interval()
    return IntervalRead(lower=lower, upper=upper)


def _hours_lost(lost: details.LostTime | None, item: stats.RankedMoment) -> float:
    return -1.0 if lost is None else lost.hours_lost(item.touchpoints)


def _lost_time_read(lost: details.LostTime | None, touchpoints: int) -> LostTimeRead | None:
    if lost is None:
        return None
    mean_interval = None
    if lost.mean_lower is not None and lost.mean_upper is not None:
        mean_interval = IntervalRead(lower=lost.mean_lower, upper=lost.mean_upper)
    return LostTimeRead(
        responses=lost.responses,
        mean_minutes=lost.mean,
        mean_interval=mean_interval,
        median_minutes=lost.median,
        median_interval=IntervalRead(lower=lost.median_lower, upper=lost.median_upper),
        hours_lost=lost.hours_lost(touchpoints),
    )


async def moment_factors_report(
    session: AsyncSession, *, key: str, span: Window
) -> MomentFactorsRead:
    """Each factor a moment offers, per sentiment: how often its answers of the sentiment
    picked it, shrunk towards the factor's share over every moment that offers it; and the
    time its clients lost."""
    admitted = await _admitted(session, Scope())
    moment = next((entry for entry in admitted.values() if entry.key == key), None)
    if moment is None:
        raise NotFound(f"No moment with key '{key}'.")
    current = await _per_moment(session, span, Slice(), admitted)
    answered = await counts.details(session, start=span.start, end=span.end, part=Slice())
    tally = current.get(moment.id, Tally())
    said = answered.get(moment.id, DetailTally())
    labels = _labels(moment)
    sentiments = []
    for sentiment in Sentiment:
        shares = _factor_shares(
            admitted, {**current, moment.id: tally}, answered, sentiment, [moment.id]
        )
        explained = said.said_why[sentiment.value]
        listed = sorted(
            shares.get(moment.id, []), key=lambda share: (-share.adjusted_share, share.key)
        )
        sentiments.append(
            SentimentFactors(
                sentiment=sentiment.value,
                answers=tally.sentiments()[sentiment],
                said_why=explained,
                factors=[
                    FactorShareRead(
                        key=share.key,
                        label=labels[share.key],
                        picked=share.picked,
                        share=share.share,
                        share_of_said_why=_share(share.picked, explained),
                        adjusted_share=share.adjusted_share,
                        interval=_interval(share),
                        prior_share=share.prior.baseline,
                        prior_strength=share.prior.kappa,
                    )
                    for share in listed
                ],
            )
        )
    return MomentFactorsRead(
        moment=moment.key,
        window=span.read(),
        factors_default=moment.factors is None,
        credible_level=round(stats.CREDIBLE_UPPER - stats.CREDIBLE_LOWER, 6),
        sentiments=sentiments,
        lost_time=_lost_time_read(details.lost_time(said.lost), tally.touchpoints),
    )


def _trend_read(trend: stats.Trend, previous: stats.AdjustedMoment | None) -> TrendRead:
    return TrendRead(
        previous_responses=0 if previous is None else previous.responses,
        previous_negatives=0 if previous is None else previous.negatives,
        previous_adjusted_negative_rate=None if previous is None else previous.rate,
        change=trend.change,
        tested=trend.tested,
        z=trend.z,
        p_value=trend.p_value,
        q_value=trend.q_value,
        worsening=trend.worsening,
    )


# --- hotspots ---

HOTSPOTS_STRONGEST = 5


async def hotspots(
    session: AsyncSession, *, span: Window, scope: Scope, by: HotspotDimension
) -> HotspotsRead:
    """Moments (as the weak spots rank them) by team or channel: each cell's excess bad
    experiences V_cell * (adjusted cell rate - the moment's reference).

    Cells are shrunk towards their moment as the moment report shrinks its breakdown rows
    (`_shrunk_members`), so a cell of a few answers stays near its moment; the reference is
    the moment's, as in the weak spots (its target if set, else its baseline).
    """
    admitted = await _admitted(session, scope)
    current = await _per_moment(session, span, scope.slice(), admitted)
    by_key = {admitted[i].key: i for i in current}
    inputs = [
        _moment_input(m.key, current[i], m.target_negative_rate)
        for i, m in admitted.items()
        if i in current
    ]
    ranked = stats.rank(inputs, stats.family_priors(inputs))
    found = await counts.tallies(
        session, start=span.start, end=span.end, part=scope.slice(Dimension(by.value))
    )
    members: dict[int, dict[str, Tally]] = {}
    for (moment_id, member, _), tally in found.items():
        if moment_id in current and tally.touchpoints > 0:
            members.setdefault(moment_id, {})[member] = tally

    rows = []
    volumes: dict[str, int] = {}
    for position, item in enumerate(ranked):
        cells = []
        for cell in _shrunk_members(members.get(by_key[item.key], {})):
            volume = stats.effective_volume(cell.touchpoints, responses=cell.responses)
            volumes[cell.key] = volumes.get(cell.key, 0) + cell.touchpoints
            cells.append(
                HotspotCell(
                    member=cell.key,
                    touchpoints=cell.touchpoints,
                    responses=cell.responses,
                    negatives=cell.negatives,
                    negative_rate=_share(cell.negatives, cell.responses),
                    adjusted_negative_rate=cell.rate,
                    excess=stats.priority(volume=volume, rate=cell.rate, reference=item.reference),
                    strongest=False,
                )
            )
        cells.sort(key=lambda c: (-c.excess, c.member))
        moment = admitted[by_key[item.key]]
        rows.append(
            HotspotRow(
                rank=position + 1,
                moment=moment.key,
                name=moment.name,
                touchpoints=item.touchpoints,
                responses=item.responses,
                adjusted_negative_rate=item.rate,
                reference=item.reference,
                priority=item.priority,
                cells=cells,
            )
        )
    strongest = sorted(
        ((cell.excess, row.moment, cell.member) for row in rows for cell in row.cells),
        key=lambda found: (-found[0], found[1], found[2]),
    )
    # The strongest few, and only where at least one client is in excess.
    marked = {
        (moment, member)
        for excess, moment, member in strongest[:HOTSPOTS_STRONGEST]
        if excess >= 1.0
    }
    rows = [
        row.model_copy(
            update={
                "cells": [
                    cell.model_copy(update={"strongest": (row.moment, cell.member) in marked})
                    for cell in row.cells
                ]
            }
        )
        for row in rows
    ]
    return HotspotsRead(
        window=span.read(),
        by=by,
        members=sorted(volumes, key=lambda member: (-volumes[member], member)),
        strongest_cells=HOTSPOTS_STRONGEST,
        data=rows,
    )


# --- one moment's report ---


async def moment_report(
    session: AsyncSession,
    *,
    key: str,
    span: Window,
    granularity: Granularity,
    kept_figures: KeptFigures | None = None,
) -> MomentReport:
    """A moment in a window: totals, distributions, time series, breakdowns, comments.

    With `kept_figures`, the figures of a window of whole UTC days are given again while the
    counts and the catalog stay the same; the comments, which can change without the
    counts, are always read afresh."""
    moment = await session.scalar(select(Moment).where(Moment.key == key))
    if moment is None:
        raise NotFound(f"No moment with key '{key}'.")
    comments = await _negative_comments(session, moment, span)
    # The team test's q-value is corrected across every moment: all of them count.
    catalog = await _admitted(session, Scope())
    if kept_figures is None or not span.whole_days:
        report = await _counted_report(session, moment, span, granularity, catalog)
    else:
        asked = ("moment-report", moment.id, span, granularity)
        question = await _question(session, asked, catalog)
        kept = kept_figures.get(question, MomentReport)
        if kept is None:
            kept = await _counted_report(session, moment, span, granularity, catalog)
            kept_figures.put(question, kept)
        report = kept
    return report.model_copy(update={"negative_comments": comments})


async def _counted_report(
    session: AsyncSession,
    moment: Moment,
    span: Window,
    granularity: Granularity,
    catalog: Mapping[int, CatalogEntry],
) -> MomentReport:
    """The moment report's figures, all from the counts (its comments left empty)."""
    daily = await counts.tallies(
        session, start=span.start, end=span.end, part=Slice(moment_id=moment.id, daily=True)
    )
    days = {day: tally for (_, _, day), tally in daily.items() if day is not None}
    totals = total(days.values())
    by_team = await _breakdown(session, moment, span, Dimension.team)
    return MomentReport(
        moment=moment.key,
        name=moment.name,
        window=span.read(),
        granularity=granularity,
        totals=MomentTotals(
            touchpoints=totals.touchpoints,
            responses=totals.responses,
            negatives=totals.negatives,
            response_rate=_share(totals.responses, totals.touchpoints),
            negative_rate=_share(totals.negatives, totals.responses),
            mean_score=totals.mean_score(),
            complaints=totals.complaints,
            native=_native(totals),
        ),
        distribution=_distribution(totals),
        series=_series(days, span, granularity),
        by_team=by_team,
        team_consistency=await _team_consistency(session, moment, span, catalog),
        team_limits=_team_limits(by_team, _share(totals.negatives, totals.responses)),
        by_agent=await _breakdown(session, moment, span, Dimension.agent),
        by_channel=await _breakdown(session, moment, span, Dimension.channel),
        negative_comments=[],
    )


def _team_limits(rows: list[BreakdownRow], pooled: float | None) -> list[TeamLimits]:
    """Funnel control limits of each team's raw rate around the moment's pooled rate."""
    if pooled is None:
        return []
    found = []
    for row in rows:
        if row.negative_rate is None or row.responses <= 0:
            continue
        inner = stats.funnel_limits(pooled, row.responses, stats.Z95)
        outer = stats.funnel_limits(pooled, row.responses, stats.Z998)
        found.append(
            TeamLimits(
                team=row.member,
                responses=row.responses,
                negative_rate=row.negative_rate,
                limits_95=IntervalRead(lower=inner.lower, upper=inner.upper),
                limits_998=IntervalRead(lower=outer.lower, upper=outer.upper),
            )
        )
    return found


async def _team_consistency(
    session: AsyncSession, moment: Moment, span: Window, catalog: Mapping[int, CatalogEntry]
) -> ConsistencyRead | None:
    """The moment's team test as the consistency endpoint gives it: its q-value is corrected
    across all the window's moments (`catalog`: every catalogued moment), so the two answers
    agree."""
    found = (await _consistencies(session, span, Scope(), catalog)).get(moment.id)
    return None if found is None else _consistency_read(found[0], found[1])


def _distribution(tally: Tally) -> list[Distribution]:
    distribution = []
    for scale in SCALES:
        counts = tally.value_counts(scale)
        if any(counts.values()):
            distribution.append(
                Distribution(
                    scale=scale,
                    responses=sum(counts.values()),
                    counts={str(value): count for value, count in counts.items()},
                )
            )
    return distribution


def _bucket(day: date, granularity: Granularity) -> date:
    if granularity is Granularity.week:
        return day - timedelta(days=day.weekday())
    if granularity is Granularity.month:
        return day.replace(day=1)
    return day


def _wilson(negatives: int, responses: int) -> IntervalRead | None:
    """The 95% Wilson interval of a raw negative rate; none without responses."""
    if responses <= 0:
        return None
    found = stats.wilson_interval(negatives, responses)
    return IntervalRead(lower=found.lower, upper=found.upper)


def _series(
    days: Mapping[date, Tally], span: Window, granularity: Granularity
) -> list[SeriesPoint]:
    """Every bucket of the window, empty ones included, so a chart has no gaps."""
    buckets: dict[date, Tally] = {}
    day = span.start.date()
    last = (span.end - timedelta(microseconds=1)).date()
    while day <= last:
        buckets.setdefault(_bucket(day, granularity), Tally())
        day += timedelta(days=1)
    for day, tally in days.items():
        buckets.setdefault(_bucket(day, granularity), Tally()).merge(tally)
    return [
        SeriesPoint(
            period=period,
            touchpoints=tally.touchpoints,
            responses=tally.responses,
            negatives=tally.negatives,
            negative_rate=_share(tally.negatives, tally.responses),
            interval=_wilson(tally.negatives, tally.responses),
            mean_score=tally.mean_score(),
        )
        for period, tally in sorted(buckets.items())
    ]


async def _breakdown(
    session: AsyncSession, moment: Moment, span: Window, dimension: Dimension
) -> list[BreakdownRow]:
    """Members shrunk towards the moment's own rate, as moments are towards their baseline."""
    found = await counts.tallies(
        session, start=span.start, end=span.end, part=Slice(by=dimension, moment_id=moment.id)
    )
    members = {member: tally for (_, member, _), tally in found.items()}
    ranked = _shrunk_members(members)
    rows = [
        BreakdownRow(
            dimension=dimension.value,
            member=item.key,
            touchpoints=item.touchpoints,
            responses=item.responses,
            negatives=item.negatives,
            negative_rate=_share(item.negatives, item.responses),
            adjusted_negative_rate=item.rate,
            interval=IntervalRead(lower=item.posterior.lower, upper=item.posterior.upper),
            prob_worse=item.prob_worse,
            mean_score=members[item.key].mean_score(),
            complaints=members[item.key].complaints,
        )
        for item in ranked
    ]
    return sorted(rows, key=lambda row: (-row.adjusted_negative_rate, row.member))


def _shrunk_members(members: Mapping[str, Tally]) -> list[stats.RankedMoment]:
    """A moment's members (teams, agents, channels) shrunk towards the moment's own rate: its
    members ranked as moments are, their pooled rate as the baseline, their spread as kappa."""
    return stats.rank([_moment_input(member, t, None) for member, t in members.items()])


async def _negative_comments(
    session: AsyncSession, moment: Moment, span: Window
) -> list[NegativeComment]:
    query = (
        select(Touchpoint)
        .where(
            Touchpoint.moment_id == moment.id,
            Touchpoint.occurred_at >= span.start,
            Touchpoint.occurred_at < span.end,
            Touchpoint.sentiment == Sentiment.negative.value,
            Touchpoint.comment.is_not(None),
        )
        .order_by(Touchpoint.occurred_at.desc(), Touchpoint.id.desc())
        .limit(NEGATIVE_COMMENTS)
    )
    return [
        NegativeComment.model_validate(
            {
                "id": t.external_id,
                "occurred_at": t.occurred_at,
                "channel": t.channel,
                "team": t.team,
                "scale": t.rating_scale,
                "value": t.rating_value,
                "comment": t.comment,
            }
        )
        for t in await session.scalars(query)
    ]


# --- consistency across teams ---


async def consistency(session: AsyncSession, *, span: Window, scope: Scope) -> ConsistencyList:
    """Moments whose teams differ most, by the chi-square test corrected across moments."""
    admitted = await _admitted(session, scope)
    tested = await _consistencies(session, span, scope, admitted)
    items = []
    for moment_id, (result, q_value, eligible) in tested.items():
        moment = admitted[moment_id]
        by_rate = sorted(eligible, key=lambda c: (c.negatives / c.responses, c.team))
        read = _consistency_read(result, q_value)
        assert read is not None
        items.append(
            ConsistencyItem(
                moment=moment.key,
                name=moment.name,
                consistency=read,
                best_team=_team_rate(by_rate[0]),
                worst_team=_team_rate(by_rate[-1]),
            )
        )
    items.sort(key=lambda i: (i.consistency.q_value or 1.0, -i.consistency.phi, i.moment))
    return ConsistencyList(window=span.read(), tests=TESTS, data=items)


async def _consistencies(
    session: AsyncSession, span: Window, scope: Scope, admitted: Mapping[int, CatalogEntry]
) -> dict[int, tuple[stats.TeamConsistency, float | None, list[stats.TeamCounts]]]:
    """The team test of every admitted moment with teams to compare, by moment id: its
    result, its q-value across those moments, and the teams tested."""
    teams = await _team_counts(session, span, scope, admitted)
    ids = list(teams)
    results = stats.team_consistencies([teams[moment_id] for moment_id in ids])
    q_values = stats.consistency_q_values(results)
    return {
        moment_id: (
            result,
            q_value,
            [c for c in teams[moment_id] if c.responses >= stats.TEAM_MIN_RESPONSES],
        )
        for moment_id, result, q_value in zip(ids, results, q_values, strict=True)
        if result is not None
    }


def _team_rate(counts: stats.TeamCounts) -> TeamRate:
    return TeamRate(
        team=counts.team,
        responses=counts.responses,
        negatives=counts.negatives,
        negative_rate=counts.negatives / counts.responses,
    )


# --- volumes ---


async def volumes(session: AsyncSession, *, span: Window, scope: Scope) -> dict[str, Tally]:
    """Each admitted moment's counts in the window (touchpoints, responses, ...) by key, from
    the counts the weak spots rank: for a catalogue, without ranking anything."""
    admitted = await _admitted(session, scope)
    current = await _per_moment(session, span, scope.slice(), admitted)
    return {admitted[moment_id].key: tally for moment_id, tally in current.items()}


# --- silence ---


async def silence(session: AsyncSession, *, span: Window, scope: Scope) -> SilenceList:
    """Moments where clients are not talking: few responses, or no bad news over high volume."""
    admitted = await _admitted(session, scope)
    current = await _per_moment(session, span, scope.slice(), admitted)
    overall = _share(
        sum(t.responses for t in current.values()), sum(t.touchpoints for t in current.values())
    )
    quartile = stats.upper_quartile([float(t.touchpoints) for t in current.values()])
    items = []
    for moment_id, tally in current.items():
        rate = tally.responses / tally.touchpoints
        signals = []
        if overall is not None and rate < overall / 2:
            signals.append(SilenceSignal.low_response_rate)
        quiet = tally.complaints == 0 and tally.negatives == 0
        if quiet and quartile is not None and tally.touchpoints >= quartile:
            signals.append(SilenceSignal.no_bad_news)
        if not signals:
            continue
        moment = admitted[moment_id]
        items.append(
            SilenceItem(
                moment=moment.key,
                name=moment.name,
                touchpoints=tally.touchpoints,
                responses=tally.responses,
                response_rate=rate,
                missing_responses=(overall or 0.0) * tally.touchpoints - tally.responses,
                negatives=tally.negatives,
                complaints=tally.complaints,
                signals=signals,
            )
        )
    items.sort(key=lambda item: (-item.missing_responses, item.moment))
    return SilenceList(window=span.read(), overall_response_rate=overall, data=items)


# --- overview ---


async def overview(session: AsyncSession, *, span: Window, scope: Scope) -> Overview:
    """Headline figures of the window and of the previous one."""
    admitted = await _admitted(session, scope)
    current, before = await moment_tallies(
        session, spans=[span, span.previous], part=scope.slice(), admitted=admitted
    )
    now, then = _headline(current.values()), _headline(before.values())
    return Overview(
        window=span.read(),
        current=now,
        previous=then,
        change=HeadlineChange(
            touchpoints=now.touchpoints - then.touchpoints,
            responses=now.responses - then.responses,
            response_rate=_difference(now.response_rate, then.response_rate),
            negative_share=_difference(now.negative_share, then.negative_share),
            complaints=now.complaints - then.complaints,
            nps=_difference(_value(now.native.nps), _value(then.native.nps)),
            csat=_difference(_value(now.native.csat), _value(then.native.csat)),
            ces=_difference(
                None if now.native.ces is None else now.native.ces.mean,
                None if then.native.ces is None else then.native.ces.mean,
            ),
        ),
    )


def _headline(tallies: Iterable[Tally]) -> Headline:
    moments = list(tallies)
    combined = total(moments)
    return Headline(
        touchpoints=combined.touchpoints,
        responses=combined.responses,
        response_rate=_share(combined.responses, combined.touchpoints),
        negative_share=_share(combined.negatives, combined.responses),
        complaints=combined.complaints,
        moments=len(moments),
        native=_native(combined),
    )


def _value(estimate: EstimateRead | None) -> float | None:
    return None if estimate is None else estimate.value


def _difference(now: float | None, then: float | None) -> float | None:
    return None if now is None or then is None else now - then


# --- what clients say ---

WORDS_MAX_COMMENTS = 20_000
WORDS_EXAMPLES = 3
WORDS_STATISTIC = (
    "Log-odds ratio with an informative Dirichlet prior and its z-score (Monroe, Colaresi and "
    "Quinn 2008, 'Fightin' Words'): negative comments against the neutral and positive ones."
)


def _words_method(counted: int) -> WordsMethod:
    return WordsMethod(
        statistic=WORDS_STATISTIC,
        counting="Once per comment: a term's count is the number of comments that contain it.",
        prior="The term's frequency in all the comments read, negative and others alike.",
        prior_scale=words.PRIOR_SCALE,
        alpha0=words.PRIOR_SCALE * counted,
        min_count=words.MIN_COUNT,
        max_comments=WORDS_MAX_COMMENTS,
    )


async def moment_words(
    session: AsyncSession,
    *,
    key: str,
    span: Window,
    team: str | None,
    channel: str | None,
    lang: WordsLanguage,
    limit: int,
) -> WordsRead:
    """The words and phrases that most set a moment's negative comments apart from its
    neutral and positive ones, read from at most `WORDS_MAX_COMMENTS` latest comments."""
    moment = await session.scalar(select(Moment).where(Moment.key == key))
    if moment is None:
        raise NotFound(f"No moment with key '{key}'.")
    # The total over every matching row comes in the same statement as the rows, so the
    # two are read in one snapshot.
    query = (
        select(
            Touchpoint.external_id,
            Touchpoint.occurred_at,
            Touchpoint.channel,
            Touchpoint.team,
            Touchpoint.sentiment,
            Touchpoint.comment,
            func.count().over().label("total"),
        )
        .where(
            Touchpoint.moment_id == moment.id,
            Touchpoint.occurred_at >= span.start,
            Touchpoint.occurred_at < span.end,
            Touchpoint.sentiment.is_not(None),
            Touchpoint.comment.is_not(None),
        )
        .order_by(Touchpoint.occurred_at.desc(), Touchpoint.id.desc())
        .limit(WORDS_MAX_COMMENTS)
    )
    if team is not None:
        query = query.where(Touchpoint.team == team)
    if channel is not None:
        query = query.where(Touchpoint.channel == channel)
    rows = (await session.execute(query)).all()

    negative: Counter[str] = Counter()
    other: Counter[str] = Counter()
    negative_comments = other_comments = 0
    examples: dict[str, list[WordExample]] = {}
    for row in rows:  # latest first, so the first examples found are the latest
        if lang is not WordsLanguage.auto and words.script(row.comment) != lang.value:
            continue
        terms = words.comment_terms(row.comment)
        if row.sentiment != Sentiment.negative.value:
            other_comments += 1
            other.update(terms)
            continue
        negative_comments += 1
        negative.update(terms)
        example = WordExample(
            id=row.external_id,
            occurred_at=row.occurred_at,
            channel=row.channel,
            team=row.team,
            comment=row.comment,
        )
        for term in terms:
            found = examples.setdefault(term, [])
            if len(found) < WORDS_EXAMPLES:
                found.append(example)

    scores = words.log_odds(negative, other)
    counted = sum(negative.values()) + sum(other.values())
    return WordsRead.model_validate(
        {
            "moment": moment.key,
            "window": span.read(),
            "team": team,
            "channel": channel,
            "lang": lang,
            "comments_total": rows[0].total if rows else 0,
            "comments_read": len(rows),
            "truncated": bool(rows) and rows[0].total > len(rows),
            "negative_comments": negative_comments,
            "other_comments": other_comments,
            "method": _words_method(counted),
            "data": [
                WordRead(
                    term=score.term,
                    kind=TermKind.phrase if " " in score.term else TermKind.word,
                    z=score.z,
                    log_odds=score.delta,
                    negative_count=score.negative_count,
                    other_count=score.other_count,
                    examples=examples[score.term],
                )
                for score in words.distinctive(scores, limit=limit)
            ],
        }
    )
