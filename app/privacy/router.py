from typing import Annotated

from fastapi import APIRouter, Path, Query

from app import pages
from app.config import SettingsDep
from app.db import SessionDep
from app.errors import error_responses
from app.keys.access import AdminKeyDep, requires
from app.keys.schemas import Scope
from app.pagination import DEFAULT_PAGE_SIZE, CursorQuery, LimitQuery
from app.privacy import service
from app.privacy.schemas import AuditAction, AuditPage, ErasureRead

router = APIRouter(prefix="/v1", tags=["privacy"], responses=error_responses(401, 403, 422))

ClientRefPath = Annotated[
    str, Path(min_length=1, max_length=128, description="The client's pseudonymous id.")
]


@router.delete("/clients/{client_ref}", response_model=ErasureRead, summary="Erase a client")
async def erase_client(
    client_ref: ClientRefPath, session: SessionDep, settings: SettingsDep, key: AdminKeyDep
) -> ErasureRead:
    """Erase everything stored about the client, in one transaction: touchpoints with their
    ratings, rating history and comments, survey records, follow-ups and their steps, and
    webhook notifications about them (unsent ones are deleted, sent ones lose their
    payload). The rollups are counted as if the client had never been seen. An audit entry
    records the erasure under a keyed hash of the ref, never the ref itself. A client with
    nothing stored is not an error (zero counts): a request can be retried safely."""
    return await service.erase_client(
        session, client_ref=client_ref, key=pages.signing_key(settings), by=key
    )


@router.get(
    "/audit",
    response_model=AuditPage,
    summary="The audit log of erasures and purges",
    dependencies=[requires(Scope.admin)],
)
async def list_audit_entries(
    session: SessionDep,
    settings: SettingsDep,
    action: Annotated[AuditAction | None, Query(description="Erasures or purges only.")] = None,
    client_ref: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=128,
            description="Only the erasures of this client (matched by its keyed hash; the "
            "ref is not stored).",
        ),
    ] = None,
    cursor: CursorQuery = None,
    limit: LimitQuery = DEFAULT_PAGE_SIZE,
) -> AuditPage:
    """Who erased or purged what and when, newest first."""
    hashed = None
    if client_ref is not None:
        hashed = service.client_hash(client_ref, key=pages.signing_key(settings))
    entries, next_cursor = await service.list_entries(
        session, action=action, client_hash=hashed, cursor=cursor, limit=limit
    )
    return AuditPage(data=entries, next_cursor=next_cursor)
