"""The client pages take only the links the service issued, in the exact form it issued
them, answer HEAD where they answer GET, tell scanners from phones, and answer any signed
but impossible token with a clear page instead of an error."""

import base64
import hashlib
import hmac
import string
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from app.config import DEVELOPMENT_SECRET
from app.pages import Language
from app.scales import ScaleName
from app.surveys import tokens
from app.surveys.router import is_link_scanner
from tests.payloads import touchpoint

pytestmark = pytest.mark.anyio

# The secret the test service signs with: tokens below are genuinely signed.
KEY = DEVELOPMENT_SECRET.encode()
SURVEY = b"mot-survey-v1:"
FOLLOW_UP = b"mot-follow-up-v1:"
ALPHABET = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _signed(purpose: bytes, payload: str) -> str:
    """A token for any payload, signed as the service signs: HMAC-SHA256 of purpose+payload."""
    raw = payload.encode()
    return f"{_b64(raw)}.{_b64(hmac.new(KEY, purpose + raw, hashlib.sha256).digest())}"


def _path(url: str) -> str:
    return url.removeprefix("http://test")


async def _survey(client: httpx.AsyncClient, touchpoint_id: str) -> dict[str, Any]:
    await client.post("/v1/touchpoints", json=touchpoint(id=touchpoint_id))
    response = await client.post(f"/v1/touchpoints/{touchpoint_id}/survey", json={"scale": "csat5"})
    assert response.status_code == 201, response.text
    links: dict[str, Any] = response.json()
    return links


async def _rating(client: httpx.AsyncClient, touchpoint_id: str) -> Any:
    return (await client.get(f"/v1/touchpoints/{touchpoint_id}")).json()["rating"]


def _loose_last_character(encoded: str) -> str:
    """The same bytes in a non-canonical spelling: the unused low bits of the last
    character set (a 32-byte signature has two of them)."""
    last = ALPHABET.index(encoded[-1])
    return encoded[:-1] + ALPHABET[last | 1 if last & 1 == 0 else last & ~1]


def _respellings(token: str, *, slash: bool = True) -> list[str]:
    payload, signature = token.split(".")
    spellings = [
        f"{payload}=.{signature}",
        f"{payload}.{signature}=",
        f"{payload}.{signature}==",
        f"{payload[:3]}!{payload[3:]}.{signature}",
        f"{payload}.{signature[:10]}*{signature[10:]}",
        f"{payload}.{_loose_last_character(signature)}",
    ]
    # The standard alphabet's spelling of the URL-safe characters (in a URL, a '/' makes
    # another path, not another spelling of the token).
    if "-" in token:
        spellings.append(token.replace("-", "+"))
    if "_" in token and slash:
        spellings.append(token.replace("_", "/"))
    return spellings


def _with_url_safe_characters(token: str) -> str:
    """A genuine token for the same touchpoint that holds a '-'."""
    claims = tokens.verify(token, key=KEY, now=datetime.now(UTC))
    for seconds in range(200):
        earlier = replace(claims, expires_at=claims.expires_at - timedelta(seconds=seconds))
        candidate = tokens.issue(earlier, key=KEY)
        if "-" in candidate:
            return candidate
    raise AssertionError("no token with a '-'")


async def test_a_token_spelled_in_any_other_way_is_refused(client: httpx.AsyncClient) -> None:
    links = await _survey(client, "spelled")
    token = _with_url_safe_characters(_path(links["page_url"]).split("/")[2])
    assert (await client.get(f"/s/{token}")).status_code == 200
    for spelling in _respellings(token, slash=False):
        for path in (f"/s/{spelling}", f"/s/{spelling}/1"):
            response = await client.get(path)
            assert response.status_code == 404, (spelling, response.status_code)
            assert "text/html" in response.headers["content-type"]
    assert await _rating(client, "spelled") is None


def test_the_token_decoder_takes_only_the_canonical_spelling() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    expires = datetime(2027, 1, 1, tzinfo=UTC)
    issued = (
        tokens.issue(tokens.SurveyClaims(7, ScaleName.csat5, expires, Language.en, n), key=KEY)
        for n in range(1000)
    )
    token = next(t for t in issued if "-" in t and "_" in t)
    assert tokens.verify(token, key=KEY, now=now).touchpoint_id == 7
    spellings = _respellings(token)
    assert len(spellings) == 8
    for spelling in spellings:
        with pytest.raises(tokens.InvalidToken) as refused:
            tokens.verify(spelling, key=KEY, now=now)
        assert refused.value.reason == "malformed", spelling


@pytest.mark.parametrize("value", ["2.0", "02", "+2", " 2", "2 ", "%202", "2_0", "-0", "٢"])
async def test_a_one_click_answer_is_a_canonical_integer_only(
    client: httpx.AsyncClient, value: str
) -> None:
    links = await _survey(client, "value")
    page_url = _path(links["page_url"])
    response = await client.get(f"{page_url}/{value}")
    assert response.status_code == 422, response.status_code
    assert "text/html" in response.headers["content-type"]
    assert "not one of the choices" in response.text
    assert await _rating(client, "value") is None
    assert (await client.get(f"{page_url}/2")).status_code == 200
    assert (await _rating(client, "value"))["value"] == 2


async def test_the_survey_page_of_a_touchpoint_not_stored_is_gone(
    client: httpx.AsyncClient,
) -> None:
    expires = int(datetime(2030, 1, 1, tzinfo=UTC).timestamp())
    token = _signed(SURVEY, f"424242.csat5.{expires}.en")
    for method in ("GET", "HEAD"):
        response = await client.request(method, f"/s/{token}")
        assert response.status_code == 410, (method, response.status_code)
        assert response.headers["cache-control"] == "no-store"
    page = await client.get(f"/s/{token}")
    assert "text/html" in page.headers["content-type"]
    assert "no longer" in page.text
    assert "How was your experience?" not in page.text


async def test_head_answers_wherever_get_does(client: httpx.AsyncClient) -> None:
    await client.post(
        "/v1/touchpoints", json=touchpoint(id="head", rating={"scale": "csat5", "value": 1})
    )
    (follow_up,) = (await client.get("/v1/follow-ups")).json()["data"]
    status_url = (await client.get(f"/v1/follow-ups/{follow_up['id']}")).json()["status_url"]
    links = (await client.post("/v1/touchpoints/head/survey", json={"scale": "csat5"})).json()
    for path in (_path(status_url), _path(links["page_url"])):
        got, head = await client.get(path), await client.head(path)
        assert (got.status_code, head.status_code) == (200, 200), path
        assert head.headers["content-type"] == got.headers["content-type"]
        assert head.headers["cache-control"] == "no-store"
    # The HEAD of a one-click link (a scanner's probe) answers and changes nothing.
    assert (await client.head(_path(links["links"][4]["url"]))).status_code == 200
    assert (await _rating(client, "head"))["value"] == 1


MAIL_SCANNERS_AND_PREVIEWERS = [
    "Mozilla/5.0 (compatible; Barracuda Sentinel link protection)",
    "Mimecast URL Protect",
    "Proofpoint URL Defense",
    "Mozilla/5.0 (Windows NT 10.0) urldefense.proofpoint.com",
    "Microsoft Office Existence Discovery",
    "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17126; Pro)",
    "Mozilla/4.0 (compatible; ms-office; MSOffice 16)",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) SafeLinks/1.0",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "BingPreview/1.0b",
    "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "Twitterbot/1.0",
    "TelegramBot (like TwitterBot)",
    "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
    "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
    "WhatsApp/2.23.20.0 A",
    "Mozilla/5.0 (Windows NT 6.1; WOW64) SkypeUriPreview Preview/0.5",
    "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
    "Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "HeadlessChrome/120.0.0.0 Safari/537.36",
    "Symantec Email Security.cloud link scanner",
    "Mozilla/5.0 TrendMicro Cloud App Security",
]
PEOPLE = [
    "Mozilla/5.0 (Linux; Android 12; CUBOT X30) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.6099.144 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 11; CUBOT NOTE 20 Build/RP1A.200720.011) "
    "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/114.0.5735.196 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 10; Cubot_KingKong_Mini2) AppleWebKit/537.36 (KHTML, like "
    "Gecko) Chrome/110.0 Mobile Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/17.2 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36 Edg/120.0.0.0",
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Mozilla/5.0 (Linux; Android 13; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 12; RoboPhone R1) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/119.0 Mobile Safari/537.36",
    "",
]


@pytest.mark.parametrize("agent", MAIL_SCANNERS_AND_PREVIEWERS)
def test_known_scanners_and_link_previewers_are_recognised(agent: str) -> None:
    assert is_link_scanner(agent)


@pytest.mark.parametrize("agent", PEOPLE)
def test_phones_and_browsers_are_not_taken_for_scanners(agent: str) -> None:
    assert not is_link_scanner(agent)


async def test_a_click_from_a_cubot_phone_is_recorded(client: httpx.AsyncClient) -> None:
    links = await _survey(client, "cubot")
    scanned = await client.get(
        _path(links["links"][0]["url"]),
        headers={"user-agent": MAIL_SCANNERS_AND_PREVIEWERS[8]},
    )
    assert scanned.status_code == 200
    assert await _rating(client, "cubot") is None
    clicked = await client.get(_path(links["links"][3]["url"]), headers={"user-agent": PEOPLE[0]})
    assert clicked.status_code == 200
    assert (await _rating(client, "cubot"))["value"] == 4


TOO_BIG = "9" * 30


@pytest.mark.parametrize(
    "payload",
    [
        f"{TOO_BIG}.csat5.1900000000.en",
        "9223372036854775808.csat5.1900000000.en",
        "0.csat5.1900000000.en",
        f"1.csat5.{TOO_BIG}.en",
        "1.csat5.99999999999.en",
        "1.csat5.-1900000000.en",
        "+1.csat5.1900000000.en",
        "1.csat5.1900000000.en.",
        f"1.csat5.1900000000.en.{TOO_BIG}",
        "1.csat5.1900000000.en.x",
    ],
)
async def test_a_signed_survey_token_with_impossible_numbers_is_a_clean_refusal(
    client: httpx.AsyncClient, payload: str
) -> None:
    await client.post("/v1/touchpoints", json=touchpoint(id="one"))
    token = _signed(SURVEY, payload)
    for method, path in (
        ("GET", f"/s/{token}"),
        ("HEAD", f"/s/{token}"),
        ("GET", f"/s/{token}/1"),
        ("POST", f"/s/{token}/comment"),
    ):
        response = await client.request(method, path, data={"comment": "x"})
        assert response.status_code in (404, 410), (method, path, response.status_code)
        assert "text/html" in response.headers["content-type"]
    assert await _rating(client, "one") is None


@pytest.mark.parametrize(
    "payload", [f"{TOO_BIG}.en", "9223372036854775808.en", "0.en", "01.en", f"1.en.{TOO_BIG}"]
)
async def test_a_signed_status_token_with_impossible_numbers_is_a_clean_refusal(
    client: httpx.AsyncClient, payload: str
) -> None:
    token = _signed(FOLLOW_UP, payload)
    for method in ("GET", "HEAD"):
        response = await client.request(method, f"/f/{token}")
        assert response.status_code in (404, 410), (method, response.status_code)
        assert "text/html" in response.headers["content-type"]
