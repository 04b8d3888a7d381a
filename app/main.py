"""Application factory: routers, error handlers and the database lifecycle."""

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.gzip import GZipMiddleware

from app import health, metrics, serving, tracing
from app.access_log import AccessLogMiddleware
from app.actions.router import insights_router as action_insights
from app.actions.router import router as actions_router
from app.alerts import service as alerts_service
from app.config import Settings, get_settings
from app.db import Database
from app.docs import install_docs
from app.errors import error_responses, install_error_handlers
from app.followups.router import insights_router as follow_up_insights
from app.followups.router import page_router as follow_up_pages
from app.followups.router import router as follow_ups_router
from app.inputs import (
    BodySizeLimit,
    RequestDecompression,
    document_input_rules,
    refuse_nul_in_url,
    refuse_repeated_query,
)
from app.insights.kept import KeptFigures
from app.insights.router import router as insights_router
from app.keys.access import VerifiedKeys, document_scopes
from app.keys.router import router as keys_router
from app.migrate import head_revisions
from app.moments.router import router as moments_router
from app.openapi import CONTACT, LICENSE, TAGS, check_operation_ids, operation_id, servers
from app.privacy.router import router as privacy_router
from app.rollups import service as rollups_service
from app.surveys.router import insights_router as survey_insights
from app.surveys.router import page_router as survey_pages
from app.surveys.router import router as surveys_router
from app.touchpoints import partitions
from app.touchpoints.router import clients_router
from app.touchpoints.router import router as touchpoints_router
from app.ui import followup_pages
from app.ui import router as ui_router
from app.ui.catalogue_page import router as catalogue_page_router
from app.ui.hotspots_page import router as hotspots_page_router
from app.ui.moment_page import router as moment_page_router
from app.webhooks import service as webhooks_service
from app.webhooks.addresses import AllowList
from app.webhooks.router import router as webhooks_router

DESCRIPTION = """
mot collects every *moment of truth* (each contact a client has with a service
organisation: a call, an e-mail, a portal click, a visit), with the client's rating where
one was given, and ranks the moments that most need improvement.

Every `/v1` route needs an API key, sent as `Authorization: Bearer <key>` (or
`X-API-Key: <key>`), whose scopes cover the route: `ingest`, `read`, `manage` or `admin`
(which includes the others). A missing or unknown key is a 401, a missing scope a 403.

Errors share one shape: `{"code", "message", "details": [{"field", "message", "type"}]}`.
Timestamps are RFC 3339 in UTC. Lists are paginated with opaque cursors.
"""


# The youngest generation is collected once this many more container objects were made
# than freed (the default is 700). A batch of 1,000 touchpoints makes some 35,000 that live
# as long as the request: at 700 they were walked some 50 times a batch and pushed into
# the older generations, whose collections walk them again. The older generations keep
# their default ratios: with start-up frozen, their collections are short.
GC_YOUNG_THRESHOLD = 10_000


def settle_garbage_collector() -> None:
    """Take the objects of start-up out of garbage collection, and collect less often.

    Start-up leaves some 170,000 objects (modules, routes, schemas, validators) that live
    as long as the process. Every full collection walked all of them again: on a busy
    worker that took about 40% of its CPU. Frozen, they are never walked again; what
    start-up left as garbage is collected first rather than kept forever.
    """
    gc.collect()
    gc.freeze()
    _young, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


GZIP_MINIMUM_BYTES = 1000
"""Answers shorter than this are sent as they are: compressing them saves less than it costs."""
GZIP_LEVEL = 1
"""zlib's fastest level. On the weak spots' JSON (57 kB) it takes 0.3 ms where level 9
(Starlette's default) takes 1.7 ms, for an answer a quarter larger (15 kB instead of 12)."""


def install_middleware(app: FastAPI, settings: Settings) -> None:
    """The middleware stack, outermost first: access log and metrics (they see every answer,
    a refused preflight included), CORS, response compression, then the body limits, held
    against the body as sent and then as inflated."""
    app.add_middleware(RequestDecompression, max_bytes=settings.max_body_bytes)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(GZipMiddleware, minimum_size=GZIP_MINIMUM_BYTES, compresslevel=GZIP_LEVEL)
    if settings.cors_origin_list:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origin_list,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=[
                "Authorization",
                "X-API-Key",
                "Content-Type",
                "Content-Encoding",
                "Idempotency-Key",
                "X-Request-ID",
            ],
            expose_headers=[
                "Idempotent-Replayed",
                "X-Request-ID",
                "Retry-After",
                "Content-Disposition",
            ],
            # Keys travel in headers, never in cookies: no credentials mode.
            allow_credentials=False,
            max_age=600,
        )
    app.add_middleware(AccessLogMiddleware)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    database = Database.of(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        serving.stop_with_supervisor()
        dispatcher = webhooks_service.run_dispatcher(database, allowed=AllowList.of(settings))
        tasks = [asyncio.create_task(dispatcher)]
        if settings.fold_interval_seconds > 0:
            folder = rollups_service.run_folder(database, interval=settings.fold_interval_seconds)
            tasks.append(asyncio.create_task(folder))
        if database.backend == "postgresql" and settings.partition_interval_seconds > 0:
            partitioner = partitions.run_ensurer(
                database,
                months_ahead=settings.partition_months_ahead,
                interval=settings.partition_interval_seconds,
            )
            tasks.append(asyncio.create_task(partitioner))
        if settings.alert_interval_seconds > 0:
            alerts = alerts_service.run_alerts(
                database, interval=settings.alert_interval_seconds, base_url=settings.public_url
            )
            tasks.append(asyncio.create_task(alerts))
        settle_garbage_collector()
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await database.dispose()

    app = FastAPI(
        title="mot: Moments of Truth",
        version="0.1.0",
        description=DESCRIPTION,
        license_info=LICENSE,
        contact=CONTACT,
        openapi_tags=TAGS,
        servers=servers(settings),
        generate_unique_id_function=operation_id,
        lifespan=lifespan,
        # Any request can be refused before a route sees it: a body that is not text, one
        # over the size limit, or any while the database is unavailable.
        responses=error_responses(400, 413, 503),
        dependencies=[Depends(refuse_nul_in_url), Depends(refuse_repeated_query)],
        # Served by install_docs from local assets instead.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.database = database
    app.state.verified_keys = VerifiedKeys(settings.api_key_cache_seconds)
    app.state.kept_figures = KeptFigures(settings.figures_kept)
    app.state.schema_heads = head_revisions(settings.database_url)
    install_error_handlers(app)
    install_docs(app)
    document_scopes(app)
    document_input_rules(app)
    install_middleware(app, settings)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(moments_router)
    app.include_router(touchpoints_router)
    app.include_router(insights_router)
    app.include_router(actions_router)
    app.include_router(action_insights)
    app.include_router(clients_router)
    app.include_router(surveys_router)
    app.include_router(follow_ups_router)
    app.include_router(follow_up_pages)
    app.include_router(follow_up_insights)
    app.include_router(webhooks_router)
    app.include_router(keys_router)
    app.include_router(privacy_router)
    app.include_router(survey_pages)
    app.include_router(survey_insights)
    ui_router.install(app)
    app.include_router(followup_pages.router)
    # Before the moment page: `/ui/moments/{key}/edit` is the catalogue's, not a moment's.
    app.include_router(catalogue_page_router)
    app.include_router(moment_page_router)
    app.include_router(hotspots_page_router)
    tracing.install(app, database.engine)
    check_operation_ids(app)
    return app
