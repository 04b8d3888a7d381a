"""Liveness and readiness probes."""

from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from app.migrate import current_revisions

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: Literal["ok"] = Field(description="Always `ok` while the process serves requests.")


class Readiness(BaseModel):
    status: Literal["ready", "not_ready"] = Field(description="`ready` when all checks pass.")
    database: Literal["ok", "unreachable"] = Field(description="Database answered a query.")
    migrations: Literal["current", "behind", "unknown"] = Field(
        description="`current` when the schema is at the latest migration."
    )


@router.get("/healthz", response_model=Health, summary="Process is up")
async def healthz() -> Health:
    """Answers while the process serves requests, whatever the database's state: a
    liveness probe restarts the process when this fails."""
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "Not ready to serve."}},
    summary="Database reachable and schema current",
)
async def readyz(request: Request) -> JSONResponse:
    """Ready once the database answers and its schema is at the latest migration: a
    readiness probe sends traffic only then. Not ready is a 503 with the same body."""
    database = request.app.state.database
    try:
        revisions = await current_revisions(database.engine)
    except Exception:  # any failure to ask the database means "not ready", never a 500
        body = Readiness(status="not_ready", database="unreachable", migrations="unknown")
        return JSONResponse(status_code=503, content=body.model_dump())
    current = revisions == request.app.state.schema_heads
    body = Readiness(
        status="ready" if current else "not_ready",
        database="ok",
        migrations="current" if current else "behind",
    )
    return JSONResponse(status_code=200 if current else 503, content=body.model_dump())
