"""Every way a touchpoint is validated accepts, refuses and fingerprints alike.

A batch whose body holds no NUL character is validated without the per-field NUL check,
in one call; any other body, and a single post, with it. Stored fingerprints must not
change with the path an item took or with how the validation is written.
"""

import json
from typing import Any

import httpx
import pytest
from pydantic import TypeAdapter

from app.inputs import may_hold_nul, with_nul_check
from app.touchpoints import service
from app.touchpoints.schemas import TouchpointCreate
from tests.payloads import touchpoint

pytestmark = pytest.mark.anyio

# Fingerprints computed by the implementation that stored the existing data: the same
# post must keep telling a retry (same hash) from a different post.
PINNED_HASHES: list[tuple[dict[str, Any], str]] = [
    (
        {"moment": "service-desk.first-voice"},
        "83c9ee6c113eeb8ff09ed0b44ff14655d435a57de51c33b4a78f952d533eb31b",
    ),
    (
        {
            "id": "desk-call-20261123-0042",
            "moment": "service-desk.first-voice",
            "channel": "call",
            "occurred_at": "2026-11-02T09:30:00Z",
            "client_ref": "c-0001",
            "team": "desk-day",
            "rating": {"scale": "csat5", "value": 2},
        },
        "7bbbb930220b305648c53e78683ec6676413436137e99983dfe96778277bbaef",
    ),
    (
        {
            "moment": "email.ticket-update",
            "channel": "email",
            "occurred_at": "2026-11-02T10:30:00.123456789+01:00",
            "client_ref": "c-0002",
            "team": "  back office  ",
            "agent": "bot-7",
            "source": "crm",
            "rating": {"scale": "nps11", "value": 10},
            "comment": "Très bien — merci ✓",
            "complaint": True,
            "attributes": {"zeta": None, "alpha": 1, "mid": 2.5, "flag": False, "Name": "x"},
        },
        "3b386408920daaf524cb9e44ee72379a82356368fa57563571b043453c5fe3b5",
    ),
    (
        {
            "moment": "portal.search",
            "occurred_at": "2026-03-29t01:59:59z",
            "rating": {"scale": "thumbs", "value": 0},
            "attributes": {},
        },
        "3f0ca7d392ec1a4f9e167515a40a994f760f992b07ab1ec90eb4e7ec82aaa9be",
    ),
    (
        {
            "moment": "visit.branch",
            "channel": "visit",
            "occurred_at": "2026-07-01 23:15-0530",
            "comment": "",
            "complaint": False,
            "attributes": {"b": "2", "a": "1"},
        },
        "970f79b7b6dd8819245e99ef588181c1a067531703ad7baa5baaa652ac27de65",
    ),
]

# Items each path must refuse with the same details (none holds a NUL character).
INVALID_ITEMS: list[object] = [
    {"moment": "m", "rating": {"scale": "csat5", "value": 6}},
    {"moment": "m", "rating": {"scale": "stars10", "value": 3}},
    {"moment": "m", "rating": {"value": 3}},
    {"moment": "m", "rating": {"scale": "nps11", "value": "3"}},
    {"moment": "m", "occurred_at": "2026-11-02T09:30:00"},
    {"moment": "m", "occurred_at": 1_700_000_000},
    {"moment": "m", "occurred_at": "1970-01-01T00:30:00+01:00"},
    {"moment": "m", "occurred_at": "2999-01-01T00:00:00Z"},
    {"moment": "Bad Key", "team": "t" * 101, "attributes": {"k": {"nested": 1}}, "x": 1},
    "not an object",
    None,
]


def _paths(items: list[object]) -> dict[str, Any]:
    """What each way of validating makes of the same items."""
    return {
        "batch without NUL check": service.validate_items(items, may_hold_nul=False),
        "batch with NUL check": service.validate_items(items, may_hold_nul=True),
    }


@pytest.mark.parametrize(("item", "expected"), PINNED_HASHES)
def test_fingerprints_of_stored_posts_do_not_change(item: dict[str, Any], expected: str) -> None:
    single = TypeAdapter(with_nul_check(TouchpointCreate)).validate_python(item)
    assert service.content_hash(single) == expected
    for path, (valid, report) in _paths([item]).items():
        assert not report.errors, path
        ((_, validated),) = valid
        assert service.content_hash(validated) == expected, path


def test_batches_refuse_the_same_items_with_the_same_details_whatever_the_path() -> None:
    items = [item for item, _ in PINNED_HASHES] + INVALID_ITEMS
    outcomes = {
        path: (
            [(index, item.model_dump()) for index, item in valid],
            [error.model_dump() for error in report.errors],
        )
        for path, (valid, report) in _paths(items).items()
    }
    with_check, without_check = outcomes.values()
    assert with_check == without_check
    assert [error["index"] for error in with_check[1]] == list(
        range(len(PINNED_HASHES), len(items))
    )


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"comment": "fine"}', False),
        (b'{"comment": "bad\\u0000byte"}', True),
        (b'{"comment": "bad\x00byte"}', True),
        ('{"comment": "fine"}'.encode("utf-16"), True),
        # An escaped backslash followed by the text u0000: a false alarm, checked in full.
        (b'{"comment": "C:\\\\u0000"}', True),
    ],
)
def test_the_body_search_never_misses_a_nul_character(body: bytes, expected: bool) -> None:
    assert may_hold_nul(body) is expected


async def test_a_nul_character_in_a_batch_item_is_named_like_in_a_single_post(
    client: httpx.AsyncClient,
) -> None:
    items = [
        touchpoint(id="good"),
        touchpoint(id="bad-team", team="a\x00b"),
        touchpoint(id="bad-attribute", attributes={"k": "v\x00"}),
        touchpoint(id="bad-and-long", comment="\x00", client_ref="c" * 129),
    ]
    batch = (await client.post("/v1/touchpoints/batch", json={"touchpoints": items})).json()
    assert (batch["accepted"], batch["rejected"]) == (1, 3)
    details = {e["id"]: [(d["field"], d["type"]) for d in e["details"]] for e in batch["errors"]}
    assert details == {
        "bad-team": [("team", "nul_character")],
        "bad-attribute": [("attributes", "nul_character")],
        "bad-and-long": [("client_ref", "string_too_long"), ("comment", "nul_character")],
    }
    single = await client.post("/v1/touchpoints", json=touchpoint(team="a\x00b"))
    assert [(d["field"], d["type"]) for d in single.json()["details"]] == [
        ("body.team", "nul_character")
    ]


async def test_text_that_only_looks_like_a_nul_escape_is_stored(
    client: httpx.AsyncClient,
) -> None:
    comment = "path C:\\u0000 quoted"
    body = json.dumps({"touchpoints": [touchpoint(id="escaped", comment=comment)]})
    assert "\\\\u0000" in body
    response = await client.post(
        "/v1/touchpoints/batch", content=body, headers={"content-type": "application/json"}
    )
    assert response.json()["accepted"] == 1
    stored = (await client.get("/v1/touchpoints/escaped")).json()
    assert stored["comment"] == comment


NON_FINITE = {"nan": float("nan"), "infinity": float("inf"), "minus-infinity": float("-inf")}


async def _post_json(client: httpx.AsyncClient, url: str, body: object) -> httpx.Response:
    # As ordinary producers write it: Python's json.dumps writes NaN and Infinity by default.
    text = json.dumps(body)
    return await client.post(url, content=text, headers={"content-type": "application/json"})


@pytest.mark.parametrize("nul_in_body", [False, True], ids=["fast path", "nul-checked path"])
async def test_a_non_finite_attribute_is_refused_per_item_and_the_batch_is_stored(
    client: httpx.AsyncClient, nul_in_body: bool
) -> None:
    items = [touchpoint(id="good", attributes={"ratio": 0.5, "big": 1e308})]
    items += [touchpoint(id=name, attributes={"foo": value}) for name, value in NON_FINITE.items()]
    # 1e999 is no NaN token, yet Python reads it as infinity.
    huge = json.dumps({"foo": 1e999}).replace("Infinity", "1e999")
    if nul_in_body:
        items.append(touchpoint(id="nul", team="a\x00b"))
    text = json.dumps({"touchpoints": items})
    text = text.replace("]}", ', {"moment": "m", "id": "huge", "attributes": ' + huge + "}]}")
    response = await client.post(
        "/v1/touchpoints/batch", content=text, headers={"content-type": "application/json"}
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["accepted"] == 1
    details = {e["id"]: [(d["field"], d["type"]) for d in e["details"]] for e in result["errors"]}
    expected = {name: [("attributes.foo", "finite_number")] for name in [*NON_FINITE, "huge"]}
    if nul_in_body:
        expected["nul"] = [("team", "nul_character")]
    assert details == expected
    stored = (await client.get("/v1/touchpoints/good")).json()["attributes"]
    # PostgreSQL's JSONB writes 1e308 back in full digits: equal as a number, not as a float.
    assert (stored["ratio"], float(stored["big"])) == (0.5, 1e308)
    listed = (await client.get("/v1/touchpoints")).json()
    assert [tp["id"] for tp in listed["data"]] == ["good"]


@pytest.mark.parametrize("value", NON_FINITE.values(), ids=NON_FINITE.keys())
async def test_a_single_post_with_a_non_finite_attribute_is_a_422(
    client: httpx.AsyncClient, value: float
) -> None:
    response = await _post_json(client, "/v1/touchpoints", touchpoint(attributes={"foo": value}))
    assert response.status_code == 422, response.text
    assert [(d["field"], d["type"]) for d in response.json()["details"]] == [
        ("body.attributes.foo", "finite_number")
    ]
    assert (await client.get("/v1/touchpoints")).json()["data"] == []


@pytest.mark.parametrize("value", NON_FINITE.values(), ids=NON_FINITE.keys())
async def test_a_non_finite_target_is_refused_as_not_finite(
    client: httpx.AsyncClient, value: float
) -> None:
    moment = {"key": "desk.call", "target_negative_rate": value}
    created = await _post_json(client, "/v1/moments", moment)
    assert [(d["field"], d["type"]) for d in created.json()["details"]] == [
        ("body.target_negative_rate", "finite_number")
    ]
    await client.post("/v1/moments", json={"key": "desk.call"})
    changed = await client.patch(
        "/v1/moments/desk.call",
        content=json.dumps({"target_negative_rate": value}),
        headers={"content-type": "application/json"},
    )
    assert [(d["field"], d["type"]) for d in changed.json()["details"]] == [
        ("body.target_negative_rate", "finite_number")
    ]
