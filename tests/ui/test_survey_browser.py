"""The client's survey in a real browser (Debian's chromium, driven by Playwright) against
a real `mot serve`: a phone opens the answer link of an e-mail, taps the factors of a bad
answer and the time it cost, writes a comment and sends; the API then holds exactly that.

Each page passes axe-core and is photographed (into `MOT_SCREENSHOTS_DIR` when set: how
`docs/screenshots/` is made).
"""

from pathlib import Path
from typing import Any

import pytest

from tests.payloads import touchpoint
from tests.servers import Served
from tests.ui.browser import CHROMIUM, PHONE, check_page, require_chromium, screenshots_dir

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

# A phone's browser. Playwright's headless one names itself HeadlessChrome, which the
# survey links take for a mail scanner's sandbox and answer without recording anything.
PHONE_BROWSER = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0 Mobile Safari/537.36"
)


async def _answer_and_describe(page: Any, link: str, *, factors: list[str], lost: str) -> None:
    await page.goto(link)
    for key in factors:
        await page.click(f"label[for='factor-{key}']")
    await page.click(f"label[for='lost-{lost}']")


async def test_a_client_taps_factors_and_lost_time_after_a_bad_answer(
    backend: str, database_url: str, tmp_path: Path
) -> None:
    if backend != "sqlite":
        pytest.skip("the survey's storage is checked on both databases without a browser")
    require_chromium()
    from playwright.async_api import async_playwright

    screenshots = screenshots_dir(tmp_path)
    with Served(database_url, tmp_path / "serve.log") as server, server.client() as api:
        links = {}
        for touchpoint_id, language in (("b-en", "en"), ("b-ru", "ru")):
            api.post("/v1/touchpoints", json=touchpoint(id=touchpoint_id)).raise_for_status()
            issued = api.post(
                f"/v1/touchpoints/{touchpoint_id}/survey",
                json={"scale": "csat5", "language": language},
            )
            issued.raise_for_status()
            links[touchpoint_id] = issued.json()
        errors: list[str] = []
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
            )
            try:
                context = await browser.new_context(viewport=PHONE, user_agent=PHONE_BROWSER)
                page = await context.new_page()
                page.set_default_timeout(10_000)
                page.on("pageerror", lambda error: errors.append(str(error)))

                await page.goto(links["b-en"]["page_url"])
                await check_page(page, "survey", screenshots)
                # The e-mail's "2" button: a bad answer, asked why and at what cost.
                await _answer_and_describe(
                    page,
                    links["b-en"]["links"][1]["url"],
                    factors=["waited-too-long", "had-to-repeat"],
                    lost="60",
                )
                assert await page.is_checked("#factor-waited-too-long")
                assert not await page.is_checked("#factor-transferred")
                await page.fill("#comment", "Forty minutes on hold, then cut off.")
                await check_page(page, "survey-factors", screenshots)
                await page.click("form button[type=submit]")
                await page.wait_for_selector("p[role=status]")
                await check_page(page, "survey-saved", screenshots)

                await _answer_and_describe(
                    page, links["b-ru"]["links"][0]["url"], factors=["not-solved"], lost="240"
                )
                assert "Отметьте всё, что подходит" in await page.inner_text("main")
                await check_page(page, "survey-factors-ru", screenshots)
                await page.click("form button[type=submit]")
                await page.wait_for_selector("p[role=status]")
            finally:
                await browser.close()
        english = api.get("/v1/touchpoints/b-en").json()
        assert english["rating"]["value"] == 2
        assert english["rating"]["factors"] == ["waited-too-long", "had-to-repeat"]
        assert english["rating"]["lost_minutes"] == 60
        assert english["comment"] == "Forty minutes on hold, then cut off."
        russian = api.get("/v1/touchpoints/b-ru").json()["rating"]
        assert (russian["value"], russian["factors"], russian["lost_minutes"]) == (
            1,
            ["not-solved"],
            240,
        )
    assert errors == []
