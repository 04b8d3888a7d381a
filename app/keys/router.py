from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, status

from app.db import MAX_INTEGER_ID, SessionDep
from app.errors import error_responses
from app.keys import service
from app.keys.access import requires, verified_keys
from app.keys.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyRead, Scope

router = APIRouter(
    prefix="/v1/keys",
    tags=["keys"],
    dependencies=[requires(Scope.admin)],
    responses=error_responses(401, 403, 422),
)


@router.post(
    "", response_model=ApiKeyCreated, status_code=status.HTTP_201_CREATED, summary="Create a key"
)
async def create_key(data: ApiKeyCreate, session: SessionDep) -> ApiKeyCreated:
    """The response holds the key itself, this once; only its hash is stored."""
    return await service.create(session, data=data)


@router.get("", response_model=list[ApiKeyRead], summary="List keys")
async def list_keys(
    session: SessionDep,
    include_revoked: Annotated[bool, Query(description="Also list revoked keys.")] = False,
) -> list[ApiKeyRead]:
    return await service.list_keys(session, include_revoked=include_revoked)


@router.delete(
    "/{key_id}",
    response_model=ApiKeyRead,
    responses=error_responses(404, 409),
    summary="Revoke a key",
)
async def revoke_key(
    key_id: Annotated[int, Path(ge=1, le=MAX_INTEGER_ID, description="Key number.")],
    session: SessionDep,
    request: Request,
) -> ApiKeyRead:
    """The key stops working at once in the process that revokes it, and within
    `MOT_API_KEY_CACHE_SECONDS` in every other. Revoking a revoked key changes nothing; the
    last active admin key cannot be revoked."""
    revoked = await service.revoke(session, key_id=key_id)
    verified_keys(request).forget(key_id)
    return revoked
