"""Operations: request ids, JSON logs that never hold client data, Prometheus metrics."""

import contextlib
import io
import json
import logging
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import Counter
from prometheus_client.parser import text_string_to_metric_families

from app import logs, metrics
from app.config import Settings
from app.db import Database
from app.main import create_app
from tests.payloads import touchpoint
from tests.servers import ADMIN_KEY, Served

pytestmark = pytest.mark.anyio

CLIENT_REF = "cref-7f3a9b-tell-no-one"
COMMENT = "the-technician-was-rude-q81z"
GENERATED_ID = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    """What the service logs during the test, formatted as `mot serve` formats it."""
    output = io.StringIO()
    handler = logging.StreamHandler(output)
    handler.setFormatter(logs.JsonFormatter())
    # The levels `mot serve` sets; httpx's own lines here would be the test client's.
    levels = {"": logging.INFO, "httpx": logging.WARNING}
    previous = {name: logging.getLogger(name).level for name in levels}
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
    logging.getLogger().addHandler(handler)
    try:
        yield output
    finally:
        logging.getLogger().removeHandler(handler)
        for name, level in previous.items():
            logging.getLogger(name).setLevel(level)


def _lines(output: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.getvalue().splitlines()]


def _access_lines(output: io.StringIO) -> list[dict[str, Any]]:
    return [line for line in _lines(output) if line["logger"] == "app.access"]


def _sample(exposition: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0


async def _metrics(client: httpx.AsyncClient) -> str:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


@pytest.fixture
async def failing_client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app with one route that fails with the client's ref in the message."""
    app = create_app(Settings(_env_file=None, database_url=database_url))

    async def fail(client_ref: str) -> None:
        raise RuntimeError(f"could not handle client {client_ref}")

    app.add_api_route("/v1/failing/{client_ref}", fail)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client
    finally:
        await app.state.database.dispose()


async def test_a_request_id_is_generated_when_none_is_sent(client: httpx.AsyncClient) -> None:
    first = (await client.get("/healthz")).headers["x-request-id"]
    second = (await client.get("/healthz")).headers["x-request-id"]
    assert GENERATED_ID.fullmatch(first)
    assert first != second


async def test_a_sane_request_id_is_echoed(client: httpx.AsyncClient) -> None:
    sent = "gateway-7:req.42_a"
    response = await client.get("/healthz", headers={"x-request-id": sent})
    assert response.headers["x-request-id"] == sent


@pytest.mark.parametrize("sent", ["has spaces", "x" * 129, "quote\"'", "émoji", ""])
async def test_a_malformed_request_id_is_replaced(client: httpx.AsyncClient, sent: str) -> None:
    response = await client.get("/healthz", headers=[(b"x-request-id", sent.encode())])
    assert GENERATED_ID.fullmatch(response.headers["x-request-id"])


async def test_error_responses_carry_the_request_id(client: httpx.AsyncClient) -> None:
    refusals = [
        await client.get("/v1/nothing-here", headers={"x-request-id": "r-404"}),
        await client.delete("/v1/moments", headers={"x-request-id": "r-405"}),
        await client.post("/v1/touchpoints", json={}, headers={"x-request-id": "r-422"}),
    ]
    assert [r.status_code for r in refusals] == [404, 405, 422]
    assert [r.headers["x-request-id"] for r in refusals] == ["r-404", "r-405", "r-422"]


async def test_an_unhandled_error_is_answered_and_logged_with_the_request_id_but_no_message(
    failing_client: httpx.AsyncClient, log_output: io.StringIO
) -> None:
    response = await failing_client.get(
        f"/v1/failing/{CLIENT_REF}", headers={"x-request-id": "r-500"}
    )
    assert response.status_code == 500
    assert response.json()["code"] == "internal_error"
    assert response.headers["x-request-id"] == "r-500"

    (error,) = [line for line in _lines(log_output) if line["level"] == "ERROR"]
    assert error["request_id"] == "r-500"
    assert "builtins.RuntimeError: (message withheld from logs)" in error["exc_info"]
    assert 'raise RuntimeError(f"could not handle client {client_ref}")' in error["exc_info"]
    (access,) = _access_lines(log_output)
    assert (access["route"], access["status"]) == ("/v1/failing/{client_ref}", 500)
    assert CLIENT_REF not in log_output.getvalue()


async def test_log_lines_are_json_and_carry_the_request_id(
    client: httpx.AsyncClient, log_output: io.StringIO
) -> None:
    await client.get("/v1/moments", headers={"x-request-id": "trace-me-1"})
    await client.post("/v1/touchpoints", json=touchpoint(id="j-1"))

    listing, posting = _access_lines(log_output)
    assert {"time", "level", "logger", "message"} <= listing.keys()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", listing["time"])
    assert listing["level"] == "INFO"
    assert listing["request_id"] == "trace-me-1"
    assert (listing["method"], listing["route"], listing["status"]) == ("GET", "/v1/moments", 200)
    assert listing["duration_ms"] >= 0
    assert GENERATED_ID.fullmatch(posting["request_id"])
    assert (posting["route"], posting["status"]) == ("/v1/touchpoints", 201)


async def test_neither_client_ref_nor_comment_reaches_the_logs(
    client: httpx.AsyncClient, log_output: io.StringIO
) -> None:
    body = touchpoint(
        id="secret-1", client_ref=CLIENT_REF, comment=COMMENT, rating={"scale": "csat5", "value": 1}
    )
    assert (await client.post("/v1/touchpoints", json=body)).status_code == 201
    journey = await client.get(f"/v1/clients/{CLIENT_REF}/journey")
    assert journey.json()["data"][0]["comment"] == COMMENT
    listing = await client.get("/v1/touchpoints", params={"client_ref": CLIENT_REF})
    assert len(listing.json()["data"]) == 1
    refusals = [
        await client.get(f"/v1/clients/{CLIENT_REF}-unknown/journey"),
        await client.post("/v1/touchpoints", json={**body, "id": "secret-2", "agent": 7}),
        await client.post("/v1/touchpoints", json={**body, "comment": f"{COMMENT} again"}),
        await client.post("/v1/touchpoints/batch", json={"touchpoints": [{**body, "id": 3}]}),
        await client.get("/v1/touchpoints", params={"client_ref": CLIENT_REF * 20}),
    ]
    assert [r.status_code for r in refusals] == [404, 422, 409, 200, 422]

    routes = [line["route"] for line in _access_lines(log_output)]
    assert "/v1/clients/{client_ref}/journey" in routes
    assert routes.count("/v1/touchpoints") == 5
    logged = log_output.getvalue()
    assert CLIENT_REF not in logged
    assert COMMENT not in logged
    assert CLIENT_REF not in await _metrics(client)


async def test_metrics_label_requests_by_route_template(client: httpx.AsyncClient) -> None:
    journey_404 = {"method": "GET", "route": "/v1/clients/{client_ref}/journey", "status": "404"}
    unmatched = {"method": "GET", "route": "unmatched", "status": "404"}
    before = await _metrics(client)
    await client.get(f"/v1/clients/{CLIENT_REF}/journey")
    await client.get(f"/v1/clients/{CLIENT_REF}-2/journey")
    await client.get(f"/no/such/page/{CLIENT_REF}")
    after = await _metrics(client)

    assert _sample(after, "mot_http_requests_total", **journey_404) == (
        _sample(before, "mot_http_requests_total", **journey_404) + 2
    )
    assert _sample(after, "mot_http_requests_total", **unmatched) == (
        _sample(before, "mot_http_requests_total", **unmatched) + 1
    )
    duration = {"method": "GET", "route": "/v1/clients/{client_ref}/journey"}
    assert _sample(after, "mot_http_request_duration_seconds_count", **duration) == (
        _sample(before, "mot_http_request_duration_seconds_count", **duration) + 2
    )
    assert CLIENT_REF not in after


async def test_metrics_are_not_in_the_api_description(client: httpx.AsyncClient) -> None:
    assert "/metrics" not in (await client.get("/openapi.json")).json()["paths"]


async def test_metrics_count_every_outcome_of_a_batch(client: httpx.AsyncClient) -> None:
    assert (await client.post("/v1/touchpoints", json=touchpoint(id="m-old"))).status_code == 201
    before = await _metrics(client)
    batch = [
        touchpoint(id="m-1"),
        touchpoint(id="m-2"),
        touchpoint(id="m-old"),  # a retry
        touchpoint(id="m-1"),  # the same item twice in one batch
        touchpoint(id="m-old", team="another-team"),  # the id reused for other content
        touchpoint(id="m-3", rating={"scale": "csat5", "value": 9}),
    ]
    result = (await client.post("/v1/touchpoints/batch", json={"touchpoints": batch})).json()
    assert (result["accepted"], result["duplicates"], result["rejected"]) == (2, 2, 2)
    after = await _metrics(client)

    def added(outcome: str) -> float:
        name = "mot_touchpoints_ingested_total"
        return _sample(after, name, outcome=outcome) - _sample(before, name, outcome=outcome)

    assert [added(o) for o in ("created", "duplicate", "conflict", "invalid")] == [2, 2, 1, 1]


async def test_metrics_count_single_posts_refused_and_retried(client: httpx.AsyncClient) -> None:
    before = await _metrics(client)
    await client.post("/v1/touchpoints", json=touchpoint(id="s-1"))
    await client.post("/v1/touchpoints", json=touchpoint(id="s-1"))
    await client.post("/v1/touchpoints", json=touchpoint(id="s-1", team="other"))
    after = await _metrics(client)

    def added(outcome: str) -> float:
        name = "mot_touchpoints_ingested_total"
        return _sample(after, name, outcome=outcome) - _sample(before, name, outcome=outcome)

    assert [added(o) for o in ("created", "duplicate", "conflict")] == [1, 1, 1]


async def test_metrics_count_follow_ups_and_late_ratings(client: httpx.AsyncClient) -> None:
    before = await _metrics(client)
    bad = {"scale": "csat5", "value": 1}
    batch = [touchpoint(id="f-1", rating=bad), touchpoint(id="f-2", complaint=True)]
    await client.post("/v1/touchpoints/batch", json={"touchpoints": batch})
    await client.post("/v1/touchpoints", json=touchpoint(id="f-3"))
    await client.put("/v1/touchpoints/f-3/rating", json=bad)
    await client.put("/v1/touchpoints/f-3/rating", json=bad)  # the same rating again
    after = await _metrics(client)

    def added(name: str, **labels: str) -> float:
        return _sample(after, name, **labels) - _sample(before, name, **labels)

    assert added("mot_follow_ups_opened_total", reason="negative_rating") == 2
    assert added("mot_follow_ups_opened_total", reason="complaint") == 1
    assert added("mot_late_ratings_total", outcome="recorded") == 1
    assert added("mot_late_ratings_total", outcome="unchanged") == 1


def _total(counter: Counter) -> float:
    (family,) = counter.collect()
    return sum(s.value for s in family.samples if s.name.endswith("_total"))


async def test_counts_wait_for_the_commit_and_a_rollback_drops_them(database_url: str) -> None:
    counter = Counter("things", "Counted by this test only.", registry=None)
    database = Database(database_url)
    try:
        async with database.write_sessions() as session:
            async with session.begin():
                metrics.count_on_commit(session, counter, 2)
                async with session.begin_nested():
                    metrics.count_on_commit(session, counter, 1)
                assert _total(counter) == 0  # a savepoint released is not a commit
            assert _total(counter) == 3
            with contextlib.suppress(RuntimeError):
                async with session.begin():
                    metrics.count_on_commit(session, counter, 5)
                    raise RuntimeError("rolled back")
            async with session.begin():
                pass
            assert _total(counter) == 3
    finally:
        await database.dispose()


@pytest.mark.slow
def test_a_served_service_logs_json_and_adds_up_metrics_across_workers(
    database_url: str, tmp_path: Path
) -> None:
    output = tmp_path / "serve.log"
    with Served(database_url, output, workers=2) as server:
        base_url = server.base_url
        body = touchpoint(
            id="served-1",
            client_ref=CLIENT_REF,
            comment=COMMENT,
            rating={"scale": "thumbs", "value": 0},
        )
        auth = {"Authorization": f"Bearer {ADMIN_KEY}"}
        posted = httpx.post(
            f"{base_url}/v1/touchpoints",
            json=body,
            headers={"x-request-id": "served-post", **auth},
        )
        assert posted.status_code == 201
        journey = httpx.get(f"{base_url}/v1/clients/{CLIENT_REF}/journey", headers=auth)
        assert journey.status_code == 200
        listing = httpx.get(
            f"{base_url}/v1/touchpoints", params={"client_ref": CLIENT_REF}, headers=auth
        )
        assert listing.status_code == 200
        # Each on a new connection, so that both workers answer some.
        for _ in range(10):
            assert httpx.get(f"{base_url}/healthz").status_code == 200
        exposition = httpx.get(f"{base_url}/metrics").text

    healthz = {"method": "GET", "route": "/healthz", "status": "200"}
    assert _sample(exposition, "mot_http_requests_total", **healthz) == 10
    assert _sample(exposition, "mot_touchpoints_ingested_total", outcome="created") == 1
    assert _sample(exposition, "mot_follow_ups_opened_total", reason="negative_rating") == 1
    # Added up from the workers' files: the per-process collectors of a single process's
    # registry are absent.
    assert "python_info" not in exposition
    assert CLIENT_REF not in exposition

    text = output.read_text()
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert all({"time", "level", "logger", "message"} <= line.keys() for line in lines)
    access = [line for line in lines if line["logger"] == "app.access"]
    assert {"served-post"} <= {line["request_id"] for line in access}
    assert "/v1/clients/{client_ref}/journey" in {line["route"] for line in access}
    assert CLIENT_REF not in text
    assert COMMENT not in text
