"""The follow-up pages show the queue and the timelines `/v1/follow-ups` gives, and move a
follow-up along through the same checks as the API, behind the CSRF token and the manage
scope."""

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import time
from typing import Any

import httpx
import pytest

from app.config import Settings
from tests.payloads import touchpoint
from tests.ui.conftest import Site, csrf_of, opened_site, sign_in

pytestmark = pytest.mark.anyio

NEGATIVE = {"scale": "csat5", "value": 1}
ROW = re.compile(r'<tr data-follow-up="(\d+)"')
STATUS_PAGE = re.compile(r'id="status-page" href="([^"]*)"')


@pytest.fixture
async def desk(database_url: str) -> AsyncIterator[Site]:
    # Every hour a working hour and a target of a second's fraction: overdue at once.
    settings = Settings(
        _env_file=None,
        database_url=database_url,
        acknowledge_within_hours=0.0001,
        working_days="mon,tue,wed,thu,fri,sat,sun",
        working_day_start=time(0),
        working_day_end=time(23, 59, 59),
    )
    async with opened_site(settings) as site:
        yield site


async def _follow_ups(api: httpx.AsyncClient, **params: str) -> list[dict[str, Any]]:
    response = await api.get("/v1/follow-ups", params=params)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


async def _open(api: httpx.AsyncClient, count: int, **fields: Any) -> list[dict[str, Any]]:
    touchpoints = [touchpoint(id=f"f{n}", rating=NEGATIVE, **fields) for n in range(count)]
    response = await api.post("/v1/touchpoints/batch", json={"touchpoints": touchpoints})
    assert response.status_code < 300, response.text
    return await _follow_ups(api)


async def _events(api: httpx.AsyncClient, number: int) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = (await api.get(f"/v1/follow-ups/{number}")).json()["events"]
    return events


def _ids(rows: list[dict[str, Any]]) -> list[str]:
    return [str(row["id"]) for row in rows]


async def test_the_queue_lists_overdue_first_with_the_rows_of_the_api(desk: Site) -> None:
    opened = await _open(desk.api, 4)
    await asyncio.sleep(0.5)
    acknowledged = opened[1]["id"]
    moved = await desk.api.post(
        f"/v1/follow-ups/{acknowledged}/events", json={"status": "acknowledged", "actor": "ana"}
    )
    assert moved.status_code == 200
    await sign_in(desk.browser, desk.read_key)

    page = await desk.browser.get("/ui/follow-ups")
    assert page.status_code == 200
    overdue = await _follow_ups(desk.api, overdue="true")
    on_time = await _follow_ups(desk.api, overdue="false")
    assert [str(acknowledged)] == _ids(on_time)
    assert ROW.findall(page.text) == _ids(overdue) + _ids(on_time)
    assert page.text.index('id="queue-late"') < page.text.index('id="queue-rest"')
    assert "Overdue</span>" in page.text
    assert "desk-day" in page.text
    assert "service-desk.first-voice" in page.text
    assert "acknowledge by" in page.text

    # The filters are kept in the address, empty fields left out, and give the API's rows.
    sent = await desk.browser.get(
        "/ui/follow-ups", params={"status": "acknowledged", "overdue": "", "team": ""}
    )
    assert sent.status_code == 303
    assert sent.headers["location"] == "/ui/follow-ups?status=acknowledged"
    filtered = await desk.browser.get(sent.headers["location"])
    assert ROW.findall(filtered.text) == [str(acknowledged)]
    only_overdue = await desk.browser.get("/ui/follow-ups", params={"overdue": "true"})
    assert ROW.findall(only_overdue.text) == _ids(overdue)
    assert 'id="queue-rest"' not in only_overdue.text
    wrong = await desk.browser.get("/ui/follow-ups", params={"status": "lost"})
    assert wrong.status_code == 422
    assert "is not a status" in wrong.text


async def test_a_move_from_the_page_is_recorded_and_shown_to_the_client(desk: Site) -> None:
    (follow_up,) = await _open(desk.api, 1)
    number = follow_up["id"]
    await sign_in(desk.browser, desk.manage_key)
    page = await desk.browser.get(f"/ui/follow-ups/{number}")
    assert page.status_code == 200
    assert "Content-Security-Policy" in page.headers
    for status in follow_up["allowed_transitions"]:
        assert f'name="status" value="{status}"' in page.text

    message = "Thank you for telling us. We are calling you back today."
    moved = await desk.browser.post(
        f"/ui/follow-ups/{number}/events",
        data={
            "csrf_token": csrf_of(page.text),
            "status": "acknowledged",
            "actor": "Ana",
            "note": "INTERNAL-called-the-desk",
            "client_message": message,
        },
    )
    assert moved.status_code == 303
    assert moved.headers["location"] == f"/ui/follow-ups/{number}#latest"

    events = await _events(desk.api, number)
    assert [event["status"] for event in events] == ["open", "acknowledged"]
    assert events[-1]["actor"] == "Ana"
    assert events[-1]["client_message"] == message
    assert events[-1]["note"] == "INTERNAL-called-the-desk"
    after = await desk.browser.get(f"/ui/follow-ups/{number}")
    assert 'id="latest" data-status="acknowledged"' in after.text
    assert message in after.text
    assert "INTERNAL-called-the-desk" in after.text

    # The link is the signed one the API gives; the client's page shows the new message.
    link = STATUS_PAGE.search(after.text)
    assert link is not None
    api_link = (await desk.api.get(f"/v1/follow-ups/{number}")).json()["status_url"]
    assert link.group(1) == api_link
    client_page = await desk.browser.get(link.group(1).removeprefix("http://test"))
    assert client_page.status_code == 200
    assert message in client_page.text
    assert "INTERNAL" not in client_page.text


async def test_a_move_posted_without_the_csrf_token_is_refused(desk: Site) -> None:
    (follow_up,) = await _open(desk.api, 1)
    number = follow_up["id"]
    await sign_in(desk.browser, desk.manage_key)
    for token in ("", "0" * 64):
        refused = await desk.browser.post(
            f"/ui/follow-ups/{number}/events",
            data={"csrf_token": token, "status": "acknowledged", "actor": "Ana"},
        )
        assert refused.status_code == 403
    assert [event["status"] for event in await _events(desk.api, number)] == ["open"]


async def test_a_read_only_key_sees_the_timeline_but_cannot_move(desk: Site) -> None:
    (follow_up,) = await _open(desk.api, 1)
    number = follow_up["id"]
    await sign_in(desk.browser, desk.read_key)
    page = await desk.browser.get(f"/ui/follow-ups/{number}")
    assert page.status_code == 200
    assert 'id="latest" data-status="open"' in page.text
    assert "/events" not in page.text
    assert "needs the <code>manage</code> scope" in page.text
    forged = await desk.browser.post(
        f"/ui/follow-ups/{number}/events",
        data={"csrf_token": csrf_of(page.text), "status": "acknowledged", "actor": "Eve"},
    )
    assert forged.status_code == 403
    assert "manage scope" in forged.text
    assert [event["status"] for event in await _events(desk.api, number)] == ["open"]


async def test_an_invalid_move_shows_the_error_and_changes_nothing(desk: Site) -> None:
    (follow_up,) = await _open(desk.api, 1)
    number = follow_up["id"]
    await sign_in(desk.browser, desk.manage_key)
    page = await desk.browser.get(f"/ui/follow-ups/{number}")
    token = csrf_of(page.text)

    closed = await desk.browser.post(
        f"/ui/follow-ups/{number}/events",
        data={"csrf_token": token, "status": "closed", "actor": "Ana", "client_message": "Bye"},
    )
    assert closed.status_code == 422
    assert "cannot move to closed; allowed: acknowledged, in_progress, resolved" in closed.text
    assert 'role="alert" id="move-error"' in closed.text
    assert ">Bye</textarea>" in closed.text  # the form comes back as it was sent
    early_cause = await desk.browser.post(
        f"/ui/follow-ups/{number}/events",
        data={"csrf_token": token, "status": "acknowledged", "actor": "Ana", "root_cause": "x"},
    )
    assert early_cause.status_code == 422
    assert "once the problem is resolved" in early_cause.text
    unknown = await desk.browser.post(
        f"/ui/follow-ups/{number}/events",
        data={"csrf_token": token, "status": "lost", "actor": "Ana"},
    )
    assert unknown.status_code == 422
    assert "Please check the form" in unknown.text

    detail = (await desk.api.get(f"/v1/follow-ups/{number}")).json()
    assert detail["status"] == "open"
    assert detail["root_cause"] is None
    assert [event["status"] for event in detail["events"]] == ["open"]


async def test_the_follow_up_pages_require_sign_in(desk: Site) -> None:
    (follow_up,) = await _open(desk.api, 1)
    number = follow_up["id"]
    for path in ("/ui/follow-ups?team=desk-day", f"/ui/follow-ups/{number}"):
        response = await desk.browser.get(path)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/ui/sign-in?next=%2Fui%2Ffollow-ups")
    posted = await desk.browser.post(
        f"/ui/follow-ups/{number}/events", data={"status": "acknowledged", "actor": "Eve"}
    )
    assert posted.status_code == 303
    assert posted.headers["location"].startswith("/ui/sign-in")
    assert [event["status"] for event in await _events(desk.api, number)] == ["open"]
    await sign_in(desk.browser, desk.read_key)
    missing = await desk.browser.get("/ui/follow-ups/999999")
    assert missing.status_code == 404
    assert "No follow-up 999999" in missing.text


async def test_a_promised_update_past_due_is_marked_in_the_queue_and_on_its_page(
    desk: Site,
) -> None:
    late, on_time = await _open(desk.api, 2)
    for number, promised in (
        (late["id"], "2026-01-01T09:00:00Z"),
        (on_time["id"], "2099-01-01T09:00:00Z"),
    ):
        moved = await desk.api.post(
            f"/v1/follow-ups/{number}/events",
            json={"status": "acknowledged", "actor": "ana", "next_update_at": promised},
        )
        assert moved.status_code == 200, moved.text
    await sign_in(desk.browser, desk.read_key)

    queue = (await desk.browser.get("/ui/follow-ups")).text
    marked = [
        number
        for number in ROW.findall(queue)
        if "Update overdue" in queue.split(f'data-follow-up="{number}"')[1].split("</tr>")[0]
    ]
    assert marked == [str(late["id"])]
    late_page = (await desk.browser.get(f"/ui/follow-ups/{late['id']}")).text
    assert "Update overdue" in late_page
    assert "Client last had news</dt><dd>never" in late_page
    assert "Update overdue" not in (await desk.browser.get(f"/ui/follow-ups/{on_time['id']}")).text
