"""An acknowledged write is durable: `mot serve` killed mid-stream, restarted, retried.

Two clients stream batches of touchpoints, each retrying a batch with the same ids until
it is answered, while the test kills the server (SIGKILL: nothing gets to finish or clean
up) several times and restarts it on the same database and port. Before each kill one more
client posts a batch and loses the answer: the batch is committed but never acknowledged.

While the server is down the test reads what the crash left in the database. Afterwards
every touchpoint is stored exactly once; no batch was ever half stored; and every retried
batch was answered "duplicate" exactly when an attempt cut off by a kill had committed it.
"""

import http.client
import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.payloads import touchpoint
from tests.servers import AUTH_HEADERS, Served
from tests.serving.stored import counted_touchpoints, stored_ids, wait_until_disconnected

pytestmark = pytest.mark.slow

BATCH_SIZE = 200
STREAMS = 2
KILLS = 2
ANSWERED_BEFORE_EACH_KILL = 3
RETRY_FOR = 120.0
# How a request fails when the server is down: it never reached it. Any other failure
# (reset, closed without an answer) cut off a request the server had received.
REFUSED = "ConnectError"


@dataclass
class Batch:
    ids: list[str]
    # The kill (1, 2, ...) each failed attempt ran into, and how it failed.
    failures: list[tuple[int, str]] = field(default_factory=list)
    status_code: int | None = None
    statuses: dict[str, str] = field(default_factory=dict)
    answer: str = ""

    def body(self) -> dict[str, Any]:
        return {"touchpoints": [touchpoint(id=id_) for id_ in self.ids]}


class Kills:
    """How many times the server was killed so far, and the ids stored at each kill."""

    def __init__(self) -> None:
        self.done = 0
        self.stored_at: list[set[str]] = []


def _post_until_answered(http: httpx.Client, batch: Batch, kills: Kills) -> None:
    """Post the batch, retrying with the same ids for as long as no answer comes back."""
    deadline = time.monotonic() + RETRY_FOR
    while True:
        try:
            response = http.post("/v1/touchpoints/batch", json=batch.body())
        except httpx.TransportError as error:
            batch.failures.append((kills.done, type(error).__name__))
            assert time.monotonic() < deadline, f"no answer for {batch.ids[0]}: {batch.failures}"
            time.sleep(0.05)  # the server is down: try again shortly, as a client would
            continue
        batch.status_code = response.status_code
        batch.answer = response.text
        if response.status_code == 200:
            batch.statuses = {item["id"]: item["status"] for item in response.json()["items"]}
        return


class Stream(threading.Thread):
    """A client that posts batch after batch until told to finish."""

    def __init__(
        self,
        name: str,
        base_url: str,
        *,
        kills: Kills,
        progress: threading.Condition,
        finish: threading.Event,
    ) -> None:
        super().__init__(name=name, daemon=True)
        self.base_url = base_url
        self.kills = kills
        self.progress = progress
        self.finish = finish
        self.batches: list[Batch] = []
        self.answered = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with httpx.Client(base_url=self.base_url, headers=AUTH_HEADERS, timeout=60) as http:
                while not self.finish.is_set():
                    number = len(self.batches)
                    ids = [f"{self.name}-{number:04d}-{item:03d}" for item in range(BATCH_SIZE)]
                    batch = Batch(ids)
                    self.batches.append(batch)
                    _post_until_answered(http, batch, self.kills)
                    with self.progress:
                        self.answered += 1
                        self.progress.notify_all()
        except BaseException as error:
            self.error = error


def _wait_for_answers(progress: threading.Condition, streams: list[Stream], count: int) -> None:
    """Wait until every stream has had `count` more batches answered."""
    with progress:
        targets = [stream.answered + count for stream in streams]
        answered = progress.wait_for(
            lambda: all(s.answered >= t for s, t in zip(streams, targets, strict=True)),
            timeout=RETRY_FOR,
        )
    assert answered, "a stream got stuck"


def _post_and_lose_the_answer(server: Served, batch: Batch) -> http.client.HTTPConnection:
    """Send the batch, and wait until it is committed without reading the answer."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    headers = {**AUTH_HEADERS, "Content-Type": "application/json"}
    connection.request(
        "POST", "/v1/touchpoints/batch", body=json.dumps(batch.body()), headers=headers
    )
    deadline = time.monotonic() + RETRY_FOR
    with server.client() as reader:
        # A batch is one transaction: once one of its touchpoints reads back, all of them do.
        while reader.get(f"/v1/touchpoints/{batch.ids[-1]}").status_code != 200:
            assert time.monotonic() < deadline, "the batch whose answer is lost never landed"
            time.sleep(0.02)
    return connection


def test_every_acknowledged_touchpoint_survives_kills_exactly_once(
    database_url: str, tmp_path: Path
) -> None:
    kills = Kills()
    progress = threading.Condition()
    finish = threading.Event()
    lost: list[Batch] = []
    with Served(database_url, tmp_path / "serve.log") as server:
        streams = [
            Stream(f"s{n}", server.base_url, kills=kills, progress=progress, finish=finish)
            for n in range(STREAMS)
        ]
        for stream in streams:
            stream.start()
        try:
            for kill in range(1, KILLS + 1):
                _wait_for_answers(progress, streams, ANSWERED_BEFORE_EACH_KILL)
                unanswered = Batch([f"lost{kill}-{item:03d}" for item in range(BATCH_SIZE)])
                connection = _post_and_lose_the_answer(server, unanswered)
                kills.done = kill
                server.kill()
                connection.close()
                unanswered.failures.append((kill, "answer lost"))
                lost.append(unanswered)
                wait_until_disconnected(database_url)
                kills.stored_at.append(set(stored_ids(database_url)))
                server.start()
            _wait_for_answers(progress, streams, ANSWERED_BEFORE_EACH_KILL)
        finally:
            finish.set()
            for stream in streams:
                stream.join(timeout=RETRY_FOR)
        with server.client() as http:
            for batch in lost:
                _post_until_answered(http, batch, kills)

    for stream in streams:
        assert stream.error is None, f"{stream.name} failed: {stream.error!r}"
        assert not stream.is_alive(), f"{stream.name} never finished"
    batches = [batch for stream in streams for batch in stream.batches] + lost
    for batch in batches:
        assert batch.status_code == 200, f"{batch.ids[0]}: {batch.status_code} {batch.answer}"
        assert sorted(batch.statuses) == batch.ids
        # A batch is one transaction: a crash leaves all of it or none of it.
        for stored in kills.stored_at:
            assert stored.isdisjoint(batch.ids) or stored.issuperset(batch.ids), batch.ids[0]
        if not batch.failures:
            assert set(batch.statuses.values()) == {"created"}, batch.ids[0]
            continue
        # Retried after the kill its last failed attempt ran into: "duplicate" exactly when
        # an attempt cut off by a kill had committed the batch before it.
        committed_before = kills.stored_at[max(kill for kill, _ in batch.failures) - 1]
        expected = "duplicate" if committed_before.issuperset(batch.ids) else "created"
        assert set(batch.statuses.values()) == {expected}, (batch.ids[0], batch.failures)

    every_id = [id_ for batch in batches for id_ in batch.ids]
    assert stored_ids(database_url) == dict.fromkeys(every_id, 1)
    assert counted_touchpoints(database_url) == len(every_id)
    # The kills really cut the streams off: each one failed requests that were then retried,
    # and at least one of them was cut off in flight rather than refused.
    stream_failures = [
        failure for stream in streams for batch in stream.batches for failure in batch.failures
    ]
    for kill in range(1, KILLS + 1):
        assert any(at == kill for at, _ in stream_failures), f"kill {kill} cut nothing off"
    assert any(how != REFUSED for _, how in stream_failures), stream_failures
