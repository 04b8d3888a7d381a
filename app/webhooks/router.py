from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Body, Path, Query, Response, status

from app.config import SettingsDep
from app.db import MAX_INTEGER_ID, SessionDep
from app.errors import error_responses
from app.keys.access import requires
from app.keys.schemas import Scope
from app.pagination import DEFAULT_PAGE_SIZE, CursorQuery, LimitQuery
from app.webhooks import service
from app.webhooks.addresses import AllowList
from app.webhooks.schemas import (
    DeliveryPage,
    DeliveryRead,
    DeliveryState,
    SecretRotation,
    WebhookCreate,
    WebhookCreated,
    WebhookDetail,
    WebhookRead,
    WebhookUpdate,
)

WebhookId = Annotated[int, Path(ge=1, le=MAX_INTEGER_ID, description="Webhook number.")]

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
    as POSTs signed as [Standard Webhooks](https://www.standardwebhooks.com) specifies:
    headers `webhook-id`, `webhook-timestamp` (unix seconds) and `webhook-signature`
    (`v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`, several space-separated while
    a rotated secret still signs) under the secret returned here, once, in the `whsec_`
    form its verifiers take. Failed deliveries are retried with exponential backoff and
    full jitter (a random wait up to 2 s, 4 s, 8 s... at most an hour; 8 attempts).
    Delivery is at least once: `webhook-id` is the same on every attempt of a
    notification, for the receiver to drop repeats.

    Deprecated, sent for one more release: `X-Mot-Delivery` (the same as `webhook-id`) and
    `X-Mot-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>" under the text of
    the current secret>`.

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
async def get_webhook(webhook_id: WebhookId, session: SessionDep) -> WebhookDetail:
    return await service.get(session, webhook_id=webhook_id)


@router.patch(
    "/{webhook_id}",
    response_model=WebhookRead,
    responses=error_responses(404),
    summary="Change or pause a webhook",
)
async def update_webhook(
    webhook_id: WebhookId, data: WebhookUpdate, session: SessionDep, settings: SettingsDep
) -> WebhookRead:
    """Fields left out (or null) stay as they are. A new `url` is checked like at
    registration. A paused webhook is sent nothing: events that happen while it is paused
    are not queued for it, and deliveries already queued (retries, pings, redeliveries)
    wait until it is resumed; a send already under way when it is paused still ends."""
    return await service.update_webhook(
        session, webhook_id=webhook_id, data=data, allowed=AllowList.of(settings)
    )


@router.delete(
    "/{webhook_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=error_responses(404),
    summary="Delete a webhook",
)
async def delete_webhook(webhook_id: WebhookId, session: SessionDep) -> Response:
    """The webhook goes with all its deliveries: those not sent yet never are. Its number
    is never given to another webhook."""
    await service.delete_webhook(session, webhook_id=webhook_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{webhook_id}/ping",
    response_model=DeliveryRead,
    status_code=status.HTTP_202_ACCEPTED,
    responses=error_responses(404),
    summary="Send a test notification",
)
async def ping_webhook(webhook_id: WebhookId, session: SessionDep) -> DeliveryRead:
    """Queue a `ping` event, `{"event": "ping", "at": ..., "data": {"webhook": <number>}}`,
    signed and retried like any notification, whatever events the webhook receives; the
    answer is the queued delivery, to follow in the deliveries list."""
    return await service.ping(session, webhook_id=webhook_id)


@router.get(
    "/{webhook_id}/deliveries",
    response_model=DeliveryPage,
    responses=error_responses(404),
    summary="A webhook's deliveries",
)
async def list_deliveries(
    webhook_id: WebhookId,
    session: SessionDep,
    state: Annotated[DeliveryState | None, Query(description="Deliveries in this state.")] = None,
    cursor: CursorQuery = None,
    limit: LimitQuery = DEFAULT_PAGE_SIZE,
) -> DeliveryPage:
    page, next_cursor = await service.list_deliveries(
        session, webhook_id=webhook_id, state=state, cursor=cursor, limit=limit
    )
    return DeliveryPage(data=page, next_cursor=next_cursor)


@router.post(
    "/{webhook_id}/deliveries/{delivery_number}/redeliver",
    response_model=DeliveryRead,
    status_code=status.HTTP_202_ACCEPTED,
    responses=error_responses(404, 409),
    summary="Redeliver a failed delivery",
)
async def redeliver(
    webhook_id: WebhookId,
    delivery_number: Annotated[
        int, Path(ge=1, lt=2**63, description="Delivery number (its `id`).")
    ],
    session: SessionDep,
) -> DeliveryRead:
    """Queue a failed delivery again for one more attempt, with the same `webhook-id`, so
    that a receiver that got it after all drops the repeat. If that attempt fails too, the
    delivery is failed again (and can be redelivered again). Only a `failed` delivery is
    redelivered (409 otherwise), and not one whose payload an erasure removed."""
    return await service.redeliver(session, webhook_id=webhook_id, number=delivery_number)


@router.post(
    "/{webhook_id}/rotate-secret",
    response_model=WebhookCreated,
    responses=error_responses(404),
    summary="Rotate a webhook's secret",
)
async def rotate_secret(
    webhook_id: WebhookId,
    session: SessionDep,
    data: Annotated[SecretRotation | None, Body()] = None,
) -> WebhookCreated:
    """A new secret, returned here only. The secret it replaces keeps signing beside it for
    `overlap_hours` (24 by default): `webhook-signature` then carries both signatures, and
    a receiver passes with either, so it can switch secrets at leisure. A secret replaced
    by an earlier rotation stops signing at once. The deprecated `X-Mot-Signature` is signed
    with the new secret only."""
    rotation = data or SecretRotation()
    return await service.rotate_secret(
        session, webhook_id=webhook_id, overlap=timedelta(hours=rotation.overlap_hours)
    )
