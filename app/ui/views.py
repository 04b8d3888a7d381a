"""What the analyst pages show of the figures the insights serve: rounded for people, with
the geometry of their SVG charts. Plain functions of the API's answers: no figure is
computed here that the API does not already give."""

import math
from collections.abc import Sequence
from dataclasses import dataclass

from app.insights.schemas import Overview, WeakSpot, WeakSpotsRead
from app.insights.stats import WeakSpotReason

BAR_WIDTH = 120.0
RANGE_WIDTH = 160.0

MARKERS: dict[str, str] = {
    "confident_problem": "Confident problem",
    "worsening": "Worsening",
    "inconsistent_teams": "Teams differ",
    "low_data": "Low data",
}

REASONS: dict[WeakSpotReason, str] = {
    WeakSpotReason.high_volume: "Many clients pass through it",
    WeakSpotReason.over_target: "Its negative rate is over the target",
    WeakSpotReason.confident_problem: "Confidently worse than its reference",
    WeakSpotReason.worsening: "Worse than in the previous window",
    WeakSpotReason.inconsistent_teams: "Some teams do clearly worse than others",
    WeakSpotReason.low_response_rate: "Few clients answer",
    WeakSpotReason.many_complaints: "Many complaints",
}


def percent(share: float | None) -> str:
    """A share as a percentage with one decimal; a dash when there is none."""
    return "–" if share is None else f"{share * 100:.1f}%"


def points(change: float | None) -> str:
    """A change of a share in percentage points, signed."""
    return "–" if change is None else f"{change * 100:+.1f} pp"


def _one_decimal(value: float) -> str:
    # Adding 0.0 turns the -0.0 of a small negative rounded to zero into 0.0.
    return f"{round(value, 1) + 0.0:.1f}"


def signed(change: float | None, digits: int = 1) -> str:
    return "–" if change is None else f"{change:+.{digits}f}"


@dataclass(frozen=True, slots=True)
class Bar:
    """A bar of a diverging chart: from the zero line, leftwards when negative."""

    x: float
    width: float
    zero: float
    negative: bool


@dataclass(frozen=True, slots=True)
class Range:
    """An interval drawn on a 0..`scale` axis, with its point and the reference."""

    lower_x: float
    width: float
    value_x: float
    reference_x: float


@dataclass(frozen=True, slots=True)
class Row:
    rank: int
    moment: str
    name: str
    stage: str
    owner_team: str
    touchpoints: int
    responses: int
    priority: str
    bar: Bar
    adjusted: str
    interval: str
    reference: str
    reference_kind: str
    range: Range
    markers: list[tuple[str, str]]
    reasons: list[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class Figure:
    label: str
    value: str
    change: str


def markers(spot: WeakSpot) -> list[tuple[str, str]]:
    """(flag, words) of each marker the moment carries."""
    flags = {
        "confident_problem": spot.confident_problem,
        "worsening": spot.trend.worsening,
        "inconsistent_teams": spot.consistency is not None and spot.consistency.inconsistent_teams,
        "low_data": spot.low_data,
    }
    return [(flag, MARKERS[flag]) for flag, raised in flags.items() if raised]


def _scale(spots: Sequence[WeakSpot]) -> float:
    """The end of the rate axis: the next 5% above every interval and reference shown."""
    highest = max((max(s.interval.upper, s.reference) for s in spots), default=0.0)
    return min(1.0, max(0.05, math.ceil(highest * 20 + 1e-9) / 20))


def _bars(priorities: Sequence[float]) -> list[Bar]:
    low, high = min(0.0, *priorities), max(0.0, *priorities)
    span = (high - low) or 1.0
    zero = BAR_WIDTH * -low / span
    bars = []
    for priority in priorities:
        width = BAR_WIDTH * abs(priority) / span
        bars.append(
            Bar(
                x=zero - width if priority < 0 else zero,
                width=width,
                zero=zero,
                negative=priority < 0,
            )
        )
    return bars


def rows(result: WeakSpotsRead) -> tuple[list[Row], float]:
    """The ranked moments as table rows, and the end of their rate axis (a share)."""
    spots = result.data
    scale = _scale(spots)
    bars = _bars([spot.priority for spot in spots]) if spots else []

    def at(share: float) -> float:
        return round(RANGE_WIDTH * min(max(share, 0.0), scale) / scale, 2)

    table = []
    for spot, bar in zip(spots, bars, strict=True):
        lower, upper = at(spot.interval.lower), at(spot.interval.upper)
        table.append(
            Row(
                rank=spot.rank,
                moment=spot.moment,
                name=spot.name,
                stage=spot.stage or "",
                owner_team=spot.owner_team or "",
                touchpoints=spot.touchpoints,
                responses=spot.responses,
                priority=_one_decimal(spot.priority),
                bar=bar,
                adjusted=percent(spot.adjusted_negative_rate),
                interval=f"{percent(spot.interval.lower)}–{percent(spot.interval.upper)}",
                reference=percent(spot.reference),
                reference_kind="target" if spot.target_negative_rate is not None else "baseline",
                range=Range(
                    lower_x=lower,
                    width=max(upper - lower, 1.0),
                    value_x=at(spot.adjusted_negative_rate),
                    reference_x=at(spot.reference),
                ),
                markers=markers(spot),
                reasons=[(reason.value, REASONS[reason]) for reason in spot.reasons],
            )
        )
    return table, scale


def headline(overview: Overview) -> list[Figure]:
    """The window's headline figures with their change against the previous window."""
    now, change = overview.current, overview.change
    nps = None if now.native.nps is None else now.native.nps.value
    ces = None if now.native.ces is None else now.native.ces.mean
    csat = None if now.native.csat is None else now.native.csat.value
    return [
        Figure("Touchpoints", f"{now.touchpoints:,}", f"{change.touchpoints:+,}"),
        Figure("Rated responses", f"{now.responses:,}", f"{change.responses:+,}"),
        Figure("Response rate", percent(now.response_rate), points(change.response_rate)),
        Figure("Negative share", percent(now.negative_share), points(change.negative_share)),
        Figure("Complaints", f"{now.complaints:,}", f"{change.complaints:+,}"),
        Figure("NPS", "–" if nps is None else f"{nps:.1f}", signed(change.nps)),
        Figure("CSAT (top-2-box)", percent(csat), points(change.csat)),
        Figure("CES (1–7)", "–" if ces is None else f"{ces:.2f}", signed(change.ces, 2)),
    ]
