"""Tiny builders for the insights API tests: moments, touchpoints, one batch post, queries."""

import csv
import io
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import httpx

BATCH_MAX = 1000


def at(text: str) -> datetime:
    """An aware datetime from RFC 3339 text with `Z` or an offset."""
    return datetime.fromisoformat(text.upper().replace("Z", "+00:00"))


def window(start: str, end: str) -> dict[str, str]:
    """Query parameters of a window; always explicit, since the default is relative to now."""
    return {"from": start, "to": end}


async def add_moment(client: httpx.AsyncClient, key: str, **fields: Any) -> None:
    """Catalogue a moment; without a target unless one is given, so it is judged by baseline."""
    response = await client.post(
        "/v1/moments", json={"key": key, "target_negative_rate": None, **fields}
    )
    assert response.status_code == 201, response.text


def touchpoint(moment: str, occurred_at: str | datetime, **fields: Any) -> dict[str, Any]:
    """A touchpoint body; `scale` and `value` make its rating, other keywords are fields."""
    when = occurred_at if isinstance(occurred_at, str) else occurred_at.isoformat()
    body: dict[str, Any] = {"moment": moment, "channel": "call", "occurred_at": when}
    scale, value = fields.pop("scale", None), fields.pop("value", None)
    if scale is not None:
        body["rating"] = {"scale": scale, "value": value}
    body.update(fields)
    return body


def rated(
    moment: str,
    first: str,
    scale: str,
    values: Iterable[int | None],
    *,
    spacing: timedelta = timedelta(minutes=1),
    **fields: Any,
) -> list[dict[str, Any]]:
    """One touchpoint per value (None: unrated), `spacing` apart from `first` on."""
    start = at(first)
    items = []
    for position, value in enumerate(values):
        rating = {} if value is None else {"scale": scale, "value": value}
        items.append(touchpoint(moment, start + position * spacing, **rating, **fields))
    return items


async def post(client: httpx.AsyncClient, items: list[dict[str, Any]]) -> None:
    """Post touchpoints in batches; every one of them must be accepted."""
    for offset in range(0, len(items), BATCH_MAX):
        chunk = items[offset : offset + BATCH_MAX]
        response = await client.post("/v1/touchpoints/batch", json={"touchpoints": chunk})
        assert response.status_code == 200, response.text
        assert response.json()["accepted"] == len(chunk), response.text


async def get_json(client: httpx.AsyncClient, path: str, params: dict[str, Any]) -> Any:
    """GET a JSON answer that must be a 200."""
    response = await client.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def listed(weak_spots: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every weak-spots item by moment key, ranked and insufficient alike."""
    items = [*weak_spots["data"], *weak_spots["insufficient_data"]]
    return {item["moment"]: item for item in items}


def counts(item: dict[str, Any]) -> tuple[int, int, int]:
    """(touchpoints, responses, negatives) of an answer item."""
    return item["touchpoints"], item["responses"], item["negatives"]


CSV_ROUNDING = 5e-5
"""How far a CSV figure may be from the JSON one: CSV rounds to 4 decimals."""


def read_csv(response: httpx.Response) -> tuple[list[str], list[dict[str, str]]]:
    """(columns, rows) of a CSV answer, which must open with a UTF-8 byte order mark."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.content.startswith(b"\xef\xbb\xbf")
    reader = csv.DictReader(io.StringIO(response.content.decode("utf-8-sig")))
    rows = list(reader)
    return list(reader.fieldnames or []), rows
