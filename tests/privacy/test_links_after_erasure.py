"""An erased client's links open nothing of anyone else's.

Survey links expire late and status links never do, so a client's old links outlive an
erasure; they must then be refused, never lead to the rows stored after it, whether the
new rows take other numbers (they must) or, somehow, the same ones.
"""

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from app.config import DEVELOPMENT_SECRET
from app.db import sync_url
from app.surveys import tokens
from tests.payloads import touchpoint

pytestmark = pytest.mark.anyio

KEY = DEVELOPMENT_SECRET.encode()
NEGATIVE = {"scale": "csat5", "value": 1}
ERASED_MESSAGE = "We are sorry, erased client; we are on it."
NEXT_MESSAGE = "Next client: your refund is on its way."


def _path(url: str) -> str:
    return url.removeprefix("http://test")


class ClientLinks:
    """A client's touchpoint with its survey links and its follow-up's status link."""

    def __init__(self, survey: dict[str, Any], follow_up: dict[str, Any]) -> None:
        self.survey_page = _path(survey["page_url"])
        self.one_click = [_path(link["url"]) for link in survey["links"]]
        self.follow_up_id: int = follow_up["id"]
        self.status_page = _path(follow_up["status_url"])


async def _client_with_links(
    client: httpx.AsyncClient, *, touchpoint_id: str, client_ref: str, message: str
) -> ClientLinks:
    created = await client.post(
        "/v1/touchpoints",
        json=touchpoint(id=touchpoint_id, client_ref=client_ref, rating=NEGATIVE),
    )
    assert created.status_code == 201, created.text
    survey = await client.post(f"/v1/touchpoints/{touchpoint_id}/survey", json={"scale": "csat5"})
    assert survey.status_code == 201, survey.text
    (follow_up,) = [
        f
        for f in (await client.get("/v1/follow-ups")).json()["data"]
        if f["touchpoint"] == touchpoint_id
    ]
    moved = await client.post(
        f"/v1/follow-ups/{follow_up['id']}/events",
        json={"status": "acknowledged", "actor": "ana", "client_message": message},
    )
    assert moved.status_code == 200, moved.text
    return ClientLinks(survey.json(), moved.json())


def _internal_ids(database_url: str, external_id: str) -> tuple[int, int]:
    engine = create_engine(sync_url(database_url))
    try:
        with engine.connect() as connection:
            row = connection.execute(
                text(
                    "SELECT touchpoint.id, follow_up.id FROM touchpoint JOIN follow_up "
                    "ON follow_up.touchpoint_id = touchpoint.id "
                    "WHERE touchpoint.external_id = :id"
                ),
                {"id": external_id},
            ).one()
    finally:
        engine.dispose()
    return row[0], row[1]


async def _assert_refused(client: httpx.AsyncClient, erased: ClientLinks) -> None:
    for path in (erased.status_page, erased.survey_page, *erased.one_click):
        for method in ("GET", "HEAD"):
            response = await client.request(method, path)
            assert response.status_code == 410, (method, path, response.status_code)
            assert NEXT_MESSAGE not in response.text
    comment = await client.post(f"{erased.survey_page}/comment", data={"comment": "hello"})
    assert comment.status_code == 410


async def test_an_erased_clients_links_never_open_the_next_clients_rows(
    client: httpx.AsyncClient, database_url: str
) -> None:
    await client.post("/v1/touchpoints", json=touchpoint(id="earlier", client_ref="someone"))
    # The erased client's rows are the newest: the numbers a database reusing ids would
    # give out next.
    erased = await _client_with_links(
        client, touchpoint_id="erased-tp", client_ref="erased", message=ERASED_MESSAGE
    )
    erased_ids = _internal_ids(database_url, "erased-tp")
    assert (await client.delete("/v1/clients/erased")).status_code == 200

    following = await _client_with_links(
        client, touchpoint_id="next-tp", client_ref="next", message=NEXT_MESSAGE
    )
    next_ids = _internal_ids(database_url, "next-tp")
    # Numbers that left the service are never given out again.
    assert next_ids[0] > erased_ids[0]
    assert next_ids[1] > erased_ids[1]

    await _assert_refused(client, erased)
    # The next client's own links still work, and its rating is the one it gave.
    status = await client.get(following.status_page)
    assert status.status_code == 200
    assert NEXT_MESSAGE in status.text
    stored = (await client.get("/v1/touchpoints/next-tp")).json()
    assert stored["rating"]["value"] == 1
    assert stored["comment"] is None
    assert stored["rating_history"] == []


@pytest.mark.parametrize("table", ["touchpoint", "follow_up"])
async def test_a_link_is_refused_when_its_number_names_another_row(
    client: httpx.AsyncClient, database_url: str, table: str
) -> None:
    # Whatever gave a number out twice (a restored backup, a database that reuses ids),
    # a link opens only the row it was issued for: the row's own nonce is signed into it.
    links = await _client_with_links(
        client, touchpoint_id="mine", client_ref="me", message=ERASED_MESSAGE
    )
    engine = create_engine(sync_url(database_url))
    try:
        with engine.begin() as connection:
            connection.execute(text(f"UPDATE {table} SET link_nonce = link_nonce + 1"))
    finally:
        engine.dispose()
    if table == "touchpoint":
        refused = [links.survey_page, *links.one_click]
        answered = await client.post(f"{links.survey_page}/comment", data={"comment": "x"})
        assert answered.status_code == 410
    else:
        refused = [links.status_page]
    for path in refused:
        response = await client.get(path)
        assert response.status_code == 410, (path, response.status_code)
        assert ERASED_MESSAGE not in response.text
    stored = (await client.get("/v1/touchpoints/mine")).json()
    assert stored["rating"]["value"] == 1
    assert stored["comment"] is None


def _set_nonces(database_url: str, value: int | None) -> None:
    engine = create_engine(sync_url(database_url))
    try:
        with engine.begin() as connection:
            for table in ("touchpoint", "follow_up"):
                connection.execute(text(f"UPDATE {table} SET link_nonce = :n"), {"n": value})
    finally:
        engine.dispose()


async def test_links_sent_before_links_carried_a_nonce_keep_working_for_their_rows(
    client: httpx.AsyncClient, database_url: str
) -> None:
    links = await _client_with_links(
        client, touchpoint_id="old", client_ref="old", message=ERASED_MESSAGE
    )
    # A row stored before the nonce, and its links as they were written then: the same
    # payload without the nonce, signed under the same key.
    _set_nonces(database_url, None)
    now = datetime.now(UTC)
    survey = tokens.verify(links.survey_page.split("/")[2], key=KEY, now=now)
    old_survey = tokens.issue(replace(survey, nonce=None), key=KEY)
    status = tokens.verify_status(links.status_page.split("/")[2], key=KEY)
    old_status = tokens.issue_status(replace(status, nonce=None), key=KEY)

    assert (await client.get(f"/s/{old_survey}/4")).status_code == 200
    assert (await client.get("/v1/touchpoints/old")).json()["rating"]["value"] == 4
    page = await client.get(f"/f/{old_status}")
    assert page.status_code == 200
    assert ERASED_MESSAGE in page.text
    # The links issued now for such a row are the same links.
    again = await client.post("/v1/touchpoints/old/survey", json={"scale": "csat5"})
    assert (
        tokens.verify(_path(again.json()["page_url"]).split("/")[2], key=KEY, now=now).nonce is None
    )

    # Once the number names a row with a nonce (a newer row), the old links open nothing.
    _set_nonces(database_url, 12345)
    assert (await client.get(f"/s/{old_survey}/2")).status_code == 410
    assert (await client.get(f"/f/{old_status}")).status_code == 410
    assert (await client.get("/v1/touchpoints/old")).json()["rating"]["value"] == 4
