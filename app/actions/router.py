from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response, Security, status

from app.actions import service
from app.actions.schemas import ActionCreate, ActionPage, ActionRead
from app.db import MAX_INTEGER_ID, ReplicaSessionDep, SessionDep, utcnow
from app.errors import error_responses
from app.figures import figures_router
from app.insights import effects
from app.keys.access import authorize, requires
from app.keys.models import ApiKey
from app.keys.schemas import Scope
from app.moments.schemas import MOMENT_KEY_PATTERN
from app.pagination import DEFAULT_PAGE_SIZE, CursorQuery, LimitQuery

router = APIRouter(
    prefix="/v1/moments", tags=["improvement actions"], responses=error_responses(401, 403, 422)
)
insights_router = figures_router(guard=requires(Scope.read))

KeyPath = Annotated[
    str, Path(max_length=100, pattern=MOMENT_KEY_PATTERN, description="Moment key.")
]
ActionIdPath = Annotated[int, Path(ge=1, le=MAX_INTEGER_ID, description="The action's number.")]
ManageKeyDep = Annotated[ApiKey, Security(authorize, scopes=[Scope.manage.value])]


def _measure(
    washout_days: Annotated[
        int,
        Query(
            ge=0,
            le=effects.MAX_WASHOUT_DAYS,
            description="Whole days skipped after the day of the action, while the change "
            "settles in.",
        ),
    ] = effects.DEFAULT_WASHOUT_DAYS,
    window_days: Annotated[
        int,
        Query(
            ge=effects.MIN_WINDOW_DAYS,
            le=effects.MAX_WINDOW_DAYS,
            description="Length of the before and after windows, in whole UTC days.",
        ),
    ] = effects.DEFAULT_WINDOW_DAYS,
) -> service.Measure:
    return service.Measure(washout_days=washout_days, window_days=window_days)


MeasureDep = Annotated[service.Measure, Depends(_measure)]

EFFECT_TEXT = (
    "Each action's `effect` compares the moment's negative rate in the `window_days` whole "
    "UTC days before the day of the action with as many days after it, once the day itself "
    "and `washout_days` more have passed (Jeffreys posteriors, 90% credible intervals from "
    "seeded Monte Carlo draws), and nets out the change of the other moments of the same "
    "scale family over the same windows (difference in differences). `effect` is null, with "
    "`effect_unavailable` saying why, while the after window has not ended or when a window "
    "has too few responses."
)


@router.post(
    "/{key}/actions",
    status_code=status.HTTP_201_CREATED,
    response_model=ActionRead,
    responses=error_responses(404, 422),
    summary="Record an improvement action",
    description=EFFECT_TEXT,
)
async def create_action(
    key: KeyPath, data: ActionCreate, session: SessionDep, caller: ManageKeyDep
) -> ActionRead:
    created = await service.create_action(
        session, moment_key=key, data=data, created_by=caller.name
    )
    (read,) = await service.reads(session, rows=[created], measure=service.Measure(), now=utcnow())
    return read


@router.get(
    "/{key}/actions",
    response_model=ActionPage,
    responses=error_responses(404, 422),
    summary="A moment's improvement actions and their effects",
    description=EFFECT_TEXT,
    dependencies=[requires(Scope.read)],
)
async def list_actions(
    key: KeyPath,
    session: ReplicaSessionDep,
    measure: MeasureDep,
    cursor: CursorQuery = None,
    limit: LimitQuery = DEFAULT_PAGE_SIZE,
) -> ActionPage:
    rows, next_cursor = await service.list_actions(
        session,
        moment_key=key,
        catalogue=service.CatalogueFilter(),
        cursor=cursor,
        limit=limit,
    )
    data = await service.reads(session, rows=rows, measure=measure, now=utcnow())
    return ActionPage(data=data, next_cursor=next_cursor, method=measure.read())


@router.delete(
    "/{key}/actions/{action_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=error_responses(404, 422),
    summary="Remove an improvement action",
    dependencies=[requires(Scope.manage)],
)
async def delete_action(key: KeyPath, action_id: ActionIdPath, session: SessionDep) -> Response:
    await service.delete_action(session, moment_key=key, action_id=action_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@insights_router.get(
    "/actions",
    response_model=ActionPage,
    responses=error_responses(422),
    summary="Did it help: every improvement action and its effect",
    description=EFFECT_TEXT,
)
async def catalogue_actions(
    session: ReplicaSessionDep,
    measure: MeasureDep,
    stage: Annotated[
        str | None, Query(max_length=50, description="Only moments of this journey stage.")
    ] = None,
    moment: Annotated[
        str | None,
        Query(
            max_length=100, description="Only moments whose key starts with this, e.g. `portal.`."
        ),
    ] = None,
    cursor: CursorQuery = None,
    limit: LimitQuery = DEFAULT_PAGE_SIZE,
) -> ActionPage:
    rows, next_cursor = await service.list_actions(
        session,
        moment_key=None,
        catalogue=service.CatalogueFilter(stage=stage, moment_prefix=moment),
        cursor=cursor,
        limit=limit,
    )
    data = await service.reads(session, rows=rows, measure=measure, now=utcnow())
    return ActionPage(data=data, next_cursor=next_cursor, method=measure.read())
