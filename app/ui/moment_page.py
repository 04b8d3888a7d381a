"""The moment page (`/ui/moments/{key}`): one moment in the window, from the same report as
`/v1/moments/{key}/report`, with its charts drawn on the server as SVG.

Only the report's figures, the moment's own target and its open follow-ups (from the
follow-ups service, as `GET /v1/follow-ups?moment=` lists them) are shown: the geometry below
places them, it computes no statistic.
"""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Path, Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import ReplicaSessionDep, SessionDep, utcnow
from app.errors import ErrorDetail, NotFound, ValidationFailed
from app.figures import json_response
from app.followups import service as followups_service
from app.followups.workflow import FollowUpStatus
from app.insights import router as insights_router
from app.insights import service as insights_service
from app.insights.schemas import (
    BreakdownRow,
    ConsistencyRead,
    Distribution,
    Granularity,
    IntervalRead,
    MomentReport,
    SeriesPoint,
    TeamLimits,
    WordsLanguage,
)
from app.moments import service as moments_service
from app.ui.access import ViewerDep
from app.ui.followup_pages import age
from app.ui.router import DAYS, View, ViewDep, render
from app.ui.views import percent

router = APIRouter(prefix="/ui", include_in_schema=False)

CHART_WIDTH = 640.0
CHART_HEIGHT = 160.0
BARS_HEIGHT = 80.0
FUNNEL_HEIGHT = 200.0
DISTRIBUTION_WIDTH = 160.0
CUSTOM_OFF: dict[str, str | None] = {"from": None, "to": None}
GRANULARITIES = (Granularity.day, Granularity.week)
DEFAULT_GRANULARITY = Granularity.week

OPEN_STATUSES = tuple(s for s in FollowUpStatus if s.value not in followups_service.SETTLED)
OPEN_FOLLOW_UPS = 20
"""How many of the moment's open follow-ups the page lists, newest first."""
WORDS_SHOWN = 10
"""How many of the words of bad experiences (`/v1/moments/{key}/words`) the page lists."""

KeyPath = Annotated[str, Path(max_length=100)]
GranularityQuery = Annotated[str | None, Query(max_length=10)]


# --- geometry of the charts: plain functions of the report's figures ---


def axis_end(shares: Sequence[float | None]) -> float:
    """The end of a rate axis: the next 5% above every share shown (at least 5%)."""
    highest = max((share for share in shares if share is not None), default=0.0)
    return min(1.0, max(0.05, math.ceil(highest * 20 + 1e-9) / 20))


@dataclass(frozen=True, slots=True)
class Period:
    """One bucket of the series: its rate as a point with its 95% interval as a whisker (none
    without responses) and its responses as a bar."""

    label: str
    x: float
    rate: str
    rate_y: float | None
    interval: str
    lower_y: float | None
    upper_y: float | None
    responses: int
    bar_x: float
    bar_y: float
    bar_width: float
    bar_height: float


@dataclass(frozen=True, slots=True)
class Trend:
    periods: list[Period]
    line: str
    """The SVG polyline points of the rate, broken nowhere: empty periods are skipped."""
    target_y: float | None
    scale: str
    max_responses: int


def trend(series: Sequence[SeriesPoint], target: float | None) -> Trend:
    """The series as a rate line over `CHART_HEIGHT` and responses bars over `BARS_HEIGHT`."""
    scale = axis_end([*(p.negative_rate for p in series), target])
    most = max((p.responses for p in series), default=0) or 1
    step = CHART_WIDTH / max(len(series), 1)

    def rate_y(share: float) -> float:
        return round(CHART_HEIGHT * (1 - min(share, scale) / scale), 2)

    periods = []
    for index, point in enumerate(series):
        height = round(BARS_HEIGHT * point.responses / most, 2)
        bounds = point.interval
        periods.append(
            Period(
                label=point.period.isoformat(),
                x=round(step * (index + 0.5), 2),
                rate=percent(point.negative_rate),
                rate_y=None if point.negative_rate is None else rate_y(point.negative_rate),
                interval="–"
                if bounds is None
                else f"{percent(bounds.lower)}–{percent(bounds.upper)}",
                lower_y=None if bounds is None else rate_y(bounds.lower),
                upper_y=None if bounds is None else rate_y(bounds.upper),
                responses=point.responses,
                bar_x=round(step * index + step * 0.1, 2),
                bar_y=round(BARS_HEIGHT - height, 2),
                bar_width=round(step * 0.8, 2),
                bar_height=height,
            )
        )
    line = " ".join(f"{p.x},{p.rate_y}" for p in periods if p.rate_y is not None)
    return Trend(
        periods=periods,
        line=line,
        target_y=None if target is None else rate_y(target),
        scale=percent(scale),
        max_responses=most if series else 0,
    )


@dataclass(frozen=True, slots=True)
class Count:
    value: str
    count: int
    share: str
    width: float


@dataclass(frozen=True, slots=True)
class ScaleCounts:
    scale: str
    responses: int
    counts: list[Count]


def distribution(found: Sequence[Distribution]) -> list[ScaleCounts]:
    """Answers per value of each scale, with a bar as long as the value's share."""
    shown = []
    for scale in found:
        total = scale.responses or 1
        shown.append(
            ScaleCounts(
                scale=scale.scale.value,
                responses=scale.responses,
                counts=[
                    Count(
                        value=value,
                        count=count,
                        share=percent(count / total),
                        width=round(DISTRIBUTION_WIDTH * count / total, 2),
                    )
                    for value, count in scale.counts.items()
                ],
            )
        )
    return shown


@dataclass(frozen=True, slots=True)
class Member:
    """A breakdown row for people: the rates in percent, the API's outlier verdict beside."""

    dimension: str
    member: str
    responses: int
    negatives: int
    raw: str
    adjusted: str
    interval: str
    prob_worse: str
    outlier: str | None
    """`worse` or `better` when the API names the team as differing from the others."""


def members(rows: Sequence[BreakdownRow], outliers: dict[str, str]) -> list[Member]:
    return [
        Member(
            dimension=row.dimension,
            member=row.member,
            responses=row.responses,
            negatives=row.negatives,
            raw=percent(row.negative_rate),
            adjusted=percent(row.adjusted_negative_rate),
            interval=f"{percent(row.interval.lower)}–{percent(row.interval.upper)}",
            prob_worse=percent(row.prob_worse),
            outlier=outliers.get(row.member) if row.dimension == "team" else None,
        )
        for row in rows
    ]


@dataclass(frozen=True, slots=True)
class FunnelPoint:
    team: str
    responses: int
    rate: str
    x: float
    y: float
    limits: str
    outlier: str | None


@dataclass(frozen=True, slots=True)
class Funnel:
    points: list[FunnelPoint]
    inner: list[str]
    """The SVG polyline points of the 95% limits, lower then upper, fewest responses first."""
    outer: list[str]
    """The same for the 99.8% limits."""
    moment_y: float | None
    scale: str
    max_responses: int


def funnel(
    rows: Sequence[TeamLimits], moment_rate: float | None, outliers: dict[str, str]
) -> Funnel:
    """Teams' raw rates against their responses, within the report's funnel control limits
    around the moment's rate: the limits narrow as responses grow."""
    scale = axis_end(
        [*(row.negative_rate for row in rows), *(row.limits_95.upper for row in rows), moment_rate]
    )
    most = max((row.responses for row in rows), default=0) or 1
    margin = 12.0

    def y(share: float) -> float:
        return round(FUNNEL_HEIGHT * (1 - min(share, scale) / scale), 2)

    def x(responses: int) -> float:
        return round(margin + (CHART_WIDTH - 2 * margin) * responses / most, 2)

    ordered = sorted(rows, key=lambda row: row.responses)

    def lines(bounds: Callable[[TeamLimits], IntervalRead]) -> list[str]:
        return [
            " ".join(f"{x(row.responses)},{y(bounds(row).lower)}" for row in ordered),
            " ".join(f"{x(row.responses)},{y(bounds(row).upper)}" for row in ordered),
        ]

    return Funnel(
        points=[
            FunnelPoint(
                team=row.team,
                responses=row.responses,
                rate=percent(row.negative_rate),
                x=x(row.responses),
                y=y(row.negative_rate),
                limits=f"{percent(row.limits_95.lower)}–{percent(row.limits_95.upper)}",
                outlier=outliers.get(row.team),
            )
            for row in rows
        ],
        inner=lines(lambda row: row.limits_95) if len(rows) > 1 else [],
        outer=lines(lambda row: row.limits_998) if len(rows) > 1 else [],
        moment_y=None if moment_rate is None else y(moment_rate),
        scale=percent(scale),
        max_responses=most if rows else 0,
    )


@dataclass(frozen=True, slots=True)
class Outlier:
    team: str
    direction: str
    rate: str
    others_rate: str
    responses: int
    others_responses: int


def outliers(consistency: ConsistencyRead | None) -> list[Outlier]:
    """The teams the API names as differing from the other teams pooled, with both rates."""
    if consistency is None:
        return []
    return [
        Outlier(
            team=found.team,
            direction=found.direction,
            rate=percent(found.negative_rate),
            others_rate=percent(found.others_negative_rate),
            responses=found.responses,
            others_responses=found.others_responses,
        )
        for found in consistency.outliers
    ]


@dataclass(frozen=True, slots=True)
class OpenFollowUp:
    id: int
    status: str
    overdue: bool
    age: str
    team: str


async def open_follow_ups(session: AsyncSession, key: str) -> list[OpenFollowUp]:
    """The moment's newest open (not resolved or closed) follow-ups, as `GET /v1/follow-ups`
    with `moment` and each open `status` gives them, merged newest first."""
    found = []
    for status in OPEN_STATUSES:
        page, _ = await followups_service.list_follow_ups(
            session,
            filters=followups_service.FollowUpFilter(status=status, moment=key),
            cursor=None,
            limit=OPEN_FOLLOW_UPS,
        )
        found.extend(page)
    found.sort(key=lambda follow_up: (follow_up.opened_at, follow_up.id), reverse=True)
    now = utcnow()
    return [
        OpenFollowUp(
            id=follow_up.id,
            status=follow_up.status.value,
            overdue=follow_up.overdue,
            age=age(follow_up.opened_at, now),
            team=follow_up.team or "",
        )
        for follow_up in found[:OPEN_FOLLOW_UPS]
    ]


# --- the page ---


def _granularity(text: str | None) -> Granularity:
    if not text:
        return DEFAULT_GRANULARITY
    if text not in {g.value for g in GRANULARITIES}:
        message = "`granularity` is `day` or `week`."
        raise ValidationFailed(
            message, details=[ErrorDetail(field="query.granularity", message=message, type="value")]
        )
    return Granularity(text)


async def _report(
    request: Request,
    session: SessionDep,
    key: str,
    view: View | ValidationFailed,
    granularity: str | None,
) -> tuple[View, MomentReport]:
    if isinstance(view, ValidationFailed):
        raise view
    report = await insights_service.moment_report(
        session,
        key=key,
        span=view.span,
        granularity=_granularity(granularity),
        kept_figures=request.app.state.kept_figures,
    )
    return view, report


def _query(view: View, granularity: Granularity, **changes: str | None) -> str:
    return view.query(granularity=granularity.value, **changes)


@router.get("/moments/{key}")
async def moment_page(
    request: Request,
    session: ReplicaSessionDep,
    viewer: ViewerDep,
    view: ViewDep,
    key: KeyPath,
    granularity: GranularityQuery = None,
) -> Response:
    """The moment's trend, teams, agents, channels, bad experiences' comments and the words
    that set them apart, and open follow-ups."""
    try:
        shown, report = await _report(request, session, key, view, granularity)
    except NotFound as missing:
        return render(
            request,
            "moment_missing.html",
            status_code=404,
            viewer=viewer,
            key=key,
            message=missing.message,
        )
    except ValidationFailed as refusal:
        return render(
            request, "refused.html", status_code=422, viewer=viewer, message=refusal.message
        )
    moment = await moments_service.get_moment(session, key=key)
    target = moment.target_negative_rate
    # Like the rest of the page, every touchpoint of the moment in the window.
    words = await insights_service.moment_words(
        session,
        key=key,
        span=shown.span,
        team=None,
        channel=None,
        lang=WordsLanguage.auto,
        limit=WORDS_SHOWN,
    )
    named = {
        found.team: found.direction
        for found in (report.team_consistency.outliers if report.team_consistency else [])
    }
    path = f"/ui/moments/{quote(key, safe='')}"
    filtered = any(shown.params.get(name) for name in ("channel", "team", "stage", "moment"))
    return render(
        request,
        "moment.html",
        viewer=viewer,
        report=report,
        view=shown,
        path=path,
        query=_query(shown, report.granularity),
        window_links=[
            (
                days,
                f"{path}?{_query(shown, report.granularity, days=str(days), **CUSTOM_OFF)}",
                shown.days == days,
            )
            for days in DAYS
        ],
        granularity_links=[
            (g.value, f"{path}?{_query(shown, g)}", report.granularity == g) for g in GRANULARITIES
        ],
        overview=f"/ui/?{shown.query()}",
        filtered=filtered,
        totals=report.totals,
        response_rate=percent(report.totals.response_rate),
        negative_rate=percent(report.totals.negative_rate),
        target=None if target is None else percent(target),
        trend=trend(report.series, target),
        chart_width=CHART_WIDTH,
        chart_height=CHART_HEIGHT,
        bars_height=BARS_HEIGHT,
        funnel_height=FUNNEL_HEIGHT,
        distribution_width=DISTRIBUTION_WIDTH,
        distribution=distribution(report.distribution),
        outliers=outliers(report.team_consistency),
        consistency=report.team_consistency,
        teams=members(report.by_team, named),
        funnel=funnel(report.team_limits, report.totals.negative_rate, named),
        agents=members(report.by_agent, {}),
        channels=members(report.by_channel, {}),
        comments=report.negative_comments,
        words=words,
        follow_ups=await open_follow_ups(session, key),
        follow_ups_shown=OPEN_FOLLOW_UPS,
        queue=f"/ui/follow-ups?{urlencode({'moment': key})}",
    )


@router.get("/moments/{key}/report.json")
async def moment_json(
    request: Request,
    session: ReplicaSessionDep,
    _viewer: ViewerDep,
    view: ViewDep,
    key: KeyPath,
    granularity: GranularityQuery = None,
) -> Response:
    """The exact figures of the moment page, as `/v1/moments/{key}/report` gives them."""
    _, report = await _report(request, session, key, view, granularity)
    return json_response(report)


@router.get("/moments/{key}/report.csv")
async def moment_csv(
    request: Request,
    session: ReplicaSessionDep,
    _viewer: ViewerDep,
    view: ViewDep,
    key: KeyPath,
    granularity: GranularityQuery = None,
) -> Response:
    """The breakdown rows of the moment page, as the API's CSV gives them."""
    _, report = await _report(request, session, key, view, granularity)
    return insights_router.moment_report_csv(report)
