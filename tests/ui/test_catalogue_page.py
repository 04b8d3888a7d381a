"""The catalogue page lists the moments `/v1/moments` gives with the counts and silent
marks of the insights API for the same window, and changes a moment's target and owner
through the same validation as `PATCH /v1/moments/{key}`, behind the CSRF token and the
manage scope."""

import html
import re
from datetime import timedelta
from typing import Any

import httpx
import pytest

from app.db import utcnow
from app.ui.catalogue_page import SIGNALS
from app.ui.views import percent
from tests.payloads import touchpoint
from tests.ui.conftest import Site, csrf_of, sign_in

pytestmark = pytest.mark.anyio

ROW = re.compile(r'<tr id="moment-[^"]*" data-moment="([^"]*)">(.*?)</tr>', re.S)
CELL = re.compile(r'<td data-field="([a-z_]+)"[^>]*>(.*?)</td>', re.S)
MARK = re.compile(r'<span class="marker marker-silent">([^<]*)</span>')
WINDOW = re.compile(r'data-from="([^"]*)" data-to="([^"]*)"')
RATED = {"scale": "csat5", "value": 4}


async def _seed(api: httpx.AsyncClient) -> None:
    """A moment answered every time, one never answered (silent), one without touchpoints."""
    when = (utcnow() - timedelta(days=1)).isoformat().replace("+00:00", "Z")
    touchpoints = [
        touchpoint(id=f"a{n}", moment="desk.answered", occurred_at=when, rating=RATED)
        for n in range(8)
    ] + [touchpoint(id=f"q{n}", moment="desk.quiet", occurred_at=when) for n in range(8)]
    posted = await api.post("/v1/touchpoints/batch", json={"touchpoints": touchpoints})
    assert posted.status_code < 300, posted.text
    created = await api.post(
        "/v1/moments",
        json={"key": "desk.unused", "name": "Unused", "owner_team": "ops", "stage": "request"},
    )
    assert created.status_code == 201, created.text


def _table(page: str) -> dict[str, dict[str, Any]]:
    rows = {}
    for key, body in ROW.findall(page):
        cells: dict[str, Any] = {
            name: html.unescape(value.strip()) for name, value in CELL.findall(body)
        }
        cells["silence"] = [html.unescape(mark) for mark in MARK.findall(body)]
        rows[html.unescape(key)] = cells
    return rows


async def _moment(api: httpx.AsyncClient, key: str) -> dict[str, Any]:
    response = await api.get(f"/v1/moments/{key}")
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


async def test_the_rows_are_the_moments_with_the_counts_and_silence_of_the_api(
    site: Site,
) -> None:
    await _seed(site.api)
    await sign_in(site.browser, site.read_key)
    page = await site.browser.get("/ui/moments", params={"days": "7"})
    assert page.status_code == 200
    assert "Content-Security-Policy" in page.headers
    window = WINDOW.search(page.text)
    assert window is not None
    span = {"from": window.group(1), "to": window.group(2)}

    moments = (await site.api.get("/v1/moments", params={"limit": 500})).json()["data"]
    spots = (await site.api.get("/v1/insights/weak-spots", params={**span, "limit": 500})).json()
    counted = {spot["moment"]: spot for spot in [*spots["data"], *spots["insufficient_data"]]}
    silence = (await site.api.get("/v1/insights/silence", params=span)).json()["data"]
    silent = {item["moment"]: item["signals"] for item in silence}
    assert "desk.quiet" in silent

    table = _table(page.text)
    assert list(table) == [moment["key"] for moment in moments]
    for moment in moments:
        row = table[moment["key"]]
        spot = counted.get(moment["key"])
        assert row["channel"] == moment["channel"]
        assert row["stage"] == (moment["stage"] or "–")
        assert row["owner_team"] == (moment["owner_team"] or "–")
        assert row["target"] == percent(moment["target_negative_rate"])
        assert row["touchpoints"] == str(spot["touchpoints"] if spot else 0)
        assert row["response_rate"] == percent(spot["response_rate"] if spot else None)
        assert row["silence"] == [SIGNALS[s] for s in silent.get(moment["key"], [])]
    assert "silent: under half the overall response rate" in table["desk.quiet"]["silence"]
    assert table["desk.unused"]["touchpoints"] == "0"
    assert 'href="/ui/moments/desk.answered?days=7"' in page.text
    # A read key sees no way to change a moment.
    assert "/edit" not in page.text
    assert "needs the <code>manage</code> scope" in page.text


async def test_target_and_owner_changed_from_the_page_are_seen_by_the_api(site: Site) -> None:
    await _seed(site.api)
    await sign_in(site.browser, site.manage_key)
    page = await site.browser.get("/ui/moments", params={"days": "90"})
    assert 'href="/ui/moments/desk.unused/edit?days=90"' in page.text
    form = await site.browser.get("/ui/moments/desk.unused/edit", params={"days": "90"})
    assert form.status_code == 200
    changed = await site.browser.post(
        "/ui/moments/desk.unused/edit",
        data={
            "csrf_token": csrf_of(form.text),
            "target": "0.125",
            "owner_team": " desk-night ",
            "window": "days=90",
        },
    )
    assert changed.status_code == 303
    assert changed.headers["location"] == "/ui/moments?days=90#moment-desk.unused"
    moment = await _moment(site.api, "desk.unused")
    assert moment["target_negative_rate"] == 0.125
    assert moment["owner_team"] == "desk-night"
    after = _table((await site.browser.get("/ui/moments?days=90")).text)["desk.unused"]
    assert after["target"] == "12.5%"
    assert after["owner_team"] == "desk-night"

    # Empty fields clear them, as the API's null does.
    cleared = await site.browser.post(
        "/ui/moments/desk.unused/edit",
        data={"csrf_token": csrf_of(form.text), "target": "", "owner_team": ""},
    )
    assert cleared.status_code == 303
    moment = await _moment(site.api, "desk.unused")
    assert moment["target_negative_rate"] is None
    assert moment["owner_team"] is None


@pytest.mark.parametrize("target", ["1.5", "-0.1", "many", "nan"])
async def test_an_invalid_target_is_shown_on_the_page_and_changes_nothing(
    site: Site, target: str
) -> None:
    await _seed(site.api)
    before = await _moment(site.api, "desk.unused")
    await sign_in(site.browser, site.manage_key)
    form = await site.browser.get("/ui/moments/desk.unused/edit")
    refused = await site.browser.post(
        "/ui/moments/desk.unused/edit",
        data={"csrf_token": csrf_of(form.text), "target": target, "owner_team": "other"},
    )
    assert refused.status_code == 422
    assert 'id="target-error"' in refused.text
    assert f'value="{target}"' in refused.text
    api = await site.api.patch("/v1/moments/desk.unused", json={"target_negative_rate": target})
    assert api.status_code == 422
    assert await _moment(site.api, "desk.unused") == before


async def test_a_change_posted_without_the_csrf_token_is_refused(site: Site) -> None:
    await _seed(site.api)
    before = await _moment(site.api, "desk.unused")
    await sign_in(site.browser, site.manage_key)
    for token in ("", "0" * 64):
        refused = await site.browser.post(
            "/ui/moments/desk.unused/edit",
            data={"csrf_token": token, "target": "0.2", "owner_team": "eve"},
        )
        assert refused.status_code == 403
    assert await _moment(site.api, "desk.unused") == before


async def test_a_read_key_sees_no_form_and_its_forged_post_is_refused(site: Site) -> None:
    await _seed(site.api)
    before = await _moment(site.api, "desk.unused")
    await sign_in(site.browser, site.read_key)
    form = await site.browser.get("/ui/moments/desk.unused/edit")
    assert form.status_code == 200
    assert 'name="target"' not in form.text
    assert "needs the <code>manage</code> scope" in form.text
    forged = await site.browser.post(
        "/ui/moments/desk.unused/edit",
        data={"csrf_token": csrf_of(form.text), "target": "0.2", "owner_team": "eve"},
    )
    assert forged.status_code == 403
    assert "manage scope" in forged.text
    assert await _moment(site.api, "desk.unused") == before


async def test_the_catalogue_needs_sign_in(site: Site) -> None:
    for path in ("/ui/moments", "/ui/moments/desk.unused/edit"):
        page = await site.browser.get(path)
        assert page.status_code == 303
        assert page.headers["location"].startswith("/ui/sign-in?next=")
    posted = await site.browser.post("/ui/moments/desk.unused/edit", data={"target": "0.2"})
    assert posted.status_code in (303, 403)
