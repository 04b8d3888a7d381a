import httpx
import pytest

from tests.payloads import touchpoint

pytestmark = pytest.mark.anyio


async def test_journey_lists_a_clients_touchpoints_oldest_first_across_pages(
    client: httpx.AsyncClient,
) -> None:
    lived = [
        ("portal.first-link", "2026-11-01T08:00:00Z"),
        ("service-desk.first-voice", "2026-11-01T09:00:00+00:00"),
        ("email.ticket-update", "2026-11-02T10:00:00+03:00"),
        ("onsite.visit", "2026-11-03T12:00:00Z"),
    ]
    items = [
        touchpoint(id=f"j{n}", moment=moment, occurred_at=at, client_ref="c-42")
        for n, (moment, at) in enumerate(reversed(lived))
    ]
    items.append(touchpoint(id="other", client_ref="c-43"))
    items[1]["rating"] = {"scale": "csat5", "value": 2}
    assert (
        await client.post("/v1/touchpoints/batch", json={"touchpoints": items})
    ).status_code == 200

    first = (await client.get("/v1/clients/c-42/journey", params={"limit": 3})).json()
    second = (
        await client.get("/v1/clients/c-42/journey", params={"cursor": first["next_cursor"]})
    ).json()

    assert first["client_ref"] == "c-42"
    moments = [item["moment"] for item in first["data"] + second["data"]]
    assert moments == [moment for moment, _ in lived]
    assert second["next_cursor"] is None
    rated = first["data"][2]
    assert (rated["moment"], rated["rating"]["sentiment"]) == ("email.ticket-update", "negative")
    # The bad experience opened a follow-up, and the journey shows where it stands.
    assert rated["follow_up"]["status"] == "open"
    assert [step["follow_up"] for step in first["data"][:2] + second["data"]] == [None] * 3


async def test_journey_of_an_unknown_client_is_not_found(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/clients/nobody/journey")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
