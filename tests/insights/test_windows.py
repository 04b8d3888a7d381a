"""Windows: [from, to) counted exactly at day and month edges, in any offset, on every endpoint.

Insights read whole months and days from the rollups and partial edge days from the
touchpoints; whichever mix a window needs, the counts must equal a count done here.
"""

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.insights.builders import at, get_json, listed, post, touchpoint, window

pytestmark = pytest.mark.anyio

WEAK_SPOTS = "/v1/insights/weak-spots"
OVERVIEW = "/v1/insights/overview"

Counts = tuple[int, int, int]


def _value(position: int) -> int | None:
    """thumbs answer of the touchpoint at `position`: 0, 1 or unrated, in turn."""
    return (0, 1, None)[position % 3]


def _items(moment: str, times: list[str]) -> list[dict[str, Any]]:
    items = []
    for position, text in enumerate(times):
        value = _value(position)
        rating = {} if value is None else {"scale": "thumbs", "value": value}
        items.append(touchpoint(moment, text, **rating))
    return items


def _expected(items: list[dict[str, Any]], start: datetime, end: datetime) -> Counts:
    """(touchpoints, responses, negatives) of the items in [start, end)."""
    inside = [i for i in items if start <= at(i["occurred_at"]) < end]
    rated = [i for i in inside if "rating" in i]
    negatives = [i for i in rated if i["rating"]["value"] == 0]
    return len(inside), len(rated), len(negatives)


async def _check_window(
    client: httpx.AsyncClient, items: list[dict[str, Any]], start: str, end: str
) -> None:
    """Weak spots, overview (both windows) and the moment report agree with a count here."""
    params = window(start, end)
    begin, finish = at(start), at(end)
    expected = _expected(items, begin, finish)
    previous = _expected(items, begin - (finish - begin), begin)
    label = f"window {start} .. {end}"

    spots = listed(await get_json(client, WEAK_SPOTS, params))
    if expected[0]:
        item = spots["m.edge"]
        assert (item["touchpoints"], item["responses"], item["negatives"]) == expected, label
        assert item["trend"]["previous_responses"] == previous[1], label
        assert item["trend"]["previous_negatives"] == previous[2], label
    else:
        assert spots == {}, label

    overview = await get_json(client, OVERVIEW, params)
    for name, counted in (("current", expected), ("previous", previous)):
        headline = overview[name]
        assert headline["touchpoints"] == counted[0], (label, name)
        assert headline["responses"] == counted[1], (label, name)
        negative_share = counted[2] / counted[1] if counted[1] else None
        assert headline["negative_share"] == pytest.approx(negative_share), (label, name)

    report = await get_json(client, "/v1/moments/m.edge/report", params)
    totals = report["totals"]
    assert (totals["touchpoints"], totals["responses"], totals["negatives"]) == expected, label
    series = report["series"]
    assert sum(p["touchpoints"] for p in series) == expected[0], label
    assert sum(p["negatives"] for p in series) == expected[2], label


EDGE_TIMES = [
    "2026-10-31T20:59:59Z",
    "2026-10-31T21:00:00Z",
    "2026-11-01T20:59:59Z",
    "2026-11-01T21:00:00Z",
    "2026-11-02T02:30:00+03:00",  # 2026-11-01T23:30:00Z
    "2026-11-01T23:59:59Z",
    "2026-11-01T23:59:59.999999Z",
    "2026-11-02T00:00:00Z",
    "2026-11-02T00:00:00.000001Z",
    "2026-11-02T12:00:00Z",
    "2026-11-02T20:59:59Z",
    "2026-11-02T21:00:00Z",
    "2026-11-03T01:00:00+05:00",  # 2026-11-02T20:00:00Z
    "2026-11-02T23:59:59Z",
    "2026-11-03T00:00:00Z",
    "2026-11-03T00:00:01Z",
    "2026-11-03T19:00:00-05:00",  # 2026-11-04T00:00:00Z
]


@pytest.mark.parametrize(
    ("start", "end"),
    [
        # one whole UTC day: read from the day rollups
        ("2026-11-02T00:00:00Z", "2026-11-03T00:00:00Z"),
        # the same day in +03:00 is 21:00 UTC the day before to 21:00 UTC: touchpoints only
        ("2026-11-02T00:00:00+03:00", "2026-11-03T00:00:00+03:00"),
        # two days in +03:00: a partial day, a whole day and another partial day
        ("2026-11-01T00:00:00+03:00", "2026-11-03T00:00:00+03:00"),
        # a whole day given in -05:00 is not a UTC day
        ("2026-11-01T19:00:00-05:00", "2026-11-02T19:00:00-05:00"),
        # two seconds around midnight
        ("2026-11-01T23:59:59Z", "2026-11-02T00:00:01Z"),
        # a lower-case separator and zone, as RFC 3339 allows
        ("2026-11-01t21:00:00z", "2026-11-03T00:00:00Z"),
        # mid-day to mid-day over whole days
        ("2026-10-31T21:00:00Z", "2026-11-03T00:00:01Z"),
        # the window holds nothing, its previous window does
        ("2026-11-05T00:00:00Z", "2026-11-06T00:00:00Z"),
        # a whole day in the window, none in the previous one (Oct 31 12:00 to Nov 1 18:00)
        ("2026-11-01T18:00:00Z", "2026-11-03T00:00:00Z"),
    ],
)
async def test_windows_count_exactly_the_touchpoints_inside_them_in_any_offset(
    client: httpx.AsyncClient, start: str, end: str
) -> None:
    items = _items("m.edge", EDGE_TIMES)
    await post(client, items)
    await _check_window(client, items, start, end)


@pytest.mark.parametrize(
    ("bound", "reason"),
    [
        ("2026-11-01T21:00:00", "timezone_aware"),  # naive: whose midnight?
        ("1700000000", "datetime_format"),  # seconds since 1970 are not RFC 3339
        ("2026-11-01", "datetime_format"),
        ("0001-01-01T00:00:00Z", "datetime_range"),
    ],
)
async def test_a_bound_that_is_not_an_rfc_3339_time_with_an_offset_is_refused(
    client: httpx.AsyncClient, bound: str, reason: str
) -> None:
    response = await client.get(WEAK_SPOTS, params={"from": bound})
    assert response.status_code == 422
    detail = response.json()["details"][0]
    assert (detail["field"], detail["type"]) == ("query.from", reason)


async def test_a_window_given_with_an_offset_is_reported_in_utc(client: httpx.AsyncClient) -> None:
    await post(client, _items("m.edge", EDGE_TIMES))
    params = window("2026-11-02T00:00:00+03:00", "2026-11-03T00:00:00+03:00")
    result = await get_json(client, WEAK_SPOTS, params)
    assert result["window"] == {
        "from": "2026-11-01T21:00:00Z",
        "to": "2026-11-02T21:00:00Z",
        "previous_from": "2026-10-31T21:00:00Z",
        "previous_to": "2026-11-01T21:00:00Z",
    }
    # 21:00 and 23:30 and 23:59:59(.999999) on Nov 1, 00:00, 00:00:00.000001, 12:00,
    # 20:00 and 20:59:59 on Nov 2 (UTC).
    assert listed(result)["m.edge"]["touchpoints"] == 9
    report = await get_json(client, "/v1/moments/m.edge/report", params)
    # Series buckets are UTC days: Nov 1 holds four of them, Nov 2 five.
    assert [(p["period"], p["touchpoints"]) for p in report["series"]] == [
        ("2026-11-01", 4),
        ("2026-11-02", 5),
    ]


def _spread() -> list[str]:
    """Touchpoints every 13 hours from Aug 20 to Nov 20, plus some on the month edges."""
    first = datetime(2026, 8, 20, 3, 17, tzinfo=UTC)
    times = [(first + n * timedelta(hours=13)).isoformat() for n in range(170)]
    return times + [
        "2026-09-14T23:59:59Z",
        "2026-09-15T00:00:00Z",
        "2026-09-30T23:59:59Z",
        "2026-10-01T00:00:00Z",
        "2026-10-01T02:00:00+03:00",  # 2026-09-30T23:00:00Z
        "2026-10-31T23:59:59Z",
        "2026-11-01T00:00:00Z",
        "2026-11-09T23:59:59Z",
        "2026-11-10T00:00:00Z",
    ]


@pytest.mark.parametrize(
    ("start", "end"),
    [
        # whole days: Sept 15-30 and Nov 1-9 from day rollups, October from the month rollup
        ("2026-09-15T00:00:00Z", "2026-11-10T00:00:00Z"),
        # the same with partial edge days read from the touchpoints
        ("2026-09-15T12:34:56Z", "2026-11-10T08:00:00Z"),
        # whole months only
        ("2026-09-01T00:00:00Z", "2026-11-01T00:00:00Z"),
        # whole months in +02:00: every edge is off UTC midnight
        ("2026-09-01T00:00:00+02:00", "2026-11-01T00:00:00+02:00"),
        # a month and a bit, starting at a month's last second
        ("2026-09-30T23:59:59Z", "2026-11-01T00:00:01Z"),
        # two hours around a month edge: touchpoints only
        ("2026-09-30T23:00:00Z", "2026-10-01T01:00:00Z"),
    ],
)
async def test_windows_over_months_mix_month_and_day_rollups_with_raw_edges_exactly(
    client: httpx.AsyncClient, start: str, end: str
) -> None:
    items = _items("m.edge", _spread())
    await post(client, items)
    await _check_window(client, items, start, end)


async def test_monthly_report_series_counts_each_month_of_a_window(
    client: httpx.AsyncClient,
) -> None:
    items = _items("m.edge", _spread())
    await post(client, items)
    start, end = "2026-09-15T12:00:00Z", "2026-11-10T00:00:00Z"
    params = {**window(start, end), "granularity": "month"}
    report = await get_json(client, "/v1/moments/m.edge/report", params)

    # Each month's share of the window: Sept 15 12:00 - Oct 1, October, Nov 1 - Nov 10.
    edges = [at(start), at("2026-10-01T00:00:00Z"), at("2026-11-01T00:00:00Z"), at(end)]
    expected = [_expected(items, low, high) for low, high in zip(edges, edges[1:], strict=False)]
    assert [
        (p["period"], p["touchpoints"], p["responses"], p["negatives"]) for p in report["series"]
    ] == [
        (period, *counted)
        for period, counted in zip(
            ["2026-09-01", "2026-10-01", "2026-11-01"], expected, strict=True
        )
    ]


# --- refused windows ---

ENDPOINTS = [
    "/v1/insights/weak-spots",
    "/v1/insights/consistency",
    "/v1/insights/silence",
    "/v1/insights/overview",
    "/v1/moments/m.edge/report",
]


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("2026-11-02T00:00:00Z", "2026-11-01T00:00:00Z"),
        ("2026-11-02T00:00:00Z", "2026-11-02T00:00:00Z"),
        # the same instant written in two offsets is an empty window too
        ("2026-11-02T03:00:00+03:00", "2026-11-02T00:00:00Z"),
    ],
)
async def test_an_empty_or_reversed_window_is_refused_naming_from(
    client: httpx.AsyncClient, start: str, end: str
) -> None:
    await post(client, _items("m.edge", EDGE_TIMES[:1]))
    for path in ENDPOINTS:
        response = await client.get(path, params=window(start, end))
        assert response.status_code == 422, path
        body = response.json()
        assert body["code"] == "validation_failed", path
        assert body["details"][0]["field"] == "query.from", path


async def test_a_window_longer_than_three_years_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.get(
        WEAK_SPOTS, params=window("2022-01-01T00:00:00Z", "2026-01-01T00:00:00Z")
    )
    assert response.status_code == 422
    assert response.json()["details"][0]["field"] == "query.from"


async def test_a_malformed_time_is_refused_naming_the_parameter(client: httpx.AsyncClient) -> None:
    response = await client.get(WEAK_SPOTS, params=window("yesterday", "2026-11-01T00:00:00Z"))
    assert response.status_code == 422
    assert response.json()["details"][0]["field"] == "query.from"
    response = await client.get(WEAK_SPOTS, params=window("2026-11-01T00:00:00Z", "tomorrow"))
    assert response.status_code == 422
    assert response.json()["details"][0]["field"] == "query.to"


async def test_an_unknown_granularity_is_refused(client: httpx.AsyncClient) -> None:
    await post(client, _items("m.edge", EDGE_TIMES[:1]))
    params = {**window("2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z"), "granularity": "year"}
    response = await client.get("/v1/moments/m.edge/report", params=params)
    assert response.status_code == 422
    assert response.json()["details"][0]["field"] == "query.granularity"
