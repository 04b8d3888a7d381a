"""Liveness and readiness probes."""

from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import Database
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
    replica: Literal["none", "ok", "unreachable"] = Field(
        description="The read replica (`MOT_READ_DATABASE_URL`): `none` when there is none, "
        "`unreachable` when it does not answer (its reads then go to the primary; the "
        "service stays ready)."
    )
    replica_lag_seconds: float | None = Field(
        description="How far the replica's figures are behind the primary: the age of the "
        "last transaction it applied, 0 when it has applied all it received; empty without "
        "a replica, or when it is not one (not in recovery)."
    )


# An idle primary sends nothing, and the last applied transaction grows old while the
# replica is current: the lag is 0 once everything received has been applied.
_REPLICA_LAG = text(
    "SELECT CASE WHEN NOT pg_is_in_recovery() THEN NULL "
    "WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0 "
    "ELSE greatest(0, extract(epoch FROM now() - pg_last_xact_replay_timestamp())) END"
)


async def replica_lag(engine: AsyncEngine) -> float | None:
    """Seconds the replica is behind the primary; raises if it cannot be reached."""
    async with engine.connect() as connection:
        lag = await connection.scalar(_REPLICA_LAG)
    return None if lag is None else float(lag)


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
    readiness probe sends traffic only then. Not ready is a 503 with the same body. A read
    replica's state and lag are reported beside, and do not make the service unready: its
    reads go to the primary while it does not answer."""
    database: Database = request.app.state.database
    replica: Literal["none", "ok", "unreachable"] = "none"
    lag = None
    if database.replica_engine is not None:
        try:
            lag = await replica_lag(database.replica_engine)
            replica = "ok"
        except Exception:  # a replica down is reported, never a 500
            replica = "unreachable"
    try:
        revisions = await current_revisions(database.engine)
    except Exception:  # any failure to ask the database means "not ready", never a 500
        body = Readiness(
            status="not_ready",
            database="unreachable",
            migrations="unknown",
            replica=replica,
            replica_lag_seconds=lag,
        )
        return JSONResponse(status_code=503, content=body.model_dump())
    current = revisions == request.app.state.schema_heads
    body = Readiness(
        status="ready" if current else "not_ready",
        database="ok",
        migrations="current" if current else "behind",
        replica=replica,
        replica_lag_seconds=lag,
    )
    return JSONResponse(status_code=200 if current else 503, content=body.model_dump())
