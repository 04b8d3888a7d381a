"""`mot smoke`: the check a consumer's CI runs against a live service.

It posts a few touchpoints (one batch, its retry, one single post), reads them back and
checks what the service computed. Every step either passes or raises `SmokeFailure`
with a message saying what was expected and what came back.
"""

import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from xml.etree import ElementTree

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


SMOKE_STEPS = (
    "service is ready",
    f"moment {SMOKE_MOMENT} catalogued",
    "batch stored once, retry recognised",
    "single touchpoint stored, retry answered 200",
    "touchpoints read back with normalised scores",
)
"""The steps of `run_smoke`, in order: the test cases of a JUnit report."""
WAIT_STEP = "service becomes ready"
"""The step of `wait_until_ready`, when the caller waits before the check."""


@dataclass(frozen=True, slots=True)
class StepResult:
    """One step of a smoke check that ran: how long it took, and why it failed if it did."""

    name: str
    seconds: float
    failure: str | None = None


@contextmanager
def _step(
    name: str, *, base_url: str, results: list[StepResult], report: Callable[[str], None]
) -> Iterator[None]:
    started = time.monotonic()
    try:
        yield
    except SmokeFailure as failure:
        results.append(StepResult(name, time.monotonic() - started, str(failure)))
        raise
    except httpx.HTTPError as error:
        message = f"cannot talk to {base_url}: {error!r}"
        results.append(StepResult(name, time.monotonic() - started, message))
        raise SmokeFailure(message) from error
    results.append(StepResult(name, time.monotonic() - started))
    report(f"ok  {name}")


def run_smoke(
    base_url: str,
    *,
    api_key: str,
    timeout: float = 10.0,
    report: Callable[[str], None] = print,
    results: list[StepResult] | None = None,
) -> list[StepResult]:
    """Run every step of `SMOKE_STEPS` against `base_url` with a key that may ingest, read
    and manage moments (e.g. an admin key); raise SmokeFailure at the first step that fails.

    Each step that ran is appended to `results` (when given) as it ends, so that a caller
    still has them when a step fails; the list is returned too.
    """
    done: list[StepResult] = [] if results is None else results
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
    ready_step, moment_step, batch_step, single_step, read_step = SMOKE_STEPS

    def step(name: str) -> AbstractContextManager[None]:
        return _step(name, base_url=base_url, results=done, report=report)

    headers = {"Authorization": f"Bearer {api_key}"}
    with httpx.Client(base_url=base_url, timeout=timeout, headers=headers) as http:
        with step(ready_step):
            ready = _json(http.get("/readyz"), {200}, "GET /readyz")
            _expect(ready.get("status") == "ready", f"GET /readyz: service not ready: {ready}")

        with step(moment_step):
            _json(
                http.post("/v1/moments", json={"key": SMOKE_MOMENT, "name": "Smoke check"}),
                {201, 409},
                "POST /v1/moments",
            )

        with step(batch_step):
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

        single = {
            "id": f"smoke-{run}-single",
            "moment": SMOKE_MOMENT,
            "client_ref": client_ref,
            "rating": {"scale": "ces7", "value": 7},
        }
        with step(single_step):
            stored = _json(http.post("/v1/touchpoints", json=single), {201}, "POST /v1/touchpoints")
            _expect(
                stored["rating"]["score"] == 100.0 and stored["rating"]["sentiment"] == "positive",
                f"single post: ces7 7 should score 100 (positive), got {stored['rating']}",
            )
            _json(http.post("/v1/touchpoints", json=single), {200}, "POST /v1/touchpoints (retry)")

        with step(read_step):
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
    return done


def junit_report(
    results: Sequence[StepResult], *, url: str, steps: Sequence[str] = SMOKE_STEPS
) -> bytes:
    """A JUnit XML report of a smoke check: one test case per step, in the order of `steps`
    after any step of `results` not among them (such as waiting for the service).

    A step that failed carries its message; a step that never ran (an earlier one failed)
    is skipped, so that the report always lists the whole check.
    """
    ran = {result.name: result for result in results}
    names = [result.name for result in results if result.name not in steps] + list(steps)
    suite = ElementTree.Element(
        "testsuite",
        name="mot smoke",
        tests=str(len(names)),
        failures=str(sum(result.failure is not None for result in results)),
        errors="0",
        skipped=str(sum(name not in ran for name in names)),
        time=f"{sum(result.seconds for result in results):.3f}",
        timestamp=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    properties = ElementTree.SubElement(suite, "properties")
    ElementTree.SubElement(properties, "property", name="url", value=url)
    for name in names:
        result = ran.get(name)
        case = ElementTree.SubElement(
            suite,
            "testcase",
            classname="mot.smoke",
            name=name,
            time=f"{result.seconds:.3f}" if result else "0",
        )
        if result is None:
            ElementTree.SubElement(case, "skipped", message="not run: an earlier step failed")
        elif result.failure is not None:
            failure = ElementTree.SubElement(case, "failure", message=result.failure)
            failure.text = result.failure
    root = ElementTree.Element("testsuites", name="mot smoke")
    root.append(suite)
    ElementTree.indent(root)
    document: bytes = ElementTree.tostring(root, encoding="utf-8", xml_declaration=True)
    return document
