from datetime import UTC, datetime, timedelta

import httpx
import pytest

from app.scales import SCALES, ScaleName
from tests.conftest import ClientFactory
from tests.payloads import touchpoint

pytestmark = pytest.mark.anyio


async def test_post_stores_the_touchpoint_with_normalised_rating(client: httpx.AsyncClient) -> None:
    body = touchpoint(id="t-1", rating={"scale": "csat5", "value": 2}, comment="Too slow")
    response = await client.post("/v1/touchpoints", json=body)
    assert response.status_code == 201
    stored = response.json()
    assert stored["id"] == "t-1"
    assert stored["rating"]["score"] == 25.0
    assert stored["rating"]["sentiment"] == "negative"
    assert stored["comment"] == "Too slow"
    assert (await client.get("/v1/touchpoints/t-1")).json() == stored


async def test_same_id_and_same_content_is_a_retry_that_stores_nothing(
    client: httpx.AsyncClient,
) -> None:
    body = touchpoint(id="t-retry", rating={"scale": "nps11", "value": 9})
    first = await client.post("/v1/touchpoints", json=body)
    second = await client.post("/v1/touchpoints", json=body)
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json() == first.json()
    listed = await client.get("/v1/touchpoints", params={"client_ref": "c-0001"})
    assert [tp["id"] for tp in listed.json()["data"]] == ["t-retry"]


async def test_same_instant_in_another_offset_counts_as_the_same_content(
    client: httpx.AsyncClient,
) -> None:
    await client.post(
        "/v1/touchpoints", json=touchpoint(id="t-tz", occurred_at="2026-11-02T09:30:00Z")
    )
    retry = await client.post(
        "/v1/touchpoints", json=touchpoint(id="t-tz", occurred_at="2026-11-02T12:30:00+03:00")
    )
    assert retry.status_code == 200


async def test_same_id_with_different_content_is_a_conflict(client: httpx.AsyncClient) -> None:
    await client.post("/v1/touchpoints", json=touchpoint(id="t-2", team="desk-day"))
    response = await client.post("/v1/touchpoints", json=touchpoint(id="t-2", team="desk-night"))
    assert response.status_code == 409
    error = response.json()
    assert error["code"] == "conflict"
    assert "t-2" in error["message"]
    assert error["details"][0]["field"] == "body.id"
    assert (await client.get("/v1/touchpoints/t-2")).json()["team"] == "desk-day"


async def test_id_is_generated_when_absent_and_time_ordered(client: httpx.AsyncClient) -> None:
    first = (await client.post("/v1/touchpoints", json=touchpoint())).json()
    second = (await client.post("/v1/touchpoints", json=touchpoint())).json()
    assert first["id"] != second["id"]
    assert first["id"] < second["id"]


async def test_timestamps_are_returned_in_utc(client: httpx.AsyncClient) -> None:
    body = touchpoint(id="t-utc", occurred_at="2026-11-02T23:30:00-05:00")
    stored = (await client.post("/v1/touchpoints", json=body)).json()
    assert stored["occurred_at"] == "2026-11-03T04:30:00Z"
    assert stored["received_at"].endswith("Z")


async def test_missing_occurred_at_defaults_to_receipt(client: httpx.AsyncClient) -> None:
    body = touchpoint()
    del body["occurred_at"]
    stored = (await client.post("/v1/touchpoints", json=body)).json()
    assert stored["occurred_at"] == stored["received_at"]


async def test_naive_timestamp_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/touchpoints", json=touchpoint(occurred_at="2026-11-02T09:30:00")
    )
    assert response.status_code == 422
    assert response.json()["details"][0]["field"] == "body.occurred_at"
    assert response.json()["details"][0]["type"] == "timezone_aware"


async def test_timestamp_far_in_the_future_is_refused(client: httpx.AsyncClient) -> None:
    future = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    response = await client.post("/v1/touchpoints", json=touchpoint(occurred_at=future))
    assert response.status_code == 422
    assert "future" in response.json()["details"][0]["message"]


@pytest.mark.parametrize("scale", list(ScaleName))
async def test_every_scale_accepts_its_ends_and_refuses_beyond(
    client: httpx.AsyncClient, scale: ScaleName
) -> None:
    spec = SCALES[scale]
    for value, score in ((spec.low, 0.0), (spec.high, 100.0)):
        body = touchpoint(rating={"scale": scale.value, "value": value})
        response = await client.post("/v1/touchpoints", json=body)
        assert response.status_code == 201
        assert response.json()["rating"]["score"] == score
    for value in (spec.low - 1, spec.high + 1):
        body = touchpoint(rating={"scale": scale.value, "value": value})
        response = await client.post("/v1/touchpoints", json=body)
        assert response.status_code == 422
        (detail,) = response.json()["details"]
        assert detail["field"] == "body.rating.value"
        assert f"scale {scale.value} (allowed {spec.low}..{spec.high})" in detail["message"]


async def test_unknown_scale_is_refused_naming_the_field(client: httpx.AsyncClient) -> None:
    body = touchpoint(rating={"scale": "stars10", "value": 3})
    response = await client.post("/v1/touchpoints", json=body)
    assert response.status_code == 422
    assert response.json()["details"][0]["field"] == "body.rating.scale"


async def test_unknown_moment_is_registered_automatically(client: httpx.AsyncClient) -> None:
    body = touchpoint(moment="portal.new-page", channel="portal")
    assert (await client.post("/v1/touchpoints", json=body)).status_code == 201
    moment = (await client.get("/v1/moments/portal.new-page")).json()
    assert moment["auto_registered"] is True
    assert moment["channel"] == "portal"
    assert moment["target_negative_rate"] == 0.10


async def test_unknown_moment_is_refused_when_registration_is_off(
    make_client: ClientFactory,
) -> None:
    async with make_client(auto_register_moments=False) as client:
        response = await client.post("/v1/touchpoints", json=touchpoint(moment="portal.unknown"))
        assert response.status_code == 422
        error = response.json()
        assert error["details"][0] == {
            "field": "body.moment",
            "message": "unknown moment",
            "type": "unknown_moment",
        }
        assert (await client.get("/v1/moments/portal.unknown")).status_code == 404


async def test_channel_defaults_to_the_moment_channel(client: httpx.AsyncClient) -> None:
    await client.post("/v1/moments", json={"key": "onsite.visit", "channel": "visit"})
    body = touchpoint(moment="onsite.visit")
    del body["channel"]
    stored = (await client.post("/v1/touchpoints", json=body)).json()
    assert stored["channel"] == "visit"


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("comment", "x" * 2001, "string_too_long"),
        ("attributes", {"nested": {"a": 1}}, "string_type"),
        ("attributes", {f"k{i}": i for i in range(21)}, "too_long"),
        ("attributes", {"bad key": 1}, "string_pattern_mismatch"),
        ("id", "x" * 65, "string_too_long"),
        ("id", "has space", "string_pattern_mismatch"),
        ("moment", "Service Desk", "string_pattern_mismatch"),
        ("channel", "fax", "enum"),
        ("client_ref", "", "string_too_short"),
        ("unexpected", 1, "extra_forbidden"),
    ],
)
async def test_bad_fields_are_refused_with_their_path_and_reason(
    client: httpx.AsyncClient, field: str, value: object, reason: str
) -> None:
    response = await client.post("/v1/touchpoints", json=touchpoint(**{field: value}))
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "validation_failed"
    assert any(
        d["field"].startswith(f"body.{field}") and d["type"] == reason for d in body["details"]
    ), body["details"]


async def test_flat_attributes_are_kept(client: httpx.AsyncClient) -> None:
    attributes = {"ticket": "INC-1", "priority": 2, "vip": True, "score": 0.5, "note": None}
    stored = (await client.post("/v1/touchpoints", json=touchpoint(attributes=attributes))).json()
    assert stored["attributes"] == attributes
