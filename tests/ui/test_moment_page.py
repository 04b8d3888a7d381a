"""The moment page shows what `/v1/moments/{key}/report` gives for the same window, rounded
for people: the totals, the breakdown tables and the teams the API names."""

from datetime import datetime
from html.parser import HTMLParser
from typing import Any
from urllib.parse import quote

import pytest

from tests.ui.conftest import DemoSite, Site, sign_in

pytestmark = pytest.mark.anyio


class Page(HTMLParser):
    """What the moment page shows: totals by `data-total`, breakdown rows by their data
    attributes with each cell's text by class, the named teams, the window and the links."""

    def __init__(self) -> None:
        super().__init__()
        self.totals: dict[str, str] = {}
        self.rows: list[dict[str, Any]] = []
        self.named: list[dict[str, str]] = []
        self.window: dict[str, str] = {}
        self.links: list[str] = []
        self.comments: list[str] = []
        self.whiskers: list[str] = []
        self.funnel: list[str] = []
        self.limits: list[str] = []
        self.follow_ups: list[int] = []
        self._into: tuple[dict[str, Any], str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {name: value or "" for name, value in attrs}
        if tag == "a" and "href" in found:
            self.links.append(found["href"])
        if tag == "p" and found.get("id") == "window":
            self.window = found
        if tag == "span" and "data-total" in found:
            self._into = (self.totals, found["data-total"])
            self.totals[found["data-total"]] = ""
        if tag == "tr" and "data-member" in found:
            self.rows.append({"dimension": found["data-dimension"], "member": found["data-member"]})
        if tag == "td" and self.rows and found.get("class") not in (None, "", "member"):
            self._into = (self.rows[-1], found["class"])
            self.rows[-1][found["class"]] = ""
        if tag == "span" and "data-outlier" in found and self.rows:
            self.rows[-1]["outlier"] = found["data-outlier"]
        if tag == "li" and "data-team" in found:
            self.named.append({"team": found["data-team"], "direction": found["data-direction"]})
        if tag == "span" and found.get("class") in ("rate", "others-rate") and self.named:
            self._into = (self.named[-1], found["class"])
            self.named[-1][found["class"]] = ""
        if tag == "line" and "period-interval" in found.get("class", "").split():
            self.whiskers.append(found["data-period"])
        if tag in ("circle", "rect") and "funnel-team" in found.get("class", "").split():
            self.funnel.append(found["data-team"])
        if tag == "polyline" and "limit" in found.get("class", "").split():
            self.limits.append(found["class"])
        if tag == "tr" and "data-follow-up" in found:
            self.follow_ups.append(int(found["data-follow-up"]))
        if tag == "blockquote":
            self.comments.append("")
            self._into = None

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "span"):
            self._into = None

    def handle_data(self, data: str) -> None:
        if self._into is not None:
            target, name = self._into
            target[name] += data
        elif self.lasttag == "blockquote" and self.comments:
            self.comments[-1] += data


def parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    return page


def percent(share: float | None) -> str:
    return "–" if share is None else f"{share * 100:.1f}%"


def expected_row(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "dimension": row["dimension"],
        "member": row["member"],
        "responses": str(row["responses"]),
        "raw": percent(row["negative_rate"]),
        "adjusted": percent(row["adjusted_negative_rate"]),
        "interval": f"{percent(row['interval']['lower'])}–{percent(row['interval']['upper'])}",
        "prob-worse": percent(row["prob_worse"]),
    }


def shown_row(row: dict[str, Any]) -> dict[str, Any]:
    return {name: value.strip() for name, value in row.items() if name != "outlier"}


def api_params(page: Page) -> dict[str, str]:
    return {
        "from": datetime.fromisoformat(page.window["data-from"]).isoformat(),
        "to": datetime.fromisoformat(page.window["data-to"]).isoformat(),
        "granularity": page.window["data-granularity"],
    }


async def test_every_moment_page_shows_the_report_and_names_the_teams_the_api_names(
    demo_site: DemoSite,
) -> None:
    site = demo_site
    spots = (await site.api.get("/v1/insights/weak-spots", params={"limit": 500})).json()
    keys = [item["moment"] for item in spots["data"] + spots["insufficient_data"]]
    assert keys
    named_anywhere = 0
    for key in keys:
        page = await site.browser.get(f"/ui/moments/{quote(key, safe='')}", params={"days": "90"})
        assert page.status_code == 200, page.text
        shown = parse(page.text)
        assert shown.window["data-granularity"] == "week"
        report = (await site.api.get(f"/v1/moments/{key}/report", params=api_params(shown))).json()
        totals = report["totals"]
        assert shown.totals == {
            "touchpoints": str(totals["touchpoints"]),
            "responses": str(totals["responses"]),
            "negatives": str(totals["negatives"]),
            "negative_rate": percent(totals["negative_rate"]),
            "response_rate": percent(totals["response_rate"]),
            "complaints": str(totals["complaints"]),
        }, key
        rows = report["by_team"] + report["by_agent"] + report["by_channel"]
        assert [shown_row(row) for row in shown.rows] == [expected_row(r) for r in rows], key
        outliers = (report["team_consistency"] or {}).get("outliers", [])
        assert shown.named == [
            {
                "team": found["team"],
                "direction": found["direction"],
                "rate": percent(found["negative_rate"]),
                "others-rate": percent(found["others_negative_rate"]),
            }
            for found in outliers
        ], key
        marked = {row["member"]: row["outlier"] for row in shown.rows if "outlier" in row}
        assert marked == {found["team"]: found["direction"] for found in outliers}, key
        assert len(shown.comments) == len(report["negative_comments"])
        named_anywhere += len(outliers)
    # The demo plants a team that does worse: the check above is not only of absences.
    assert named_anywhere > 0


async def test_the_exact_figures_links_give_the_api_report_of_the_same_view(
    demo_site: DemoSite,
) -> None:
    site = demo_site
    spots = (await site.api.get("/v1/insights/weak-spots", params={"days": 30})).json()
    key = spots["data"][0]["moment"]
    page = await site.browser.get(
        f"/ui/moments/{key}", params={"days": "7", "granularity": "day", "channel": "call"}
    )
    shown = parse(page.text)
    query = "days=7&channel=call&granularity=day"
    assert f"/ui/moments/{key}/report.json?{query}" in shown.links
    assert f"/ui/moments/{key}/report.csv?{query}" in shown.links
    assert "/ui/?days=7&channel=call" in shown.links
    api = await site.api.get(f"/v1/moments/{key}/report", params=api_params(shown))
    exact = await site.browser.get(f"/ui/moments/{key}/report.json?{query}")
    assert exact.json() == api.json()
    assert len(api.json()["series"]) == 7
    csv = await site.browser.get(f"/ui/moments/{key}/report.csv?{query}")
    api_csv = await site.api.get(
        f"/v1/moments/{key}/report", params={**api_params(shown), "format": "csv"}
    )
    assert csv.text == api_csv.text


async def test_the_rate_line_has_a_whisker_per_period_with_responses_from_the_api(
    demo_site: DemoSite,
) -> None:
    site = demo_site
    spots = (await site.api.get("/v1/insights/weak-spots", params={"days": 90})).json()
    key = spots["data"][0]["moment"]
    page = await site.browser.get(f"/ui/moments/{key}", params={"days": "90"})
    shown = parse(page.text)
    report = (await site.api.get(f"/v1/moments/{key}/report", params=api_params(shown))).json()
    rated = [point for point in report["series"] if point["responses"]]
    assert rated
    assert shown.whiskers == [point["period"] for point in rated]
    for point in rated:
        bounds = point["interval"]
        assert (
            f"{point['period']}: 95% interval {percent(bounds['lower'])}–{percent(bounds['upper'])}"
            in page.text
        )
    assert "no interval" not in page.text


async def test_the_funnel_draws_each_team_within_the_limits_the_api_gives(
    demo_site: DemoSite,
) -> None:
    site = demo_site
    spots = (await site.api.get("/v1/insights/weak-spots", params={"days": 90})).json()
    drawn = 0
    for item in spots["data"][:4]:
        key = item["moment"]
        page = await site.browser.get(f"/ui/moments/{key}", params={"days": "90"})
        shown = parse(page.text)
        report = (await site.api.get(f"/v1/moments/{key}/report", params=api_params(shown))).json()
        rows = report["team_limits"]
        assert shown.funnel == [row["team"] for row in rows], key
        for row in rows:
            bounds = row["limits_95"]
            assert f"95% limits {percent(bounds['lower'])}–{percent(bounds['upper'])}" in page.text
        if len(rows) > 1:
            assert sorted(shown.limits) == ["limit limit-95"] * 2 + ["limit limit-998"] * 2
            drawn += 1
    assert drawn


async def api_open_follow_ups(site: Site, key: str) -> list[dict[str, Any]]:
    """Every follow-up of the moment from `GET /v1/follow-ups?moment=`, the open ones kept."""
    found: list[dict[str, Any]] = []
    params: dict[str, Any] = {"moment": key, "limit": 100}
    while True:
        page = (await site.api.get("/v1/follow-ups", params=params)).json()
        found += [item for item in page["data"] if item["status"] not in ("resolved", "closed")]
        if page["next_cursor"] is None:
            return found
        params["cursor"] = page["next_cursor"]


async def test_the_moment_page_lists_its_open_follow_ups_as_the_api_does(
    demo_site: DemoSite,
) -> None:
    site = demo_site
    spots = (await site.api.get("/v1/insights/weak-spots", params={"days": 90})).json()
    listed = 0
    for item in spots["data"][:3]:
        key = item["moment"]
        page = await site.browser.get(f"/ui/moments/{key}", params={"days": "90"})
        shown = parse(page.text)
        expected = [found["id"] for found in await api_open_follow_ups(site, key)][:20]
        assert shown.follow_ups == expected, key
        for number in expected:
            assert f"/ui/follow-ups/{number}" in shown.links
        assert f"/ui/follow-ups?moment={quote(key, safe='')}" in shown.links
        listed += len(expected)
    assert listed


async def test_the_overview_links_each_moment_to_its_page_in_the_same_view(
    demo_site: DemoSite,
) -> None:
    page = await demo_site.browser.get("/ui/", params={"days": "90"})
    spots = (await demo_site.api.get("/v1/insights/weak-spots", params={"limit": 500})).json()
    for item in spots["data"]:
        assert f'href="/ui/moments/{item["moment"]}?days=90"' in page.text


async def test_comments_are_shown_as_text_never_as_markup(site: Site) -> None:
    await site.api.post(
        "/v1/moments", json={"key": "x.script", "name": "Script", "channel": "portal"}
    )
    sent = await site.api.post(
        "/v1/touchpoints",
        json={
            "moment": "x.script",
            "channel": "portal",
            "team": "a",
            "rating": {"scale": "csat5", "value": 1},
            "comment": "<script>alert(1)</script>",
        },
    )
    assert sent.status_code in (200, 201, 202), sent.text
    await sign_in(site.browser, site.read_key)
    page = await site.browser.get("/ui/moments/x.script", params={"days": "7"})
    assert page.status_code == 200
    assert "<script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text


async def test_an_unknown_moment_is_a_404_page(site: Site) -> None:
    await sign_in(site.browser, site.read_key)
    page = await site.browser.get("/ui/moments/no.such-moment")
    assert page.status_code == 404
    assert "No such moment" in page.text
    assert "Content-Security-Policy" in page.headers
    assert (await site.browser.get("/ui/moments/no.such-moment/report.json")).status_code == 404


async def test_a_granularity_that_is_not_day_or_week_is_refused(site: Site) -> None:
    await sign_in(site.browser, site.read_key)
    page = await site.browser.get("/ui/moments/anything", params={"granularity": "year"})
    assert page.status_code == 422
    assert "`granularity` is `day` or `week`" in page.text


async def test_the_moment_page_requires_sign_in(site: Site) -> None:
    response = await site.browser.get("/ui/moments/portal.login", params={"days": "7"})
    assert response.status_code == 303
    assert response.headers["location"] == (
        "/ui/sign-in?next=%2Fui%2Fmoments%2Fportal.login%3Fdays%3D7"
    )
    assert (await site.browser.get("/ui/moments/portal.login/report.json")).status_code == 303
