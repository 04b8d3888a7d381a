"""`mot smoke`: the check a consumer's CI runs against a live service.

It posts a few touchpoints (one batch, its retry, one single post), reads them back and
checks what the service computed. Every step either passes or raises `SmokeFailure`
with a message saying what was expected and what came back.
"""

import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx

SMOKE_MOMENT = "smoke.check"


class SmokeFailure(Exception):
    pass


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise SmokeFailure(message)


def _json(response: httpx.Response, expected_status: set[int], step: str) -> Any:
    if response.status_code not in expected_status:
        raise SmokeFailure(
            f"{step}: expected HTTP {sorted(expected_status)}, got {response.status_code}: "
            f"{response.text[:500]}"
        )
    return response.json()


def wait_until_ready(base_url: str, *, seconds: float, timeout: float) -> None:
    """Poll /readyz until the service answers ready; SmokeFailure when `seconds` run out."""
    deadline = time.monotonic() + seconds
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            response = httpx.get(f"{base_url}/readyz", timeout=timeout)
            if response.status_code == 200:
                return
            last = f"HTTP {response.status_code}: {response.text[:200]}"
        except httpx.HTTPError as error:
            last = repr(error)
        time.sleep(0.5)
    raise SmokeFailure(f"{base_url} was not ready within {seconds:g} s (last: {last})")


def run_smoke(
    base_url: str,
    *,
    api_key: str,
    timeout: float = 10.0,
    report: Callable[[str], None] = print,
) -> None:
    """Run every step against `base_url` with a key that may ingest, read and manage
    moments (e.g. an admin key); raise SmokeFailure at the first step that fails."""
    run = uuid.uuid4().hex[:12]
    client_ref = f"smoke-{run}"
    ratings = [
        ("csat5", 5, 100.0, "positive"),
        ("nps11", 3, 30.0, "negative"),
        ("thumbs", 0, 0.0, "negative"),
    ]
    batch = [
        {
            "id": f"smoke-{run}-{i}",
            "moment": SMOKE_MOMENT,
            "channel": "other",
            "client_ref": client_ref,
            "source": "mot-smoke",
            "rating": {"scale": scale, "value": value},
        }
        for i, (scale, value, _score, _sentiment) in enumerate(ratings)
    ]
    try:
        headers = {"Authorization": f"Bearer {api_key}"}
        with httpx.Client(base_url=base_url, timeout=timeout, headers=headers) as http:
            ready = _json(http.get("/readyz"), {200}, "GET /readyz")
            _expect(ready.get("status") == "ready", f"GET /readyz: service not ready: {ready}")
            report("ok  service is ready")

            _json(
                http.post("/v1/moments", json={"key": SMOKE_MOMENT, "name": "Smoke check"}),
                {201, 409},
                "POST /v1/moments",
            )
            report(f"ok  moment {SMOKE_MOMENT} catalogued")

            first = _json(
                http.post("/v1/touchpoints/batch", json={"touchpoints": batch}),
                {200},
                "POST /v1/touchpoints/batch",
            )
            _expect(
                first.get("accepted") == len(batch),
                f"batch: expected {len(batch)} accepted, got {first}",
            )
            retry = _json(
                http.post("/v1/touchpoints/batch", json={"touchpoints": batch}),
                {200},
                "POST /v1/touchpoints/batch (retry)",
            )
            _expect(
                retry.get("duplicates") == len(batch) and retry.get("accepted") == 0,
                f"batch retry: expected {len(batch)} duplicates and nothing stored, got {retry}",
            )
            report(f"ok  batch of {len(batch)} stored once, retry recognised")

            single = {
                "id": f"smoke-{run}-single",
                "moment": SMOKE_MOMENT,
                "client_ref": client_ref,
                "rating": {"scale": "ces7", "value": 7},
            }
            stored = _json(http.post("/v1/touchpoints", json=single), {201}, "POST /v1/touchpoints")
            _expect(
                stored["rating"]["score"] == 100.0 and stored["rating"]["sentiment"] == "positive",
                f"single post: ces7 7 should score 100 (positive), got {stored['rating']}",
            )
            _json(http.post("/v1/touchpoints", json=single), {200}, "POST /v1/touchpoints (retry)")
            report("ok  single touchpoint stored, retry answered 200")

            for item, (scale, value, score, sentiment) in zip(batch, ratings, strict=True):
                read = _json(
                    http.get(f"/v1/touchpoints/{item['id']}"),
                    {200},
                    f"GET /v1/touchpoints/{item['id']}",
                )
                expected = {"scale": scale, "value": value, "score": score, "sentiment": sentiment}
                got = {k: read["rating"][k] for k in expected}
                _expect(got == expected, f"touchpoint {item['id']}: expected {expected}, got {got}")
            listed = _json(
                http.get("/v1/touchpoints", params={"client_ref": client_ref}),
                {200},
                "GET /v1/touchpoints",
            )
            ids = {tp["id"] for tp in listed["data"]}
            wanted = {str(item["id"]) for item in batch} | {str(single["id"])}
            _expect(ids == wanted, f"list by client: expected {sorted(wanted)}, got {sorted(ids)}")
            report("ok  touchpoints read back with normalised scores")
    except httpx.HTTPError as error:
        raise SmokeFailure(f"cannot talk to {base_url}: {error!r}") from error
