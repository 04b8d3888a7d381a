"""Factors and lost time: what answers say beyond their rating, checked on planted data.

Shares are checked against the beta-binomial computed here by hand (PRODUCT.md,
"Ranking", with the factor's pooled share as mu); lost time against scipy on the answers
themselves.
"""

from typing import Any

import httpx
import numpy as np
import pytest
from scipy import special
from scipy import stats as scipy_stats

from tests.insights.builders import add_moment, get_json, listed, post, read_csv, touchpoint, window

pytestmark = pytest.mark.anyio

WEAK_SPOTS = "/v1/insights/weak-spots"
WEEK = window("2026-10-05T00:00:00Z", "2026-10-12T00:00:00Z")
DAY = "2026-10-06T09:00:00Z"


def _answers(
    moment: str, count: int, value: int, *, picks: list[list[str]] | None = None, **rating: Any
) -> list[dict[str, Any]]:
    """`count` csat5 answers of `value`, the i-th picking `picks[i]` (none past its end)."""
    items = []
    for i in range(count):
        body = touchpoint(moment, f"2026-10-06T09:{i // 60:02d}:{i % 60:02d}Z")
        body["rating"] = {"scale": "csat5", "value": value, **rating}
        if picks is not None and i < len(picks) and picks[i]:
            body["rating"]["factors"] = picks[i]
        items.append(body)
    return items


def _kappa(cells: list[tuple[int, int]]) -> float:
    """Method-of-moments prior strength, clamped to [5, 200] (PRODUCT.md, "Ranking")."""
    total = sum(n for n, _ in cells)
    mu = sum(k for _, k in cells) / total
    tau2 = sum(n / total * (k / n - mu) ** 2 for n, k in cells) - len(cells) * mu * (1 - mu) / total
    return 200.0 if tau2 <= 0 else min(max(mu * (1 - mu) / tau2 - 1, 5.0), 200.0)


async def test_a_factor_planted_in_negative_answers_comes_first(client: httpx.AsyncClient) -> None:
    # Nine moments, twenty negative answers each: eight pick "not-solved" 5 times and
    # "waited-too-long" twice; the planted one picks "waited-too-long" 16 times and
    # "not-solved" 3 times.
    items = []
    for number in range(8):
        picks = [["not-solved"]] * 5 + [["waited-too-long"]] * 2
        items += _answers(f"m.usual-{number}", 20, 1, picks=picks)
    picks = [["waited-too-long"]] * 13 + [["waited-too-long", "not-solved"]] * 3
    items += _answers("m.planted", 20, 1, picks=picks)
    items += _answers("m.planted", 4, 5, picks=[["quick"]] * 4)
    await post(client, items)

    report = await get_json(client, "/v1/moments/m.planted/factors", WEEK)
    negative = report["sentiments"][0]
    assert negative["sentiment"] == "negative"
    assert (negative["answers"], negative["said_why"]) == (20, 16)
    first = negative["factors"][0]
    assert first["key"] == "waited-too-long"
    assert first["label"]["en"] == "I waited too long on the line"
    assert first["picked"] == 16
    assert first["share"] == pytest.approx(16 / 20)
    assert first["share_of_said_why"] == pytest.approx(1.0)

    cells = [(20, 2)] * 8 + [(20, 16)]
    mu, kappa = 32 / 180, _kappa(cells)
    a, b = mu * kappa + 16, (1 - mu) * kappa + 4
    assert first["prior_share"] == pytest.approx(mu)
    assert first["prior_strength"] == pytest.approx(kappa)
    assert first["adjusted_share"] == pytest.approx(a / (a + b))
    assert mu < first["adjusted_share"] < 16 / 20
    interval = first["interval"]
    assert interval["lower"] == pytest.approx(float(special.betaincinv(a, b, 0.05)))
    assert interval["upper"] == pytest.approx(float(special.betaincinv(a, b, 0.95)))
    positive = report["sentiments"][2]
    assert (positive["answers"], positive["factors"][0]["key"]) == (4, "quick")

    spots = listed(await get_json(client, WEAK_SPOTS, WEEK))
    assert [f["key"] for f in spots["m.planted"]["top_factors"]] == [
        "waited-too-long",
        "not-solved",
    ]
    assert spots["m.usual-0"]["top_factors"][0]["key"] == "not-solved"
    assert spots["m.usual-0"]["lost_time"] is None


async def test_long_lost_times_top_the_hours_lost_order(client: httpx.AsyncClient) -> None:
    # m.bad: 30 touchpoints, 20 negative, 5 minutes lost each: first by priority.
    # m.slow: 40 touchpoints, 4 negative, ten answers losing 60..180 minutes: first by hours.
    slow_minutes = [60, 90, 120, 150, 180] * 2
    items = _answers("m.bad", 20, 1, lost_minutes=5) + _answers("m.bad", 10, 5)
    items += _answers("m.slow", 4, 1) + _answers("m.slow", 26, 5)
    items += [
        {**touchpoint("m.slow", f"2026-10-07T10:{i:02d}:00Z"), "rating": rating}
        for i, rating in enumerate(
            {"scale": "csat5", "value": 3, "lost_minutes": minutes} for minutes in slow_minutes
        )
    ]
    await post(client, items)

    by_priority = await get_json(client, WEAK_SPOTS, WEEK)
    assert [s["moment"] for s in by_priority["data"]] == ["m.bad", "m.slow"]
    by_hours = await get_json(client, WEAK_SPOTS, {**WEEK, "order": "hours_lost"})
    assert [(s["rank"], s["moment"]) for s in by_hours["data"]] == [(1, "m.slow"), (2, "m.bad")]

    lost = by_hours["data"][0]["lost_time"]
    assert lost["responses"] == 10
    assert lost["mean_minutes"] == pytest.approx(120)
    assert lost["hours_lost"] == pytest.approx(40 * 120 / 60)
    low, high = scipy_stats.t.interval(
        0.95, 9, loc=np.mean(slow_minutes), scale=scipy_stats.sem(slow_minutes)
    )
    assert (lost["mean_interval"]["lower"], lost["mean_interval"]["upper"]) == pytest.approx(
        (low, high)
    )
    # Ten answers: P(B <= 1) = 11/1024 <= 2.5% < P(B <= 2) = 56/1024, so x(2) .. x(9).
    assert lost["median_minutes"] == 120
    assert lost["median_interval"] == {"lower": 60, "upper": 180}
    assert by_hours["data"][1]["lost_time"]["hours_lost"] == pytest.approx(30 * 5 / 60)

    response = await client.get(WEAK_SPOTS, params={**WEEK, "order": "hours_lost", "format": "csv"})
    columns, rows = read_csv(response)
    assert {"top_factors", "lost_time_hours_lost", "lost_time_median_minutes"} <= set(columns)
    assert [row["moment"] for row in rows] == ["m.slow", "m.bad"]
    assert float(rows[0]["lost_time_hours_lost"]) == pytest.approx(80)


async def test_a_factor_of_another_sentiment_is_refused_naming_it(
    client: httpx.AsyncClient,
) -> None:
    body = touchpoint("m.one", DAY)
    body["rating"] = {"scale": "csat5", "value": 1, "factors": ["not-solved", "quick"]}
    response = await client.post("/v1/touchpoints", json=body)
    assert response.status_code == 422, response.text
    error = response.json()
    assert [d["field"] for d in error["details"]] == ["body.rating.factors.1"]
    assert "'quick'" in error["details"][0]["message"]
    assert error["details"][0]["type"] == "other_sentiment"

    body["rating"]["factors"] = ["no-such-factor"]
    response = await client.post("/v1/touchpoints", json=body)
    assert response.status_code == 422
    assert response.json()["details"][0]["type"] == "unknown_factor"

    body["rating"] = {"scale": "csat5", "value": 1, "lost_minutes": 481}
    response = await client.post("/v1/touchpoints", json=body)
    assert response.status_code == 422
    assert response.json()["details"][0]["field"] == "body.rating.lost_minutes"


async def test_batch_keeps_good_items_when_one_picks_a_wrong_factor(
    client: httpx.AsyncClient,
) -> None:
    good = touchpoint("m.one", DAY, id="good")
    good["rating"] = {"scale": "csat5", "value": 2, "factors": ["had-to-repeat"]}
    bad = touchpoint("m.one", DAY, id="bad")
    bad["rating"] = {"scale": "csat5", "value": 5, "factors": ["had-to-repeat"]}
    twice = touchpoint("m.one", DAY, id="twice")
    twice["rating"] = {"scale": "csat5", "value": 2, "factors": ["not-solved", "not-solved"]}
    response = await client.post("/v1/touchpoints/batch", json={"touchpoints": [good, bad, twice]})
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["accepted"] == 1
    assert [(e["index"], e["details"][0]["field"]) for e in result["errors"]] == [
        (1, "rating.factors.0"),
        (2, "rating.factors"),
    ]
    stored = (await client.get("/v1/touchpoints/good")).json()
    assert stored["rating"]["factors"] == ["had-to-repeat"]


async def test_a_new_rating_replaces_the_factors_and_the_counts_follow(
    client: httpx.AsyncClient,
) -> None:
    body = touchpoint("m.one", DAY, id="late")
    body["rating"] = {"scale": "csat5", "value": 1, "factors": ["not-solved"], "lost_minutes": 30}
    assert (await client.post("/v1/touchpoints", json=body)).status_code == 201
    wrong = {"scale": "csat5", "value": 5, "factors": ["not-solved"]}
    response = await client.put("/v1/touchpoints/late/rating", json=wrong)
    assert response.status_code == 422
    assert response.json()["details"][0]["field"] == "body.factors.0"

    better = {"scale": "csat5", "value": 5, "factors": ["friendly"], "lost_minutes": 0}
    response = await client.put("/v1/touchpoints/late/rating", json=better)
    assert response.status_code == 200, response.text
    stored = response.json()
    assert (stored["rating"]["factors"], stored["rating"]["lost_minutes"]) == (["friendly"], 0)
    history = stored["rating_history"]
    assert [(h["value"], h["factors"], h["lost_minutes"]) for h in history] == [
        (1, ["not-solved"], 30)
    ]

    report = await get_json(client, "/v1/moments/m.one/factors", WEEK)
    picked = {
        (group["sentiment"], f["key"]): f["picked"]
        for group in report["sentiments"]
        for f in group["factors"]
        if f["picked"]
    }
    assert picked == {("positive", "friendly"): 1}
    assert report["lost_time"]["responses"] == 1
    assert report["lost_time"]["mean_minutes"] == 0


async def test_a_moment_lists_its_own_factors_or_its_channel_defaults(
    client: httpx.AsyncClient,
) -> None:
    await add_moment(client, "m.portal", channel="portal")
    moment = (await client.get("/v1/moments/m.portal")).json()
    assert moment["factors_default"] is True
    assert "site-error" in {f["key"] for f in moment["factors"]}

    own = [
        {"key": "lost-my-data", "sentiment": "negative", "label": {"en": "I lost my data"}},
        {
            "key": "clear",
            "sentiment": "positive",
            "label": {"en": "Clear", "ru": "Понятно"},
        },
    ]
    response = await client.patch("/v1/moments/m.portal", json={"factors": own})
    assert response.status_code == 200, response.text
    assert response.json()["factors_default"] is False
    assert response.json()["factors"] == [
        {
            "key": "lost-my-data",
            "sentiment": "negative",
            "label": {"en": "I lost my data", "ru": "I lost my data"},
        },
        {"key": "clear", "sentiment": "positive", "label": {"en": "Clear", "ru": "Понятно"}},
    ]
    body = touchpoint("m.portal", DAY, channel="portal")
    body["rating"] = {"scale": "csat5", "value": 1, "factors": ["site-error"]}
    assert (await client.post("/v1/touchpoints", json=body)).status_code == 422
    body["rating"]["factors"] = ["lost-my-data"]
    assert (await client.post("/v1/touchpoints", json=body)).status_code == 201

    twice = {"factors": [own[0], own[0]]}
    response = await client.patch("/v1/moments/m.portal", json=twice)
    assert response.status_code == 422
    assert response.json()["details"][0]["field"] == "body.factors"

    response = await client.patch("/v1/moments/m.portal", json={"factors": []})
    assert response.json()["factors"] == []
    response = await client.patch("/v1/moments/m.portal", json={"factors": None})
    assert response.json()["factors_default"] is True


async def test_a_team_or_channel_filter_counts_only_its_answers_details(
    client: httpx.AsyncClient,
) -> None:
    red = _answers("m.one", 6, 1, picks=[["had-to-repeat"]] * 6, lost_minutes=40)
    blue = _answers("m.one", 6, 1, picks=[["not-solved"]] * 6)
    for body in red:
        body["team"] = "red"
    for number, body in enumerate(blue):
        body.update(team="blue", channel="chat", occurred_at=f"2026-10-07T09:00:{number:02d}Z")
    await post(client, red + blue)
    for params, factor, lost in (
        ({"team": "red"}, "had-to-repeat", 6),
        ({"team": "blue"}, "not-solved", None),
        ({"channel": "chat"}, "not-solved", None),
        ({"channel": "call", "team": "red"}, "had-to-repeat", 6),
    ):
        (spot,) = (await get_json(client, WEAK_SPOTS, {**WEEK, **params}))["data"]
        assert [f["key"] for f in spot["top_factors"]] == [factor], params
        assert (spot["lost_time"] or {}).get("responses") == lost, params
