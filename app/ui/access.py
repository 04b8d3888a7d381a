"""Who may see the analyst pages: a sign-in with an API key, kept as a signed session cookie.

The cookie holds the key's id and a random nonce, signed under `MOT_SECRET_KEY` with an
expiry; never the key. Every request looks the key up again, so a revoked key ends its
sessions at once. Forms that change something carry a CSRF token derived from the nonce
(HMAC-SHA256), which a page on another site cannot read.
"""

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from app.config import Settings
from app.db import Database, utcnow
from app.errors import AppError
from app.keys import service as keys_service
from app.keys.schemas import Scope
from app.pages import signing_key

SESSION_COOKIE = "mot_ui_session"
SIGN_IN_COOKIE = "mot_ui_sign_in"
COOKIE_PATH = "/ui"
SIGN_IN_MINUTES = 30
_SESSION_SALT = "mot.ui.session"
_SIGN_IN_SALT = "mot.ui.sign-in"
_CSRF_PURPOSE = b"mot.ui.csrf:"


class SignInRequired(AppError):
    """Raised by the page guard; answered with a redirect to the sign-in page."""

    status_code = 303
    code = "sign_in_required"


class CsrfRefused(AppError):
    status_code = 403
    code = "csrf_refused"


@dataclass(frozen=True, slots=True)
class Viewer:
    """The signed-in analyst: their key's id and name, and the session's CSRF token."""

    key_id: int
    name: str
    scopes: tuple[str, ...]
    csrf_token: str


def _serializer(settings: Settings, salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(signing_key(settings), salt=salt)


def csrf_token(settings: Settings, nonce: str) -> str:
    """The CSRF token of a session (or of a sign-in form) with this nonce."""
    mac = hmac.new(signing_key(settings), _CSRF_PURPOSE + nonce.encode(), hashlib.sha256)
    return mac.hexdigest()


def _secure(request: Request, settings: Settings) -> bool:
    public = settings.public_url or ""
    return request.url.scheme == "https" or public.startswith("https://")


def _set_cookie(
    response: Response, request: Request, settings: Settings, name: str, value: str, seconds: int
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=seconds,
        path=COOKIE_PATH,
        secure=_secure(request, settings),
        httponly=True,
        samesite="strict",
    )


def sign_in_nonce(settings: Settings) -> tuple[str, str]:
    """A new sign-in form's nonce and the CSRF token the form carries."""
    nonce = secrets.token_urlsafe(16)
    return nonce, csrf_token(settings, nonce)


def remember_sign_in(request: Request, response: Response, settings: Settings, nonce: str) -> None:
    """Keep the sign-in form's nonce in a signed cookie of its own, for the post to match."""
    value = _serializer(settings, _SIGN_IN_SALT).dumps(nonce)
    _set_cookie(response, request, settings, SIGN_IN_COOKIE, value, SIGN_IN_MINUTES * 60)


def check_sign_in_form(request: Request, settings: Settings, token: str) -> None:
    """Refuse a sign-in not posted from the form this browser was given."""
    value = request.cookies.get(SIGN_IN_COOKIE, "")
    try:
        nonce = _serializer(settings, _SIGN_IN_SALT).loads(value, max_age=SIGN_IN_MINUTES * 60)
    except BadSignature:
        raise CsrfRefused("The sign-in form has expired; please load it again.") from None
    if not isinstance(nonce, str) or not hmac.compare_digest(
        token.encode(), csrf_token(settings, nonce).encode()
    ):
        raise CsrfRefused("The sign-in form was not posted from this site.")


def start_session(request: Request, response: Response, settings: Settings, key_id: int) -> None:
    """Sign the browser in as the key with this id."""
    payload = {"key": key_id, "nonce": secrets.token_urlsafe(16)}
    value = _serializer(settings, _SESSION_SALT).dumps(payload)
    _set_cookie(
        response, request, settings, SESSION_COOKIE, value, settings.ui_session_hours * 3600
    )
    response.delete_cookie(SIGN_IN_COOKIE, path=COOKIE_PATH)


def end_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH)


def _session(request: Request, settings: Settings) -> dict[str, Any] | None:
    value = request.cookies.get(SESSION_COOKIE)
    if not value:
        return None
    try:
        payload = _serializer(settings, _SESSION_SALT).loads(
            value, max_age=settings.ui_session_hours * 3600
        )
    except BadSignature:  # altered, or expired (SignatureExpired is a BadSignature)
        return None
    if not isinstance(payload, dict):
        return None
    if not isinstance(payload.get("key"), int) or not isinstance(payload.get("nonce"), str):
        return None
    return payload


async def viewer(request: Request) -> Viewer:
    """The signed-in analyst, whose key is still active and may read; else to sign-in."""
    settings: Settings = request.app.state.settings
    payload = _session(request, settings)
    if payload is None:
        raise SignInRequired("Please sign in.")
    database: Database = request.app.state.database
    async with database.read_sessions() as session:
        key = await keys_service.active(session, payload["key"])
    if key is None or not keys_service.grants(key, Scope.read):
        raise SignInRequired("The key of this session was revoked: please sign in again.")
    now = utcnow()
    if keys_service.needs_use_recorded(key.last_used_at, now):
        await keys_service.record_use(database, key_id=key.id, now=now)
    return Viewer(
        key_id=key.id,
        name=key.name,
        scopes=tuple(key.scopes),
        csrf_token=csrf_token(settings, payload["nonce"]),
    )


ViewerDep = Annotated[Viewer, Depends(viewer)]


def may_manage(viewer: Viewer) -> bool:
    """Whether the signed-in key may change things: `manage`, or `admin` (as the API)."""
    return Scope.manage in viewer.scopes or Scope.admin in viewer.scopes


def check_csrf(viewer: Viewer, token: str) -> None:
    """Refuse a form posted without the session's CSRF token."""
    if not hmac.compare_digest(token.encode(), viewer.csrf_token.encode()):
        raise CsrfRefused("The form was not posted from this site's pages; nothing was changed.")
