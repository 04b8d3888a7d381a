import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from app.followups import workflow
from app.followups.workflow import FollowUpStatus
from tests.conftest import ClientFactory
from tests.payloads import touchpoint

pytestmark = pytest.mark.anyio

NEGATIVE = {"scale": "csat5", "value": 1}


async def _follow_ups(client: httpx.AsyncClient, **params: str) -> list[dict[str, Any]]:
    response = await client.get("/v1/follow-ups", params=params)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


async def _move(
    client: httpx.AsyncClient, follow_up_id: int, state: str, **fields: Any
) -> httpx.Response:
    return await client.post(
        f"/v1/follow-ups/{follow_up_id}/events",
        json={"status": state, "actor": "ana", **fields},
    )


async def test_negative_ratings_and_complaints_open_one_follow_up_each(
    client: httpx.AsyncClient,
) -> None:
    items = [
        touchpoint(id="neg", rating=NEGATIVE),
        touchpoint(id="complaint", complaint=True, rating={"scale": "csat5", "value": 5}),
        touchpoint(id="fine", rating={"scale": "csat5", "value": 4}),
        touchpoint(id="silent"),
    ]
    await client.post("/v1/touchpoints/batch", json={"touchpoints": items})
    # A retry of the batch and a second bad rating open nothing new.
    await client.post("/v1/touchpoints/batch", json={"touchpoints": items})
    await client.put("/v1/touchpoints/neg/rating", json={"scale": "csat5", "value": 2})

    opened = await _follow_ups(client)
    assert sorted((f["touchpoint"], f["reason"], f["status"]) for f in opened) == [
        ("complaint", "complaint", "open"),
        ("neg", "negative_rating", "open"),
    ]


async def test_a_batch_opens_each_follow_up_with_its_first_step_and_the_same_due_times(
    client: httpx.AsyncClient,
) -> None:
    items = [
        touchpoint(
            id=f"bad-{i:03d}",
            team=f"team-{i % 3}" if i % 4 else None,
            complaint=i % 5 == 0,
            rating=NEGATIVE if i % 2 else {"scale": "csat5", "value": 5},
        )
        for i in range(150)
    ]
    await client.post("/v1/touchpoints/batch", json={"touchpoints": items})
    expected = {
        item["id"]: (item.get("team"), "complaint" if item["complaint"] else "negative_rating")
        for item in items
        if item["complaint"] or item["rating"] == NEGATIVE
    }
    opened = await _follow_ups(client, limit="500")
    assert {f["touchpoint"]: (f["team"], f["reason"]) for f in opened} == expected
    assert len({(f["acknowledge_due_at"], f["resolve_due_at"]) for f in opened}) == 1
    for follow_up in opened[:5]:
        detail = (await client.get(f"/v1/follow-ups/{follow_up['id']}")).json()
        assert [(e["status"], e["actor"]) for e in detail["events"]] == [("open", "mot")]
    # A touchpoint that has one already (here opened by hand) gets no second one.
    await client.post("/v1/touchpoints", json=touchpoint(id="by-hand"))
    await client.post("/v1/follow-ups", json={"touchpoint": "by-hand", "actor": "ana"})
    await client.put("/v1/touchpoints/by-hand/rating", json=NEGATIVE)
    (by_hand,) = [f for f in await _follow_ups(client, limit="500") if f["touchpoint"] == "by-hand"]
    assert by_hand["reason"] == "manual"


async def test_follow_ups_of_every_batch_are_written_by_one_statement_of_the_same_text(
    client: httpx.AsyncClient,
) -> None:
    # Rows as one parameter (an array per column on PostgreSQL, a JSON text on SQLite): a
    # statement of one parameter per value would be parsed anew for every batch.
    statements: list[str] = []

    def record(*args: Any) -> None:
        statement = args[2]
        if "INSERT INTO follow_up (" in statement:
            statements.append(statement)

    event.listen(Engine, "before_cursor_execute", record)
    try:
        for size in (1, 40):
            items = [touchpoint(id=f"s{size}-{i}", rating=NEGATIVE) for i in range(size)]
            await client.post("/v1/touchpoints/batch", json={"touchpoints": items})
    finally:
        event.remove(Engine, "before_cursor_execute", record)
    assert len(statements) == 2
    assert statements[0] == statements[1]
    assert len(await _follow_ups(client, limit="100")) == 41


async def test_a_late_negative_rating_opens_a_follow_up(client: httpx.AsyncClient) -> None:
    await client.post("/v1/touchpoints", json=touchpoint(id="late"))
    assert await _follow_ups(client) == []
    await client.put("/v1/touchpoints/late/rating", json={"scale": "nps11", "value": 3})
    assert [f["touchpoint"] for f in await _follow_ups(client)] == ["late"]


async def test_moments_can_switch_automatic_follow_ups_off(client: httpx.AsyncClient) -> None:
    await client.post(
        "/v1/moments",
        json={
            "key": "portal.search",
            "name": "Search",
            "channel": "portal",
            "auto_follow_up": False,
        },
    )
    await client.post(
        "/v1/touchpoints",
        json=touchpoint(id="quiet", moment="portal.search", channel="portal", rating=NEGATIVE),
    )
    assert await _follow_ups(client) == []
    # In a batch, beside a moment that opens them: only that one's bad experience opens one.
    items = [
        touchpoint(id="quiet-2", moment="portal.search", channel="portal", rating=NEGATIVE),
        touchpoint(id="heard", rating=NEGATIVE),
    ]
    response = await client.post("/v1/touchpoints/batch", json={"touchpoints": items})
    assert response.status_code == 200, response.text
    assert [f["touchpoint"] for f in await _follow_ups(client)] == ["heard"]


async def test_the_workflow_keeps_every_step_and_refuses_illegal_moves(
    client: httpx.AsyncClient,
) -> None:
    await client.post("/v1/touchpoints", json=touchpoint(id="w", rating=NEGATIVE))
    (follow_up,) = await _follow_ups(client)
    number = follow_up["id"]
    assert follow_up["allowed_transitions"] == ["acknowledged", "in_progress", "resolved"]

    refused = await _move(client, number, "closed")
    assert refused.status_code == 409
    assert refused.json()["details"][0] == {
        "field": "body.status",
        "message": "allowed: acknowledged, in_progress, resolved",
        "type": "transition",
    }
    early_cause = await _move(client, number, "acknowledged", root_cause="night shift")
    assert early_cause.status_code == 422
    assert early_cause.json()["details"][0]["field"] == "body.root_cause"

    message = "Thank you for telling us, and sorry. What happened?"
    assert (await _move(client, number, "acknowledged", client_message=message)).status_code == 200
    assert (await _move(client, number, "in_progress", note="called back")).status_code == 200
    resolved = (await _move(client, number, "resolved", root_cause="queue overflow")).json()
    assert resolved["status"] == "resolved"
    assert resolved["root_cause"] == "queue overflow"
    assert resolved["acknowledged_at"] is not None
    assert resolved["resolved_at"] is not None
    assert [e["status"] for e in resolved["events"]] == [
        "open",
        "acknowledged",
        "in_progress",
        "resolved",
    ]
    assert resolved["events"][1]["client_message"] == message
    assert (await _move(client, number, "reopened")).json()["allowed_transitions"] == [
        "acknowledged",
        "in_progress",
        "resolved",
    ]


async def test_follow_ups_open_by_hand_once_per_touchpoint(client: httpx.AsyncClient) -> None:
    await client.post("/v1/touchpoints", json=touchpoint(id="h"))
    created = await client.post("/v1/follow-ups", json={"touchpoint": "h", "actor": "ana"})
    assert created.status_code == 201
    assert created.json()["reason"] == "manual"
    again = await client.post("/v1/follow-ups", json={"touchpoint": "h", "actor": "ana"})
    assert again.status_code == 409
    missing = await client.post("/v1/follow-ups", json={"touchpoint": "nope", "actor": "ana"})
    assert missing.status_code == 404


async def test_follow_ups_filter_and_page(client: httpx.AsyncClient) -> None:
    items = [
        touchpoint(id=f"p{n}", team="red" if n % 2 else "blue", rating=NEGATIVE) for n in range(5)
    ]
    await client.post("/v1/touchpoints/batch", json={"touchpoints": items})
    assert {f["touchpoint"] for f in await _follow_ups(client, team="red")} == {"p1", "p3"}
    first = (await client.get("/v1/follow-ups", params={"limit": 3})).json()
    second = (
        await client.get("/v1/follow-ups", params={"limit": 3, "cursor": first["next_cursor"]})
    ).json()
    seen = [f["touchpoint"] for f in first["data"] + second["data"]]
    assert sorted(seen) == [f"p{n}" for n in range(5)]
    assert second["next_cursor"] is None
    assert await _follow_ups(client, status="resolved") == []


def test_every_status_can_move_somewhere_and_closing_needs_resolving_first() -> None:
    assert all(workflow.allowed(state) for state in FollowUpStatus)
    assert not workflow.can_move(FollowUpStatus.open, FollowUpStatus.closed)
    assert not workflow.can_move(FollowUpStatus.in_progress, FollowUpStatus.closed)
    assert workflow.can_move(FollowUpStatus.resolved, FollowUpStatus.closed)


async def test_the_status_page_shows_client_messages_and_nothing_internal(
    client: httpx.AsyncClient,
) -> None:
    await client.post(
        "/v1/touchpoints",
        json=touchpoint(
            id="TP-ID-4242",
            team="night-desk",
            agent="agent-0077",
            rating=NEGATIVE,
            client_ref="CLIENT-REF-99",
        ),
    )
    (follow_up,) = await _follow_ups(client)
    number = follow_up["id"]
    await _move(
        client,
        number,
        "acknowledged",
        actor="ACTOR-ANNA-X",
        note="INTERNAL-NOTE-blame-check",
        client_message="Thank you for telling us. We are sorry; we are looking into it.",
        next_update_at="2026-11-25T09:00:00Z",
    )
    await _move(client, number, "in_progress", note="INTERNAL-second-note")
    detail = (await _move(client, number, "resolved", root_cause="ROOT-CAUSE-queue-config")).json()

    page = await client.get(detail["status_url"].removeprefix("http://test"))
    assert page.status_code == 200
    assert "Solved" in page.text
    assert "We are sorry; we are looking into it." in page.text
    assert "2026-11-25 09:00" in page.text
    for internal in (
        "INTERNAL-NOTE",
        "INTERNAL-second",
        "ROOT-CAUSE",
        "night-desk",
        "agent-0077",
        "ACTOR-ANNA",
        "CLIENT-REF",
        "TP-ID-4242",
        "negative",
    ):
        assert internal not in page.text


async def test_a_forged_status_link_is_refused(client: httpx.AsyncClient) -> None:
    await client.post("/v1/touchpoints", json=touchpoint(id="fs", rating=NEGATIVE))
    (follow_up,) = await _follow_ups(client)
    url = (await client.get(f"/v1/follow-ups/{follow_up['id']}")).json()["status_url"]
    token = url.rsplit("/", 1)[1]
    payload, signature = token.split(".")
    survey_signed = f"{payload}.{signature[:-2]}AA"
    response = await client.get(f"/f/{survey_signed}")
    assert response.status_code == 404


async def test_overdue_follow_ups_are_flagged_and_filtered(make_client: ClientFactory) -> None:
    # Every hour a working hour and a target of a second's fraction: overdue at once.
    async with make_client(
        acknowledge_within_hours=0.0001,
        working_days="mon,tue,wed,thu,fri,sat,sun",
        working_day_start="00:00",
        working_day_end="23:59:59",
    ) as client:
        await client.post(
            "/v1/touchpoints/batch",
            json={"touchpoints": [touchpoint(id=f"o{n}", rating=NEGATIVE) for n in range(2)]},
        )
        first, second = await _follow_ups(client)
        await asyncio.sleep(0.5)
        assert (await _move(client, second["id"], "acknowledged")).status_code == 200
        overdue = await _follow_ups(client, overdue="true")
        assert [f["id"] for f in overdue] == [first["id"]]
        assert overdue[0]["overdue"] is True
        on_time = await _follow_ups(client, overdue="false")
        assert [f["id"] for f in on_time] == [second["id"]]


async def test_follow_up_figures_count_times_and_targets(client: httpx.AsyncClient) -> None:
    items = [
        touchpoint(id="f1", team="red", rating=NEGATIVE),
        touchpoint(id="f2", team="red", complaint=True),
        touchpoint(id="f3", team="blue", moment="portal.first-link", rating=NEGATIVE),
    ]
    await client.post("/v1/touchpoints/batch", json={"touchpoints": items})
    by_touchpoint = {f["touchpoint"]: f["id"] for f in await _follow_ups(client)}
    await _move(client, by_touchpoint["f1"], "acknowledged")
    await _move(client, by_touchpoint["f1"], "resolved")

    figures = (await client.get("/v1/insights/follow-ups")).json()
    total = figures["total"]
    assert (total["follow_ups"], total["unsettled"], total["acknowledged"], total["resolved"]) == (
        3,
        2,
        1,
        1,
    )
    # Done seconds after opening: within the 4 and 40 working-hour targets; the others
    # are not due yet, so they do not count either way.
    assert total["acknowledged_within_target"] == 1.0
    assert total["resolved_within_target"] == 1.0
    assert total["time_to_acknowledge"]["median"] < 0.01
    assert figures["acknowledge_target_hours"] == 4
    assert [(f["key"], f["follow_ups"]) for f in figures["by_team"]] == [("red", 2), ("blue", 1)]
    assert [(f["key"], f["follow_ups"]) for f in figures["by_moment"]] == [
        ("service-desk.first-voice", 2),
        ("portal.first-link", 1),
    ]
