import sqlite3
from pathlib import Path

import httpx
import psycopg
import pytest
from sqlalchemy import exc as sa_exc

from app import migrate
from app.db import is_unavailable
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
    assert response.json() == {
        "status": "ready",
        "database": "ok",
        "migrations": "current",
        "replica": "none",
        "replica_lag_seconds": None,
    }


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


def _sqlite_locked(path: Path) -> sqlite3.Error:
    """The error SQLite raises for a write once its wait for another writer is over."""
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("CREATE TABLE held (id INTEGER)")
        holder.execute("BEGIN EXCLUSIVE")
        with sqlite3.connect(path, timeout=0) as waiting, pytest.raises(sqlite3.Error) as raised:
            waiting.execute("INSERT INTO held VALUES (1)")
        return raised.value
    finally:
        holder.close()


async def test_only_errors_of_reaching_the_database_count_as_it_being_unavailable(
    tmp_path: Path,
) -> None:
    def wrapped(cause: Exception) -> sa_exc.DBAPIError:
        return sa_exc.DBAPIError("SELECT 1", None, cause)

    assert is_unavailable(wrapped(_sqlite_locked(tmp_path / "mot.db")))
    with sqlite3.connect(tmp_path / "mot.db") as connection, pytest.raises(sqlite3.Error) as wrong:
        connection.execute("SELECT * FROM no_such_table")
    assert not is_unavailable(wrapped(wrong.value))
    assert is_unavailable(sa_exc.TimeoutError("the pool has no connection free"))
    assert is_unavailable(wrapped(psycopg.OperationalError("connection failed")))
    assert is_unavailable(wrapped(psycopg.errors.AdminShutdown()))
    assert is_unavailable(wrapped(psycopg.errors.TooManyConnections()))
    # A read cancelled by a replica applying changes its snapshot still needed.
    assert is_unavailable(wrapped(psycopg.errors.SerializationFailure()))
    assert not is_unavailable(wrapped(psycopg.errors.QueryCanceled()))
    assert not is_unavailable(wrapped(psycopg.errors.UniqueViolation()))
    assert not is_unavailable(RuntimeError("not the database"))


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


async def test_a_query_parameter_given_twice_is_refused_naming_it(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get(
        "/v1/insights/weak-spots", params=[("moment", "a."), ("moment", "b."), ("limit", "5")]
    )
    assert response.status_code == 422
    (detail,) = response.json()["details"]
    assert (detail["field"], detail["type"]) == ("query.moment", "repeated")
