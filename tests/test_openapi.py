"""The published schema says what the service accepts: what it refuses by form is refused by
the schema too, and what the schema admits is accepted (`tests/test_fuzzing.py` checks both
on generated requests; these tests pin the rules one by one)."""

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from app.config import Settings
from app.main import create_app
from tests.payloads import touchpoint

OPENAPI = create_app(Settings(_env_file=None, database_url="sqlite://")).openapi()
COMPONENTS = OPENAPI["components"]["schemas"]


def _input_schemas() -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, schema) of every schema a request is read with: parameters and JSON bodies,
    with every component they name, recursively."""
    seen: set[str] = set()

    def walk(where: str, node: Any) -> Iterator[tuple[str, dict[str, Any]]]:
        if isinstance(node, list):
            for item in node:
                yield from walk(where, item)
            return
        if not isinstance(node, dict):
            return
        yield where, node
        reference = node.get("$ref")
        if isinstance(reference, str) and reference not in seen:
            seen.add(reference)
            name = reference.rsplit("/", 1)[-1]
            yield from walk(name, COMPONENTS[name])
        for name, value in node.get("properties", {}).items():
            yield from walk(f"{where}.{name}", value)
        for key in ("items", "additionalProperties", "anyOf", "oneOf", "allOf"):
            yield from walk(where, node.get(key))

    for path, operations in OPENAPI["paths"].items():
        for method, operation in operations.items():
            label = f"{method.upper()} {path}"
            for parameter in operation.get("parameters", []):
                yield from walk(f"{label} {parameter['name']}", parameter["schema"])
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body is not None:
                yield from walk(label, body["schema"])


STRINGS = [(where, node) for where, node in _input_schemas() if node.get("type") == "string"]


def test_no_string_the_schema_admits_holds_a_nul_character() -> None:
    admitting_nul = [
        where
        for where, node in STRINGS
        if "enum" not in node
        # A date-time or a URI cannot hold one by its format.
        and node.get("format") not in ("date-time", "uri")
        and re.search(node.get("pattern", ""), "a\x00b") is not None
    ]
    assert admitting_nul == []


def test_every_timestamp_publishes_the_years_it_may_lie_in() -> None:
    timestamps = [node for _where, node in STRINGS if node.get("format") == "date-time"]
    assert len(timestamps) > 5
    for node in timestamps:
        accepted = [
            year
            for year in (1969, 1970, 2199, 2200)
            if re.search(node["pattern"], f"{year}-06-01T00:00:00Z")
        ]
        assert accepted == [1970, 2199]


def test_a_moment_change_offers_null_only_where_null_clears_the_field() -> None:
    properties = COMPONENTS["MomentUpdate"]["properties"]
    nullable = {
        name
        for name, node in properties.items()
        if any(option.get("type") == "null" for option in node.get("anyOf", []))
    }
    assert nullable == {"description", "stage", "owner_team", "target_negative_rate"}
    assert all("default" not in properties[name] for name in set(properties) - nullable)


def test_attributes_admit_only_keys_of_their_pattern_and_scalar_values() -> None:
    (attributes, _null) = COMPONENTS["TouchpointCreate"]["properties"]["attributes"]["anyOf"]
    assert "patternProperties" not in attributes
    assert attributes["propertyNames"]["pattern"] == "^[A-Za-z0-9_.-]+$"
    kinds = [option["type"] for option in attributes["additionalProperties"]["anyOf"]]
    assert kinds == ["string", "integer", "number", "boolean", "null"]


def test_a_rating_publishes_the_range_of_each_scale() -> None:
    ranges = {
        option["properties"]["scale"]["const"]: (
            option["properties"]["value"]["minimum"],
            option["properties"]["value"]["maximum"],
        )
        for option in COMPONENTS["RatingIn"]["oneOf"]
    }
    assert ranges == {
        "csat5": (1, 5),
        "nps11": (0, 10),
        "ces7": (1, 7),
        "smiley4": (1, 4),
        "thumbs": (0, 1),
    }


@pytest.mark.anyio
async def test_an_integer_written_as_a_float_is_accepted(client: httpx.AsyncClient) -> None:
    # JSON Schema's `integer` admits 4.0; some producers write every number so.
    stored = await client.post(
        "/v1/touchpoints", json=touchpoint(id="tp-1", rating={"scale": "csat5", "value": 4.0})
    )
    assert stored.status_code == 201, stored.text
    assert stored.json()["rating"]["value"] == 4
    rated = await client.put("/v1/touchpoints/tp-1/rating", json={"scale": "nps11", "value": 9.0})
    assert rated.status_code == 200, rated.text
    surveyed = await client.post(
        "/v1/touchpoints/tp-1/survey", json={"scale": "csat5", "expires_in_days": 3.0}
    )
    assert surveyed.status_code == 201, surveyed.text
    for fraction in ({"scale": "csat5", "value": 4.5}, {"scale": "csat5", "value": "4"}):
        refused = await client.put("/v1/touchpoints/tp-1/rating", json=fraction)
        assert refused.status_code == 422, refused.text
