from typing import Any

import httpx
import pytest

from tests.payloads import touchpoint

pytestmark = pytest.mark.anyio


async def _store(client: httpx.AsyncClient, *items: dict[str, Any]) -> None:
    response = await client.post("/v1/touchpoints/batch", json={"touchpoints": list(items)})
    assert response.json()["accepted"] == len(items), response.text


async def _all_pages(client: httpx.AsyncClient, **params: Any) -> list[str]:
    ids: list[str] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/v1/touchpoints", params=query)).json()
        ids.extend(tp["id"] for tp in page["data"])
        cursor = page["next_cursor"]
        if cursor is None:
            return ids


async def test_list_is_newest_first(client: httpx.AsyncClient) -> None:
    await _store(
        client,
        touchpoint(id="old", occurred_at="2026-10-01T08:00:00Z"),
        touchpoint(id="new", occurred_at="2026-11-01T08:00:00Z"),
        touchpoint(id="mid", occurred_at="2026-10-15T08:00:00Z"),
    )
    assert await _all_pages(client) == ["new", "mid", "old"]


async def test_pages_cover_every_row_once_even_with_equal_timestamps(
    client: httpx.AsyncClient,
) -> None:
    same_time = "2026-11-01T08:00:00Z"
    await _store(client, *(touchpoint(id=f"s-{i:02d}", occurred_at=same_time) for i in range(23)))
    ids = await _all_pages(client, limit=5)
    assert sorted(ids) == [f"s-{i:02d}" for i in range(23)]
    assert len(ids) == len(set(ids))


async def test_rows_added_while_paging_do_not_shift_later_pages(client: httpx.AsyncClient) -> None:
    await _store(
        client,
        *(
            touchpoint(id=f"a-{i:02d}", occurred_at=f"2026-10-{i + 1:02d}T08:00:00Z")
            for i in range(10)
        ),
    )
    first = (await client.get("/v1/touchpoints", params={"limit": 4})).json()
    await _store(client, touchpoint(id="late-arrival", occurred_at="2026-11-20T08:00:00Z"))
    rest = await _all_pages(client, limit=4, cursor=first["next_cursor"])
    seen = [tp["id"] for tp in first["data"]] + rest
    assert seen == [f"a-{i:02d}" for i in reversed(range(10))]


async def test_filters_narrow_the_list(client: httpx.AsyncClient) -> None:
    await _store(
        client,
        touchpoint(id="f-1", team="desk-day", rating={"scale": "csat5", "value": 1}),
        touchpoint(id="f-2", team="desk-night", rating={"scale": "csat5", "value": 5}),
        touchpoint(id="f-3", team="desk-night", moment="portal.first-link", channel="portal"),
        touchpoint(
            id="f-4",
            client_ref="c-0002",
            team="desk-evening",
            rating={"scale": "thumbs", "value": 0},
        ),
    )
    cases: list[tuple[dict[str, Any], set[str]]] = [
        ({"team": "desk-night"}, {"f-2", "f-3"}),
        ({"moment": "portal.first-link"}, {"f-3"}),
        ({"channel": "portal"}, {"f-3"}),
        ({"client_ref": "c-0002"}, {"f-4"}),
        ({"has_rating": "true"}, {"f-1", "f-2", "f-4"}),
        ({"has_rating": "false"}, {"f-3"}),
        ({"sentiment": "negative"}, {"f-1", "f-4"}),
        ({"sentiment": "negative", "team": "desk-day"}, {"f-1"}),
    ]
    for params, expected in cases:
        assert set(await _all_pages(client, **params)) == expected, params


async def test_time_window_honours_offsets_and_excludes_its_end(client: httpx.AsyncClient) -> None:
    await _store(
        client,
        touchpoint(id="before", occurred_at="2026-11-01T21:59:59Z"),
        touchpoint(id="start", occurred_at="2026-11-01T22:00:00Z"),
        touchpoint(id="inside", occurred_at="2026-11-02T12:00:00Z"),
        touchpoint(id="end", occurred_at="2026-11-02T22:00:00Z"),
    )
    # One calendar day in UTC+02:00 is 22:00Z to 22:00Z.
    ids = await _all_pages(
        client, **{"from": "2026-11-02T00:00:00+02:00", "to": "2026-11-03T00:00:00+02:00"}
    )
    assert ids == ["inside", "start"]


async def test_malformed_cursor_is_a_clear_422(client: httpx.AsyncClient) -> None:
    for cursor in ("nonsense", "WyJ4Il0", "WzEsMiwzXQ"):
        response = await client.get("/v1/touchpoints", params={"cursor": cursor})
        assert response.status_code == 422
        assert response.json()["details"][0]["field"] == "query.cursor"


async def test_page_size_is_bounded(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/touchpoints", params={"limit": 501})
    assert response.status_code == 422
    assert response.json()["details"][0]["field"] == "query.limit"


async def test_unknown_touchpoint_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/touchpoints/nope")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
