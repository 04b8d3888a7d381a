"""The API's one error shape, the exceptions that produce it, and their handlers.

Every refusal is rendered as ``{"code": ..., "message": ..., "details": [...]}`` where each
detail names the offending field (a dotted path) and the reason.
"""

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Route

from app import db, logs

logger = logging.getLogger(__name__)


class ErrorDetail(BaseModel):
    field: str = Field(description="Dotted path of the offending field, e.g. `rating.value`.")
    message: str = Field(description="Why the value was refused.")
    type: str = Field(description="Stable machine-readable reason, e.g. `less_than_equal`.")


class ErrorBody(BaseModel):
    code: str = Field(description="Stable machine-readable error code, e.g. `not_found`.")
    message: str = Field(description="Human-readable explanation.")
    details: list[ErrorDetail] = Field(
        default_factory=list, description="Per-field reasons, where fields are at fault."
    )


class AppError(Exception):
    """Base of every error the API reports on purpose."""

    status_code = 400
    code = "bad_request"
    headers: ClassVar[Mapping[str, str]] = {}

    def __init__(self, message: str, *, details: Sequence[ErrorDetail] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.details = list(details)


class NotFound(AppError):
    status_code = 404
    code = "not_found"


class Conflict(AppError):
    status_code = 409
    code = "conflict"


class ValidationFailed(AppError):
    status_code = 422
    code = "validation_failed"


class LimitExceeded(AppError):
    status_code = 422
    code = "limit_exceeded"


RETRY_AFTER_SECONDS = 5
"""What a refusal for want of the database tells the client to wait before trying again."""


class DatabaseUnavailable(AppError):
    """The database cannot be reached or used for now: the request may be tried again."""

    status_code = 503
    code = "database_unavailable"
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}


class BodyRefused(StarletteHTTPException):
    """A request body refused while it is read (too large, or not decodable).

    An HTTPException rather than an AppError: raised while the body is read, it must pass
    through FastAPI's body parsing, which turns any other exception into a 400.
    """

    def __init__(self, status_code: int, code: str, message: str, detail: ErrorDetail) -> None:
        super().__init__(status_code, message)
        self.code = code
        self.error_detail = detail

    def response(self) -> JSONResponse:
        body = ErrorBody(code=self.code, message=str(self.detail), details=[self.error_detail])
        return _render(self.status_code, body)


class BodyTooLarge(BodyRefused):
    """A request body over the size limit (once inflated, when it was sent compressed)."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            413,
            "payload_too_large",
            f"The request body is larger than the limit of {limit} bytes.",
            ErrorDetail(field="body", message=f"at most {limit} bytes", type="max_bytes"),
        )
        self.limit = limit


def error_responses(*status_codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries documenting the error shape for the given statuses."""
    return {code: {"model": ErrorBody} for code in status_codes}


def field_path(loc: Iterable[int | str]) -> str:
    return ".".join(str(part) for part in loc)


def details_from_pydantic(
    errors: Iterable[Any], *, drop_prefix: tuple[str, ...] = ()
) -> list[ErrorDetail]:
    """Turn pydantic error dicts into error details, optionally removing a location prefix."""
    details = []
    for error in errors:
        loc = tuple(error.get("loc", ()))
        if drop_prefix and loc[: len(drop_prefix)] == drop_prefix:
            loc = loc[len(drop_prefix) :]
        message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
        details.append(ErrorDetail(field=field_path(loc), message=message, type=error["type"]))
    return details


def details_from_validation_error(error: ValidationError) -> list[ErrorDetail]:
    return details_from_pydantic(error.errors(include_url=False, include_input=False))


def _render(status_code: int, body: ErrorBody) -> JSONResponse:
    return JSONResponse(status_code=status_code, content=body.model_dump())


async def _handle_app_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    response = _render(
        exc.status_code, ErrorBody(code=exc.code, message=exc.message, details=exc.details)
    )
    response.headers.update(exc.headers)
    return response


async def _handle_request_validation(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = details_from_pydantic(exc.errors())
    summary = "; ".join(f"{d.field}: {d.message}" for d in details[:3])
    body = ErrorBody(
        code="validation_failed", message=f"Invalid request: {summary}", details=details
    )
    return _render(422, body)


_HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


async def _handle_http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if isinstance(exc, BodyRefused):
        return exc.response()
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    response = _render(exc.status_code, ErrorBody(code=code, message=str(exc.detail)))
    if exc.headers:
        response.headers.update(exc.headers)
    if exc.status_code == 405:
        # The router names only the methods of the first route matching the path; a path
        # served by several routes (GET list, POST create) must list them all.
        response.headers["Allow"] = ", ".join(sorted(_allowed_methods(request)))
    return response


def _allowed_methods(request: Request) -> set[str]:
    """Methods of the routes whose path template fits the request best: a literal segment
    (`/touchpoints/batch`) is a closer fit than a parameter (`/touchpoints/{id}`)."""
    by_parameters: dict[int, set[str]] = {}
    for context in iter_route_contexts(request.app.routes):
        route = context.original_route
        if isinstance(route, Route) and route.methods and route.path_regex.match(request.url.path):
            by_parameters.setdefault(len(route.param_convertors), set()).update(route.methods)
    return by_parameters[min(by_parameters)] if by_parameters else set()


async def _handle_unexpected(_request: Request, exc: Exception) -> JSONResponse:
    # The formatter keeps the traceback's frames and types, never the exception's message:
    # it may quote the request (a database error quotes the row it refused).
    logger.exception("unhandled error", exc_info=exc)
    response = _render(500, ErrorBody(code="internal_error", message="Internal server error."))
    # The error goes on to the server once this is sent, and the server then drops the
    # connection. Said here, the client knows not to send its next request down it (where
    # it would be reset, or lost) and opens a new one; the server closes after the answer.
    response.headers["Connection"] = "close"
    # Rendered outside the middleware that stamps the id on every other response.
    request_id = logs.request_id.get()
    if request_id is not None:
        response.headers[logs.REQUEST_ID_HEADER] = request_id
    return response


async def _handle_database_error(request: Request, exc: Exception) -> JSONResponse:
    # An outage is no fault of the service: a 503 to retry after a while, as load balancers
    # and clients understand, rather than a 500 on every route, the key check included.
    if not db.is_unavailable(exc):
        return await _handle_unexpected(request, exc)
    cause = exc.orig if isinstance(exc, sa_exc.DBAPIError) else exc
    kind = type(cause)
    # One line a refused request, without a traceback: an outage refuses them all.
    logger.warning(
        "the database is unavailable: %s",
        kind.__qualname__,
        extra={"error": f"{kind.__module__}.{kind.__qualname__}"},
    )
    refusal = DatabaseUnavailable("The database cannot be reached; try again shortly.")
    return await _handle_app_error(request, refusal)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _handle_app_error)
    app.add_exception_handler(RequestValidationError, _handle_request_validation)
    app.add_exception_handler(StarletteHTTPException, _handle_http_exception)
    app.add_exception_handler(sa_exc.DBAPIError, _handle_database_error)
    app.add_exception_handler(sa_exc.TimeoutError, _handle_database_error)
    app.add_exception_handler(Exception, _handle_unexpected)
