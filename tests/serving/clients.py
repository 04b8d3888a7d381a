"""Client code that runs in processes of its own, beside a served instance.

Kept to what a client needs (no app, no database driver), so that a spawned client
process starts in a fraction of a second.
"""

import random
from multiprocessing.synchronize import Barrier
from typing import Any, NamedTuple

import httpx

from tests.payloads import touchpoint
from tests.servers import AUTH_HEADERS

RACED_TOUCHPOINTS = 400
RACED_MOMENTS = ("race.billing", "race.delivery", "race.returns", "race.support")


class Plan(NamedTuple):
    """How one client posts the touchpoints.

    In number order or shuffled (`seed`), the first `singles` one by one and the others in
    batches of `batch_size`, each batch in that order or reversed (`reverse_batches`). A
    `paired` client starts each batch together with the other paired client.
    """

    seed: int | None
    singles: int
    batch_size: int
    reverse_batches: bool = False
    paired: bool = False


class Answer(NamedTuple):
    ids: list[str]
    single: bool
    status_code: int
    body: Any


def raced_touchpoint(number: int) -> dict[str, Any]:
    """Touchpoint `number`, the same in every client: some negative, some complaints."""
    return touchpoint(
        id=f"race-{number:04d}",
        moment=RACED_MOMENTS[number % len(RACED_MOMENTS)],
        client_ref=f"c-{number % 37}",
        rating={"scale": "csat5", "value": 1 + number % 5},
        complaint=number % 11 == 0,
    )


def _post_all(base_url: str, plan: Plan, start: Barrier, pair: Barrier) -> list[Answer]:
    order = list(range(RACED_TOUCHPOINTS))
    if plan.seed is not None:
        random.Random(plan.seed).shuffle(order)
    items = [raced_touchpoint(number) for number in order]
    singles, rest = items[: plan.singles], items[plan.singles :]
    batches = [rest[at : at + plan.batch_size] for at in range(0, len(rest), plan.batch_size)]
    if plan.reverse_batches:
        batches = [batch[::-1] for batch in batches]
    answers = []
    with httpx.Client(base_url=base_url, headers=AUTH_HEADERS, timeout=120) as http:
        http.get("/readyz")  # connected before the start, so that all begin together
        start.wait(timeout=120)
        for index, batch in enumerate(batches):
            # Single posts spread between the batches, so that they race batches too.
            for item in singles[index :: len(batches)]:
                response = http.post("/v1/touchpoints", json=item)
                answers.append(Answer([item["id"]], True, response.status_code, _body(response)))
            if plan.paired:
                pair.wait(timeout=120)
            response = http.post("/v1/touchpoints/batch", json={"touchpoints": batch})
            ids = [item["id"] for item in batch]
            answers.append(Answer(ids, False, response.status_code, _body(response)))
    return answers


def _body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


def race(base_url: str, plan: Plan, start: Barrier, pair: Barrier, results: Any) -> None:
    """A client process: posts every raced touchpoint as `plan` says, after `start`.

    Its answers go back through the `results` queue, and so does any failure.
    """
    try:
        results.put((plan, _post_all(base_url, plan, start, pair)))
    except BaseException as error:
        results.put((plan, repr(error)))
        raise
