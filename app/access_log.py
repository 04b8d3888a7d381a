"""Per request: an id to follow it by, one access log line, and the HTTP metrics.

The access line and the metrics name the route template (`/v1/clients/{client_ref}/journey`),
never the path or the query string: those carry client refs and survey tokens. The
template also keeps the metrics' label values few.
"""

import logging
import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import logs, metrics

UNMATCHED = "unmatched"
"""The route of a request no route matched (a 404)."""

_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_HEADER = logs.REQUEST_ID_HEADER.encode("latin-1")

logger = logging.getLogger("app.access")


class AccessLogMiddleware:
    """Pure ASGI middleware: a streamed response passes through untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope) or uuid.uuid4().hex
        # Never reset: an unhandled error is answered and logged outside this middleware
        # (Starlette's ServerErrorMiddleware, then the server), and those must know the id
        # too. Each request runs in a task of its own, whose context ends with it.
        logs.request_id.set(request_id)
        id_header = (_HEADER, request_id.encode("latin-1"))
        status = 500  # what the client gets if the app fails before answering
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [h for h in message.get("headers", ()) if h[0].lower() != _HEADER]
                message = {**message, "headers": [*headers, id_header]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            method = metrics.method_label(scope["method"])
            route = _route_template(scope)
            metrics.observe_request(method=method, route=route, status=status, seconds=seconds)
            logger.info(
                "%s %s %d",
                method,
                route,
                status,
                extra={
                    "method": method,
                    "route": route,
                    "status": status,
                    "duration_ms": round(seconds * 1000, 1),
                },
            )


def _incoming_request_id(scope: Scope) -> str | None:
    """The caller's `X-Request-ID` when it is a plain token; anything else is ignored."""
    for name, value in scope["headers"]:
        if name.lower() == _HEADER:
            candidate: str = value.decode("latin-1")
            return candidate if _SANE_REQUEST_ID.fullmatch(candidate) else None
    return None


def _route_template(scope: Scope) -> str:
    # The router records the route it matched in the scope it shares with us.
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else UNMATCHED
