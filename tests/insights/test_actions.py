"""Improvement actions through the API: recorded, listed, removed, and their effect
measured on planted data: a drop after an action is found, a dip of every moment alike
is not credited to it, and an effect too young to measure says so."""

import base64
from datetime import UTC, datetime, time, timedelta
from typing import Any

import httpx
import pytest

from app.keys.schemas import Scope
from tests.conftest import ClientFactory
from tests.insights.builders import add_moment, get_json, post, rated

pytestmark = pytest.mark.anyio

DONE_AT = "2026-09-01T12:00:00Z"
# With the default washout (7 days) and windows (28 days): before = [08-04, 09-01),
# after = [09-09, 10-07).
BEFORE, AFTER = "2026-08-05T00:00:00Z", "2026-09-10T00:00:00Z"


def thumbs(moment: str, first: str, negatives: int, responses: int) -> list[dict[str, Any]]:
    """`responses` thumbs answers, the first `negatives` of them 0, two hours apart."""
    values = [0] * negatives + [1] * (responses - negatives)
    return rated(moment, first, "thumbs", values, spacing=timedelta(hours=2))


async def plant(client: httpx.AsyncClient, rates: dict[str, tuple[int, int]]) -> None:
    """Moments answered 200 times in each window, with these negatives before and after."""
    items = []
    for moment, (before, after) in rates.items():
        await add_moment(client, moment)
        items += thumbs(moment, BEFORE, before, 200) + thumbs(moment, AFTER, after, 200)
    await post(client, items)


async def record(client: httpx.AsyncClient, moment: str, **fields: Any) -> dict[str, Any]:
    body = {"title": "Call-back promised on hold", "done_at": DONE_AT, **fields}
    response = await client.post(f"/v1/moments/{moment}/actions", json=body)
    assert response.status_code == 201, response.text
    found: dict[str, Any] = response.json()
    return found


async def test_a_planted_drop_after_the_action_is_found(client: httpx.AsyncClient) -> None:
    await plant(client, {"m.fixed": (80, 20), "m.other-a": (40, 40), "m.other-b": (40, 41)})
    created = await record(client, "m.fixed", factor="long-wait", description="Queue callback.")
    assert created["created_by"] == "tests"
    assert created["factor"] == "long-wait"
    assert created["windows"] == {
        "before": {"from": "2026-08-04T00:00:00Z", "to": "2026-09-01T00:00:00Z"},
        "after": {"from": "2026-09-09T00:00:00Z", "to": "2026-10-07T00:00:00Z"},
    }

    listed = await get_json(client, "/v1/moments/m.fixed/actions", {})
    (action,) = listed["data"]
    assert action == created
    effect = action["effect"]
    assert action["effect_unavailable"] is None
    assert effect["family"] == "satisfaction"
    assert (effect["before"]["responses"], effect["before"]["negatives"]) == (200, 80)
    assert (effect["after"]["responses"], effect["after"]["negatives"]) == (200, 20)
    assert effect["before"]["negative_rate"] == pytest.approx(0.4)
    assert effect["after"]["posterior_mean"] == pytest.approx(20.5 / 201)
    assert effect["change"] == pytest.approx(20.5 / 201 - 80.5 / 201)
    assert effect["interval"]["lower"] < effect["change"] < effect["interval"]["upper"] < 0
    assert effect["prob_improved"] > 0.99
    others = effect["others"]
    assert others["moments"] == 2
    assert (others["before"]["responses"], others["before"]["negatives"]) == (400, 80)
    assert (others["after"]["responses"], others["after"]["negatives"]) == (400, 81)
    assert effect["net_change"] == pytest.approx(-0.3, abs=0.01)
    assert effect["net_interval"]["upper"] < 0
    assert effect["prob_improved_net"] > 0.99
    assert effect["verdict"] == "improved"
    assert listed["method"]["washout_days"] == 7
    assert listed["method"]["prior"].startswith("jeffreys")

    # Across the catalogue, with the same effect.
    catalogue = await get_json(client, "/v1/insights/actions", {})
    assert catalogue["data"] == [action]


async def test_a_seasonal_dip_of_every_moment_is_not_credited_to_the_action(
    client: httpx.AsyncClient,
) -> None:
    await plant(client, {"m.fixed": (80, 20), "m.other-a": (80, 20), "m.other-b": (82, 19)})
    await record(client, "m.fixed")
    (action,) = (await get_json(client, "/v1/moments/m.fixed/actions", {}))["data"]
    effect = action["effect"]
    assert effect["change"] == pytest.approx(-0.3, abs=0.01)
    assert effect["interval"]["upper"] < 0
    assert effect["net_change"] == pytest.approx(0.0, abs=0.02)
    assert effect["net_interval"]["lower"] < 0 < effect["net_interval"]["upper"]
    assert 0.2 < effect["prob_improved_net"] < 0.8
    assert effect["verdict"] == "unclear"


async def test_the_other_moments_are_of_the_same_scale_family(client: httpx.AsyncClient) -> None:
    await plant(client, {"m.fixed": (80, 20), "m.thumbs": (40, 40)})
    # A moment rated on nps11 that improved alike is no comparison for a thumbs moment.
    await add_moment(client, "m.nps")
    nps = [0] * 80 + [10] * 120
    nps_after = [0] * 20 + [10] * 180
    await post(
        client,
        rated("m.nps", BEFORE, "nps11", nps, spacing=timedelta(hours=2))
        + rated("m.nps", AFTER, "nps11", nps_after, spacing=timedelta(hours=2)),
    )
    await record(client, "m.fixed")
    await record(client, "m.nps", done_at="2026-09-01T08:00:00Z")
    by_moment = {
        a["moment"]: a["effect"]
        for a in (await get_json(client, "/v1/insights/actions", {}))["data"]
    }
    assert by_moment["m.fixed"]["others"]["moments"] == 1
    assert by_moment["m.fixed"]["others"]["before"]["negatives"] == 40
    assert by_moment["m.fixed"]["net_change"] == pytest.approx(-0.3, abs=0.01)
    assert by_moment["m.nps"]["family"] == "nps"
    assert by_moment["m.nps"]["others"] is None
    assert by_moment["m.nps"]["net_change"] is None
    assert by_moment["m.nps"]["verdict"] == "improved"


async def test_an_effect_too_young_or_too_thin_to_measure_says_why(
    client: httpx.AsyncClient,
) -> None:
    await add_moment(client, "m.fixed")
    now = datetime.now(UTC)
    await record(client, "m.fixed", title="older", done_at=(now - timedelta(days=10)).isoformat())
    await record(client, "m.fixed", title="young", done_at=(now - timedelta(days=2)).isoformat())
    young, older = (await get_json(client, "/v1/moments/m.fixed/actions", {}))["data"]
    for action in (young, older):
        assert action["effect"] is None
        assert action["effect_unavailable"]["reason"] == "after_window_incomplete"
    day = (now - timedelta(days=2)).date()
    ends = datetime.combine(day + timedelta(days=1 + 7 + 28), time(0), UTC)
    assert young["effect_unavailable"]["available_at"] == ends.isoformat().replace("+00:00", "Z")

    # Shorter windows and no washout: the older action's after window is over, but nobody
    # answered; the young one's is not.
    params = {"washout_days": 0, "window_days": 7}
    short = await get_json(client, "/v1/moments/m.fixed/actions", params)
    assert short["method"]["window_days"] == 7
    young, older = short["data"]
    assert young["effect_unavailable"]["reason"] == "after_window_incomplete"
    assert older["effect"] is None
    assert older["effect_unavailable"]["reason"] == "too_few_responses"
    assert older["effect_unavailable"]["available_at"] is None


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        ({"title": ""}, "body.title", "string_too_short"),
        ({"title": "x" * 201}, "body.title", "string_too_long"),
        ({"factor": "f" * 101}, "body.factor", "string_too_long"),
        ({"done_at": "2026-09-01T12:00:00"}, "body.done_at", "timezone_aware"),
        ({"done_at": "1 September"}, "body.done_at", "datetime_format"),
        ({"owner": "me"}, "body.owner", "extra_forbidden"),
    ],
)
async def test_an_invalid_action_is_refused_naming_the_field(
    client: httpx.AsyncClient, body: dict[str, Any], field: str, reason: str
) -> None:
    await add_moment(client, "m.fixed")
    response = await client.post(
        "/v1/moments/m.fixed/actions", json={"title": "A", "done_at": DONE_AT, **body}
    )
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "validation_failed"
    assert (field, reason) in {(d["field"], d["type"]) for d in response.json()["details"]}


async def test_an_action_more_than_a_minute_ahead_is_refused(client: httpx.AsyncClient) -> None:
    await add_moment(client, "m.fixed")
    ahead = datetime.now(UTC) + timedelta(minutes=3)
    response = await client.post(
        "/v1/moments/m.fixed/actions", json={"title": "A", "done_at": ahead.isoformat()}
    )
    assert response.status_code == 422, response.text
    (detail,) = response.json()["details"]
    assert (detail["field"], detail["type"]) == ("body.done_at", "datetime_future")
    # Within a minute: clocks drift.
    nearly = datetime.now(UTC) + timedelta(seconds=30)
    await record(client, "m.fixed", done_at=nearly.isoformat())


async def test_windows_out_of_bounds_are_refused(client: httpx.AsyncClient) -> None:
    await add_moment(client, "m.fixed")
    for params, field in (
        ({"window_days": 3}, "query.window_days"),
        ({"washout_days": -1}, "query.washout_days"),
        ({"washout_days": 91}, "query.washout_days"),
    ):
        response = await client.get("/v1/moments/m.fixed/actions", params=params)
        assert response.status_code == 422, response.text
        assert response.json()["details"][0]["field"] == field


async def test_actions_are_listed_newest_first_in_pages(client: httpx.AsyncClient) -> None:
    await add_moment(client, "portal.first-link", stage="request")
    await add_moment(client, "desk.first-voice")
    for day in (3, 1, 2):
        await record(
            client, "portal.first-link", title=f"on {day}", done_at=f"2026-09-0{day}T10:00Z"
        )
    await record(client, "desk.first-voice", title="desk", done_at="2026-09-04T10:00:00Z")

    first = await get_json(client, "/v1/moments/portal.first-link/actions", {"limit": 2})
    assert [a["title"] for a in first["data"]] == ["on 3", "on 2"]
    assert first["next_cursor"] is not None
    second = await get_json(
        client,
        "/v1/moments/portal.first-link/actions",
        {"limit": 2, "cursor": first["next_cursor"]},
    )
    assert [a["title"] for a in second["data"]] == ["on 1"]
    assert second["next_cursor"] is None

    everything = await get_json(client, "/v1/insights/actions", {})
    assert [a["title"] for a in everything["data"]] == ["desk", "on 3", "on 2", "on 1"]
    by_prefix = await get_json(client, "/v1/insights/actions", {"moment": "portal."})
    assert [a["moment"] for a in by_prefix["data"]] == ["portal.first-link"] * 3
    by_stage = await get_json(client, "/v1/insights/actions", {"stage": "request", "limit": 1})
    assert [a["title"] for a in by_stage["data"]] == ["on 3"]
    rest = await get_json(
        client, "/v1/insights/actions", {"stage": "request", "cursor": by_stage["next_cursor"]}
    )
    assert [a["title"] for a in rest["data"]] == ["on 2", "on 1"]
    forged = await client.get("/v1/insights/actions", params={"cursor": "bm90IGEgY3Vyc29y"})
    assert forged.status_code == 422
    assert forged.json()["code"] == "invalid_cursor"


async def test_an_action_can_be_removed(client: httpx.AsyncClient) -> None:
    await add_moment(client, "m.fixed")
    await add_moment(client, "m.other")
    action = await record(client, "m.fixed")
    # Removed only through its own moment.
    assert (await client.delete(f"/v1/moments/m.other/actions/{action['id']}")).status_code == 404
    assert (await client.delete(f"/v1/moments/m.fixed/actions/{action['id']}")).status_code == 204
    assert (await get_json(client, "/v1/moments/m.fixed/actions", {}))["data"] == []
    assert (await client.delete(f"/v1/moments/m.fixed/actions/{action['id']}")).status_code == 404
    # Its number is not given to the next action.
    assert (await record(client, "m.fixed"))["id"] != action["id"]


async def test_an_unknown_moment_is_a_404(client: httpx.AsyncClient) -> None:
    body = {"title": "A", "done_at": DONE_AT}
    for response in (
        await client.post("/v1/moments/m.unknown/actions", json=body),
        await client.get("/v1/moments/m.unknown/actions"),
        await client.delete("/v1/moments/m.unknown/actions/1"),
    ):
        assert response.status_code == 404, response.text
        assert response.json()["code"] == "not_found"


async def test_recording_needs_the_manage_scope(
    client: httpx.AsyncClient, make_client: ClientFactory
) -> None:
    await add_moment(client, "m.fixed")
    await record(client, "m.fixed")
    async with make_client(scopes=(Scope.read,)) as reader:
        refused = await reader.post(
            "/v1/moments/m.fixed/actions", json={"title": "A", "done_at": DONE_AT}
        )
        assert refused.status_code == 403
        assert (await reader.delete("/v1/moments/m.fixed/actions/1")).status_code == 403
        assert len((await get_json(reader, "/v1/moments/m.fixed/actions", {}))["data"]) == 1
        assert len((await get_json(reader, "/v1/insights/actions", {}))["data"]) == 1


@pytest.mark.parametrize(
    "position",
    [
        '["2026-09-01T10:00:00", 1]',
        '["9999-12-31T23:59:59+00:00", 1]',
        f'["2026-09-01T10:00:00+00:00", {2**63}]',
        '["2026-09-01T10:00:00+00:00", NaN]',
        '["2026-09-01T10:00:00+00:00"]',
    ],
)
async def test_a_forged_cursor_is_refused_on_both_lists(
    client: httpx.AsyncClient, position: str
) -> None:
    await add_moment(client, "m.fixed")
    cursor = base64.urlsafe_b64encode(position.encode()).decode().rstrip("=")
    for path in ("/v1/moments/m.fixed/actions", "/v1/insights/actions"):
        response = await client.get(path, params={"cursor": cursor})
        assert response.status_code == 422, response.text
        assert response.json()["code"] == "invalid_cursor"
