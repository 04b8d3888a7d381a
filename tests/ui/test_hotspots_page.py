"""The hotspots page shows what `/v1/insights/hotspots` gives for the same view."""

from datetime import datetime
from html.parser import HTMLParser

import pytest

from app.ui.hotspots_page import excess_text
from tests.ui.conftest import DemoSite, Site

pytestmark = pytest.mark.anyio


class Matrix(HTMLParser):
    """Rows by `data-moment`, each cell's excess text by its `data-member`, the window."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, dict[str, str]] = {}
        self.marked: set[tuple[str, str]] = set()
        self.window: dict[str, str] = {}
        self._row = ""
        self._member = ""
        self._into = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {name: value or "" for name, value in attrs}
        if tag == "p" and found.get("id") == "window":
            self.window = found
        if tag == "tr" and "data-moment" in found:
            self._row = found["data-moment"]
            self.rows[self._row] = {}
        if tag == "td" and "data-member" in found:
            self._member = found["data-member"]
            self.rows[self._row][self._member] = ""
        if tag == "span" and found.get("class") in ("excess", "marker") and self._member:
            self._into = found["class"]

    def handle_endtag(self, tag: str) -> None:
        if tag == "span":
            self._into = ""
        if tag == "td":
            self._member = ""

    def handle_data(self, data: str) -> None:
        if self._into == "excess":
            self.rows[self._row][self._member] += data
        elif self._into == "marker":
            self.marked.add((self._row, self._member))


@pytest.mark.parametrize("by", ["team", "channel"])
async def test_the_matrix_is_the_api_answer(demo_site: DemoSite, by: str) -> None:
    site = demo_site
    page = await site.browser.get("/ui/hotspots", params={"days": "90", "by": by})
    assert page.status_code == 200, page.text
    shown = Matrix()
    shown.feed(page.text)
    params = {
        "from": datetime.fromisoformat(shown.window["data-from"]).isoformat(),
        "to": datetime.fromisoformat(shown.window["data-to"]).isoformat(),
        "by": by,
    }
    answer = (await site.api.get("/v1/insights/hotspots", params=params)).json()
    assert answer["data"]
    assert list(shown.rows) == [row["moment"] for row in answer["data"]]
    for row in answer["data"]:
        cells = {cell["member"]: excess_text(cell["excess"]) for cell in row["cells"]}
        assert shown.rows[row["moment"]] == cells, row["moment"]
    assert shown.marked == {
        (row["moment"], cell["member"])
        for row in answer["data"]
        for cell in row["cells"]
        if cell["strongest"]
    }
    assert shown.marked
    exact = await site.browser.get("/ui/hotspots.json", params={"days": "90", "by": by})
    assert exact.json() == answer


async def test_the_page_needs_sign_in(site: Site) -> None:
    page = await site.browser.get("/ui/hotspots")
    assert page.status_code == 303
    assert page.headers["location"].startswith("/ui/sign-in")
