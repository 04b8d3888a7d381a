"""GET /v1/moments/{key}/report: distribution, time series, breakdowns, comments, CSV."""

from typing import Any

import httpx
import pytest

from app.insights.stats import funnel_limits, wilson_interval
from tests.insights.builders import (
    CSV_ROUNDING,
    add_moment,
    get_json,
    post,
    rated,
    read_csv,
    touchpoint,
    window,
)

pytestmark = pytest.mark.anyio

REPORT = "/v1/moments/m.rep/report"
TWO_WEEKS = window("2026-10-05T00:00:00Z", "2026-10-19T00:00:00Z")


async def _report_data(client: httpx.AsyncClient) -> None:
    """26 touchpoints of m.rep inside [Oct 5, Oct 19), and two just outside it.

    red/ann: 10 csat5 on Oct 6, five 1s and five 5s, two of them (a 1 and a 5) by chat;
    blue/bob: 10 csat5 by e-mail on Oct 13, one 2 and nine 4s;
    no team, no agent: 6 by portal on Oct 14, thumbs 0 and 1 and four unrated.
    """
    await add_moment(client, "m.rep")
    red: dict[str, Any] = {"team": "red", "agent": "ann"}
    items = [
        touchpoint("m.rep", f"2026-10-06T0{i}:00:00Z", scale="csat5", value=1, comment=f"red {i}")
        | red
        | ({"channel": "chat", "complaint": True} if i == 4 else {})
        for i in range(5)
    ]
    items += rated("m.rep", "2026-10-06T12:00:00Z", "csat5", [5] * 5, **red)
    items[5] |= {"channel": "chat", "comment": "lovely"}  # positive: not a negative comment
    blue: dict[str, Any] = {"team": "blue", "agent": "bob", "channel": "email"}
    items.append(
        touchpoint("m.rep", "2026-10-13T10:00:00Z", scale="csat5", value=2, comment="slow") | blue
    )
    items += rated("m.rep", "2026-10-13T11:00:00Z", "csat5", [4] * 9, **blue)
    portal: dict[str, Any] = {"channel": "portal", "complaint": True}
    items.append(touchpoint("m.rep", "2026-10-14T09:00:00Z", scale="thumbs", value=0) | portal)
    unrated: list[int | None] = [1, None, None, None, None]
    items += rated("m.rep", "2026-10-14T10:00:00Z", "thumbs", unrated, channel="portal")
    # Just outside the window, with negative comments that must not show.
    items.append(touchpoint("m.rep", "2026-10-04T23:59:59Z", scale="csat5", value=1, comment="x"))
    items.append(touchpoint("m.rep", "2026-10-19T00:00:00Z", scale="csat5", value=1, comment="y"))
    await post(client, items)


def _empty(period: str) -> dict[str, Any]:
    return {
        "period": period,
        "touchpoints": 0,
        "responses": 0,
        "negatives": 0,
        "negative_rate": None,
        "interval": None,
        "mean_score": None,
    }


async def test_report_totals_and_distribution_per_scale(client: httpx.AsyncClient) -> None:
    await _report_data(client)
    report = await get_json(client, REPORT, TWO_WEEKS)

    assert report["moment"] == "m.rep"
    assert report["window"]["from"] == "2026-10-05T00:00:00Z"
    assert report["window"]["to"] == "2026-10-19T00:00:00Z"
    totals = report["totals"]
    # 26 touchpoints; 22 rated: 20 csat5 + 2 thumbs; negatives: five 1s, one 2, one thumbs 0.
    assert (totals["touchpoints"], totals["responses"], totals["negatives"]) == (26, 22, 7)
    assert totals["response_rate"] == pytest.approx(22 / 26)
    assert totals["negative_rate"] == pytest.approx(7 / 22)
    assert totals["complaints"] == 2
    # Scores: csat 1 -> 0 (x5), 5 -> 100 (x5), 2 -> 25, 4 -> 75 (x9); thumbs 0 and 100.
    assert totals["mean_score"] == pytest.approx((500 + 25 + 9 * 75 + 100) / 22)
    # CSAT top-2-box: 5s and 4s, 14 of 20.
    assert totals["native"]["csat"]["value"] == pytest.approx(14 / 20)
    assert totals["native"]["nps"] is None
    assert report["distribution"] == [
        {"scale": "csat5", "responses": 20, "counts": {"1": 5, "2": 1, "3": 0, "4": 9, "5": 5}},
        {"scale": "thumbs", "responses": 2, "counts": {"0": 1, "1": 1}},
    ]


async def test_daily_series_lists_every_day_of_the_window_including_empty_ones(
    client: httpx.AsyncClient,
) -> None:
    await _report_data(client)
    report = await get_json(client, REPORT, {**TWO_WEEKS, "granularity": "day"})

    assert report["granularity"] == "day"
    series = {point["period"]: point for point in report["series"]}
    assert list(series) == [f"2026-10-{day:02d}" for day in range(5, 19)]
    assert series["2026-10-06"] == {
        "period": "2026-10-06",
        "touchpoints": 10,
        "responses": 10,
        "negatives": 5,
        "negative_rate": 0.5,
        "interval": {
            "lower": pytest.approx(wilson_interval(5, 10).lower),
            "upper": pytest.approx(wilson_interval(5, 10).upper),
        },
        "mean_score": pytest.approx(50.0),
    }
    assert (series["2026-10-13"]["touchpoints"], series["2026-10-13"]["negatives"]) == (10, 1)
    assert series["2026-10-14"]["touchpoints"] == 6
    assert series["2026-10-14"]["responses"] == 2
    assert series["2026-10-05"] == _empty("2026-10-05")
    assert series["2026-10-18"] == _empty("2026-10-18")
    assert sum(point["touchpoints"] for point in report["series"]) == 26


async def test_each_period_has_the_wilson_interval_of_its_raw_negative_rate(
    client: httpx.AsyncClient,
) -> None:
    await _report_data(client)
    report = await get_json(client, REPORT, {**TWO_WEEKS, "granularity": "day"})

    rated_periods = [point for point in report["series"] if point["responses"]]
    assert rated_periods
    for point in report["series"]:
        if not point["responses"]:
            assert point["interval"] is None
            continue
        expected = wilson_interval(point["negatives"], point["responses"])
        assert point["interval"] == {
            "lower": pytest.approx(expected.lower),
            "upper": pytest.approx(expected.upper),
        }
        assert point["interval"]["lower"] <= point["negative_rate"] <= point["interval"]["upper"]


async def test_weekly_series_buckets_by_iso_week_from_monday(client: httpx.AsyncClient) -> None:
    await _report_data(client)
    # Wednesday Oct 7 to Tuesday Oct 20: weeks of Monday Oct 5 (part), Oct 12, Oct 19 (part).
    # Oct 6 lies before the window, so the first week is empty.
    params = {**window("2026-10-07T00:00:00Z", "2026-10-21T00:00:00Z"), "granularity": "week"}
    report = await get_json(client, REPORT, params)

    periods = [
        (p["period"], p["touchpoints"], p["responses"], p["negatives"]) for p in report["series"]
    ]
    # Week of Oct 12: blue's 10 (1 negative) and 6 by portal (2 rated, 1 negative);
    # week of Oct 19: the touchpoint at Oct 19 00:00:00 (a negative csat 1).
    assert periods == [
        ("2026-10-05", 0, 0, 0),
        ("2026-10-12", 16, 12, 2),
        ("2026-10-19", 1, 1, 1),
    ]


async def test_monthly_series_covers_each_month_the_window_touches(
    client: httpx.AsyncClient,
) -> None:
    await _report_data(client)
    params = {**window("2026-09-20T00:00:00Z", "2026-11-05T00:00:00Z"), "granularity": "month"}
    report = await get_json(client, REPORT, params)

    assert [(p["period"], p["touchpoints"], p["negatives"]) for p in report["series"]] == [
        ("2026-09-01", 0, 0),
        ("2026-10-01", 28, 9),
        ("2026-11-01", 0, 0),
    ]


async def test_breakdowns_by_team_agent_and_channel_shrink_towards_the_moments_rate(
    client: httpx.AsyncClient,
) -> None:
    await _report_data(client)
    report = await get_json(client, REPORT, TWO_WEEKS)

    # Every member is rated on the satisfaction family: mu = 7/22, kappa = 20 (J < 8);
    # a = mu*kappa + k, b = (1-mu)*kappa + n - k, rate = a/(a+b) = (20*mu + k)/(20 + n).
    mu = 7 / 22

    def adjusted(n: int, k: int) -> float:
        return (20 * mu + k) / (20 + n)

    def rows(dimension: str) -> list[tuple[str, int, int, int, Any]]:
        return [
            (
                r["member"],
                r["touchpoints"],
                r["responses"],
                r["negatives"],
                r["adjusted_negative_rate"],
            )
            for r in report[f"by_{dimension}"]
        ]

    # Highest adjusted rate first: the team-less member's raw 1/2 is shrunk below red's 5/10.
    members = [
        ("red", 10, 10, 5, pytest.approx(adjusted(10, 5))),  # 0.379
        ("", 6, 2, 1, pytest.approx(adjusted(2, 1))),  # 0.335
        ("blue", 10, 10, 1, pytest.approx(adjusted(10, 1))),  # 0.245
    ]
    assert rows("team") == members
    assert rows("agent") == [("ann", *members[0][1:]), members[1], ("bob", *members[2][1:])]
    # Channels: call 8 (4 negative), chat 2 (1), portal 6 (2 rated, 1 negative), email 10 (1);
    # chat and portal have the same adjusted rate and are listed by name.
    assert rows("channel") == [
        ("call", 8, 8, 4, pytest.approx(adjusted(8, 4))),
        ("chat", 2, 2, 1, pytest.approx(adjusted(2, 1))),
        ("portal", 6, 2, 1, pytest.approx(adjusted(2, 1))),
        ("email", 10, 10, 1, pytest.approx(adjusted(10, 1))),
    ]
    red = report["by_team"][0]
    assert red["dimension"] == "team"
    assert red["negative_rate"] == 0.5
    assert red["complaints"] == 1
    assert red["interval"]["lower"] < red["adjusted_negative_rate"] < red["interval"]["upper"]
    assert report["by_team"][1]["mean_score"] == pytest.approx(50.0)


async def test_team_limits_are_the_funnel_limits_around_the_moments_rate(
    client: httpx.AsyncClient,
) -> None:
    await _report_data(client)
    report = await get_json(client, REPORT, TWO_WEEKS)

    pooled = report["totals"]["negative_rate"]
    assert pooled == pytest.approx(7 / 22)
    teams = [row for row in report["by_team"] if row["responses"]]
    assert [row["team"] for row in report["team_limits"]] == [row["member"] for row in teams]
    for limits, row in zip(report["team_limits"], teams, strict=True):
        assert limits["responses"] == row["responses"]
        assert limits["negative_rate"] == row["negative_rate"]
        for name, z in (("limits_95", 1.96), ("limits_998", 3.09)):
            expected = funnel_limits(pooled, row["responses"], z)
            assert limits[name] == {
                "lower": pytest.approx(expected.lower),
                "upper": pytest.approx(expected.upper),
            }


async def test_negative_comments_are_the_windows_newest_first(client: httpx.AsyncClient) -> None:
    await _report_data(client)
    report = await get_json(client, REPORT, TWO_WEEKS)

    comments = report["negative_comments"]
    # Positive answers with comments, negative answers without, and comments outside the
    # window are left out.
    assert [(c["comment"], c["occurred_at"]) for c in comments] == [
        ("slow", "2026-10-13T10:00:00Z"),
        ("red 4", "2026-10-06T04:00:00Z"),
        ("red 3", "2026-10-06T03:00:00Z"),
        ("red 2", "2026-10-06T02:00:00Z"),
        ("red 1", "2026-10-06T01:00:00Z"),
        ("red 0", "2026-10-06T00:00:00Z"),
    ]
    assert {k: comments[0][k] for k in ("channel", "team", "scale", "value")} == {
        "channel": "email",
        "team": "blue",
        "scale": "csat5",
        "value": 2,
    }
    assert comments[1]["channel"] == "chat"


async def test_negative_comments_stop_at_the_twenty_newest(client: httpx.AsyncClient) -> None:
    await post(
        client,
        [
            touchpoint(
                "m.rep",
                f"2026-10-07T{hour:02d}:00:00Z",
                scale="thumbs",
                value=0,
                comment=f"c{hour}",
            )
            for hour in range(24)
        ],
    )
    report = await get_json(client, REPORT, TWO_WEEKS)
    assert [c["comment"] for c in report["negative_comments"]] == [
        f"c{hour}" for hour in range(23, 3, -1)
    ]


async def test_report_of_an_unknown_moment_is_404(client: httpx.AsyncClient) -> None:
    for params in (TWO_WEEKS, {**TWO_WEEKS, "format": "csv"}):
        response = await client.get("/v1/moments/m.nowhere/report", params=params)
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"


async def test_report_of_a_moment_without_touchpoints_in_the_window_is_empty(
    client: httpx.AsyncClient,
) -> None:
    await add_moment(client, "m.rep")
    report = await get_json(client, REPORT, window("2026-10-05T00:00:00Z", "2026-10-07T00:00:00Z"))
    assert report["totals"]["touchpoints"] == 0
    assert report["totals"]["negative_rate"] is None
    assert report["distribution"] == []
    assert report["series"] == [_empty("2026-10-05"), _empty("2026-10-06")]
    assert report["by_team"] == report["by_agent"] == report["by_channel"] == []
    assert report["team_limits"] == []
    assert report["negative_comments"] == []


BREAKDOWN_HEADER = [
    "dimension",
    "member",
    "touchpoints",
    "responses",
    "negatives",
    "negative_rate",
    "adjusted_negative_rate",
    "interval_lower",
    "interval_upper",
    "prob_worse",
    "mean_score",
    "complaints",
]


async def test_report_csv_holds_the_breakdown_rows_with_the_json_values(
    client: httpx.AsyncClient,
) -> None:
    await _report_data(client)
    as_json = await get_json(client, REPORT, TWO_WEEKS)
    response = await client.get(REPORT, params={**TWO_WEEKS, "format": "csv"})

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "m.rep-breakdown.csv" in response.headers["content-disposition"]
    fieldnames, rows = read_csv(response)
    assert fieldnames == BREAKDOWN_HEADER
    expected = [*as_json["by_team"], *as_json["by_agent"], *as_json["by_channel"]]
    assert len(rows) == len(expected) == 10
    for row, item in zip(rows, expected, strict=True):
        assert (row["dimension"], row["member"]) == (item["dimension"], item["member"])
        for column in ("touchpoints", "responses", "negatives", "complaints"):
            assert int(row[column]) == item[column], column
        for column in ("negative_rate", "adjusted_negative_rate", "prob_worse", "mean_score"):
            value = item[column]
            if value is None:
                assert row[column] == "", column
            else:
                assert float(row[column]) == pytest.approx(value, abs=CSV_ROUNDING), column
        for bound in ("lower", "upper"):
            expected = item["interval"][bound]
            assert float(row[f"interval_{bound}"]) == pytest.approx(expected, abs=CSV_ROUNDING)
    assert [(r["dimension"], r["member"]) for r in rows[:3]] == [
        ("team", "red"),
        ("team", ""),
        ("team", "blue"),
    ]
