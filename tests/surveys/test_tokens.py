import base64
from datetime import UTC, datetime, timedelta

import pytest

from app.scales import ScaleName
from app.surveys import tokens
from app.surveys.tokens import InvalidToken, Language, SurveyClaims

KEY = b"k" * 32
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
CLAIMS = SurveyClaims(42, ScaleName.csat5, NOW + timedelta(days=30), Language.ru)


def _reason(token: str, *, key: bytes = KEY, now: datetime = NOW) -> str:
    with pytest.raises(InvalidToken) as raised:
        tokens.verify(token, key=key, now=now)
    return raised.value.reason


def test_a_genuine_token_gives_back_its_claims() -> None:
    token = tokens.issue(CLAIMS, key=KEY)
    assert tokens.verify(token, key=KEY, now=NOW) == SurveyClaims(
        42, ScaleName.csat5, CLAIMS.expires_at.replace(microsecond=0), Language.ru
    )


def test_flipping_any_character_breaks_the_token() -> None:
    token = tokens.issue(CLAIMS, key=KEY)
    for position in range(len(token)):
        replacement = "A" if token[position] != "A" else "B"
        altered = token[:position] + replacement + token[position + 1 :]
        with pytest.raises(InvalidToken):
            tokens.verify(altered, key=KEY, now=NOW)


def test_a_payload_moved_to_another_touchpoint_is_refused() -> None:
    payload, signature = tokens.issue(CLAIMS, key=KEY).split(".")
    other = base64.urlsafe_b64decode(payload + "==").replace(b"42.", b"43.", 1)
    forged = base64.urlsafe_b64encode(other).rstrip(b"=").decode() + "." + signature
    assert _reason(forged) == "signature"


def test_a_token_signed_with_another_key_is_refused() -> None:
    assert _reason(tokens.issue(CLAIMS, key=b"x" * 32)) == "signature"


def test_an_expired_token_is_refused() -> None:
    token = tokens.issue(CLAIMS, key=KEY)
    assert _reason(token, now=CLAIMS.expires_at + timedelta(seconds=1)) == "expired"


@pytest.mark.parametrize("token", ["", "abc", "a.b.c", "!!!.???"])
def test_garbage_is_malformed_or_unsigned(token: str) -> None:
    assert _reason(token) in {"malformed", "signature"}


def test_the_token_carries_nothing_but_numbers_scale_expiry_and_language() -> None:
    payload = tokens.issue(CLAIMS, key=KEY).split(".")[0]
    decoded = base64.urlsafe_b64decode(payload + "==").decode()
    assert decoded == f"42.csat5.{int(CLAIMS.expires_at.timestamp())}.ru"
