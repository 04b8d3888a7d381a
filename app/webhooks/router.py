from typing import Annotated

from fastapi import APIRouter, Path, status

from app.db import MAX_INTEGER_ID, SessionDep
from app.errors import error_responses
from app.keys.access import requires
from app.keys.schemas import Scope
from app.webhooks import service
from app.webhooks.schemas import WebhookCreate, WebhookCreated, WebhookDetail, WebhookRead

router = APIRouter(
    prefix="/v1/webhooks",
    tags=["webhooks"],
    responses=error_responses(401, 403, 422),
    dependencies=[requires(Scope.manage)],
)


@router.post(
    "", response_model=WebhookCreated, status_code=status.HTTP_201_CREATED, summary="Register"
)
async def create_webhook(data: WebhookCreate, session: SessionDep) -> WebhookCreated:
    """Receive `follow_up.opened`, `follow_up.status_changed` and `rating.negative` events
    as signed POSTs: header `X-Mot-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of
    "<t>.<body>" under the secret returned here, once>`. Failed deliveries are retried with
    backoff (2 s, 4 s, 8 s... up to 8 attempts). Delivery is at least once: header
    `X-Mot-Delivery` is the same on every attempt of a notification, for the receiver to
    drop repeats."""
    return await service.register(session, data=data)


@router.get("", response_model=list[WebhookRead], summary="List webhooks")
async def list_webhooks(session: SessionDep) -> list[WebhookRead]:
    return await service.list_webhooks(session)


@router.get(
    "/{webhook_id}",
    response_model=WebhookDetail,
    responses=error_responses(404),
    summary="A webhook and its latest deliveries",
)
async def get_webhook(
    webhook_id: Annotated[int, Path(ge=1, le=MAX_INTEGER_ID, description="Webhook number.")],
    session: SessionDep,
) -> WebhookDetail:
    return await service.get(session, webhook_id=webhook_id)
