from typing import Annotated

from fastapi import APIRouter, Path, status

from app.config import SettingsDep
from app.db import MAX_INTEGER_ID, SessionDep
from app.errors import error_responses
from app.keys.access import requires
from app.keys.schemas import Scope
from app.webhooks import service
from app.webhooks.addresses import AllowList
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
async def create_webhook(
    data: WebhookCreate, session: SessionDep, settings: SettingsDep
) -> WebhookCreated:
    """Receive `follow_up.opened`, `follow_up.status_changed` and `rating.negative` events
    as signed POSTs: header `X-Mot-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of
    "<t>.<body>" under the secret returned here, once>`. Failed deliveries are retried with
    backoff (2 s, 4 s, 8 s... up to 8 attempts). Delivery is at least once: header
    `X-Mot-Delivery` is the same on every attempt of a notification, for the receiver to
    drop repeats.

    The URL must reach a public address: a loopback, private, link-local, shared or other
    special-purpose address (or a name resolving to one) is refused (422, detail type
    `address_not_allowed` on `url`; `unresolvable_host` for a name that resolves to
    nothing), unless `MOT_WEBHOOK_ALLOW_HOSTS` lists the host or its network. The check is
    made again before every send, and the notification goes to the very address checked.
    A delivery keeps the status it was answered, never the answer itself."""
    return await service.register(session, data=data, allowed=AllowList.of(settings))


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
