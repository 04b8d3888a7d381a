import httpx
import pytest

from app import migrate
from tests.conftest import ClientFactory

pytestmark = pytest.mark.anyio


async def test_unknown_route_uses_the_error_shape(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/nothing-here")
    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "message": "Not Found", "details": []}


async def test_wrong_method_is_405_with_the_error_shape(client: httpx.AsyncClient) -> None:
    response = await client.delete("/v1/moments")
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


async def test_malformed_json_is_a_422_not_a_500(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/touchpoints", content=b'{"moment": ', headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["details"][0]["type"] == "json_invalid"


async def test_healthz_answers(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}


async def test_readyz_is_ready_on_a_migrated_database(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "database": "ok", "migrations": "current"}


async def test_readyz_is_not_ready_when_migrations_are_behind(
    make_client: ClientFactory, database_url: str
) -> None:
    migrate.downgrade(database_url, "base")
    async with make_client(scopes=()) as client:
        response = await client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["status"] == "not_ready"


def _unreachable(backend: str) -> str:
    if backend == "sqlite":
        return "sqlite:////nonexistent-dir/mot.db"
    return "postgresql://postgres@127.0.0.1:1/none"


async def test_readyz_is_not_ready_when_the_database_is_unreachable(
    make_client: ClientFactory, backend: str
) -> None:
    async with make_client(scopes=(), database_url=_unreachable(backend)) as client:
        response = await client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["database"] == "unreachable"


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/v1/moments"), ("POST", "/v1/touchpoints"), ("GET", "/v1/insights/overview")],
)
async def test_an_unreachable_database_is_a_503_to_retry_not_a_500(
    make_client: ClientFactory, backend: str, method: str, path: str
) -> None:
    async with make_client(scopes=(), database_url=_unreachable(backend)) as client:
        # The key check is the first to need the database.
        response = await client.request(
            method, path, headers={"Authorization": "Bearer mot_some-key-of-forty-characters-0123"}
        )
    assert response.status_code == 503
    assert response.json() == {
        "code": "database_unavailable",
        "message": "The database cannot be reached; try again shortly.",
        "details": [],
    }
    assert int(response.headers["retry-after"]) > 0


async def test_openapi_documents_every_response_field(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    undocumented = [
        f"{name}.{field}"
        for name, component in schema["components"]["schemas"].items()
        # Every schema a response uses; request bodies are documented by their routes.
        if not name.endswith(("Create", "Update"))
        for field, spec in component.get("properties", {}).items()
        if "description" not in spec
    ]
    assert undocumented == []
