"""In a real browser (Debian's chromium, driven by Playwright) against a real `mot serve` on
demo data: sign in, the overview's table is the API's ranking, the window and the filters
change the URL and the table, sign-out ends access; no page logs a console error.

Every page is checked with axe-core (run inside the page: no serious or critical
violation) and photographed: into `MOT_SCREENSHOTS_DIR` when set (how
`docs/screenshots/` is made), else into the test's temporary directory.
"""

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.servers import Served
from tests.ui.browser import (
    CHROMIUM,
    LAPTOP,
    PHONE,
    check_page,
    require_chromium,
    screenshots_dir,
)

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


def _percent(share: float) -> str:
    return f"{share * 100:.1f}%"


async def _shown(page: Any) -> list[tuple[str, str, str]]:
    """(moment, rank, adjusted rate) of every row of the page's weak-spots table."""
    rows = page.locator("#weak-spots tbody tr")
    shown = []
    for index in range(await rows.count()):
        row = rows.nth(index)
        moment = await row.get_attribute("data-moment")
        rank = (await row.locator("td.rank").inner_text()).strip()
        adjusted = (await row.locator("span.adjusted").inner_text()).strip()
        shown.append((moment or "", rank, adjusted))
    return shown


async def _expected(page: Any, api: httpx.Client, **filters: str) -> list[tuple[str, str, str]]:
    """The same, from `/v1/insights/weak-spots` for the window the page shows."""
    window = page.locator("#window")
    params = {
        "from": await window.get_attribute("data-from"),
        "to": await window.get_attribute("data-to"),
        "limit": 500,
        **filters,
    }
    response = api.get("/v1/insights/weak-spots", params=params)
    assert response.status_code == 200, response.text
    return [
        (item["moment"], str(item["rank"]), _percent(item["adjusted_negative_rate"]))
        for item in response.json()["data"]
    ]


async def test_an_analyst_signs_in_reads_the_overview_and_signs_out(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    if backend != "sqlite":
        pytest.skip("the pages' figures are checked on both databases without a browser")
    require_chromium()
    from playwright.async_api import async_playwright

    # Asked for after the skip: the other backend's demo is not loaded for nothing.
    database_url: str = request.getfixturevalue("demo_database_url")
    screenshots = screenshots_dir(tmp_path)
    with Served(database_url, tmp_path / "serve.log") as server, server.client() as api:
        # Read to look, manage to move a follow-up along from its page.
        created = api.post("/v1/keys", json={"name": "analyst", "scopes": ["read", "manage"]})
        read_key = created.json()["key"]
        errors: list[str] = []
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
            )
            try:
                page = await browser.new_page(viewport=LAPTOP)
                page.set_default_timeout(10_000)
                page.on(
                    "console",
                    lambda message: (
                        errors.append(f"{message.text} {message.location}")
                        if message.type == "error"
                        else None
                    ),
                )
                page.on("pageerror", lambda error: errors.append(str(error)))

                await page.goto(f"{server.base_url}/ui/?days=90")
                assert "/ui/sign-in" in page.url
                await check_page(page, "sign-in", screenshots)
                await page.fill("#key", read_key)
                await page.click("form[action='/ui/sign-in'] button")
                await page.wait_for_url(f"{server.base_url}/ui/?days=90")
                assert await page.locator("#weak-spots tbody tr").count() > 0
                assert await _shown(page) == await _expected(page, api)
                await check_page(page, "overview", screenshots)
                await page.set_viewport_size(PHONE)
                await check_page(page, "overview-phone", screenshots)
                await page.set_viewport_size(LAPTOP)

                await page.click("nav.windows a:text-is('7 days')")
                await page.wait_for_url("**/ui/?days=7")
                seven = await _shown(page)
                assert seven == await _expected(page, api)
                assert (await page.locator("#window").get_attribute("data-from")) is not None

                await page.select_option("#channel", "call")
                await page.click("form.filters button")
                await page.wait_for_url("**/ui/?days=7&channel=call")
                on_calls = await _shown(page)
                assert on_calls == await _expected(page, api, channel="call")
                assert on_calls != seven

                # A moment page opened from the overview names the team the API names.
                await page.goto(f"{server.base_url}/ui/?days=90")
                named = _named_teams(api, await _window(page))
                await page.click(f"#weak-spots tr[data-moment='{named[0]}'] a.name")
                await page.wait_for_url(f"**/ui/moments/{named[0]}?days=90")
                shown = page.locator("#named-teams li")
                assert [
                    await shown.nth(i).get_attribute("data-team")
                    for i in range(await shown.count())
                ] == named[1]
                await check_page(page, "moment", screenshots)

                await page.goto(f"{server.base_url}/ui/hotspots?days=90")
                await check_page(page, "hotspots", screenshots)

                await page.goto(f"{server.base_url}/ui/moments?days=90")
                await check_page(page, "catalogue", screenshots)

                await page.goto(f"{server.base_url}/ui/follow-ups")
                await check_page(page, "follow-ups", screenshots)
                await page.click("table a[href^='/ui/follow-ups/'] >> nth=0")
                await page.wait_for_url("**/ui/follow-ups/*")
                await check_page(page, "follow-up", screenshots)
                # Moved along from the page, the client sees the message on their status page.
                message = "We found what went wrong and are putting it right."
                await page.fill("#client_message", message)
                await page.click("form.move button[type=submit]")
                await page.wait_for_url("**/ui/follow-ups/*#latest")
                assert message in await page.inner_text("main")
                status_page = await page.get_attribute("#status-page", "href")
                assert status_page is not None
                await page.goto(status_page)
                assert message in await page.inner_text("body")
                await page.goto(f"{server.base_url}/ui/")

                await page.click("form.sign-out button")
                await page.wait_for_url("**/ui/sign-in")
                await page.goto(f"{server.base_url}/ui/")
                assert "/ui/sign-in" in page.url
            finally:
                await browser.close()
        assert errors == []


async def _window(page: Any) -> dict[str, str]:
    window = page.locator("#window")
    return {name: await window.get_attribute(f"data-{name}") for name in ("from", "to")}


def _named_teams(api: httpx.Client, window: dict[str, str]) -> tuple[str, list[str]]:
    """The first ranked moment whose report names teams that differ, and those teams."""
    ranked = api.get("/v1/insights/weak-spots", params={**window, "limit": 500}).json()["data"]
    for item in ranked:
        report = api.get(
            f"/v1/moments/{item['moment']}/report", params={**window, "granularity": "week"}
        ).json()
        outliers = (report["team_consistency"] or {}).get("outliers", [])
        if outliers:
            return item["moment"], [found["team"] for found in outliers]
    raise AssertionError("the demo names no team on any moment")
