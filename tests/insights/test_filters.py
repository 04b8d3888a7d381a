"""Filters on weak spots, overview and silence: team, channel, both, stage, moment prefix; limit.

A team filter is answered from the team rollups, a channel filter from the channel rollups,
both together from the touchpoints themselves: the counts must agree with a count done here.
"""

from datetime import timedelta
from typing import Any

import httpx
import pytest

from tests.insights.builders import add_moment, at, get_json, listed, post, touchpoint, window

pytestmark = pytest.mark.anyio

WEAK_SPOTS = "/v1/insights/weak-spots"
MOMENTS = {
    "portal.login": "access",
    "portal.search": "access",
    "desk.call": "request",
    "desk.visit": None,
}
TEAMS = ["red", "blue", None]
CHANNELS = ["call", "portal", "email", "chat", "call"]
WINDOWS = [
    # whole days (rollups) and a window starting and ending mid-day (rollups and raw edges)
    ("2026-10-05T00:00:00Z", "2026-10-12T00:00:00Z"),
    ("2026-10-06T05:30:00Z", "2026-10-07T10:15:00Z"),
]


def _data() -> list[dict[str, Any]]:
    """120 touchpoints over about three days, cycling through moments, teams and channels."""
    keys = list(MOMENTS)
    items = []
    start = at("2026-10-05T22:00:00Z")
    for i in range(120):
        fields: dict[str, Any] = {"channel": CHANNELS[i % 5]}
        if TEAMS[i % 3] is not None:
            fields["team"] = TEAMS[i % 3]
        if i % 7 != 6:
            fields |= {"scale": "thumbs", "value": 0 if i % 7 < 3 else 1}
        items.append(touchpoint(keys[i % 4], start + i * timedelta(minutes=37), **fields))
    return items


async def _load(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    for key, stage in MOMENTS.items():
        await add_moment(client, key, stage=stage)
    await add_moment(client, "portal.unused", stage="access")  # no touchpoints: never listed
    items = _data()
    await post(client, items)
    return items


def _expected(
    items: list[dict[str, Any]], start: str, end: str, scope: dict[str, str]
) -> dict[str, tuple[int, int, int]]:
    """(touchpoints, responses, negatives) per moment with touchpoints in the scope."""
    found: dict[str, list[int]] = {}
    for item in items:
        if not at(start) <= at(item["occurred_at"]) < at(end):
            continue
        if "team" in scope and item.get("team") != scope["team"]:
            continue
        if "channel" in scope and item["channel"] != scope["channel"]:
            continue
        if "stage" in scope and MOMENTS[item["moment"]] != scope["stage"]:
            continue
        if "moment" in scope and not item["moment"].startswith(scope["moment"]):
            continue
        cell = found.setdefault(item["moment"], [0, 0, 0])
        cell[0] += 1
        if "rating" in item:
            cell[1] += 1
            cell[2] += item["rating"]["value"] == 0
    return {key: (v, n, k) for key, (v, n, k) in found.items()}


@pytest.mark.parametrize(
    "scope",
    [
        {},
        {"team": "red"},
        {"team": "nobody"},
        {"channel": "call"},
        {"team": "red", "channel": "call"},
        {"team": "blue", "channel": "portal"},
        {"stage": "access"},
        {"moment": "portal."},
        {"stage": "request", "team": "blue", "channel": "chat"},
        {"moment": "desk.", "channel": "email"},
    ],
    ids=lambda scope: ",".join(f"{k}={v}" for k, v in scope.items()) or "all",
)
async def test_filters_count_exactly_the_touchpoints_in_scope(
    client: httpx.AsyncClient, scope: dict[str, str]
) -> None:
    items = await _load(client)
    for start, end in WINDOWS:
        expected = _expected(items, start, end, scope)
        assert expected or scope == {"team": "nobody"}  # the data set exercises the filter
        params = {**window(start, end), **scope}

        result = await get_json(client, WEAK_SPOTS, params)
        found = {
            key: (i["touchpoints"], i["responses"], i["negatives"])
            for key, i in listed(result).items()
        }
        assert found == expected, (start, end)
        assert result["moments_ranked"] == len(expected)

        overview = await get_json(client, "/v1/insights/overview", params)
        current = overview["current"]
        assert current["touchpoints"] == sum(v for v, _, _ in expected.values())
        assert current["responses"] == sum(n for _, n, _ in expected.values())
        assert current["moments"] == len(expected)

        silence = await get_json(client, "/v1/insights/silence", params)
        responses, touchpoints = current["responses"], current["touchpoints"]
        overall = responses / touchpoints if touchpoints else None
        assert silence["overall_response_rate"] == pytest.approx(overall)


async def test_team_and_channel_together_agree_with_either_filter_alone(
    client: httpx.AsyncClient,
) -> None:
    items = await _load(client)
    start, end = WINDOWS[0]
    # Summed over every channel, team+channel (counted from the touchpoints) gives the team
    # figures (counted from the team rollups).
    summed: dict[str, list[int]] = {}
    for channel in sorted(set(CHANNELS)):
        scope = {"team": "red", "channel": channel}
        result = await get_json(client, WEAK_SPOTS, {**window(start, end), **scope})
        for key, item in listed(result).items():
            cell = summed.setdefault(key, [0, 0, 0])
            for position, name in enumerate(("touchpoints", "responses", "negatives")):
                cell[position] += item[name]
    team = listed(await get_json(client, WEAK_SPOTS, {**window(start, end), "team": "red"}))
    assert {k: tuple(v) for k, v in summed.items()} == {
        k: (i["touchpoints"], i["responses"], i["negatives"]) for k, i in team.items()
    }
    assert {k: tuple(v) for k, v in summed.items()} == _expected(items, start, end, {"team": "red"})


async def test_limit_keeps_the_highest_priorities(client: httpx.AsyncClient) -> None:
    await _load(client)
    params = window(*WINDOWS[0])
    everything = await get_json(client, WEAK_SPOTS, params)
    assert len(everything["data"]) == 4
    top = await get_json(client, WEAK_SPOTS, {**params, "limit": 2})

    assert top["data"] == everything["data"][:2]
    assert [item["rank"] for item in top["data"]] == [1, 2]
    assert top["moments_ranked"] == 4
    priorities = [item["priority"] for item in everything["data"]]
    assert priorities == sorted(priorities, reverse=True)


@pytest.mark.parametrize("limit", [0, 501])
async def test_limit_out_of_range_is_refused(client: httpx.AsyncClient, limit: int) -> None:
    params: dict[str, Any] = {**window(*WINDOWS[0]), "limit": limit}
    response = await client.get(WEAK_SPOTS, params=params)
    assert response.status_code == 422
    assert response.json()["details"][0]["field"] == "query.limit"


async def test_an_unknown_channel_is_refused(client: httpx.AsyncClient) -> None:
    params = {**window(*WINDOWS[0]), "channel": "pigeon"}
    response = await client.get(WEAK_SPOTS, params=params)
    assert response.status_code == 422
    assert response.json()["details"][0]["field"] == "query.channel"


async def test_filters_narrow_the_baseline_to_the_moments_in_scope(
    client: httpx.AsyncClient,
) -> None:
    items = await _load(client)
    start, end = WINDOWS[0]
    result = await get_json(client, WEAK_SPOTS, {**window(start, end), "stage": "access"})
    expected = _expected(items, start, end, {"stage": "access"})
    responses = sum(n for _, n, _ in expected.values())
    negatives = sum(k for _, _, k in expected.values())
    assert result["method"]["baselines"] == [
        {
            "family": "satisfaction",
            "baseline": pytest.approx(negatives / responses),
            "prior_strength": 20.0,
            "responses": responses,
            "moments": 2,
        }
    ]
    assert {item["stage"] for item in result["data"]} == {"access"}
