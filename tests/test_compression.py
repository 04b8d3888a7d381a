"""Compressed bodies both ways: gzip request bodies are inflated within the body limit, and
large answers are sent gzip-compressed to clients that accept it."""

import gzip
import json
import tracemalloc
import zlib

import httpx
import pytest
from starlette.types import Message

from app.errors import BodyTooLarge
from app.inputs import INFLATE_CHUNK_BYTES, GzipBody
from tests.conftest import ClientFactory
from tests.payloads import touchpoint

pytestmark = pytest.mark.anyio

LIMIT = 1024 * 1024


GZIP_JSON = {"content-encoding": "gzip", "content-type": "application/json"}


def _zeros_bomb(size: int) -> bytes:
    """`size` zero bytes, gzip-compressed: about a thousandth of that."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(1024 * 1024)
    parts = [compressor.compress(block) for _ in range(size // len(block))]
    return b"".join([*parts, compressor.flush()])


async def test_a_gzip_batch_is_stored(client: httpx.AsyncClient) -> None:
    items = [touchpoint(id=f"tp-{i}", comment="Всё хорошо, спасибо") for i in range(50)]
    body = gzip.compress(json.dumps({"touchpoints": items}).encode())
    response = await client.post("/v1/touchpoints/batch", content=body, headers=GZIP_JSON)
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 50
    stored = await client.get("/v1/touchpoints/tp-7")
    assert stored.json()["comment"] == "Всё хорошо, спасибо"


async def test_a_gzip_single_touchpoint_is_stored(client: httpx.AsyncClient) -> None:
    body = gzip.compress(json.dumps(touchpoint(id="tp-single")).encode())
    response = await client.post("/v1/touchpoints", content=body, headers=GZIP_JSON)
    assert response.status_code == 201, response.text
    assert response.json()["id"] == "tp-single"


async def test_a_gzip_bomb_is_refused_without_being_inflated(make_client: ClientFactory) -> None:
    bomb = _zeros_bomb(10 * 1024 * 1024)
    assert len(bomb) < 20_000
    async with make_client(max_body_bytes=LIMIT) as client:
        tracemalloc.start()
        try:
            response = await client.post("/v1/touchpoints/batch", content=bomb, headers=GZIP_JSON)
            _current, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert response.status_code == 413, response.text
        assert response.json()["code"] == "payload_too_large"
        assert response.json()["details"][0]["type"] == "max_bytes"
        # Inflated whole, the body alone would take 10 MB.
        assert peak < 5 * LIMIT
        assert (await client.get("/v1/touchpoints")).json()["data"] == []


async def test_inflating_stops_one_chunk_past_the_limit() -> None:
    """The inflating `receive` itself, fed a bomb by a server that sends it in pieces."""
    bomb = _zeros_bomb(10 * 1024 * 1024)
    pieces = [bomb[start : start + 1000] for start in range(0, len(bomb), 1000)]
    sent = 0

    async def receive() -> Message:
        nonlocal sent
        sent += 1
        return {"type": "http.request", "body": pieces[sent - 1], "more_body": sent < len(pieces)}

    body = GzipBody(receive, max_bytes=LIMIT)
    read = 0

    async def read_all() -> None:  # what FastAPI does: read until the body ends
        nonlocal read
        while True:
            message = await body.receive()
            read += len(message["body"])
            assert message["more_body"], "the bomb never ends within the limit"

    with pytest.raises(BodyTooLarge):
        await read_all()
    assert read <= LIMIT
    assert LIMIT < body.inflated <= LIMIT + INFLATE_CHUNK_BYTES
    # It stopped reading the bomb long before its end.
    assert sent < len(pieces) / 2


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not gzip at all", "not a gzip stream"),
        (gzip.compress(b'{"touchpoints": []}')[:-6], "ends before its end"),
        (gzip.compress(b'{"touchpoints": []}') + b"junk", "follows the end"),
    ],
    ids=["not-gzip", "truncated", "trailing-data"],
)
async def test_a_broken_gzip_body_is_a_clear_400(
    client: httpx.AsyncClient, body: bytes, reason: str
) -> None:
    response = await client.post("/v1/touchpoints/batch", content=body, headers=GZIP_JSON)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid_gzip"
    assert reason in response.json()["details"][0]["message"]


async def test_an_unsupported_content_encoding_is_a_415(client: httpx.AsyncClient) -> None:
    body = json.dumps(touchpoint()).encode()
    response = await client.post(
        "/v1/touchpoints",
        content=body,
        headers={"content-encoding": "br", "content-type": "application/json"},
    )
    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_content_encoding"
    assert response.json()["details"][0]["field"] == "header.content-encoding"


async def test_a_large_answer_is_gzip_compressed_when_accepted(client: httpx.AsyncClient) -> None:
    items = [touchpoint(id=f"tp-{i}") for i in range(100)]
    assert (await client.post("/v1/touchpoints/batch", json={"touchpoints": items})).is_success
    compressed = await client.get(
        "/v1/touchpoints", params={"limit": 100}, headers={"accept-encoding": "gzip"}
    )
    assert compressed.headers["content-encoding"] == "gzip"
    assert "accept-encoding" in compressed.headers["vary"].lower()
    # httpx inflates it: the answer reads as the plain one does.
    assert len(compressed.json()["data"]) == 100
    assert compressed.headers["x-request-id"]
    plain = await client.get(
        "/v1/touchpoints", params={"limit": 100}, headers={"accept-encoding": "identity"}
    )
    assert "content-encoding" not in plain.headers
    assert plain.json() == compressed.json()


async def test_a_small_answer_is_sent_as_is(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz", headers={"accept-encoding": "gzip"})
    assert "content-encoding" not in response.headers
