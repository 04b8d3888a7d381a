"""Every list of figures has a CSV download a spreadsheet opens safely: a byte order mark for
Cyrillic, would-be formulas neutralised, figures rounded as people read them."""

from typing import Any

import httpx
import pytest

from tests.insights.builders import add_moment, get_json, post, rated, read_csv, window

pytestmark = pytest.mark.anyio

TWO_WEEKS = window("2026-10-05T00:00:00Z", "2026-10-19T00:00:00Z")
FORMULA = '=HYPERLINK("http://x")'
TEAM = "Отдел продаж"
NAME = "Первый звонок"


async def _data(client: httpx.AsyncClient) -> None:
    await add_moment(client, "m.first", name=NAME, target_negative_rate=0.1)
    await add_moment(client, "m.other", target_negative_rate=0.1)
    # Far better than its target: a negative priority.
    await add_moment(client, "m.good", target_negative_rate=0.9)
    week_one, week_two = "2026-10-06T09:00:00Z", "2026-10-13T09:00:00Z"
    for first in (week_one, week_two):
        await post(
            client,
            [
                *rated("m.first", first, "csat5", [1, 2, 5, 5, 4] * 6, team=TEAM, agent=FORMULA),
                *rated("m.first", first, "csat5", [5, 4, 5, 1] * 6, team="+team", agent="@bob"),
                *rated("m.other", first, "nps11", [10, 9, 3, None] * 6, team="-desk"),
                *rated("m.good", first, "csat5", [5, 4] * 10),
            ],
        )


# Each list endpoint with CSV, and the rows it must hold at least.
ENDPOINTS = [
    ("/v1/insights/weak-spots", {}, "weak-spots.csv"),
    ("/v1/insights/hotspots", {}, "hotspots-by-team.csv"),
    ("/v1/insights/hotspots", {"by": "channel"}, "hotspots-by-channel.csv"),
    ("/v1/insights/consistency", {}, "consistency.csv"),
    ("/v1/insights/silence", {}, "silence.csv"),
    ("/v1/insights/overview", {}, "overview.csv"),
    ("/v1/insights/follow-ups", {}, "follow-ups.csv"),
    ("/v1/insights/surveys", {}, "surveys.csv"),
    ("/v1/moments/m.first/report", {}, "m.first-breakdown.csv"),
    ("/v1/moments/m.first/report", {"table": "series"}, "m.first-series-day.csv"),
]


@pytest.mark.parametrize(("path", "params", "filename"), ENDPOINTS)
async def test_every_list_of_figures_has_a_csv_download(
    client: httpx.AsyncClient, path: str, params: dict[str, Any], filename: str
) -> None:
    await _data(client)
    by_format = await client.get(path, params={**TWO_WEEKS, **params, "format": "csv"})
    columns, _rows = read_csv(by_format)
    assert columns
    assert filename in by_format.headers["content-disposition"]
    by_accept = await client.get(
        path, params={**TWO_WEEKS, **params}, headers={"accept": "text/csv"}
    )
    assert by_accept.content == by_format.content
    # And JSON stays the default.
    assert (await client.get(path, params={**TWO_WEEKS, **params})).json()


async def test_openapi_names_csv_for_every_list_of_figures(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    for path, _params, _filename in ENDPOINTS:
        templated = path.replace("m.first", "{key}")
        content = schema["paths"][templated]["get"]["responses"]["200"]["content"]
        assert "text/csv" in content, templated


async def test_formulas_in_posted_text_are_neutralised(client: httpx.AsyncClient) -> None:
    await _data(client)
    report = await client.get("/v1/moments/m.first/report", params={**TWO_WEEKS, "format": "csv"})
    _columns, rows = read_csv(report)
    members = {(row["dimension"], row["member"]) for row in rows}
    assert ("agent", "'" + FORMULA) in members
    assert ("agent", "'@bob") in members
    assert ("team", "'+team") in members
    assert ("team", TEAM) in members  # text that is no formula is left alone
    # The JSON keeps what was posted.
    as_json = await get_json(client, "/v1/moments/m.first/report", TWO_WEEKS)
    assert FORMULA in {row["member"] for row in as_json["by_agent"]}
    hotspots = await client.get("/v1/insights/hotspots", params={**TWO_WEEKS, "format": "csv"})
    assert {row["member"] for row in read_csv(hotspots)[1]} >= {"'-desk", "'+team", TEAM}


async def test_negative_figures_stay_numbers(client: httpx.AsyncClient) -> None:
    await _data(client)
    _columns, rows = read_csv(
        await client.get("/v1/insights/weak-spots", params={**TWO_WEEKS, "format": "csv"})
    )
    priorities = [row["priority"] for row in rows]
    assert any(priority.startswith("-") for priority in priorities), priorities
    for priority in priorities:
        float(priority)  # a number, no quote before it


async def test_cyrillic_round_trips_through_the_byte_order_mark(
    client: httpx.AsyncClient,
) -> None:
    await _data(client)
    response = await client.get("/v1/insights/weak-spots", params={**TWO_WEEKS, "format": "csv"})
    _columns, rows = read_csv(response)
    assert NAME in {row["name"] for row in rows}
    # What a spreadsheet sees: UTF-8 bytes behind the mark, never another code page.
    assert NAME.encode() in response.content


async def test_figures_are_rounded_in_csv_and_exact_in_json(client: httpx.AsyncClient) -> None:
    await _data(client)
    as_json = await get_json(client, "/v1/insights/weak-spots", TWO_WEEKS)
    _columns, rows = read_csv(
        await client.get("/v1/insights/weak-spots", params={**TWO_WEEKS, "format": "csv"})
    )
    by_moment = {row["moment"]: row for row in rows}
    checked = 0
    for item in as_json["data"]:
        row = by_moment[item["moment"]]
        for column in ("adjusted_negative_rate", "prob_worse", "baseline", "priority"):
            exact = item[column]
            cell = row[column]
            assert float(cell) == pytest.approx(exact, rel=0.05, abs=5e-5), column
            if "e" in cell:  # a tiny figure: two significant digits
                assert 0 < abs(exact) < 5e-5
                continue
            assert len(cell.partition(".")[2]) <= 4, (column, cell)
            if round(exact, 4) != exact:
                checked += 1
                assert float(cell) == round(exact, 4)
    assert checked  # the JSON has digits the CSV leaves out
