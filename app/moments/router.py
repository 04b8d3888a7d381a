from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from app.config import SettingsDep
from app.db import ReplicaSessionDep, SessionDep
from app.errors import error_responses
from app.idempotency.router import IdempotentRoute
from app.keys.access import requires
from app.keys.schemas import Scope
from app.moments import service
from app.moments.schemas import (
    MOMENT_KEY_PATTERN,
    Channel,
    MomentCreate,
    MomentPage,
    MomentRead,
    MomentUpdate,
)
from app.pagination import DEFAULT_PAGE_SIZE, CursorQuery, LimitQuery

router = APIRouter(
    prefix="/v1/moments",
    tags=["moments"],
    responses=error_responses(401, 403, 422),
    route_class=IdempotentRoute,
)

KeyPath = Annotated[str, Path(max_length=100, pattern=MOMENT_KEY_PATTERN)]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=MomentRead,
    responses=error_responses(409, 422),
    summary="Catalogue a moment",
    dependencies=[requires(Scope.manage)],
)
async def create_moment(
    data: MomentCreate, session: SessionDep, settings: SettingsDep
) -> MomentRead:
    moment = await service.create_moment(
        session, data=data, default_target=settings.default_target_negative_rate
    )
    return MomentRead.model_validate(moment)


@router.get(
    "",
    response_model=MomentPage,
    responses=error_responses(422),
    summary="List moments",
    dependencies=[requires(Scope.read)],
)
async def list_moments(
    session: ReplicaSessionDep,
    channel: Annotated[Channel | None, Query(description="Only this channel.")] = None,
    owner_team: Annotated[
        str | None, Query(max_length=100, description="Only this owner team.")
    ] = None,
    archived: Annotated[
        bool | None, Query(description="true: archived only; false: active only; absent: all.")
    ] = None,
    cursor: CursorQuery = None,
    limit: LimitQuery = DEFAULT_PAGE_SIZE,
) -> MomentPage:
    moments, next_cursor = await service.list_moments(
        session,
        channel=channel,
        owner_team=owner_team,
        archived=archived,
        cursor=cursor,
        limit=limit,
    )
    return MomentPage(data=[MomentRead.model_validate(m) for m in moments], next_cursor=next_cursor)


@router.get(
    "/{key}",
    response_model=MomentRead,
    responses=error_responses(404, 422),
    summary="One moment",
    dependencies=[requires(Scope.read)],
)
async def get_moment(key: KeyPath, session: SessionDep) -> MomentRead:
    return MomentRead.model_validate(await service.get_moment(session, key=key))


@router.patch(
    "/{key}",
    response_model=MomentRead,
    responses=error_responses(404, 422),
    summary="Change a moment",
    dependencies=[requires(Scope.manage)],
)
async def update_moment(key: KeyPath, data: MomentUpdate, session: SessionDep) -> MomentRead:
    return MomentRead.model_validate(await service.update_moment(session, key=key, data=data))
