"""The moment page lists the words of bad experiences as `/v1/moments/{key}/words` gives
them for the same window."""

import re

import pytest

from tests.ui.conftest import Site, sign_in

pytestmark = pytest.mark.anyio

ROW = re.compile(r'<tr data-term="([^"]*)">')


async def _post(site: Site, comments: list[tuple[int, str]]) -> None:
    items = [
        {
            "moment": "x.words",
            "channel": "portal",
            "occurred_at": f"2026-10-05T10:{minute:02d}:00Z",
            "rating": {"scale": "csat5", "value": value},
            "comment": comment,
        }
        for minute, (value, comment) in enumerate(comments)
    ]
    response = await site.api.post("/v1/touchpoints/batch", json={"touchpoints": items})
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == len(items)


async def test_the_moment_page_lists_the_words_the_api_gives(site: Site) -> None:
    created = await site.api.post(
        "/v1/moments", json={"key": "x.words", "name": "Words", "channel": "portal"}
    )
    assert created.status_code == 201, created.text
    filler = ["service", "agent", "phone", "answer", "order", "account"]
    negative = [(1, f"{filler[i % 6]} queue <b>{filler[(i + 1) % 6]}</b>") for i in range(12)]
    negative += [(2, f"{filler[i % 6]} printer") for i in range(4)]
    positive = [(5, f"{filler[i % 6]} {filler[(i + 2) % 6]} thanks") for i in range(12)]
    await _post(site, negative + positive)
    window = {"from": "2026-10-01T00:00:00Z", "to": "2026-11-01T00:00:00Z"}
    api = (await site.api.get("/v1/moments/x.words/words", params={**window, "limit": 10})).json()
    await sign_in(site.browser, site.read_key)

    # The page's last day is inclusive: the same window as the API's.
    page = await site.browser.get(
        "/ui/moments/x.words", params={"from": "2026-10-01", "to": "2026-10-31"}
    )

    assert page.status_code == 200, page.text
    shown = ROW.findall(page.text)
    assert shown == [item["term"] for item in api["data"]]
    assert shown[0] == "queue"
    assert "<b>" not in page.text  # the example comment is text, never markup
    assert "&lt;b&gt;" in page.text


async def test_a_moment_without_comments_says_no_word_stands_out(site: Site) -> None:
    created = await site.api.post(
        "/v1/moments", json={"key": "x.words", "name": "Words", "channel": "portal"}
    )
    assert created.status_code == 201, created.text
    await sign_in(site.browser, site.read_key)

    page = await site.browser.get("/ui/moments/x.words", params={"days": "7"})

    assert page.status_code == 200
    assert 'id="words-none"' in page.text
