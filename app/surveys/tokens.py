"""Signed tokens for the client-facing pages: survey links and follow-up status links.

A token carries nothing personal: internal numbers, the scale, the expiry and the page
language, signed with HMAC-SHA256 under the server's secret. Any change to any of them
(another touchpoint, another scale, a later expiry) breaks the signature, and each kind
of token is signed for its own purpose, so one kind never passes for another.

Beside the row's number, a token carries the row's link nonce, a random number the row
drew when it was stored: a token opens only the row it was issued for, even where a
number could name another row. Only the exact spelling the service writes is accepted,
and every number is checked against the range it can have before it is used.
"""

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from app.pages import Language as Language
from app.scales import ScaleName

_SURVEY = b"mot-survey-v1:"
_FOLLOW_UP = b"mot-follow-up-v1:"

_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")
_NUMBER = re.compile(r"0|[1-9][0-9]{0,18}")
# Row numbers and nonces are 64-bit signed integers on both databases; a larger number in a
# payload (one signed by mistake, or under a leaked key) must not reach the driver.
_LARGEST_NUMBER = 2**63 - 1
_LATEST_EXPIRY = int(datetime(9999, 12, 31, tzinfo=UTC).timestamp())


class InvalidToken(Exception):
    """The token is malformed, forged or altered (`reason`: malformed, signature, expired),
    or names a row that is no longer there (gone)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class SurveyClaims:
    touchpoint_id: int
    scale: ScaleName
    expires_at: datetime
    language: Language
    nonce: int | None = None
    """The touchpoint's link nonce; None for a touchpoint stored before links carried one."""


@dataclass(frozen=True, slots=True)
class StatusClaims:
    follow_up_id: int
    language: Language
    nonce: int | None = None
    """The follow-up's link nonce; None for a follow-up opened before links carried one."""


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _decode(text: str) -> bytes:
    # Only the spelling _encode writes: padding, characters outside the URL-safe alphabet
    # (which the standard decoder skips), '+' or '/' for '-' or '_', and stray low bits in
    # the last character would all decode to the same bytes, so one link would have many
    # spellings.
    if not _BASE64URL.fullmatch(text) or len(text) % 4 == 1:
        raise InvalidToken("malformed")
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _encode(raw) != text:
        raise InvalidToken("malformed")
    return raw


def _seal(purpose: bytes, payload: str, key: bytes) -> str:
    raw = payload.encode()
    return f"{_encode(raw)}.{_encode(hmac.new(key, purpose + raw, hashlib.sha256).digest())}"


def _open(purpose: bytes, token: str, key: bytes) -> list[str]:
    """The fields of a genuine token's payload, in order."""
    parts = token.split(".")
    if len(parts) != 2:
        raise InvalidToken("malformed")
    payload, signature = _decode(parts[0]), _decode(parts[1])
    expected = hmac.new(key, purpose + payload, hashlib.sha256).digest()
    # Compared in constant time, before anything in the payload is trusted.
    if not hmac.compare_digest(signature, expected):
        raise InvalidToken("signature")
    try:
        return payload.decode("ascii").split(".")
    except UnicodeDecodeError:
        raise InvalidToken("malformed") from None


def _number(text: str, *, low: int = 0, high: int = _LARGEST_NUMBER) -> int:
    """A number written as the service writes it (no sign, no leading zero), in range."""
    if not _NUMBER.fullmatch(text) or not low <= (number := int(text)) <= high:
        raise ValueError(text)
    return number


def _with_nonce(fields: list[str], nonce: int | None) -> str:
    # A row stored before links carried a nonce gets the links it always had.
    return ".".join(fields if nonce is None else [*fields, str(nonce)])


def _nonce(fields: list[str], count: int) -> int | None:
    if len(fields) == count:
        return None
    if len(fields) == count + 1:
        return _number(fields[count])
    raise ValueError(fields)


def issue(claims: SurveyClaims, *, key: bytes) -> str:
    """The URL-safe survey token for these claims."""
    expires = int(claims.expires_at.timestamp())
    fields = [str(claims.touchpoint_id), claims.scale.value, str(expires), claims.language.value]
    return _seal(_SURVEY, _with_nonce(fields, claims.nonce), key)


def verify(token: str, *, key: bytes, now: datetime) -> SurveyClaims:
    """The claims of a genuine, unexpired survey token; raises InvalidToken otherwise."""
    fields = _open(_SURVEY, token, key)
    try:
        claims = SurveyClaims(
            touchpoint_id=_number(fields[0], low=1),
            scale=ScaleName(fields[1]),
            expires_at=datetime.fromtimestamp(_number(fields[2], high=_LATEST_EXPIRY), UTC),
            language=Language(fields[3]),
            nonce=_nonce(fields, 4),
        )
    except (ValueError, IndexError):
        raise InvalidToken("malformed") from None
    if claims.expires_at <= now:
        raise InvalidToken("expired")
    return claims


def issue_status(claims: StatusClaims, *, key: bytes) -> str:
    """The token of a follow-up's status page. It does not expire: a client with an open
    problem must always be able to see where it stands."""
    fields = [str(claims.follow_up_id), claims.language.value]
    return _seal(_FOLLOW_UP, _with_nonce(fields, claims.nonce), key)


def verify_status(token: str, *, key: bytes) -> StatusClaims:
    """The claims of a genuine status token; raises InvalidToken otherwise."""
    fields = _open(_FOLLOW_UP, token, key)
    try:
        return StatusClaims(
            follow_up_id=_number(fields[0], low=1),
            language=Language(fields[1]),
            nonce=_nonce(fields, 2),
        )
    except (ValueError, IndexError):
        raise InvalidToken("malformed") from None
