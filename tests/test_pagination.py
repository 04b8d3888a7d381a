"""Cursors are input like any other: a forged one is a 422 naming `cursor`, on every list,
whatever it decodes to, and never reaches the database."""

import base64

import httpx
import pytest

from tests.payloads import touchpoint

pytestmark = pytest.mark.anyio

# The five lists paginated by cursor, each with the shape of the position its cursors carry.
_BY_TIME = ("time", "id")
LISTS = {
    "/v1/touchpoints": _BY_TIME,
    "/v1/clients/c-0001/journey": _BY_TIME,
    "/v1/follow-ups": _BY_TIME,
    "/v1/moments": ("key",),
    "/v1/audit": ("id",),
}

# What a forger may put in the place of one value of a position, as JSON text.
FORGED = {
    "naive time": '"2026-11-02T09:30:00"',
    "year 1": '"0001-01-01T00:00:00+00:00"',
    "year 1 east of UTC": '"0001-01-01T00:30:00+01:00"',
    "year 9999": '"9999-12-31T23:59:59+00:00"',
    "year 9999 west of UTC": '"9999-12-31T23:30:00-01:00"',
    "infinity": "Infinity",
    "minus infinity": "-Infinity",
    "not a number": "NaN",
    "lone surrogate": '"\\ud800"',
    "nul": '"a\\u0000b"',
    "2**63": str(2**63),
    "2**64": str(2**64),
    "minus 2**63 minus 1": str(-(2**63) - 1),
    "fraction": "1.5",
    "boolean": "true",
    "null": "null",
    "object": '{"a": 1}',
}
# Good values of each part, so that one part at a time is forged.
_GOOD = {"time": '"2026-11-02T09:30:00+00:00"', "id": "1", "key": '"service-desk.first-voice"'}


def _cursor(json_text: str) -> str:
    return base64.urlsafe_b64encode(json_text.encode()).decode().rstrip("=")


def _forged_positions(parts: tuple[str, ...]) -> dict[str, str]:
    """Positions with one part forged at a time, by what was forged."""
    positions = {}
    for forged_part in parts:
        for name, value in FORGED.items():
            values = [value if part == forged_part else _GOOD[part] for part in parts]
            positions[f"{forged_part}: {name}"] = f"[{','.join(values)}]"
    return positions


# Not a position at all: not base64, not JSON, not a list, a list of another length.
NOT_POSITIONS = [
    "nonsense",
    _cursor("[1,2,3]"),
    _cursor('{"a": 1}'),
    _cursor("[]"),
    _cursor("[1"),
    base64.urlsafe_b64encode(b"\xff\xfe[1]").decode(),
    "é",
]


@pytest.fixture
async def stocked(client: httpx.AsyncClient) -> httpx.AsyncClient:
    """A client whose lists have rows: a complaint opens a follow-up, an erasure audits."""
    stored = await client.post("/v1/touchpoints", json=touchpoint(complaint=True))
    assert stored.status_code == 201, stored.text
    erased = await client.delete("/v1/clients/c-9999")
    assert erased.status_code == 200, erased.text
    return client


# One test per list, every forgery in it: a database per forgery would take minutes.
@pytest.mark.parametrize("path", LISTS)
async def test_a_forged_cursor_is_refused_as_invalid_cursor(
    stocked: httpx.AsyncClient, path: str
) -> None:
    cursors = {name: _cursor(text) for name, text in _forged_positions(LISTS[path]).items()}
    cursors.update({f"not a position: {c!r}": c for c in NOT_POSITIONS})
    answers = {}
    for name, cursor in cursors.items():
        response = await stocked.get(path, params={"cursor": cursor})
        body = response.json()
        details = [(d["field"], d["type"]) for d in body.get("details", [])]
        answers[name] = (response.status_code, body.get("code"), details)
    expected = (422, "invalid_cursor", [("query.cursor", "invalid_cursor")])
    assert {name: answer for name, answer in answers.items() if answer != expected} == {}


@pytest.mark.parametrize("path", LISTS)
async def test_the_cursor_a_list_gives_leads_to_its_next_page(
    stocked: httpx.AsyncClient, path: str
) -> None:
    # One more row of each list, so that a page of one has a next page.
    await stocked.post(
        "/v1/touchpoints", json=touchpoint(id="tp-2", moment="m.two", complaint=True)
    )
    await stocked.delete("/v1/clients/c-9998")
    first = await stocked.get(path, params={"limit": 1})
    assert first.status_code == 200, first.text
    cursor = first.json()["next_cursor"]
    assert cursor is not None
    second = await stocked.get(path, params={"limit": 1, "cursor": cursor})
    assert second.status_code == 200, second.text
    assert second.json()["data"] != first.json()["data"]
