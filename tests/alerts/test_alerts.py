"""Alerts go out once per change of state: planted problems are announced, a second
evaluation announces nothing new, an alarm that stops and comes back is announced again,
and each missed promise of news is announced once."""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app.alerts import service as alerts_service
from app.alerts.service import Evaluation
from app.db import Database, utcnow
from app.webhooks.models import WebhookDelivery
from tests.conftest import ClientFactory
from tests.insights.builders import add_moment, post, rated

pytestmark = pytest.mark.anyio

BASE_URL = "https://mot.example"


@dataclass
class Desk:
    api: httpx.AsyncClient
    database: Database

    async def evaluate(self) -> Evaluation:
        async with self.database.write_sessions() as session, session.begin():
            result = await alerts_service.evaluate(session, now=utcnow(), base_url=BASE_URL)
        assert result is not None
        return result

    async def sent(self) -> list[tuple[str, dict[str, Any]]]:
        async with self.database.read_sessions() as session:
            rows = await session.execute(
                select(WebhookDelivery.event, WebhookDelivery.payload).order_by(WebhookDelivery.id)
            )
            return [(event, payload["data"]) for event, payload in rows]


@pytest.fixture
async def desk(make_client: ClientFactory, database_url: str) -> AsyncIterator[Desk]:
    async with make_client(webhook_allow_hosts="127.0.0.1") as api:
        created = await api.post(
            "/v1/webhooks",
            json={
                "url": "http://127.0.0.1:9/hook",
                "events": ["moment.alert", "follow_up.update_overdue"],
            },
        )
        assert created.status_code == 201, created.text
        database = Database(database_url)
        try:
            yield Desk(api, database)
        finally:
            await database.dispose()


def _days_ago(days: float) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).isoformat()


async def _plant(api: httpx.AsyncClient) -> None:
    """One moment much worse than the others and worse than a month ago; one whose red team
    is much worse than its other teams; five ordinary moments."""
    for key in ("desk.bad", "desk.uneven", *(f"desk.fine-{n}" for n in range(5))):
        await add_moment(api, key)
    spacing = timedelta(minutes=7)
    items = rated("desk.bad", _days_ago(40), "csat5", [1] * 3 + [5] * 57, spacing=spacing)
    items += rated("desk.bad", _days_ago(10), "csat5", [1] * 30 + [5] * 30, spacing=spacing)
    for team, values in (
        ("red", [1] * 20 + [5] * 20),
        ("blue", [1] + [5] * 39),
        ("green", [5] * 40),
    ):
        items += rated("desk.uneven", _days_ago(9), "csat5", values, spacing=spacing, team=team)
    for n in range(5):
        items += rated(f"desk.fine-{n}", _days_ago(8), "csat5", [1] * 3 + [5] * 57, spacing=spacing)
    await post(api, items)


async def test_planted_problems_are_announced_once_with_their_figures(desk: Desk) -> None:
    await _plant(desk.api)
    first = await desk.evaluate()
    sent = await desk.sent()
    announced = sorted((data["moment"], data["kind"], data.get("team")) for _, data in sent)
    # The uneven moment is worse than the ordinary ones as a whole too; against red, its
    # other two teams are named as better.
    assert announced == [
        ("desk.bad", "confident_problem", None),
        ("desk.bad", "worsening", None),
        ("desk.uneven", "confident_problem", None),
        ("desk.uneven", "team_named", "blue"),
        ("desk.uneven", "team_named", "green"),
        ("desk.uneven", "team_named", "red"),
    ]
    assert first.moment_alerts == 6
    assert {event for event, _ in sent} == {"moment.alert"}
    by_kind = {(data["moment"], data["kind"], data.get("team")): data for _, data in sent}
    problem = by_kind["desk.bad", "confident_problem", None]
    assert problem["figures"]["negatives"] == 30
    assert problem["url"] == f"{BASE_URL}/ui/moments/desk.bad"
    assert by_kind["desk.bad", "worsening", None]["figures"]["change"] > 0
    directions = {
        team: by_kind["desk.uneven", "team_named", team]["figures"]["direction"]
        for team in ("red", "blue", "green")
    }
    assert directions == {"red": "worse", "blue": "better", "green": "better"}

    again = await desk.evaluate()
    assert (again.moment_alerts, again.updates_overdue) == (0, 0)
    assert len(await desk.sent()) == 6


async def test_an_alarm_that_stops_is_announced_again_when_it_comes_back(desk: Desk) -> None:
    await _plant(desk.api)
    await desk.evaluate()
    # Many good answers since: the bad moment is ordinary again.
    await post(
        desk.api, rated("desk.bad", _days_ago(5), "csat5", [5] * 900, spacing=timedelta(minutes=1))
    )
    quiet = await desk.evaluate()
    assert quiet.moment_alerts == 0
    # And bad again.
    await post(
        desk.api, rated("desk.bad", _days_ago(3), "csat5", [1] * 600, spacing=timedelta(minutes=1))
    )
    back = await desk.evaluate()
    kinds = [data["kind"] for _, data in (await desk.sent())[6:] if data["moment"] == "desk.bad"]
    assert "confident_problem" in kinds
    assert back.moment_alerts == len(kinds)


async def test_a_missed_promise_of_news_is_announced_once_per_promise(desk: Desk) -> None:
    await add_moment(desk.api, "desk.promise")
    await post(desk.api, rated("desk.promise", _days_ago(1), "csat5", [1], team="red"))
    (follow_up,) = (await desk.api.get("/v1/follow-ups")).json()["data"]
    number = follow_up["id"]

    async def promise(minutes_ago: int, state: str) -> None:
        due = (datetime.now(UTC) - timedelta(minutes=minutes_ago)).isoformat()
        moved = await desk.api.post(
            f"/v1/follow-ups/{number}/events",
            json={"status": state, "actor": "ana", "next_update_at": due},
        )
        assert moved.status_code == 200, moved.text

    await promise(10, "acknowledged")
    assert (await desk.evaluate()).updates_overdue == 1
    assert (await desk.evaluate()).updates_overdue == 0
    await promise(5, "in_progress")  # a new promise, missed too
    assert (await desk.evaluate()).updates_overdue == 1
    overdue = [data for event, data in await desk.sent() if event == "follow_up.update_overdue"]
    assert [(d["follow_up"], d["moment"], d["team"]) for d in overdue] == [
        (number, "desk.promise", "red"),
        (number, "desk.promise", "red"),
    ]
    assert overdue[0]["url"] == f"{BASE_URL}/ui/follow-ups/{number}"
    assert overdue[0]["next_update_at"] != overdue[1]["next_update_at"]
