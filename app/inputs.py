"""What every input must be, whatever the domain: no NUL characters, timestamps in RFC 3339
with an offset and within a sane range, numbers finite.

PostgreSQL text cannot hold a NUL character: let through, one would end as a database
error instead of a clear refusal. Pydantic alone would read a bare number (`0.5`) as seconds
since 1970 and a naive time as local to nobody; both are refused so that what is stored is
what the caller meant. NaN and Infinity are no JSON numbers, yet Python's `json` reads and
writes them (and reads `1e999` as infinity): stored, PostgreSQL refuses them as JSON and
SQLite keeps text that reads back as null.
"""

import time
import zlib
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache
from typing import Annotated, Any, TypeVar, cast

from fastapi import FastAPI, Request
from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    GetCoreSchemaHandler,
    GetPydanticSchema,
    StrictInt,
    WithJsonSchema,
    create_model,
    field_validator,
)
from pydantic_core import CoreSchema, PydanticCustomError, core_schema
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import BodyRefused, BodyTooLarge, ErrorDetail, ValidationFailed

_RFC3339 = r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?([Zz]|[+-]\d{2}:?\d{2})?$"
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
# Posting systems' clocks drift; further ahead than this is a bug, not skew.
FUTURE_TOLERANCE_SECONDS = 3600


def _in_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def _in_utc_not_in_future(value: datetime) -> datetime:
    value = value.astimezone(UTC)
    # Compared as POSIX seconds: cheaper than building aware datetimes per item.
    if value.timestamp() > time.time() + FUTURE_TOLERANCE_SECONDS:
        raise PydanticCustomError(
            "datetime_future", "lies in the future (more than one hour ahead of the server clock)"
        )
    return value


def _timestamp(convert: Callable[[datetime], datetime]) -> GetPydanticSchema:
    """The checks of a timestamp, in order, all in pydantic-core but the last step (`convert`).

    Batches validate thousands of timestamps a request: each Python validator a value passes
    through costs more than the parsing itself.
    """

    def build(source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.chain_schema(
            [
                # RFC 3339 text (or a datetime, from Python callers). A missing offset
                # passes here and is refused next, as `timezone_aware`.
                core_schema.custom_error_schema(
                    core_schema.union_schema(
                        [
                            core_schema.is_instance_schema(datetime),
                            core_schema.str_schema(strict=True, pattern=_RFC3339),
                        ]
                    ),
                    custom_error_type="datetime_format",
                    custom_error_message="must be an RFC 3339 date-time with a timezone "
                    "offset, e.g. 2026-11-23T09:30:00Z",
                ),
                handler(source),
                core_schema.custom_error_schema(
                    core_schema.datetime_schema(ge=EARLIEST, lt=LATEST),
                    custom_error_type="datetime_range",
                    custom_error_message=f"must lie between {EARLIEST.year} and {LATEST.year}",
                ),
                core_schema.no_info_plain_validator_function(convert),
            ]
        )

    return GetPydanticSchema(build)


# The range in the schema, as far as it can say it: by the year as written (an offset may
# move the first or last hours across the bound, which the service checks in UTC).
_DATE_TIME_TEXT = WithJsonSchema(
    {
        "type": "string",
        "format": "date-time",
        "pattern": r"^(19[7-9][0-9]|2[01][0-9][0-9])-",
        "description": f"RFC 3339 with an offset, from {EARLIEST.year} to {LATEST.year - 1} (UTC).",
    }
)

Timestamp = Annotated[AwareDatetime, _timestamp(_in_utc), _DATE_TIME_TEXT]
"""Any point in time (a window bound, a promised date), returned in UTC."""

PastTimestamp = Annotated[AwareDatetime, _timestamp(_in_utc_not_in_future), _DATE_TIME_TEXT]
"""Something that happened: at most an hour ahead of the server clock, for clock skew."""


_FINITE_SCALAR = core_schema.union_schema(
    [
        core_schema.str_schema(strict=True),
        core_schema.int_schema(strict=True),
        core_schema.float_schema(strict=True, allow_inf_nan=False),
        core_schema.bool_schema(strict=True),
        core_schema.none_schema(),
    ],
    # pydantic's own error ("Input should be a finite number"), as `allow_inf_nan=False`
    # reports it elsewhere.
    custom_error_type="finite_number",
)

FiniteNumbers = GetPydanticSchema(
    lambda source, handler: core_schema.chain_schema([handler(source), _FINITE_SCALAR])
)
"""Metadata of a JSON scalar type (a union of str, numbers, bool and None): a NaN or an
infinity is refused with one `finite_number` error at the value's own path, instead of one
error per member of the union. Checked in pydantic-core, after the type: batches validate
thousands of values a request."""


def _integral_float_as_int(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


IntegralFloats = BeforeValidator(_integral_float_as_int)
"""Metadata of a strict int: `4.0` is read as 4. JSON Schema's `integer` admits it, and some
producers write every number as a float; `4.5`, `"4"` and `true` stay refused. Placed after
bounds (`Field(ge=...)`), so that they are published as JSON Schema's own keywords."""

WholeNumber = Annotated[StrictInt, IntegralFloats]
"""An integer, written as JSON may write it: `4` or `4.0`."""


def _contains_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_contains_nul(k) or _contains_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_contains_nul(item) for item in value)
    return False


class BulkInputModel(BaseModel):
    """Base of objects that arrive by the thousand in one request body (batch items).

    Unknown fields are refused, as in `InputModel`; NUL characters are left to the caller,
    who searches the whole body once (`may_hold_nul`) instead of checking every field of
    every object, and validates as `with_nul_check(model)` only when the body may hold one.
    A route that takes one such object as its body declares it `Annotated[Model,
    NulChecked()]`.
    """

    model_config = ConfigDict(extra="forbid")


class InputModel(BulkInputModel):
    """Base of every request body: unknown fields and NUL characters are refused."""

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        if _contains_nul(value):
            raise PydanticCustomError("nul_character", "must not contain NUL characters")
        return value


Bulk = TypeVar("Bulk", bound=BulkInputModel)


@cache
def with_nul_check(model: type[Bulk]) -> type[Bulk]:
    """`model` as an `InputModel`: the same fields, the same name, and the NUL check on every
    field, refusing exactly what an `InputModel` would."""
    checked = create_model(
        model.__name__, __base__=(model, InputModel), __module__=model.__module__
    )
    return cast(type[Bulk], checked)


class NulChecked:
    """Route parameter metadata: validate the `BulkInputModel` as `with_nul_check(model)`."""

    def __get_pydantic_core_schema__(
        self, source: type[BulkInputModel], handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return handler(with_nul_check(source))


def may_hold_nul(body: bytes) -> bool:
    """Whether a JSON body may decode to a string with a NUL character.

    JSON text writes one as the escape `\\u0000`; a raw NUL byte is searched for as well,
    which also catches bodies in UTF-16 or UTF-32 (every ASCII character there has one).
    An escaped backslash before `u0000` is a false alarm: the full check then finds nothing.
    """
    return b"\\u0000" in body or b"\x00" in body


class BodySizeLimit:
    """Refuses a request body over `max_bytes` before the service reads it: at once when its
    Content-Length says so, else as soon as the chunks received pass the limit."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await BodyTooLarge(self.max_bytes).response()(scope, receive, send)
            return
        received = 0

        async def receive_within_limit() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, receive_within_limit, send)


GZIP_ENCODINGS = frozenset({"gzip", "x-gzip"})
"""The `Content-Encoding` values of a request body the service inflates (x-gzip: RFC 9110's
alias); `identity`, or none, is a body as is."""
INFLATE_CHUNK_BYTES = 64 * 1024
"""The most a compressed body is inflated at a time: a gzip bomb grows by this much at most
before the size limit is checked again."""


class RequestDecompression:
    """Inflates `Content-Encoding: gzip` request bodies as the service reads them, holding
    the body limit (`max_bytes`) against the inflated size; other encodings get a 415.

    Inflated a chunk at a time (`zlib.decompressobj` with `max_length`): a body of zeros
    that inflates a thousandfold is refused once `max_bytes` came out of it, never inflated
    whole. Placed inside `BodySizeLimit`, which holds the same limit against the bytes as
    sent.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        encoding = Headers(scope=scope).get("content-encoding", "").strip().lower()
        if encoding in ("", "identity"):
            await self.app(scope, receive, send)
            return
        if encoding not in GZIP_ENCODINGS:
            await _unsupported_encoding(encoding).response()(scope, receive, send)
            return
        # What the service reads is the inflated body, whose length nobody declared.
        dropped = (b"content-encoding", b"content-length")
        headers = [(name, value) for name, value in scope["headers"] if name not in dropped]
        body = GzipBody(receive, max_bytes=self.max_bytes)
        await self.app({**scope, "headers": headers}, body.receive, send)


class GzipBody:
    """An ASGI `receive` that hands out a gzip body inflated, a chunk at a time."""

    def __init__(self, receive: Receive, *, max_bytes: int) -> None:
        self._receive = receive
        self._max_bytes = max_bytes
        # 16 + MAX_WBITS: a gzip member (header and trailer), not a raw zlib stream.
        self._inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._pending = b""  # received, not inflated yet
        self._more = True  # the client has more to send
        self.received = 0
        """Compressed bytes received so far."""
        self.inflated = 0
        """Bytes inflated so far: past `max_bytes` by at most one chunk, then refused."""

    async def receive(self) -> Message:
        while True:
            if self._pending:
                chunk = self._inflate()
                if chunk:
                    return {"type": "http.request", "body": chunk, "more_body": True}
                continue
            if not self._more:
                if not self._inflater.eof:
                    raise _broken_gzip("the stream ends before its end")
                return {"type": "http.request", "body": b"", "more_body": False}
            message = await self._receive()
            if message["type"] != "http.request":
                return message  # the client went away
            self._pending = message.get("body", b"")
            self._more = message.get("more_body", False)
            self.received += len(self._pending)

    def _inflate(self) -> bytes:
        if self._inflater.eof:
            # A second gzip member, or bytes after the first: not a body we can vouch for.
            raise _broken_gzip("data follows the end of the gzip stream")
        try:
            chunk = self._inflater.decompress(self._pending, INFLATE_CHUNK_BYTES)
        except zlib.error:
            raise _broken_gzip("the data is not a gzip stream, or is corrupt") from None
        self._pending = self._inflater.unconsumed_tail or self._inflater.unused_data
        self.inflated += len(chunk)
        if self.inflated > self._max_bytes:
            raise BodyTooLarge(self._max_bytes)
        return chunk


def _broken_gzip(reason: str) -> BodyRefused:
    return BodyRefused(
        400,
        "invalid_gzip",
        f"The request body is declared gzip-compressed but cannot be inflated: {reason}.",
        ErrorDetail(field="body", message=reason, type="invalid_gzip"),
    )


def _unsupported_encoding(encoding: str) -> BodyRefused:
    return BodyRefused(
        415,
        "unsupported_content_encoding",
        f"Content-Encoding {encoding!r} is not supported: send the body as is, or gzip.",
        ErrorDetail(
            field="header.content-encoding",
            message="must be gzip or identity",
            type="unsupported_content_encoding",
        ),
    )


NO_NUL_PATTERN = r"^[^\x00]*$"


def document_input_rules(app: FastAPI) -> None:
    """Publish the NUL rule in the OpenAPI schema: every string the API reads (parameters and
    JSON bodies) gets a `pattern` without NUL, unless it has a pattern of its own (those
    admit no NUL), a format or a fixed set of values."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        components = schema.get("components", {}).get("schemas", {})
        seen: set[str] = set()

        def visit(node: Any) -> None:
            if isinstance(node, list):
                for item in node:
                    visit(item)
                return
            if not isinstance(node, dict):
                return
            reference = node.get("$ref")
            if isinstance(reference, str) and reference not in seen:
                seen.add(reference)
                visit(components.get(reference.rsplit("/", 1)[-1]))
            if node.get("type") == "string" and not {"pattern", "format", "enum", "const"} & set(
                node
            ):
                node["pattern"] = NO_NUL_PATTERN
            for key in ("properties", "patternProperties", "$defs"):
                visit(list(node.get(key, {}).values()))
            for key in ("items", "additionalProperties", "not", "anyOf", "oneOf", "allOf"):
                visit(node.get(key))

        for path in schema.get("paths", {}).values():
            for operation in path.values():
                if not isinstance(operation, dict):
                    continue
                visit([parameter.get("schema") for parameter in operation.get("parameters", [])])
                content = operation.get("requestBody", {}).get("content", {})
                visit(content.get("application/json", {}).get("schema"))
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


async def refuse_nul_in_url(request: Request) -> None:
    """Dependency of every route: path and query values must not contain NUL characters."""
    values = [("path", k, v) for k, v in request.path_params.items()]
    values += [("query", k, v) for k, v in request.query_params.multi_items()]
    offending = [
        ErrorDetail(
            field=f"{part}.{name}", message="contains a NUL character", type="nul_character"
        )
        for part, name, value in values
        if isinstance(value, str) and "\x00" in value
    ]
    if offending:
        raise ValidationFailed("NUL characters are not accepted.", details=offending)


async def refuse_repeated_query(request: Request) -> None:
    """Dependency of every route: each query parameter of the API takes one value, so a
    name given twice is refused rather than read as its last value."""
    names = [name for name, _ in request.query_params.multi_items()]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValidationFailed(
            "A query parameter is given more than once; each takes one value.",
            details=[
                ErrorDetail(field=f"query.{name}", message="given more than once", type="repeated")
                for name in repeated
            ],
        )
