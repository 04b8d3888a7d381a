import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import SecretStr, ValidationError

from app.config import DEVELOPMENT_SECRET, Settings
from app.surveys import tokens
from tests.payloads import touchpoint

KEY = DEVELOPMENT_SECRET.encode()

pytestmark = pytest.mark.anyio


async def _links(client: httpx.AsyncClient, touchpoint_id: str, **options: Any) -> dict[str, Any]:
    response = await client.post(
        f"/v1/touchpoints/{touchpoint_id}/survey", json={"scale": "csat5", **options}
    )
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def _rating(client: httpx.AsyncClient, touchpoint_id: str) -> dict[str, Any]:
    stored: dict[str, Any] = (await client.get(f"/v1/touchpoints/{touchpoint_id}")).json()
    return stored


def _path(url: str) -> str:
    return url.removeprefix("http://test")


async def test_one_click_records_the_answer_and_the_last_answer_wins(
    client: httpx.AsyncClient,
) -> None:
    await client.post("/v1/touchpoints", json=touchpoint(id="s1"))
    links = await _links(client, "s1")
    assert [link["value"] for link in links["links"]] == [1, 2, 3, 4, 5]

    page = await client.get(_path(links["page_url"]))
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    assert len(re.findall(r'href="/s/[^"]+/\d"', page.text)) == 5

    bad = await client.get(_path(links["links"][0]["url"]))
    assert bad.status_code == 200
    assert "What went wrong" in bad.text
    good = await client.get(_path(links["links"][4]["url"]))
    assert "Thank you!" in good.text

    stored = await _rating(client, "s1")
    assert (stored["rating"]["value"], stored["rating"]["sentiment"]) == (5, "positive")
    assert [past["value"] for past in stored["rating_history"]] == [1]


async def test_a_comment_is_saved_with_the_touchpoint(client: httpx.AsyncClient) -> None:
    await client.post("/v1/touchpoints", json=touchpoint(id="s2"))
    links = await _links(client, "s2", language="ru")
    answered = await client.get(_path(links["links"][1]["url"]))
    assert "Что пошло не так" in answered.text
    saved = await client.post(
        _path(links["page_url"]) + "/comment", data={"comment": "  Never called back  "}
    )
    assert saved.status_code == 200
    assert (await _rating(client, "s2"))["comment"] == "Never called back"


async def test_a_comment_with_nul_characters_is_saved_without_them(
    client: httpx.AsyncClient,
) -> None:
    # A client's form is not refused over a character PostgreSQL cannot store.
    await client.post("/v1/touchpoints", json=touchpoint(id="s3"))
    links = await _links(client, "s3")
    saved = await client.post(
        _path(links["page_url"]) + "/comment", data={"comment": "No\x00 answer"}
    )
    assert saved.status_code == 200
    assert (await _rating(client, "s3"))["comment"] == "No answer"


async def test_a_head_request_or_a_mail_scanner_records_nothing(
    client: httpx.AsyncClient,
) -> None:
    await client.post("/v1/touchpoints", json=touchpoint(id="s3"))
    links = await _links(client, "s3")
    probe = await client.head(_path(links["links"][0]["url"]))
    assert probe.status_code == 200
    scanner = {"user-agent": "Mozilla/5.0 (compatible; Barracuda Sentinel link protection)"}
    scanned = await client.get(_path(links["links"][0]["url"]), headers=scanner)
    assert scanned.status_code == 200
    assert (await _rating(client, "s3"))["rating"] is None
    figures = (await client.get("/v1/insights/surveys")).json()
    assert figures["total"]["opened"] == 0


@pytest.mark.parametrize("damage", ["flip", "truncate", "swap_value"])
async def test_a_tampered_link_gets_a_clear_page_and_stores_nothing(
    client: httpx.AsyncClient, damage: str
) -> None:
    await client.post("/v1/touchpoints", json=touchpoint(id="s4"))
    url = _path((await _links(client, "s4"))["links"][0]["url"])
    token = url.split("/")[2]
    if damage == "flip":
        url = url.replace(token, token[:5] + ("A" if token[5] != "A" else "B") + token[6:])
        expected = 404
    elif damage == "truncate":
        url = url.replace(token, token[:-3])
        expected = 404
    else:
        url = url.rsplit("/", 1)[0] + "/9"
        expected = 422
    response = await client.get(url)
    assert response.status_code == expected
    assert "text/html" in response.headers["content-type"]
    assert (await _rating(client, "s4"))["rating"] is None


async def test_an_expired_link_is_gone(client: httpx.AsyncClient) -> None:
    await client.post("/v1/touchpoints", json=touchpoint(id="s5"))
    token = _path((await _links(client, "s5"))["page_url"]).split("/")[2]
    # The same claims with an expiry in the past, signed with the service's own key.
    claims = tokens.verify(token, key=KEY, now=datetime.now(UTC))
    expired = replace(claims, expires_at=datetime.now(UTC) - timedelta(seconds=1))
    response = await client.get(f"/s/{tokens.issue(expired, key=KEY)}/1")
    assert response.status_code == 410
    assert "expired" in response.text
    assert (await _rating(client, "s5"))["rating"] is None


async def test_batch_issues_links_and_reports_unknown_ids(client: httpx.AsyncClient) -> None:
    await client.post("/v1/touchpoints", json=touchpoint(id="b1"))
    response = await client.post(
        "/v1/surveys/batch",
        json={"touchpoints": ["b1", "missing", "b1"], "scale": "thumbs"},
    )
    assert response.status_code == 200
    body = response.json()
    assert [item["touchpoint"] for item in body["data"]] == ["b1"]
    assert [link["value"] for link in body["data"][0]["links"]] == [0, 1]
    assert body["errors"][0]["touchpoint"] == "missing"


async def test_survey_for_an_unknown_touchpoint_is_not_found(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/touchpoints/nope/survey", json={"scale": "csat5"})
    assert response.status_code == 404


def test_production_refuses_the_development_secret() -> None:
    with pytest.raises(ValidationError, match="MOT_SECRET_KEY"):
        Settings(_env_file=None, environment="production")
    with pytest.raises(ValidationError, match="MOT_SECRET_KEY"):
        Settings(_env_file=None, environment="production", secret_key=SecretStr("short"))
    assert Settings(_env_file=None, environment="production", secret_key=SecretStr("s" * 32))


async def test_opens_and_answers_are_counted_per_moment(client: httpx.AsyncClient) -> None:
    items = [touchpoint(id=f"r{n}") for n in range(4)]
    items.append(touchpoint(id="r-portal", moment="portal.first-link", channel="portal"))
    await client.post("/v1/touchpoints/batch", json={"touchpoints": items})
    batch = await client.post(
        "/v1/surveys/batch",
        json={"touchpoints": ["r0", "r1", "r2", "r3", "r-portal"], "scale": "csat5"},
    )
    links = {item["touchpoint"]: item for item in batch.json()["data"]}
    # A reminder for r0 is the same survey, not a second one.
    await _links(client, "r0")
    await client.get(_path(links["r0"]["page_url"]))  # opened, not answered
    await client.head(_path(links["r1"]["page_url"]))  # a scanner: counts nothing
    await client.get(_path(links["r2"]["links"][3]["url"]))  # answered in one click
    await client.get(_path(links["r2"]["links"][4]["url"]))  # changed the answer

    figures = (await client.get("/v1/insights/surveys")).json()
    by_moment = {reach["moment"]: reach for reach in figures["by_moment"]}
    desk = by_moment["service-desk.first-voice"]
    assert (desk["issued"], desk["opened"], desk["answered"]) == (4, 2, 1)
    assert desk["answer_rate"] == 0.25
    assert desk["open_rate"] == 0.5
    assert (figures["total"]["issued"], figures["total"]["answered"]) == (5, 1)
    assert by_moment["portal.first-link"]["opened"] == 0
