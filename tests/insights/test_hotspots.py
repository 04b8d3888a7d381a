"""GET /v1/insights/hotspots: moments by team or channel, each cell's excess bad experiences
with the cell shrunk towards its moment."""

from typing import Any

import httpx
import pytest

from tests.insights.builders import add_moment, get_json, post, rated, window

pytestmark = pytest.mark.anyio

HOTSPOTS = "/v1/insights/hotspots"
TWO_WEEKS = window("2026-10-05T00:00:00Z", "2026-10-19T00:00:00Z")


def _answers(bad: int, good: int) -> list[int]:
    return [1] * bad + [5] * good


async def _matrix_data(client: httpx.AsyncClient) -> None:
    """m.bad: four teams of 100 csat5 answers, red at 40% negative, the others at 10%;
    m.small: `tiny` with 3 answers all negative, `big` with 200 at 30%, `fine` with 200 at
    10%; m.calm: blue and green at 5%, by e-mail."""
    for key in ("m.bad", "m.small", "m.calm"):
        await add_moment(client, key)
    items: list[dict[str, Any]] = []
    for team, bad in (("red", 40), ("blue", 10), ("green", 10), ("gold", 10)):
        items += rated(
            "m.bad", "2026-10-06T00:00:00Z", "csat5", _answers(bad, 100 - bad), team=team
        )
    for team, (bad, good) in {"tiny": (3, 0), "big": (60, 140), "fine": (20, 180)}.items():
        items += rated("m.small", "2026-10-07T00:00:00Z", "csat5", _answers(bad, good), team=team)
    for team in ("blue", "green"):
        items += rated(
            "m.calm", "2026-10-08T00:00:00Z", "csat5", _answers(5, 95), team=team, channel="email"
        )
    await post(client, items)


def _cells(row: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {cell["member"]: cell for cell in row["cells"]}


async def test_rows_follow_the_weak_spots_and_cells_add_up(client: httpx.AsyncClient) -> None:
    await _matrix_data(client)
    matrix = await get_json(client, HOTSPOTS, TWO_WEEKS)
    spots = await get_json(client, "/v1/insights/weak-spots", TWO_WEEKS)

    assert matrix["by"] == "team"
    assert [row["moment"] for row in matrix["data"]] == [s["moment"] for s in spots["data"]]
    for row, spot in zip(matrix["data"], spots["data"], strict=True):
        assert row["reference"] == pytest.approx(spot["reference"])
        assert row["priority"] == pytest.approx(spot["priority"])
        cells = row["cells"]
        assert sum(c["touchpoints"] for c in cells) == row["touchpoints"] == spot["touchpoints"]
        assert sum(c["responses"] for c in cells) == row["responses"]
        for cell in cells:
            assert cell["touchpoints"] > 0
            expected = cell["touchpoints"] * (cell["adjusted_negative_rate"] - row["reference"])
            assert cell["excess"] == pytest.approx(expected)
        assert [c["excess"] for c in cells] == sorted((c["excess"] for c in cells), reverse=True)
    # A team with no touchpoints on a moment has no cell there.
    assert set(_cells(_row(matrix, "m.calm"))) == {"blue", "green"}
    assert set(_cells(_row(matrix, "m.small"))) == {"tiny", "big", "fine"}
    # Columns by touchpoints across the moments (200 each, then 100, then 3), then by name.
    assert matrix["members"] == ["big", "blue", "fine", "green", "gold", "red", "tiny"]


def _row(matrix: dict[str, Any], key: str) -> dict[str, Any]:
    return next(row for row in matrix["data"] if row["moment"] == key)


async def test_a_planted_bad_team_is_the_strongest_cell_of_its_row(
    client: httpx.AsyncClient,
) -> None:
    await _matrix_data(client)
    matrix = await get_json(client, HOTSPOTS, TWO_WEEKS)
    row = _row(matrix, "m.bad")
    assert row["cells"][0]["member"] == "red"
    assert row["cells"][0]["excess"] > 0
    assert row["cells"][0]["strongest"]
    assert all(cell["excess"] < row["cells"][0]["excess"] for cell in row["cells"][1:])


async def test_three_bad_answers_do_not_outrank_two_hundred_at_thirty_percent(
    client: httpx.AsyncClient,
) -> None:
    await _matrix_data(client)
    matrix = await get_json(client, HOTSPOTS, TWO_WEEKS)
    cells = _cells(_row(matrix, "m.small"))
    tiny, big = cells["tiny"], cells["big"]
    assert tiny["negative_rate"] == 1.0
    # Shrunk towards the moment's rate (83 of 403): far from its raw 100%.
    assert tiny["adjusted_negative_rate"] < 0.5
    assert big["excess"] > tiny["excess"]
    assert not tiny["strongest"]
    assert big["strongest"]


async def test_cells_are_shrunk_as_the_moment_report_shrinks_its_teams(
    client: httpx.AsyncClient,
) -> None:
    await _matrix_data(client)
    matrix = await get_json(client, HOTSPOTS, TWO_WEEKS)
    for key in ("m.bad", "m.small"):
        report = await get_json(client, f"/v1/moments/{key}/report", TWO_WEEKS)
        shrunk = {row["member"]: row["adjusted_negative_rate"] for row in report["by_team"]}
        cells = _cells(_row(matrix, key))
        assert {m: c["adjusted_negative_rate"] for m, c in cells.items()} == pytest.approx(shrunk)


async def test_by_channel_and_filters(client: httpx.AsyncClient) -> None:
    await _matrix_data(client)
    by_channel = await get_json(client, HOTSPOTS, {**TWO_WEEKS, "by": "channel"})
    assert by_channel["by"] == "channel"
    assert set(by_channel["members"]) == {"call", "email"}
    assert set(_cells(_row(by_channel, "m.calm"))) == {"email"}
    one_team = await get_json(client, HOTSPOTS, {**TWO_WEEKS, "team": "red"})
    assert [row["moment"] for row in one_team["data"]] == ["m.bad"]
    assert one_team["members"] == ["red"]
    refused = await client.get(HOTSPOTS, params={**TWO_WEEKS, "by": "agent"})
    assert refused.status_code == 422


async def test_an_empty_window_has_no_rows(client: httpx.AsyncClient) -> None:
    await _matrix_data(client)
    matrix = await get_json(
        client, HOTSPOTS, window("2025-01-01T00:00:00Z", "2025-01-08T00:00:00Z")
    )
    assert matrix["data"] == []
    assert matrix["members"] == []


async def test_hotspots_need_the_read_scope(make_client: Any) -> None:
    async with make_client(()) as anonymous:
        assert (await anonymous.get(HOTSPOTS, params=TWO_WEEKS)).status_code == 401
