from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from app.csv_response import CSV_RESPONSE, FormatQuery, csv_response, wants_csv
from app.db import ReplicaSessionDep
from app.errors import error_responses
from app.figures import WindowDep, json_response
from app.insights import service
from app.insights.schemas import (
    BreakdownRow,
    ConsistencyItem,
    ConsistencyList,
    FactorShareRead,
    Granularity,
    HotspotCell,
    HotspotDimension,
    HotspotsRead,
    MomentFactorsRead,
    MomentReport,
    Overview,
    ReportTable,
    SeriesPoint,
    SilenceItem,
    SilenceList,
    WeakSpot,
    WeakSpotOrder,
    WeakSpotsRead,
    WordRead,
    WordsLanguage,
    WordsRead,
)
from app.keys.access import requires
from app.keys.schemas import Scope
from app.moments.schemas import Channel
from app.pagination import DEFAULT_PAGE_SIZE, LimitQuery

router = APIRouter(
    prefix="/v1",
    tags=["insights"],
    responses=error_responses(401, 403, 422),
    dependencies=[requires(Scope.read)],
)


ChannelQuery = Annotated[Channel | None, Query(description="Only touchpoints on this channel.")]
TeamQuery = Annotated[
    str | None, Query(max_length=100, description="Only touchpoints served by this team.")
]
StageQuery = Annotated[
    str | None, Query(max_length=50, description="Only moments of this journey stage.")
]
MomentPrefixQuery = Annotated[
    str | None,
    Query(max_length=100, description="Only moments whose key starts with this, e.g. `portal.`."),
]


def _moment_scope(
    channel: ChannelQuery = None, stage: StageQuery = None, moment: MomentPrefixQuery = None
) -> service.Scope:
    return service.Scope(channel=channel, stage=stage, moment_prefix=moment)


def _scope(
    scope: Annotated[service.Scope, Depends(_moment_scope)], team: TeamQuery = None
) -> service.Scope:
    return replace(scope, team=team)


ScopeDep = Annotated[service.Scope, Depends(_scope)]
"""Filters on the touchpoint (channel, team) and on the moment (stage, key prefix)."""
MomentScopeDep = Annotated[service.Scope, Depends(_moment_scope)]
"""The same without the team: for comparisons between teams."""


@router.get(
    "/insights/weak-spots",
    response_model=WeakSpotsRead,
    responses=CSV_RESPONSE,
    summary="Moments that most need improvement",
)
async def weak_spots(
    request: Request,
    session: ReplicaSessionDep,
    span: WindowDep,
    scope: ScopeDep,
    min_responses: Annotated[
        int,
        Query(ge=0, description="Moments with fewer responses go to `insufficient_data`."),
    ] = 0,
    limit: LimitQuery = DEFAULT_PAGE_SIZE,
    order: Annotated[
        WeakSpotOrder,
        Query(
            description="`priority` (the default): clients with a bad experience beyond the "
            "reference; `hours_lost`: touchpoints x mean minutes lost, descending (moments "
            "where no answer said come last), ties in priority order."
        ),
    ] = WeakSpotOrder.priority,
    output: FormatQuery = None,
) -> WeakSpotsRead | Response:
    """Moments ranked by priority: how many clients had a bad experience beyond the
    moment's target (or its scale family's baseline), after shrinking small samples towards
    the baseline. Each item carries its interval, confidence, trend against the previous
    window, consistency across teams, native CSAT/NPS/CES, the reasons it ranks high, the
    factors its negative answers picked most and the time its clients lost; `method` gives
    every parameter needed to reproduce the figures. `order=hours_lost` ranks by the hours
    lost instead."""
    result = await service.weak_spots(
        session,
        span=span,
        scope=scope,
        min_responses=min_responses,
        limit=limit,
        order=order,
        kept_figures=request.app.state.kept_figures,
    )
    if not wants_csv(request, output):
        return json_response(result)
    return weak_spots_csv(result)


def weak_spots_csv(result: WeakSpotsRead) -> Response:
    """The weak spots as CSV: the ranked moments, then those listed apart."""
    rows = [*result.data, *result.insufficient_data]
    listed = ["ranked"] * len(result.data) + ["insufficient_data"] * len(result.insufficient_data)
    return csv_response(WeakSpot, rows, filename="weak-spots.csv", leading={"listed": listed})


@router.get(
    "/insights/hotspots",
    response_model=HotspotsRead,
    responses=CSV_RESPONSE,
    summary="Where each moment goes wrong: by team or by channel",
)
async def hotspots(
    request: Request,
    session: ReplicaSessionDep,
    span: WindowDep,
    scope: ScopeDep,
    by: Annotated[
        HotspotDimension, Query(description="Columns of the matrix: `team` or `channel`.")
    ] = HotspotDimension.team,
    output: FormatQuery = None,
) -> HotspotsRead | Response:
    """A matrix of moments (in the order of the weak spots) by team or channel: each cell's
    excess bad experiences, touchpoints x (adjusted rate of the cell - the moment's
    reference), the cell's rate shrunk towards its moment as in the moment report's
    breakdowns, so that a cell of a few answers does not stand out. As CSV: one row per
    cell, after the columns of its moment."""
    result = await service.hotspots(session, span=span, scope=scope, by=by)
    if not wants_csv(request, output):
        return result
    return hotspots_csv(result)


def hotspots_csv(result: HotspotsRead) -> Response:
    """The hotspots matrix as CSV: one row per cell (team or channel `member`), led by its
    moment's figures."""
    placed = [(row, cell) for row in result.data for cell in row.cells]
    leading: dict[str, list[Any]] = {
        "rank": [row.rank for row, _cell in placed],
        "moment": [row.moment for row, _cell in placed],
        "name": [row.name for row, _cell in placed],
        "moment_adjusted_negative_rate": [row.adjusted_negative_rate for row, _ in placed],
        "moment_reference": [row.reference for row, _cell in placed],
        "moment_priority": [row.priority for row, _cell in placed],
    }
    cells = [cell for _row, cell in placed]
    filename = f"hotspots-by-{result.by.value}.csv"
    return csv_response(HotspotCell, cells, filename=filename, leading=leading)


@router.get(
    "/moments/{key}/report",
    response_model=MomentReport,
    responses={**CSV_RESPONSE, **error_responses(404, 422)},
    summary="One moment in detail",
)
async def moment_report(
    request: Request,
    session: ReplicaSessionDep,
    key: Annotated[str, Path(max_length=100, description="Moment key.")],
    span: WindowDep,
    granularity: Annotated[
        Granularity, Query(description="Bucket of the time series (UTC days, ISO weeks, months).")
    ] = Granularity.day,
    table: Annotated[
        ReportTable,
        Query(
            description="As CSV, which rows: `breakdown` (by team, agent and channel) or "
            "`series` (the time series)."
        ),
    ] = ReportTable.breakdown,
    output: FormatQuery = None,
) -> MomentReport | Response:
    """Rating distribution per scale, a time series, breakdowns by team, agent and channel
    with adjusted rates, and the latest comments left with negative ratings. As CSV: the
    breakdown rows, or the time series with `table=series`."""
    report = await service.moment_report(
        session,
        key=key,
        span=span,
        granularity=granularity,
        kept_figures=request.app.state.kept_figures,
    )
    if not wants_csv(request, output):
        return json_response(report)
    return moment_report_csv(report, table=table)


def moment_report_csv(
    report: MomentReport, *, table: ReportTable = ReportTable.breakdown
) -> Response:
    """The moment report as CSV: its breakdown rows by team, agent and channel, or its
    time series."""
    if table is ReportTable.series:
        filename = f"{report.moment}-series-{report.granularity.value}.csv"
        return csv_response(SeriesPoint, report.series, filename=filename)
    rows = [*report.by_team, *report.by_agent, *report.by_channel]
    return csv_response(BreakdownRow, rows, filename=f"{report.moment}-breakdown.csv")


@router.get(
    "/insights/consistency",
    response_model=ConsistencyList,
    responses=CSV_RESPONSE,
    summary="Moments where teams give different experiences",
)
async def consistency(
    request: Request,
    session: ReplicaSessionDep,
    span: WindowDep,
    scope: MomentScopeDep,
    output: FormatQuery = None,
) -> ConsistencyList | Response:
    """Moments ranked by how differently their teams perform: Pearson chi-square test of
    one negative rate across teams with 10+ responses (Monte Carlo given the margins where
    an expected count is under 5), q-values corrected across moments, with the best and the
    worst team and the teams that differ from the others pooled (exact test, Holm). As
    CSV: one row per moment, the teams named joined with `;`."""
    result = await service.consistency(session, span=span, scope=scope)
    if not wants_csv(request, output):
        return result
    return csv_response(ConsistencyItem, result.data, filename="consistency.csv")


@router.get(
    "/insights/silence",
    response_model=SilenceList,
    responses=CSV_RESPONSE,
    summary="Moments where clients are silent",
)
async def silence(
    request: Request,
    session: ReplicaSessionDep,
    span: WindowDep,
    scope: ScopeDep,
    output: FormatQuery = None,
) -> SilenceList | Response:
    """Silence is a bad sign: moments answered at under half the overall response rate,
    and high-volume moments with no complaint and no negative rating at all. As CSV: one
    row per moment."""
    result = await service.silence(session, span=span, scope=scope)
    if not wants_csv(request, output):
        return result
    return csv_response(SilenceItem, result.data, filename="silence.csv")


@router.get(
    "/insights/overview",
    response_model=Overview,
    responses=CSV_RESPONSE,
    summary="Headline figures",
)
async def overview(
    request: Request,
    session: ReplicaSessionDep,
    span: WindowDep,
    scope: ScopeDep,
    output: FormatQuery = None,
) -> Overview | Response:
    """Touchpoints, responses, response rate, negative share, NPS, CSAT and CES of the
    window, of the previous window of equal length, and the change. As CSV: one row, a
    column per figure (`current_...`, `previous_...`, `change_...`)."""
    result = await service.overview(session, span=span, scope=scope)
    if not wants_csv(request, output):
        return result
    return csv_response(Overview, [result], filename="overview.csv")


@router.get(
    "/moments/{key}/factors",
    response_model=MomentFactorsRead,
    responses={**CSV_RESPONSE, **error_responses(404, 422)},
    summary="Why answers were bad or good: the factors clients picked",
)
async def moment_factors(
    request: Request,
    session: ReplicaSessionDep,
    key: Annotated[str, Path(max_length=100, description="Moment key.")],
    span: WindowDep,
    output: FormatQuery = None,
) -> MomentFactorsRead | Response:
    """Each factor the moment offers, per sentiment: how many of its answers of that
    sentiment picked it, the share among them and among those that picked any factor, and
    the share shrunk towards the factor's share over every moment offering it (empirical
    Bayes beta-binomial, as the ranking) with its 90% credible interval. Also the minutes
    its clients said they lost: mean and median with 95% intervals, and hours lost. As CSV:
    the factors, with their sentiment."""
    result = await service.moment_factors_report(session, key=key, span=span)
    if not wants_csv(request, output):
        return result
    rows = [factor for group in result.sentiments for factor in group.factors]
    sentiments = [group.sentiment for group in result.sentiments for _ in group.factors]
    return csv_response(
        FactorShareRead,
        rows,
        filename=f"{result.moment}-factors.csv",
        leading={"sentiment": sentiments},
    )


@router.get(
    "/moments/{key}/words",
    response_model=WordsRead,
    responses={**CSV_RESPONSE, **error_responses(404, 422)},
    summary="What clients say: the words of bad experiences",
)
async def moment_words(
    request: Request,
    session: ReplicaSessionDep,
    key: Annotated[str, Path(max_length=100, description="Moment key.")],
    span: WindowDep,
    team: TeamQuery = None,
    channel: ChannelQuery = None,
    lang: Annotated[
        WordsLanguage,
        Query(
            description="`en` or `ru`: only comments written mostly in Latin or Cyrillic "
            "letters; `auto`: every comment, in the language of its script."
        ),
    ] = WordsLanguage.auto,
    limit: Annotated[int, Query(ge=1, le=100, description="Terms listed at most.")] = 20,
    output: FormatQuery = None,
) -> WordsRead | Response:
    """The words and two-word phrases that most set the moment's negative comments apart
    from its neutral and positive ones: log-odds ratio with an informative Dirichlet prior
    and its z-score (Monroe, Colaresi and Quinn 2008, "Fightin' Words"), each term counted
    once per comment, listed when at least 3 negative comments hold it, with up to 3 of the
    latest of them. English and Russian, stop words left out. Reads the latest 20,000
    comments of the window at most (`truncated` says so). As CSV: the terms."""
    result = await service.moment_words(
        session, key=key, span=span, team=team, channel=channel, lang=lang, limit=limit
    )
    if not wants_csv(request, output):
        return result
    return csv_response(WordRead, result.data, filename=f"{result.moment}-words.csv")
