from typing import Any

import httpx
import pytest

from app.touchpoints.schemas import BatchResult
from tests.conftest import ClientFactory
from tests.payloads import touchpoint

pytestmark = pytest.mark.anyio


async def _post_batch(client: httpx.AsyncClient, items: list[object]) -> Any:
    response = await client.post("/v1/touchpoints/batch", json={"touchpoints": items})
    assert response.status_code == 200, response.text
    # The batch answer is rendered by hand for speed: hold it to its documented schema.
    BatchResult.model_validate_json(response.content)
    return response.json()


async def test_batch_keeps_good_items_when_some_are_invalid(client: httpx.AsyncClient) -> None:
    items: list[object] = [
        touchpoint(id="good-0", rating={"scale": "csat5", "value": 5}),
        touchpoint(id="bad-1", rating={"scale": "csat5", "value": 6}),
        touchpoint(id="good-2"),
        "not an object",
        touchpoint(id="bad-4", occurred_at="yesterday"),
        touchpoint(id="good-5", moment="email.ticket-update", channel="email"),
    ]
    result = await _post_batch(client, items)
    assert (result["accepted"], result["duplicates"], result["rejected"]) == (3, 0, 3)
    assert [(e["index"], e["id"]) for e in result["errors"]] == [
        (1, "bad-1"),
        (3, None),
        (4, "bad-4"),
    ]
    first_error = result["errors"][0]
    assert first_error["details"][0]["field"] == "rating.value"
    assert [i["id"] for i in result["items"]] == ["good-0", "good-2", "good-5"]
    for stored_id in ("good-0", "good-2", "good-5"):
        assert (await client.get(f"/v1/touchpoints/{stored_id}")).status_code == 200
    for refused_id in ("bad-1", "bad-4"):
        assert (await client.get(f"/v1/touchpoints/{refused_id}")).status_code == 404


async def test_retried_batch_reports_duplicates_and_stores_nothing(
    client: httpx.AsyncClient,
) -> None:
    items: list[object] = [touchpoint(id=f"r-{i}") for i in range(5)]
    first = await _post_batch(client, items)
    second = await _post_batch(client, items)
    assert (first["accepted"], first["duplicates"]) == (5, 0)
    assert (second["accepted"], second["duplicates"]) == (0, 5)
    listed = (await client.get("/v1/touchpoints", params={"limit": 100})).json()
    assert len(listed["data"]) == 5


async def test_partial_retry_stores_only_the_new_items(client: httpx.AsyncClient) -> None:
    await _post_batch(client, [touchpoint(id="p-0"), touchpoint(id="p-1")])
    result = await _post_batch(client, [touchpoint(id="p-1"), touchpoint(id="p-2")])
    assert [(i["id"], i["status"]) for i in result["items"]] == [
        ("p-1", "duplicate"),
        ("p-2", "created"),
    ]


async def test_reused_id_with_other_content_is_rejected_item_by_item(
    client: httpx.AsyncClient,
) -> None:
    await _post_batch(client, [touchpoint(id="c-0", team="desk-day")])
    result = await _post_batch(
        client,
        [
            touchpoint(id="c-0", team="desk-night"),  # clashes with the stored one
            touchpoint(id="c-1", team="desk-day"),
            touchpoint(id="c-1", team="desk-day"),  # same item twice: a duplicate
            touchpoint(id="c-1", team="desk-night"),  # same id, other content: refused
        ],
    )
    assert (result["accepted"], result["duplicates"], result["rejected"]) == (1, 1, 2)
    assert [(e["index"], e["code"]) for e in result["errors"]] == [
        (0, "conflict"),
        (3, "conflict"),
    ]
    assert (await client.get("/v1/touchpoints/c-0")).json()["team"] == "desk-day"
    assert (await client.get("/v1/touchpoints/c-1")).json()["team"] == "desk-day"


async def test_batch_over_the_limit_is_refused_naming_the_limit(
    make_client: ClientFactory,
) -> None:
    async with make_client(batch_max_items=3) as client:
        items = [touchpoint() for _ in range(4)]
        response = await client.post("/v1/touchpoints/batch", json={"touchpoints": items})
        assert response.status_code == 422
        assert response.json()["code"] == "limit_exceeded"
        assert "at most 3" in response.json()["message"]


async def test_empty_batch_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/touchpoints/batch", json={"touchpoints": []})
    assert response.status_code == 422
    assert response.json()["details"][0]["field"] == "body.touchpoints"


async def test_unknown_moments_are_rejected_per_item_when_registration_is_off(
    make_client: ClientFactory,
) -> None:
    async with make_client(auto_register_moments=False) as client:
        await client.post("/v1/moments", json={"key": "known.moment"})
        result = await _post_batch(
            client, [touchpoint(moment="known.moment"), touchpoint(moment="unknown.moment")]
        )
        assert (result["accepted"], result["rejected"]) == (1, 1)
        assert result["errors"][0]["details"][0]["field"] == "moment"


async def test_a_large_batch_is_stored_completely(client: httpx.AsyncClient) -> None:
    items: list[object] = [
        touchpoint(id=f"big-{i:04d}", rating={"scale": "nps11", "value": i % 11})
        for i in range(1000)
    ]
    result = await _post_batch(client, items)
    assert result["accepted"] == 1000
    promoters = await client.get("/v1/touchpoints", params={"sentiment": "positive", "limit": 500})
    # values 9 and 10 are promoters: 2 in every 11
    assert len(promoters.json()["data"]) == sum(1 for i in range(1000) if i % 11 >= 9)


async def test_a_batch_naming_more_new_moments_than_one_insert_takes_registers_them_all(
    client: httpx.AsyncClient,
) -> None:
    # 700 new keys: more than one registering statement carries.
    items: list[object] = [
        touchpoint(id=f"new-moment-{i:04d}", moment=f"wide.moment-{i:04d}") for i in range(700)
    ]
    result = await _post_batch(client, items)
    assert (result["accepted"], result["rejected"]) == (700, 0)
    keys: set[str] = set()
    params: dict[str, Any] = {"limit": 500}
    while True:
        page = (await client.get("/v1/moments", params=params)).json()
        keys.update(moment["key"] for moment in page["data"])
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert {f"wide.moment-{i:04d}" for i in range(700)} <= keys
