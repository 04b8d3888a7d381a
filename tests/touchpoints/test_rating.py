import httpx
import pytest

from tests.payloads import touchpoint

pytestmark = pytest.mark.anyio


async def test_late_rating_is_recorded_on_an_unrated_touchpoint(client: httpx.AsyncClient) -> None:
    await client.post("/v1/touchpoints", json=touchpoint(id="late"))
    response = await client.put(
        "/v1/touchpoints/late/rating",
        json={"scale": "nps11", "value": 6, "rated_at": "2026-11-03T10:00:00+01:00"},
    )
    assert response.status_code == 200
    stored = response.json()
    assert stored["rating"] == {
        "scale": "nps11",
        "value": 6,
        "score": 60.0,
        "sentiment": "negative",
        "rated_at": "2026-11-03T09:00:00Z",
        "factors": None,
        "lost_minutes": None,
    }
    assert stored["rating_history"] == []


async def test_rerating_keeps_the_previous_rating_in_history(client: httpx.AsyncClient) -> None:
    await client.post(
        "/v1/touchpoints", json=touchpoint(id="rr", rating={"scale": "csat5", "value": 1})
    )
    await client.put("/v1/touchpoints/rr/rating", json={"scale": "csat5", "value": 3})
    stored = (
        await client.put("/v1/touchpoints/rr/rating", json={"scale": "csat5", "value": 5})
    ).json()
    assert stored["rating"]["value"] == 5
    assert [(h["value"], h["sentiment"]) for h in stored["rating_history"]] == [
        (1, "negative"),
        (3, "neutral"),
    ]
    assert (await client.get("/v1/touchpoints/rr")).json() == stored


async def test_repeating_the_current_rating_changes_nothing(client: httpx.AsyncClient) -> None:
    await client.post("/v1/touchpoints", json=touchpoint(id="same"))
    first = (
        await client.put("/v1/touchpoints/same/rating", json={"scale": "thumbs", "value": 1})
    ).json()
    again = (
        await client.put("/v1/touchpoints/same/rating", json={"scale": "thumbs", "value": 1})
    ).json()
    assert again == first
    assert again["rating_history"] == []


async def test_late_rating_is_validated_against_its_scale(client: httpx.AsyncClient) -> None:
    await client.post("/v1/touchpoints", json=touchpoint(id="v"))
    response = await client.put("/v1/touchpoints/v/rating", json={"scale": "ces7", "value": 0})
    assert response.status_code == 422
    assert response.json()["details"][0]["field"] == "body.value"
    assert (await client.get("/v1/touchpoints/v")).json()["rating"] is None


async def test_rating_an_unknown_touchpoint_is_404(client: httpx.AsyncClient) -> None:
    response = await client.put("/v1/touchpoints/ghost/rating", json={"scale": "csat5", "value": 4})
    assert response.status_code == 404


async def test_retry_of_the_original_post_after_a_late_rating_is_still_a_duplicate(
    client: httpx.AsyncClient,
) -> None:
    body = touchpoint(id="orig")
    await client.post("/v1/touchpoints", json=body)
    await client.put("/v1/touchpoints/orig/rating", json={"scale": "csat5", "value": 2})
    retry = await client.post("/v1/touchpoints", json=body)
    assert retry.status_code == 200
    assert retry.json()["rating"]["value"] == 2
