"""Every input has a limit, and every refusal names the field and the limit it broke."""

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.conftest import ClientFactory
from tests.payloads import touchpoint

pytestmark = pytest.mark.anyio


def _refusal(response: httpx.Response, status: int = 422) -> tuple[str, str, str]:
    """(field, message, type) of the first detail of a refusal."""
    assert response.status_code == status, response.text
    detail = response.json()["details"][0]
    return detail["field"], detail["message"], detail["type"]


async def test_a_body_over_the_size_limit_is_refused_before_it_is_read(
    make_client: ClientFactory,
) -> None:
    async with make_client(max_body_bytes=4096) as client:
        big = [touchpoint(id=f"tp-{i}", comment="x" * 500) for i in range(10)]
        response = await client.post("/v1/touchpoints/batch", json={"touchpoints": big})
        assert response.json()["code"] == "payload_too_large"
        assert "4096 bytes" in response.json()["message"]
        assert _refusal(response, 413)[::2] == ("body", "max_bytes")
        # Nothing of it was stored.
        listed = await client.get("/v1/touchpoints")
        assert listed.json()["data"] == []


async def test_a_batch_over_its_length_limit_names_the_limit(make_client: ClientFactory) -> None:
    async with make_client(batch_max_items=2) as client:
        items = [touchpoint(id=f"tp-{i}") for i in range(3)]
        response = await client.post("/v1/touchpoints/batch", json={"touchpoints": items})
        assert response.status_code == 422
        assert response.json()["code"] == "limit_exceeded"
        assert "at most 2" in response.json()["message"]


@pytest.mark.parametrize(
    ("fields", "field", "limit"),
    [
        ({"comment": "x" * 2001}, "body.comment", "2000 characters"),
        ({"client_ref": "c" * 129}, "body.client_ref", "128 characters"),
        ({"team": "t" * 101}, "body.team", "100 characters"),
        ({"id": "i" * 65}, "body.id", "64 characters"),
        ({"moment": "m" * 101}, "body.moment", "100 characters"),
        ({"attributes": {f"k{i}": i for i in range(21)}}, "body.attributes", "20 items"),
        ({"attributes": {"k" * 65: 1}}, "body.attributes.", "64 characters"),
        ({"attributes": {"k": "v" * 257}}, "body.attributes.k", "256 characters"),
        ({"attributes": {"k": {"nested": 1}}}, "body.attributes.k", ""),
    ],
)
async def test_touchpoint_strings_and_attributes_have_limits(
    client: httpx.AsyncClient, fields: dict[str, object], field: str, limit: str
) -> None:
    response = await client.post("/v1/touchpoints", json=touchpoint(**fields))
    refused_field, message, _type = _refusal(response)
    assert refused_field.startswith(field)
    assert limit in message


async def test_a_page_larger_than_the_limit_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/touchpoints", params={"limit": 501})
    field, message, _type = _refusal(response)
    assert field == "query.limit"
    assert "500" in message


async def test_a_window_longer_than_the_limit_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/v1/insights/weak-spots",
        params={"from": "2020-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"},
    )
    field, message, _type = _refusal(response)
    assert field == "query.from"
    assert "1098 days" in message


async def test_a_survey_batch_has_a_length_limit(client: httpx.AsyncClient) -> None:
    ids = [f"tp-{i}" for i in range(1001)]
    response = await client.post("/v1/surveys/batch", json={"scale": "csat5", "touchpoints": ids})
    field, message, _type = _refusal(response)
    assert field == "body.touchpoints"
    assert "1000 items" in message


async def test_an_occurrence_far_in_the_future_is_refused(client: httpx.AsyncClient) -> None:
    future = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    response = await client.post("/v1/touchpoints", json=touchpoint(occurred_at=future))
    assert _refusal(response) == (
        "body.occurred_at",
        "lies in the future (more than one hour ahead of the server clock)",
        "datetime_future",
    )


async def test_a_late_rating_cannot_be_given_in_the_future(client: httpx.AsyncClient) -> None:
    await client.post("/v1/touchpoints", json=touchpoint(id="tp-1"))
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    response = await client.put(
        "/v1/touchpoints/tp-1/rating",
        json={"scale": "csat5", "value": 4, "rated_at": future},
    )
    assert _refusal(response)[::2] == ("body.rated_at", "datetime_future")


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("2026-11-02T09:30:00", "timezone_aware"),
        (1_700_000_000, "datetime_format"),
        ("1969-12-31T23:59:59Z", "datetime_range"),
    ],
)
async def test_an_occurrence_must_be_an_rfc_3339_time_with_an_offset(
    client: httpx.AsyncClient, value: object, reason: str
) -> None:
    response = await client.post("/v1/touchpoints", json=touchpoint(occurred_at=value))
    assert _refusal(response)[::2] == ("body.occurred_at", reason)


async def test_nul_characters_are_refused_wherever_they_come(client: httpx.AsyncClient) -> None:
    body = await client.post("/v1/touchpoints", json=touchpoint(comment="bad\x00byte"))
    assert _refusal(body)[::2] == ("body.comment", "nul_character")
    query = await client.get("/v1/touchpoints", params={"team": "a\x00b"})
    assert _refusal(query)[::2] == ("query.team", "nul_character")
    path = await client.get("/v1/clients/a%00b/journey")
    assert _refusal(path)[::2] == ("path.client_ref", "nul_character")
    # In a batch, the item is refused on its own and the others are stored.
    items = [touchpoint(id="good"), touchpoint(id="bad", team="a\x00b")]
    batch = await client.post("/v1/touchpoints/batch", json={"touchpoints": items})
    assert batch.status_code == 200
    assert (batch.json()["accepted"], batch.json()["rejected"]) == (1, 1)


async def test_unknown_body_fields_are_refused(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/keys", json={"name": "x", "scopes": ["read"], "admin": 1})
    assert _refusal(response)[::2] == ("body.admin", "extra_forbidden")
