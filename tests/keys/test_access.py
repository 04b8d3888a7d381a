"""Every /v1 route needs a key with the right scope; health, metrics and the client pages
do not."""

import re

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts

from app.config import Settings
from app.keys.access import required_scopes
from app.keys.schemas import Scope
from app.main import create_app
from tests.conftest import ClientFactory
from tests.payloads import touchpoint

pytestmark = pytest.mark.anyio


def _guarded_routes(app: FastAPI) -> list[tuple[str, str, str]]:
    """(method, path with sample parameters, required scope) of every /v1 route."""
    routes: list[tuple[str, str, str]] = []
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if not isinstance(route, APIRoute) or not route.path.startswith("/v1"):
            continue
        scopes = list(required_scopes(route.dependant))
        assert len(scopes) == 1, f"{route.path} must require exactly one scope, has {scopes}"
        path = re.sub(r"\{[^}]+\}", "1", route.path)
        routes.extend((method, path, scopes[0]) for method in sorted(route.methods or ()))
    return routes


@pytest.fixture(scope="module")
def guarded_routes() -> list[tuple[str, str, str]]:
    return _guarded_routes(create_app(Settings(_env_file=None, database_url="sqlite://")))


def test_the_scopes_routes_require_follow_the_contract(
    guarded_routes: list[tuple[str, str, str]],
) -> None:
    required = {(method, path): scope for method, path, scope in guarded_routes}
    assert len(required) >= 29
    assert required["POST", "/v1/touchpoints"] == "ingest"
    assert required["POST", "/v1/touchpoints/batch"] == "ingest"
    assert required["PUT", "/v1/touchpoints/1/rating"] == "ingest"
    assert required["POST", "/v1/touchpoints/1/survey"] == "ingest"
    assert required["GET", "/v1/touchpoints"] == "read"
    assert required["GET", "/v1/moments"] == "read"
    assert required["GET", "/v1/insights/weak-spots"] == "read"
    assert required["GET", "/v1/insights/follow-ups"] == "read"
    assert required["GET", "/v1/insights/surveys"] == "read"
    assert required["GET", "/v1/clients/1/journey"] == "read"
    assert required["POST", "/v1/moments"] == "manage"
    assert required["PATCH", "/v1/moments/1"] == "manage"
    assert required["POST", "/v1/follow-ups/1/events"] == "manage"
    assert required["GET", "/v1/webhooks"] == "manage"
    assert required["POST", "/v1/keys"] == "admin"
    assert required["DELETE", "/v1/keys/1"] == "admin"


async def test_every_v1_route_refuses_a_request_without_a_key(
    make_client: ClientFactory, guarded_routes: list[tuple[str, str, str]]
) -> None:
    async with make_client(scopes=()) as client:
        for method, path, _scope in guarded_routes:
            response = await client.request(method, path, json={})
            assert response.status_code == 401, (method, path, response.text)
            assert response.json()["code"] == "unauthorized"
            assert response.headers["www-authenticate"] == "Bearer"


async def test_every_v1_route_refuses_a_key_without_its_scope(
    make_client: ClientFactory, guarded_routes: list[tuple[str, str, str]]
) -> None:
    for scope in (Scope.ingest, Scope.read, Scope.manage):
        others = tuple(s for s in Scope if s not in (scope, Scope.admin))
        async with make_client(scopes=others) as client:
            for method, path, required in guarded_routes:
                if required not in (scope, Scope.admin):
                    continue
                response = await client.request(method, path, json={})
                assert response.status_code == 403, (method, path, response.text)
                body = response.json()
                assert body["code"] == "forbidden"
                assert f"`{required}`" in body["message"]
                assert body["details"][0]["type"] == "missing_scope"


async def test_an_unknown_key_is_refused(make_client: ClientFactory) -> None:
    async with make_client(scopes=()) as client:
        for headers in ({"Authorization": "Bearer mot_not-a-key"}, {"X-API-Key": "nope"}):
            response = await client.get("/v1/moments", headers=headers)
            assert response.status_code == 401
            assert response.json()["details"][0]["type"] == "invalid_api_key"


async def test_a_key_with_the_scope_is_let_in_by_either_header(client: httpx.AsyncClient) -> None:
    created = await client.post("/v1/keys", json={"name": "portal", "scopes": ["ingest"]})
    key = created.json()["key"]
    item = touchpoint(id="tp-1")
    bearer = await client.post(
        "/v1/touchpoints", json=item, headers={"Authorization": f"Bearer {key}"}
    )
    assert bearer.status_code == 201
    header = await client.post(
        "/v1/touchpoints",
        json=touchpoint(id="tp-2"),
        headers={"Authorization": "", "X-API-Key": key},
    )
    assert header.status_code == 201


async def test_health_and_client_pages_need_no_key(make_client: ClientFactory) -> None:
    async with make_client(scopes=()) as client:
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.get("/readyz")).status_code == 200
        # Pages are reached through signed tokens only: a forged one is refused as such.
        assert (await client.get("/s/forged-token")).status_code in (400, 404)
        assert (await client.get("/f/forged-token")).status_code in (400, 404)


async def test_openapi_documents_the_key_and_the_refusals(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    assert {"HTTPBearer", "APIKeyHeader"} <= set(schema["components"]["securitySchemes"])
    operation = schema["paths"]["/v1/touchpoints"]["post"]
    assert {"401", "403"} <= set(operation["responses"])
    # Either scheme, neither with scopes of its own (those are OAuth's): the scope is text.
    assert operation["security"] == [{"HTTPBearer": []}, {"APIKeyHeader": []}]
    assert schema["paths"]["/healthz"]["get"]["security"] == []
    assert operation["x-required-scope"] == "ingest"
    assert operation["description"].startswith("Requires an API key with the `ingest` scope.")
    erase = schema["paths"]["/v1/clients/{client_ref}"]["delete"]
    assert erase["x-required-scope"] == "admin"
