"""Weak spots and moment reports kept per process (`MOT_FIGURES_KEPT`) are always the
figures a fresh computation gives: checked against a second service on the same database
that keeps none, after every kind of change to what the figures are computed from."""

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from app.db import Database
from app.insights import counts
from app.rollups import service as rollups
from app.touchpoints.models import Touchpoint
from tests.conftest import ClientFactory
from tests.insights.builders import add_moment, get_json, post, rated, window

pytestmark = pytest.mark.anyio

WEAK_SPOTS = "/v1/insights/weak-spots"
REPORT = "/v1/moments/m.kept/report"
WEEK = window("2026-10-05T00:00:00Z", "2026-10-12T00:00:00Z")
PARTIAL_WEEK = window("2026-10-05T06:00:00Z", "2026-10-12T00:00:00Z")


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    opened = Database(database_url)
    yield opened
    await opened.dispose()


async def _fold(database: Database) -> None:
    async with database.write_sessions() as session, session.begin():
        assert await rollups.fold(session) is not None


async def _rebuild(database: Database) -> None:
    async with database.write_sessions() as session, session.begin():
        await counts.rebuild(session)


async def _comment(database: Database, touchpoint_id: str, comment: str) -> None:
    async with database.write_sessions() as session, session.begin():
        await session.execute(
            update(Touchpoint)
            .where(Touchpoint.external_id == touchpoint_id)
            .values(comment=comment)
        )


def _batch(prefix: str, values: list[int | None]) -> list[dict[str, Any]]:
    items = rated("m.kept", "2026-10-06T09:00:00Z", "csat5", values, team="blue", client_ref=prefix)
    for position, item in enumerate(items):
        item["id"] = f"{prefix}-{position}"
    return items


async def test_kept_figures_are_those_computing_again_gives_after_every_change(
    make_client: ClientFactory, database: Database
) -> None:
    async with make_client() as keeping, make_client(figures_kept=0) as computing:
        comments: list[list[str]] = []

        async def same_answer(params: dict[str, str] = WEEK) -> dict[str, Any]:
            kept = await get_json(keeping, WEAK_SPOTS, params)
            assert kept == await get_json(computing, WEAK_SPOTS, params)
            report = await get_json(keeping, REPORT, params)
            assert report == await get_json(computing, REPORT, params)
            comments.append([comment["comment"] for comment in report["negative_comments"]])
            return kept  # type: ignore[no-any-return]

        async def touchpoints_of(answer: dict[str, Any]) -> int:
            return sum(item["touchpoints"] for item in answer["data"])

        await add_moment(keeping, "m.kept")
        await post(keeping, _batch("a", [1, 2, 5, 5]))
        first = await same_answer()
        assert await touchpoints_of(first) == 4
        assert await same_answer() == first  # given again: nothing changed

        changes: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
            ("a fold", lambda: _fold(database)),
            # The same shape again: as many deltas pending as before the fold. Only the
            # epoch the fold raised tells these counts from the first ones.
            ("new touchpoints", lambda: post(keeping, _batch("b", [1, 2, 5, 5]))),
            (
                "a late rating",
                lambda: keeping.put(
                    "/v1/touchpoints/b-3/rating", json={"scale": "csat5", "value": 1}
                ),
            ),
            ("a fold", lambda: _fold(database)),
            # A comment alone (as the survey page stores it) changes no count: the report's
            # comments are read every time.
            ("a comment", lambda: _comment(database, "b-3", "nobody called back")),
            (
                "a moment's target",
                lambda: keeping.patch("/v1/moments/m.kept", json={"target_negative_rate": 0.05}),
            ),
            ("a rebuild", lambda: _rebuild(database)),
            ("an erasure", lambda: keeping.delete("/v1/clients/b")),
        ]
        answers = [first]
        for change, make in changes:
            outcome = await make()
            if isinstance(outcome, httpx.Response):
                assert outcome.status_code < 300, (change, outcome.text)
            answers.append(await same_answer())
        assert await touchpoints_of(answers[2]) == 8, "the second batch must show"
        negatives = [answer["data"][0]["negatives"] for answer in answers]
        assert negatives[2:4] == [4, 5], "the late rating must show"
        assert comments[6] == ["nobody called back"], "the new comment must show"
        assert answers[6]["data"][0]["target_negative_rate"] == 0.05
        assert await touchpoints_of(answers[8]) == 4, "the erased client's must go"


async def test_a_window_with_part_of_a_day_is_computed_every_time(
    make_client: ClientFactory,
) -> None:
    async with make_client() as client:
        await add_moment(client, "m.kept")
        await post(client, _batch("a", [1, 5]))
        before = await get_json(client, WEAK_SPOTS, PARTIAL_WEEK)
        await post(client, _batch("b", [1, 5]))
        after = await get_json(client, WEAK_SPOTS, PARTIAL_WEEK)
    assert [item["touchpoints"] for item in (before["data"][0], after["data"][0])] == [2, 4]
