"""GET /v1/insights/consistency, /silence and /overview against hand-computed figures."""

import math
from typing import Any

import httpx
import pytest

from tests.insights.builders import add_moment, get_json, listed, post, rated, window

pytestmark = pytest.mark.anyio

WEEK = window("2026-10-05T00:00:00Z", "2026-10-12T00:00:00Z")
DAY = "2026-10-07T08:00:00Z"


def thumbs(moment: str, negatives: int, responses: int, **fields: Any) -> list[dict[str, Any]]:
    """`responses` thumbs answers on `moment`, the first `negatives` of them 0."""
    values = [0] * negatives + [1] * (responses - negatives)
    return rated(moment, DAY, "thumbs", values, **fields)


async def _teams_data(client: httpx.AsyncClient) -> None:
    for key in ("m.teams", "m.alike", "m.zone", "m.one-team"):
        await add_moment(client, key)
    await post(
        client,
        thumbs("m.teams", 2, 20, team="red")
        + thumbs("m.teams", 10, 20, team="blue")
        + thumbs("m.teams", 6, 20, team="amber")
        # under 10 responses, or without a team: not tested
        + thumbs("m.teams", 9, 9, team="green")
        + thumbs("m.teams", 10, 10)
        + thumbs("m.alike", 2, 10, team="red")
        + thumbs("m.alike", 2, 10, team="blue")
        + thumbs("m.zone", 3, 20, team="red")
        + thumbs("m.zone", 7, 20, team="blue")
        + thumbs("m.one-team", 10, 30, team="red"),
    )


# m.teams: red 2/20, blue 10/20, amber 6/20; p = 18/60 = 0.3, n_j p (1-p) = 4.2;
# X2 = ((2-6)^2 + (10-6)^2 + (6-6)^2)/4.2 = 32/4.2; df = 2, so p-value = exp(-X2/2).
TEAMS_X2 = 32 / 4.2
TEAMS_P = math.exp(-TEAMS_X2 / 2)  # 0.0222
# m.zone: red 3/20, blue 7/20; p = 0.25, n_j p (1-p) = 3.75; X2 = (4 + 4)/3.75 = 2.133;
# df = 1, so p-value = erfc(sqrt(X2/2)) = 0.144.
ZONE_X2 = 8 / 3.75
ZONE_P = math.erfc(math.sqrt(ZONE_X2 / 2))
# m.alike: 2/10 and 2/10, X2 = 0, p-value 1.
# Benjamini-Hochberg over the three: q = min(3p/1, 3p'/2, 1) in p order.
ZONE_Q = 3 * ZONE_P / 2  # 0.216
TEAMS_Q = min(3 * TEAMS_P, ZONE_Q)  # 0.0665


async def test_consistency_chi_square_across_teams_with_ten_responses(
    client: httpx.AsyncClient,
) -> None:
    await _teams_data(client)
    result = await get_json(client, "/v1/insights/consistency", WEEK)

    # Lowest q-value first.
    assert [item["moment"] for item in result["data"]] == ["m.teams", "m.zone", "m.alike"]
    teams, zone, alike = result["data"]
    assert teams["consistency"] == {
        "teams": 3,
        "chi_square": pytest.approx(TEAMS_X2),
        "df": 2,
        "phi": pytest.approx(TEAMS_X2 / 2),
        "p_value": pytest.approx(TEAMS_P),
        "q_value": pytest.approx(TEAMS_Q),
        "min_expected": pytest.approx(6.0),  # 20 * 0.3 negatives expected of each team
        "test": "chi-square",
        "inconsistent_teams": True,
        # Each team against the other two pooled (Fisher): red 2/20 against 16/40, p = 0.0189;
        # blue 10/20 against 8/40, p = 0.0343; amber p = 1. Holm: 0.0568, 0.0686, 1: no
        # single team stands out, though the three differ.
        "outliers": [],
    }
    assert teams["best_team"] == {
        "team": "red",
        "responses": 20,
        "negatives": 2,
        "negative_rate": pytest.approx(0.1),
    }
    assert teams["worst_team"]["team"] == "blue"
    assert zone["consistency"]["chi_square"] == pytest.approx(ZONE_X2)
    assert zone["consistency"]["p_value"] == pytest.approx(ZONE_P)
    assert zone["consistency"]["q_value"] == pytest.approx(ZONE_Q)
    assert zone["consistency"]["inconsistent_teams"] is False
    assert alike["consistency"]["chi_square"] == pytest.approx(0.0)
    assert alike["consistency"]["p_value"] == pytest.approx(1.0)
    assert alike["consistency"]["q_value"] == pytest.approx(1.0)
    assert alike["consistency"]["inconsistent_teams"] is False
    # 2 negatives expected of each team: the p-value comes from Monte Carlo; X2 = 0 is
    # reached or exceeded by every random table, so p = (1 + draws) / (draws + 1) = 1.
    assert alike["consistency"]["test"] == "monte-carlo"
    assert result["tests"]["monte_carlo_draws"] == 2000


async def test_consistency_q_values_are_corrected_over_the_moments_in_scope(
    client: httpx.AsyncClient,
) -> None:
    await _teams_data(client)
    result = await get_json(client, "/v1/insights/consistency", {**WEEK, "moment": "m.teams"})
    (teams,) = result["data"]
    # Alone, the moment's q-value is its p-value.
    assert teams["consistency"]["q_value"] == pytest.approx(TEAMS_P)
    empty = await get_json(client, "/v1/insights/consistency", {**WEEK, "channel": "chat"})
    assert empty["data"] == []


async def test_weak_spots_carry_the_same_consistency_test(client: httpx.AsyncClient) -> None:
    await _teams_data(client)
    items = listed(await get_json(client, "/v1/insights/weak-spots", WEEK))

    teams = items["m.teams"]["consistency"]
    assert teams["chi_square"] == pytest.approx(TEAMS_X2)
    assert teams["q_value"] == pytest.approx(TEAMS_Q)
    assert "inconsistent_teams" in items["m.teams"]["reasons"]
    assert "inconsistent_teams" not in items["m.alike"]["reasons"]
    assert "inconsistent_teams" not in items["m.zone"]["reasons"]
    # A single team with 10+ responses has nobody to be compared with.
    assert items["m.one-team"]["consistency"] is None


async def test_silence_lists_low_response_rates_and_high_volume_without_bad_news(
    client: httpx.AsyncClient,
) -> None:
    for key in ("m.loud", "m.mute", "m.happy", "m.small"):
        await add_moment(client, key)
    await post(
        client,
        rated("m.loud", DAY, "thumbs", [0, 0, 1, 1, 1, 1, 1, 1, 1, 1], complaint=True)
        + rated("m.mute", DAY, "thumbs", [1] + [None] * 9)
        + rated("m.happy", DAY, "thumbs", [1] * 10 + [None] * 10)
        + rated("m.small", DAY, "thumbs", [0, 1]),
    )
    result = await get_json(client, "/v1/insights/silence", WEEK)

    # Overall: (10 + 1 + 10 + 2)/(10 + 10 + 20 + 2) = 23/42; half of it is 0.274.
    overall = 23 / 42
    assert result["overall_response_rate"] == pytest.approx(overall)
    # Volumes 2, 10, 10, 20: upper quartile 10 + 0.25 * 10 = 12.5.
    # mute: 1/10 < 0.274: low_response_rate; its volume 10 < 12.5.
    # happy: 10/20 answered, no complaint, no negative, volume 20 >= 12.5: no_bad_news.
    # loud and small answered and heard bad news: not listed.
    assert result["data"] == [
        {
            "moment": "m.mute",
            "name": "m.mute",
            "touchpoints": 10,
            "responses": 1,
            "response_rate": pytest.approx(0.1),
            "missing_responses": pytest.approx(overall * 10 - 1),
            "negatives": 0,
            "complaints": 0,
            "signals": ["low_response_rate"],
        },
        {
            "moment": "m.happy",
            "name": "m.happy",
            "touchpoints": 20,
            "responses": 10,
            "response_rate": pytest.approx(0.5),
            "missing_responses": pytest.approx(overall * 20 - 10),
            "negatives": 0,
            "complaints": 0,
            "signals": ["no_bad_news"],
        },
    ]


async def test_overview_compares_the_window_with_the_previous_one(
    client: httpx.AsyncClient,
) -> None:
    now, before = "2026-10-09T10:00:00Z", "2026-10-02T10:00:00Z"
    await post(
        client,
        # window [Oct 8, Oct 15): one: csat5 5, 4, 2, 1 and two unrated, two complaints;
        # two: nps11 10 and 3, ces7 6 and 2.
        rated("m.one", now, "csat5", [5, 4, 2])
        + rated("m.one", "2026-10-09T11:00:00Z", "csat5", [1, None], complaint=True)
        + rated("m.one", "2026-10-09T12:00:00Z", "csat5", [None])
        + rated("m.two", now, "nps11", [10, 3])
        + rated("m.two", now, "ces7", [6, 2])
        # previous window [Oct 1, Oct 8): one: csat5 5, 5, 5, 1, a complaint with the 1
        + rated("m.one", before, "csat5", [5, 5, 5])
        + rated("m.one", "2026-10-02T11:00:00Z", "csat5", [1], complaint=True)
        # before both
        + rated("m.one", "2026-09-30T23:58:00Z", "csat5", [1, 1]),
    )
    result = await get_json(
        client, "/v1/insights/overview", window("2026-10-08T00:00:00Z", "2026-10-15T00:00:00Z")
    )

    current, previous, change = result["current"], result["previous"], result["change"]
    # Now: V = 10, n = 8, negatives 2, 1 (csat) + 3 (nps) + 2 (ces) = 4, complaints 2.
    assert {k: current[k] for k in ("touchpoints", "responses", "complaints", "moments")} == {
        "touchpoints": 10,
        "responses": 8,
        "complaints": 2,
        "moments": 2,
    }
    assert current["response_rate"] == pytest.approx(0.8)
    assert current["negative_share"] == pytest.approx(0.5)
    assert current["native"]["csat"]["value"] == pytest.approx(0.5)  # 5 and 4 of 4
    assert current["native"]["nps"]["value"] == pytest.approx(0.0)  # one promoter, one detractor
    assert current["native"]["ces"] == {"mean": pytest.approx(4.0), "responses": 2}
    # Before: V = n = 4, one negative, one complaint, CSAT 3/4, no NPS or CES.
    assert (previous["touchpoints"], previous["responses"], previous["moments"]) == (4, 4, 1)
    assert previous["complaints"] == 1
    assert previous["negative_share"] == pytest.approx(0.25)
    assert previous["native"]["csat"]["value"] == pytest.approx(0.75)
    assert previous["native"]["nps"] is None
    assert change == {
        "touchpoints": 6,
        "responses": 4,
        "response_rate": pytest.approx(-0.2),
        "negative_share": pytest.approx(0.25),
        "complaints": 1,
        "nps": None,
        "csat": pytest.approx(-0.25),
        "ces": None,
    }
