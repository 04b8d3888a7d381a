"""The published schema says what the service accepts: what it refuses by form is refused by
the schema too, and what the schema admits is accepted (`tests/test_fuzzing.py` checks both
on generated requests; these tests pin the rules one by one)."""

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.config import Settings
from app.main import create_app
from app.openapi import DuplicateOperationId, check_operation_ids
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
    assert nullable == {"description", "stage", "owner_team", "target_negative_rate", "factors"}
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


OPERATIONS = [
    (f"{method.upper()} {path}", operation)
    for path, operations in OPENAPI["paths"].items()
    for method, operation in operations.items()
]


def test_every_operation_id_is_its_route_functions_name_and_its_own() -> None:
    ids = [operation["operationId"] for _label, operation in OPERATIONS]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", i) for i in ids), ids
    by_label = {label: operation["operationId"] for label, operation in OPERATIONS}
    assert by_label["GET /v1/moments"] == "list_moments"
    assert by_label["GET /v1/insights/weak-spots"] == "weak_spots"
    assert by_label["POST /v1/follow-ups/{follow_up_id}/events"] == "add_follow_up_event"


def test_an_app_whose_operations_share_a_name_is_refused() -> None:
    twice = FastAPI()

    @twice.api_route("/both", methods=["GET", "POST"])
    async def both() -> None:
        return None

    with pytest.raises(DuplicateOperationId, match="both"):
        check_operation_ids(twice)
    check_operation_ids(FastAPI())


def test_every_schema_is_named_by_its_own_title_without_a_module_path() -> None:
    assert [name for name in COMPONENTS if not re.fullmatch(r"[A-Z][A-Za-z0-9]*", name)] == []
    # A client generator names its classes by title: two schemas of one title collide.
    titles = [schema.get("title", name) for name, schema in COMPONENTS.items()]
    assert len(titles) == len(set(titles)), sorted(t for t in titles if titles.count(t) > 1)
    assert {"FollowUpReason", "FollowUpStatus", "WeakSpotReason"} <= set(COMPONENTS)


def test_open_routes_say_so_and_the_others_name_their_scope_in_text_only() -> None:
    schemes = set(OPENAPI["components"]["securitySchemes"])
    open_routes = []
    for label, operation in OPERATIONS:
        requirements = operation["security"]
        if not requirements:
            open_routes.append(label)
            assert "x-required-scope" not in operation
            continue
        # Scopes belong to OAuth schemes: for a bearer or a header key they go in the text.
        assert requirements == [{name: []} for name in sorted(schemes, reverse=True)], label
        scope = operation["x-required-scope"]
        assert operation["description"].startswith(f"Requires an API key with the `{scope}`")
    assert open_routes == ["GET /healthz", "GET /readyz"]


def test_every_route_that_can_answer_csv_publishes_it_as_text() -> None:
    offering = []
    for label, operation in OPERATIONS:
        names = {parameter["name"] for parameter in operation.get("parameters", [])}
        content = {
            media_type: body
            for status, response in operation["responses"].items()
            if status.startswith("2")
            for media_type, body in response.get("content", {}).items()
        }
        if "format" in names or "text/csv" in content:
            offering.append(label)
            assert content["text/csv"]["schema"]["type"] == "string", label
    assert {"GET /v1/insights/weak-spots", "GET /v1/moments/{key}/report"} <= set(offering)


def test_the_contract_names_its_licence_contact_tags_and_server() -> None:
    info = OPENAPI["info"]
    assert info["license"]["identifier"] == "Apache-2.0"
    assert info["contact"]["name"]
    described = {tag["name"] for tag in OPENAPI["tags"] if tag.get("description")}
    used = {tag for _label, operation in OPERATIONS for tag in operation["tags"]}
    assert used <= described, used - described
    assert OPENAPI["servers"][0]["url"] == "/"
    public = Settings(
        _env_file=None, database_url="sqlite://", public_url="https://feedback.example.org/"
    )
    assert create_app(public).openapi()["servers"] == [{"url": "https://feedback.example.org"}]
