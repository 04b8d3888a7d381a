"""What every browser test shares: Debian's chromium, the viewports, and the check each page
passes (axe-core finds no serious or critical violation) before it is photographed."""

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from playwright.async_api import ViewportSize

CHROMIUM = "/usr/bin/chromium"
IN_CI = os.environ.get("MOT_TEST_REQUIRE_POSTGRES") == "1"
LAPTOP: "ViewportSize" = {"width": 1280, "height": 800}
PHONE: "ViewportSize" = {"width": 390, "height": 844}
# A long page is cut at this height: the screenshots stay small enough to keep in git.
SHOT_HEIGHT = 1800
BLOCKING = {"serious", "critical"}


def require_chromium() -> None:
    """Skip where Debian's chromium is not installed; in CI, which installs it, fail."""
    if not Path(CHROMIUM).exists():
        if IN_CI:
            pytest.fail(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")


def screenshots_dir(tmp_path: Path) -> Path:
    chosen = os.environ.get("MOT_SCREENSHOTS_DIR")
    directory = Path(chosen) if chosen else tmp_path / "screenshots"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


async def check_page(page: Any, name: str, screenshots: Path) -> None:
    """No serious or critical axe-core violation on the page; a screenshot of it."""
    from axe_playwright_python.async_playwright import Axe

    results = await Axe().run(page)
    blocking = [
        f"{violation['id']} ({violation['impact']}): {violation['help']} at "
        + ", ".join(str(node["target"]) for node in violation["nodes"][:5])
        for violation in results.response["violations"]
        if violation["impact"] in BLOCKING
    ]
    assert blocking == [], f"{name}: {page.url}\n" + "\n".join(blocking)
    await screenshot(page, screenshots / f"{name}.png")


async def screenshot(page: Any, path: Path) -> None:
    width = page.viewport_size["width"]
    height = await page.evaluate("document.documentElement.scrollHeight")
    await page.screenshot(
        path=path,
        full_page=True,
        clip={"x": 0, "y": 0, "width": width, "height": min(height, SHOT_HEIGHT)},
    )
