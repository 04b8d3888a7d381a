"""Signed survey tokens: which touchpoint, which scale, until when, in which language.

A token carries nothing personal: the touchpoint's internal number, the scale, the expiry
and the page language, signed with HMAC-SHA256 under the server's secret. Any change to
any of them (another touchpoint, another scale, a later expiry) breaks the signature.
"""

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from app.touchpoints.scales import ScaleName

# Signatures of survey tokens cannot be mistaken for those of any other token the service
# may sign with the same key.
_PURPOSE = b"mot-survey-v1:"


class Language(StrEnum):
    en = "en"
    ru = "ru"


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


def _signature(payload: bytes, key: bytes) -> bytes:
    return hmac.new(key, _PURPOSE + payload, hashlib.sha256).digest()


def issue(claims: SurveyClaims, *, key: bytes) -> str:
    """The URL-safe token for these claims."""
    expires = int(claims.expires_at.timestamp())
    payload = (
        f"{claims.touchpoint_id}.{claims.scale.value}.{expires}.{claims.language.value}".encode()
    )
    return f"{_encode(payload)}.{_encode(_signature(payload, key))}"


def verify(token: str, *, key: bytes, now: datetime) -> SurveyClaims:
    """The claims of a genuine, unexpired token; raises InvalidToken otherwise."""
    try:
        encoded_payload, encoded_signature = token.split(".")
        payload, signature = _decode(encoded_payload), _decode(encoded_signature)
    except (ValueError, binascii.Error):
        raise InvalidToken("malformed") from None
    # Compared in constant time, before anything in the payload is trusted.
    if not hmac.compare_digest(signature, _signature(payload, key)):
        raise InvalidToken("signature")
    try:
        touchpoint_id, scale, expires, language = payload.decode().split(".")
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
