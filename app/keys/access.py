"""Who may call what: the API-key check every `/v1` route declares, with the scope it needs.

Keys are accepted as `Authorization: Bearer <key>` or as `X-API-Key: <key>`. A missing or
unknown key is a 401; a valid key without the scope the route needs is a 403 naming it.

A key found valid is trusted for `api_key_cache_seconds` without asking the database again:
the lookup is a session and four round trips of its own, a large part of a fast read. A key
revoked through this process stops working in it at once; other processes (workers,
replicas) refuse it once their copy is that old.
"""

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request, Security
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer, SecurityScopes

from app.db import Database, utcnow
from app.errors import AppError, ErrorDetail
from app.keys import service
from app.keys.models import ApiKey
from app.keys.schemas import Scope

_bearer = HTTPBearer(
    auto_error=False, description="`Authorization: Bearer <key>` with a mot API key."
)
_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="The API key in an `X-API-Key` header."
)


class Unauthorized(AppError):
    status_code = 401
    code = "unauthorized"
    headers = {"WWW-Authenticate": "Bearer"}


class Forbidden(AppError):
    status_code = 403
    code = "forbidden"


@dataclass(slots=True)
class _Verified:
    key: ApiKey
    checked_at: float
    """`time.monotonic()` when the database last said the key is active."""
    last_used_at: datetime | None
    """The last use noted in the database, as far as this process knows."""


class VerifiedKeys:
    """Keys the database recently said are active, by hash, each trusted for `seconds`."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._by_hash: dict[str, _Verified] = {}

    def get(self, key_hash: str) -> _Verified | None:
        found = self._by_hash.get(key_hash)
        if found is None or time.monotonic() - found.checked_at >= self.seconds:
            return None
        return found

    def put(self, key_hash: str, key: ApiKey) -> _Verified:
        verified = _Verified(key, time.monotonic(), key.last_used_at)
        if self.seconds > 0:
            self._by_hash[key_hash] = verified
        return verified

    def forget(self, key_id: int) -> None:
        """Stop trusting the key with this id (it is being revoked)."""
        self._by_hash = {h: v for h, v in self._by_hash.items() if v.key.id != key_id}


def verified_keys(request: Request) -> VerifiedKeys:
    keys: VerifiedKeys = request.app.state.verified_keys
    return keys


async def authorize(
    security_scopes: SecurityScopes,
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    header: Annotated[str | None, Depends(_header)],
) -> ApiKey:
    """The caller's key, checked against the scope the route needs."""
    presented = bearer.credentials if bearer else header
    if not presented:
        raise Unauthorized(
            "An API key is required: send `Authorization: Bearer <key>` or `X-API-Key: <key>`.",
            details=[_detail("missing_api_key", "no API key was sent")],
        )
    database: Database = request.app.state.database
    cache = verified_keys(request)
    key_hash = service.hash_key(presented)
    verified = cache.get(key_hash)
    if verified is None:
        # A session of its own, closed before the route's opens: on SQLite a write request's
        # transaction holds the write lock from its first statement, and recording the key's
        # use from inside it would wait on itself.
        async with database.read_sessions() as session:
            found = await service.authenticate(session, key_hash=key_hash)
        if found is None:
            raise Unauthorized(
                "The API key is not valid: it is unknown or was revoked.",
                details=[_detail("invalid_api_key", "unknown or revoked API key")],
            )
        verified = cache.put(key_hash, found)
    key = verified.key
    for needed in security_scopes.scopes:
        if not service.grants(key, Scope(needed)):
            raise Forbidden(
                f"This API key lacks the `{needed}` scope this request needs.",
                details=[_detail("missing_scope", f"requires the `{needed}` scope")],
            )
    # For the dependencies that act on the caller's behalf (idempotency keys are the key's).
    request.state.api_key_id = key.id
    now = utcnow()
    if service.needs_use_recorded(verified.last_used_at, now):
        await service.record_use(database, key_id=key.id, now=now)
        verified.last_used_at = now
    return key


def _detail(reason: str, message: str) -> ErrorDetail:
    return ErrorDetail(field="header.authorization", message=message, type=reason)


def required_scopes(dependant: Dependant) -> Iterator[str]:
    """The scopes a route's dependencies require, found through its dependency tree."""
    for dependency in dependant.dependencies:
        if dependency.call is authorize:
            yield from dependency.own_oauth_scopes or ()
        yield from required_scopes(dependency)


def document_scopes(app: FastAPI) -> None:
    """Say in the OpenAPI description which routes need a key and with what scope.

    A route without the key check lists no security (`security: []`), so that it is not
    read as covered by some default. The key schemes are an HTTP bearer and an API-key
    header, which carry no scopes in OpenAPI (scopes are OAuth's): their requirements list
    none, and the scope is named at the top of the operation's text and as
    `x-required-scope` instead.
    """
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        for context in iter_route_contexts(app.routes):
            route = context.original_route
            if not isinstance(route, APIRoute) or not route.include_in_schema:
                continue
            scopes = sorted(set(required_scopes(route.dependant)))
            for method in route.methods or ():
                operation = schema["paths"][route.path_format].get(method.lower())
                if operation is None:
                    continue
                operation["security"] = [
                    {scheme: [] for scheme in requirement}
                    for requirement in operation.get("security", [])
                ]
                if not scopes:
                    continue
                needed = ", ".join(f"`{scope}`" for scope in scopes)
                text = operation.get("description", "")
                operation["description"] = f"Requires an API key with the {needed} scope.\n\n{text}"
                operation["x-required-scope"] = scopes[0] if len(scopes) == 1 else scopes
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def requires(scope: Scope) -> Any:
    """The dependency a route or router declares to require a key with `scope`."""
    return Security(authorize, scopes=[scope.value])


AdminKeyDep = Annotated[ApiKey, Security(authorize, scopes=[Scope.admin.value])]
