"""Planted data through the API: the ranking finds what was planted, and only that.

Problems planted on moments of our own (not the demo's), with counts fixed by hand, and
`mot demo` as a user runs it, each of its planted problems found the way it says.
"""

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from app import demo
from app.config import Settings
from app.db import Database
from app.followups import targets as followups_targets
from tests.insights.builders import add_moment, get_json, listed, post, rated, window

pytestmark = pytest.mark.anyio

NOW = window("2026-10-08T00:00:00Z", "2026-10-15T00:00:00Z")
DAY, DAY_BEFORE = "2026-10-09T08:00:00Z", "2026-10-02T08:00:00Z"


def thumbs(moment: str, first: str, negatives: int, responses: int, **fields: Any) -> list[Any]:
    """`responses` thumbs answers, the first `negatives` of them 0, spaced 10 s apart."""
    values = [0] * negatives + [1] * (responses - negatives)
    return rated(moment, first, "thumbs", values, spacing=timedelta(seconds=10), **fields)


async def test_one_clearly_worse_team_of_five_is_named_and_five_alike_teams_are_not(
    client: httpx.AsyncClient,
) -> None:
    await add_moment(client, "m.one-bad")
    await add_moment(client, "m.alike")
    items = thumbs("m.one-bad", DAY, 25, 100, team="bad")
    items += thumbs("m.alike", DAY, 11, 100, team="t0")
    for team, (k_bad, k_alike) in enumerate(((10, 9), (9, 12), (11, 10), (10, 10))):
        items += thumbs("m.one-bad", DAY, k_bad, 100, team=f"t{team + 1}")
        items += thumbs("m.alike", DAY, k_alike, 100, team=f"t{team + 1}")
    await post(client, items)

    result = await get_json(client, "/v1/insights/consistency", NOW)
    by_moment = {item["moment"]: item for item in result["data"]}
    bad, alike = by_moment["m.one-bad"], by_moment["m.alike"]
    assert bad["consistency"]["inconsistent_teams"] is True
    (named,) = bad["consistency"]["outliers"]
    assert (named["team"], named["direction"]) == ("bad", "worse")
    assert named["negative_rate"] == pytest.approx(0.25)
    assert named["others_negative_rate"] == pytest.approx(40 / 400)
    assert named["adjusted_p_value"] <= 0.05
    assert bad["worst_team"]["team"] == "bad"
    assert alike["consistency"]["inconsistent_teams"] is False
    assert alike["consistency"]["outliers"] == []

    # The weak spots and the moment's report give the same test.
    spots = listed(await get_json(client, "/v1/insights/weak-spots", NOW))
    assert spots["m.one-bad"]["consistency"] == bad["consistency"]
    assert "inconsistent_teams" in spots["m.one-bad"]["reasons"]
    report = await get_json(client, "/v1/moments/m.one-bad/report", NOW)
    assert report["team_consistency"] == bad["consistency"]


async def test_a_rise_from_two_to_six_percent_on_300_responses_is_flagged_worsening(
    client: httpx.AsyncClient,
) -> None:
    await add_moment(client, "m.rising")
    await add_moment(client, "m.steady")
    items = thumbs("m.rising", DAY_BEFORE, 6, 300) + thumbs("m.rising", DAY, 18, 300)
    items += thumbs("m.steady", DAY_BEFORE, 12, 300) + thumbs("m.steady", DAY, 12, 300)
    await post(client, items)

    result = await get_json(client, "/v1/insights/weak-spots", NOW)
    spots = listed(result)
    rising, steady = spots["m.rising"]["trend"], spots["m.steady"]["trend"]
    # One-sided Fisher: P(X >= 18), X ~ Hypergeom(600, 24, 300) = 0.0100; BH over two.
    assert rising["p_value"] == pytest.approx(0.0100326, rel=1e-4)
    assert rising["q_value"] == pytest.approx(2 * 0.0100326, rel=1e-4)
    assert rising["worsening"] is True
    assert "worsening" in spots["m.rising"]["reasons"]
    assert steady["worsening"] is False
    assert result["method"]["tests"]["trend"] == "fisher-exact-one-sided"


DEMO_UNTIL = datetime(2026, 11, 1, tzinfo=UTC)
DEMO_WINDOW = window("2026-10-02T00:00:00Z", "2026-11-01T00:00:00Z")


async def test_the_demo_problems_are_found_as_the_demo_describes_them(
    database_url: str, backend: str, client: httpx.AsyncClient
) -> None:
    if backend != "sqlite":
        pytest.skip("the demo's statistics do not depend on the database; one backend is enough")
    settings = Settings(_env_file=None, database_url=database_url)
    database = Database(database_url)
    try:
        await demo.load(
            database,
            payloads=demo.generate(touchpoints=30_000, days=180, seed=7, until=DEMO_UNTIL),
            follow_up_targets=followups_targets.from_settings(settings),
            actions=demo.planted_actions(DEMO_UNTIL),
        )
    finally:
        await database.dispose()

    spots = await get_json(client, "/v1/insights/weak-spots", DEMO_WINDOW)
    ranked = [item["moment"] for item in spots["data"]]
    by_key = listed(spots)
    assert ranked[0] == "portal.password-reset"
    worsening = [key for key, item in by_key.items() if item["trend"]["worsening"]]
    assert worsening == ["email.ticket-update"]
    voice = by_key["service-desk.first-voice"]
    assert "inconsistent_teams" in voice["reasons"]
    worse = [o["team"] for o in voice["consistency"]["outliers"] if o["direction"] == "worse"]
    assert worse == ["desk-night"]

    consistency = await get_json(client, "/v1/insights/consistency", DEMO_WINDOW)
    first = consistency["data"][0]
    assert (first["moment"], first["worst_team"]["team"]) == (
        "service-desk.first-voice",
        "desk-night",
    )
    silence = await get_json(client, "/v1/insights/silence", DEMO_WINDOW)
    silent = {item["moment"]: item["signals"] for item in silence["data"]}
    assert "low_response_rate" in silent["service-desk.callback"]

    for key, factor in demo.LEADING_FACTORS.items():
        assert by_key[key]["top_factors"][0]["key"] == factor, key
    by_hours = await get_json(
        client, "/v1/insights/weak-spots", {**DEMO_WINDOW, "order": "hours_lost"}
    )
    assert by_hours["data"][0]["moment"] == demo.LONG_WAITS != ranked[0]
    hours = [item["lost_time"]["hours_lost"] for item in by_hours["data"]]
    assert hours == sorted(hours, reverse=True)

    actions = (await client.get("/v1/insights/actions")).json()["data"]
    effects = {action["moment"]: action["effect"] for action in actions}
    call_ahead = effects["onsite.visit"]
    assert call_ahead["prob_improved"] > 0.95
    assert call_ahead["net_interval"]["upper"] < 0, call_ahead
    assert call_ahead["verdict"] == "improved"
    template = effects["email.resolution-notice"]
    assert template["interval"]["lower"] < 0 < template["interval"]["upper"]
    assert template["verdict"] == "unclear"

    # Comments in both languages: the Russian ones are read as well as the English ones.
    words = await get_json(client, "/v1/moments/portal.password-reset/words", DEMO_WINDOW)
    terms = [item["term"] for item in words["data"]]
    assert any(term.isascii() for term in terms)
    assert any(not term.isascii() for term in terms)
