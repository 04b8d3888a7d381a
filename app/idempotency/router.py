"""The `Idempotency-Key` header of the API's writing routes: a route class that keeps a
request's first answer in the request's own transaction and replays it to retries."""

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Header, Request, Response
from fastapi.routing import APIRoute
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import SessionDep, utcnow
from app.errors import AppError, error_responses
from app.idempotency import service

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
GUARDED_METHODS = frozenset({"POST", "PUT", "PATCH"})


class KeyInUse(AppError):
    status_code = 409
    code = "idempotency_key_in_use"


class KeyReused(AppError):
    status_code = 409
    code = "idempotency_key_reused"


class _Replay(Exception):
    """Raised by the guard to skip the route: the answer is the one kept."""

    def __init__(self, answer: service.StoredAnswer) -> None:
        super().__init__("replay")
        self.answer = answer


_CLAIM = "idempotency_claim"


async def guard(
    request: Request,
    session: SessionDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias=HEADER,
            min_length=1,
            max_length=MAX_KEY_LENGTH,
            pattern=r"^[\x20-\x7e]+$",
            description="A key of your choosing (printable ASCII, at most 255 characters; "
            "a UUID will do) that makes a retry safe: the same key with the same request "
            "within 24 hours gets the first answer again (with `Idempotent-Replayed: "
            "true`) and stores nothing; the same key with another request is a 409. Only "
            "successful answers (below 500) are kept: a failed request may be retried as "
            "it is.",
        ),
    ] = None,
) -> None:
    """Dependency of every writing route of an `IdempotentRoute`, after the key check."""
    # Set by the API-key check, a dependency solved before this one. A key's answers are
    # its own: without a caller to keep them for, there is nothing to replay.
    api_key_id: int | None = getattr(request.state, "api_key_id", None)
    if idempotency_key is None or api_key_id is None:
        return
    claim = service.Claim(
        api_key_id=api_key_id,
        key=idempotency_key,
        fingerprint=service.fingerprint(
            method=request.method,
            path=request.url.path,
            query=request.url.query,
            body=await request.body(),
        ),
    )
    if not await service.try_hold(session, claim):
        raise KeyInUse(
            f"A request with this {HEADER} is still being processed; retry once it is answered."
        )
    stored = await service.find(session, claim, now=utcnow())
    if stored is not None:
        if stored.fingerprint != claim.fingerprint:
            raise KeyReused(
                f"This {HEADER} was used within the last 24 hours for another request "
                "(another method, path or body); use a new key for a new request."
            )
        raise _Replay(
            service.StoredAnswer(
                status_code=stored.status_code, media_type=stored.media_type, body=stored.body
            )
        )
    setattr(request.state, _CLAIM, (session, claim))


class IdempotentRoute(APIRoute):
    """A route whose writing methods take an `Idempotency-Key` header."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if GUARDED_METHODS & set(kwargs.get("methods") or ()):
            # Last: after the API-key check the route or its router declares.
            kwargs["dependencies"] = [*(kwargs.get("dependencies") or ()), Depends(guard)]
            # A key reused for another request, or still in use, is a 409 on any such route.
            kwargs["responses"] = {**error_responses(409), **(kwargs.get("responses") or {})}
        super().__init__(path, endpoint, **kwargs)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            # Runs inside the request's dependencies: the session is still open here, and
            # commits the kept answer with the request's own work once this returns.
            try:
                response = await handler(request)
            except _Replay as replay:
                return _replayed(replay.answer)
            held = getattr(request.state, _CLAIM, None)
            if held is not None:
                await _remember(*held, response=response)
            return response

        return handle


async def _remember(session: AsyncSession, claim: service.Claim, *, response: Response) -> None:
    # A 5xx is no answer: the retry must run again. A streamed body is not kept either.
    body = getattr(response, "body", None)
    if response.status_code >= 500 or not isinstance(body, bytes):
        return
    try:
        text = body.decode()
    except UnicodeDecodeError:
        return  # every answer of the API is UTF-8 text; anything else is not replayed
    answer = service.StoredAnswer(
        status_code=response.status_code,
        media_type=response.headers.get("content-type"),
        body=text,
    )
    await service.remember(session, claim, answer=answer, now=utcnow())


def _replayed(answer: service.StoredAnswer) -> Response:
    response = Response(content=answer.body.encode(), status_code=answer.status_code)
    if answer.media_type is not None:
        response.headers["content-type"] = answer.media_type
    response.headers[REPLAYED_HEADER] = "true"
    return response
