"""After answering, the client taps the factors of their answer's sentiment, picks the time
it cost them and writes a comment: one form, stored with the answer it describes."""

import re
from typing import Any

import httpx
import pytest

from tests.payloads import touchpoint

pytestmark = pytest.mark.anyio


async def _answered(
    client: httpx.AsyncClient, touchpoint_id: str, value: int, **options: Any
) -> tuple[str, str]:
    """(form action, answer page) once the client clicked `value` on a csat5 link."""
    await client.post("/v1/touchpoints", json=touchpoint(id=touchpoint_id))
    response = await client.post(
        f"/v1/touchpoints/{touchpoint_id}/survey", json={"scale": "csat5", **options}
    )
    assert response.status_code == 201, response.text
    links = response.json()
    page = await client.get(links["links"][value - 1]["url"].removeprefix("http://test"))
    assert page.status_code == 200
    return links["page_url"].removeprefix("http://test") + "/comment", page.text


def _offered(page: str, name: str) -> list[str]:
    return re.findall(rf'name="{name}" value="([^"]+)"', page)


async def _stored(client: httpx.AsyncClient, touchpoint_id: str) -> dict[str, Any]:
    body: dict[str, Any] = (await client.get(f"/v1/touchpoints/{touchpoint_id}")).json()
    return body


async def test_a_bad_answer_offers_its_channels_negative_factors_and_keeps_what_was_tapped(
    client: httpx.AsyncClient,
) -> None:
    action, page = await _answered(client, "d1", 1)
    factors = _offered(page, "factor")
    # A call's defaults: its own reasons first, then those of every channel.
    assert factors[:2] == ["waited-too-long", "transferred"]
    assert "quick" not in factors  # a positive factor is no reason for a bad answer
    assert "I waited too long on the line" in page
    assert _offered(page, "lost_minutes") == ["0", "10", "30", "60", "120", "240", "480"]

    saved = await client.post(
        action,
        data={
            "factor": ["waited-too-long", "had-to-repeat"],
            "lost_minutes": "60",
            "comment": "Forty minutes on hold",
        },
    )
    assert saved.status_code == 200
    # Still sorry, not glad: the client told us it went badly.
    assert "We are sorry it was not good." in saved.text
    assert "keep doing what works" not in saved.text
    stored = await _stored(client, "d1")
    assert stored["rating"]["factors"] == ["waited-too-long", "had-to-repeat"]
    assert stored["rating"]["lost_minutes"] == 60
    assert stored["comment"] == "Forty minutes on hold"
    # The details describe the answer given: it is not a new answer.
    assert stored["rating_history"] == []


async def test_choices_the_page_never_offered_are_dropped_not_refused(
    client: httpx.AsyncClient,
) -> None:
    action, _page = await _answered(client, "d2", 5)
    saved = await client.post(
        action,
        data={
            # Of another sentiment, unknown, repeated; and a time that is no choice.
            "factor": ["waited-too-long", "no-such-factor", "quick", "quick"],
            "lost_minutes": "7",
        },
    )
    assert saved.status_code == 200
    rating = (await _stored(client, "d2"))["rating"]
    assert (rating["value"], rating["factors"], rating["lost_minutes"]) == (5, ["quick"], None)


async def test_a_moments_own_factors_are_offered_in_the_clients_language(
    client: httpx.AsyncClient,
) -> None:
    await client.post("/v1/touchpoints", json=touchpoint(id="d0"))
    own = [
        {
            "key": "no-callback",
            "sentiment": "negative",
            "label": {"en": "No call back", "ru": "Не перезвонили"},
        },
        {"key": "kind", "sentiment": "positive", "label": {"en": "Kind", "ru": "Доброжелательно"}},
    ]
    patched = await client.patch("/v1/moments/service-desk.first-voice", json={"factors": own})
    assert patched.status_code == 200, patched.text
    action, page = await _answered(client, "d3", 2, language="ru")
    assert _offered(page, "factor") == ["no-callback"]
    assert "Не перезвонили" in page
    assert "Сколько рабочего времени" in page
    await client.post(action, data={"factor": "no-callback", "lost_minutes": "0"})
    rating = (await _stored(client, "d3"))["rating"]
    assert (rating["factors"], rating["lost_minutes"]) == (["no-callback"], 0)


async def test_a_comment_alone_leaves_the_answers_details_as_they_were(
    client: httpx.AsyncClient,
) -> None:
    action, _page = await _answered(client, "d4", 1)
    await client.post(action, data={"factor": "transferred", "lost_minutes": "30"})
    await client.post(action, data={"comment": "And nobody called"})
    stored = await _stored(client, "d4")
    assert (stored["rating"]["factors"], stored["rating"]["lost_minutes"]) == (["transferred"], 30)
    assert stored["comment"] == "And nobody called"
