from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from app.followups.promises import Outcome, Step, promises, tally, update_overdue
from tests.payloads import touchpoint

NOON = datetime(2026, 11, 2, 12, tzinfo=UTC)
NEGATIVE = {"scale": "csat5", "value": 1}


def _at(hours: float) -> datetime:
    return NOON + timedelta(hours=hours)


def _step(
    hours: float,
    status: str = "in_progress",
    *,
    message: str | None = None,
    due: float | None = None,
) -> Step:
    return Step(_at(hours), status, message, None if due is None else _at(due))


def test_a_promise_is_kept_by_news_by_the_promised_time_and_missed_by_news_after_it() -> None:
    steps = [
        _step(0, "acknowledged", message="Sorry; next update tomorrow.", due=24),
        _step(20, message="Still on it."),
        _step(21, due=30),
        _step(40, "resolved"),
    ]
    found = promises(steps, now=_at(100))
    # The first step's own message does not keep the promise it makes.
    assert [(p.news_at, p.outcome) for p in found] == [
        (_at(20), Outcome.kept),
        (_at(40), Outcome.missed),
    ]
    assert [p.waited_hours(_at(100)) for p in found] == [20, 19]


def test_a_promise_without_news_is_pending_until_due_then_missed_with_the_wait_so_far() -> None:
    steps = [_step(0, "acknowledged", due=10), _step(2)]  # a step without a message: no news
    (before_due,) = promises(steps, now=_at(9))
    assert before_due.outcome is Outcome.pending
    assert before_due.waited_hours(_at(9)) is None
    (after_due,) = promises(steps, now=_at(15))
    assert after_due.outcome is Outcome.missed
    assert after_due.waited_hours(_at(15)) == 15


def test_promises_made_before_the_same_news_are_all_settled_by_it() -> None:
    steps = [_step(5, due=8), _step(0, due=6), _step(7, "closed")]  # listed out of order
    found = promises(steps, now=_at(50))
    assert [(p.made_at, p.outcome) for p in found] == [
        (_at(0), Outcome.missed),
        (_at(5), Outcome.kept),
    ]
    counted = tally(found, now=_at(50))
    assert (counted.made, counted.kept, counted.missed, counted.pending) == (2, 1, 1, 0)
    assert counted.kept_share == 0.5
    assert sorted(counted.waits) == [2, 7]


def test_an_update_is_overdue_once_due_without_news_since_the_promise() -> None:
    def overdue(news: float | None, now: float) -> bool:
        return update_overdue(
            next_update_at=_at(10),
            promised_at=_at(0),
            last_news_at=None if news is None else _at(news),
            now=_at(now),
        )

    assert not overdue(None, 9)
    assert overdue(None, 11)
    assert overdue(0, 11)  # news given with the promise itself
    assert not overdue(5, 11)
    assert not overdue(12, 13)  # late news: the promise was missed, but nobody waits now
    assert not update_overdue(next_update_at=None, promised_at=None, last_news_at=None, now=NOON)


# --- through the API, on both databases ---


async def _opened(client: httpx.AsyncClient, *names: tuple[str, str]) -> dict[str, int]:
    items = [touchpoint(id=name, team=team, rating=NEGATIVE) for name, team in names]
    response = await client.post("/v1/touchpoints/batch", json={"touchpoints": items})
    assert response.status_code in (200, 207), response.text
    listed = (await client.get("/v1/follow-ups")).json()["data"]
    return {f["touchpoint"]: f["id"] for f in listed}


async def _move(client: httpx.AsyncClient, number: int, state: str, **fields: Any) -> Any:
    response = await client.post(
        f"/v1/follow-ups/{number}/events", json={"status": state, "actor": "ana", **fields}
    )
    assert response.status_code == 200, response.text
    return response.json()


def _stamp(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@pytest.mark.anyio
async def test_updates_past_their_promise_are_flagged_listed_and_cleared_by_news(
    client: httpx.AsyncClient,
) -> None:
    numbers = await _opened(client, ("late", "red"), ("told", "red"), ("later", "blue"))
    past = _stamp(datetime.now(UTC) - timedelta(minutes=5))
    future = _stamp(datetime.now(UTC) + timedelta(days=2))
    late = await _move(
        client, numbers["late"], "acknowledged", client_message="Sorry.", next_update_at=past
    )
    assert late["update_overdue"] is True
    assert late["last_update_at"] is not None
    assert late["events"][-1]["next_update_at"] is not None
    await _move(client, numbers["told"], "acknowledged", next_update_at=past)
    await _move(client, numbers["later"], "acknowledged", next_update_at=future)

    overdue = (await client.get("/v1/follow-ups", params={"update_overdue": "true"})).json()
    assert sorted(f["touchpoint"] for f in overdue["data"]) == ["late", "told"]
    others = (await client.get("/v1/follow-ups", params={"update_overdue": "false"})).json()
    assert [f["touchpoint"] for f in others["data"]] == ["later"]

    told = await _move(client, numbers["told"], "in_progress", client_message="Fixed tonight.")
    assert told["update_overdue"] is False
    overdue = (await client.get("/v1/follow-ups", params={"update_overdue": "true"})).json()
    assert [f["touchpoint"] for f in overdue["data"]] == ["late"]


@pytest.mark.anyio
async def test_figures_count_promises_kept_per_team_and_the_wait_for_news(
    client: httpx.AsyncClient,
) -> None:
    numbers = await _opened(client, ("r1", "red"), ("r2", "red"), ("b1", "blue"))
    past = _stamp(datetime.now(UTC) - timedelta(minutes=5))
    future = _stamp(datetime.now(UTC) + timedelta(days=2))
    # red: one promise kept (news before the time), one missed (past due, no news).
    await _move(client, numbers["r1"], "acknowledged", next_update_at=future)
    await _move(client, numbers["r1"], "resolved")
    await _move(client, numbers["r2"], "acknowledged", next_update_at=past)
    # blue: a promise not due yet.
    await _move(client, numbers["b1"], "acknowledged", next_update_at=future)

    figures = (await client.get("/v1/insights/follow-ups")).json()
    total = figures["total"]["promises"]
    assert (total["made"], total["kept"], total["missed"], total["pending"]) == (3, 1, 1, 1)
    assert total["kept_share"] == 0.5
    assert total["updates_overdue"] == 1
    assert total["wait_for_news_hours"]["median"] < 0.1
    by_team = {f["key"]: f["promises"] for f in figures["by_team"]}
    assert (by_team["red"]["kept_share"], by_team["red"]["updates_overdue"]) == (0.5, 1)
    assert (by_team["blue"]["pending"], by_team["blue"]["kept_share"]) == (1, None)
    (moment,) = figures["by_moment"]
    assert moment["promises"]["made"] == 3


@pytest.mark.anyio
async def test_the_status_page_says_when_the_client_last_had_news(
    client: httpx.AsyncClient,
) -> None:
    numbers = await _opened(client, ("page", "red"))
    detail = (await client.get(f"/v1/follow-ups/{numbers['page']}")).json()
    url = detail["status_url"].removeprefix("http://test")
    before = await client.get(url)
    assert "No update yet." in before.text
    assert "Last update" not in before.text
    # A step with no message for the client is no news.
    await _move(client, numbers["page"], "acknowledged", note="internal only")
    assert "No update yet." in (await client.get(url)).text
    moved = await _move(client, numbers["page"], "in_progress", client_message="On it.")
    shown = moved["last_update_at"][:16].replace("T", " ")
    after = await client.get(url)
    assert f'Last update: <time datetime="{moved["last_update_at"][:10]}' in after.text
    assert shown in after.text
