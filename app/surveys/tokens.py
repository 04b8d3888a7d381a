"""Signed tokens for the client-facing pages: survey links and follow-up status links.

A token carries nothing personal: internal numbers, the scale, the expiry and the page
language, signed with HMAC-SHA256 under the server's secret. Any change to any of them
(another touchpoint, another scale, a later expiry) breaks the signature, and each kind
of token is signed for its own purpose, so one kind never passes for another.
"""

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime

from app.pages import Language as Language
from app.scales import ScaleName

_SURVEY = b"mot-survey-v1:"
_FOLLOW_UP = b"mot-follow-up-v1:"


class InvalidToken(Exception):
    """The token is malformed, forged or altered (`reason`: malformed, signature, expired)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class SurveyClaims:
    touchpoint_id: int
    scale: ScaleName
    expires_at: datetime
    language: Language


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _seal(purpose: bytes, payload: str, key: bytes) -> str:
    raw = payload.encode()
    return f"{_encode(raw)}.{_encode(hmac.new(key, purpose + raw, hashlib.sha256).digest())}"


def _open(purpose: bytes, token: str, key: bytes) -> str:
    try:
        encoded_payload, encoded_signature = token.split(".")
        payload, signature = _decode(encoded_payload), _decode(encoded_signature)
    except (ValueError, binascii.Error):
        raise InvalidToken("malformed") from None
    expected = hmac.new(key, purpose + payload, hashlib.sha256).digest()
    # Compared in constant time, before anything in the payload is trusted.
    if not hmac.compare_digest(signature, expected):
        raise InvalidToken("signature")
    try:
        return payload.decode()
    except UnicodeDecodeError:
        raise InvalidToken("malformed") from None


def issue(claims: SurveyClaims, *, key: bytes) -> str:
    """The URL-safe survey token for these claims."""
    expires = int(claims.expires_at.timestamp())
    payload = f"{claims.touchpoint_id}.{claims.scale.value}.{expires}.{claims.language.value}"
    return _seal(_SURVEY, payload, key)


def verify(token: str, *, key: bytes, now: datetime) -> SurveyClaims:
    """The claims of a genuine, unexpired survey token; raises InvalidToken otherwise."""
    payload = _open(_SURVEY, token, key)
    try:
        touchpoint_id, scale, expires, language = payload.split(".")
        claims = SurveyClaims(
            touchpoint_id=int(touchpoint_id),
            scale=ScaleName(scale),
            expires_at=datetime.fromtimestamp(int(expires), UTC),
            language=Language(language),
        )
    except ValueError:
        raise InvalidToken("malformed") from None
    if claims.expires_at <= now:
        raise InvalidToken("expired")
    return claims


def issue_status(follow_up_id: int, language: Language, *, key: bytes) -> str:
    """The token of a follow-up's status page. It does not expire: a client with an open
    problem must always be able to see where it stands."""
    return _seal(_FOLLOW_UP, f"{follow_up_id}.{language.value}", key)


def verify_status(token: str, *, key: bytes) -> tuple[int, Language]:
    """(follow-up number, language) of a genuine status token; raises InvalidToken."""
    try:
        follow_up_id, language = _open(_FOLLOW_UP, token, key).split(".")
        return int(follow_up_id), Language(language)
    except ValueError:
        raise InvalidToken("malformed") from None
