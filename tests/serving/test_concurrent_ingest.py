"""Client processes posting the same touchpoints at once: every id stored exactly once.

Four processes post the same touchpoints at the same moment to a server with two workers,
each in its own order and its own split (batches of different sizes, some single posts).
They race each other on every id, and on new moments too: whoever loses a race must be
told "duplicate", never a conflict (the content is the same) and never an error. Two of
them send the same batches at the same time, one in reverse: requests that write the same
new rows in opposite orders are the ones that can deadlock on PostgreSQL.
"""

import multiprocessing
from collections import Counter
from pathlib import Path

import pytest

from tests.servers import Served
from tests.serving.clients import RACED_TOUCHPOINTS, Plan, race, raced_touchpoint
from tests.serving.stored import counted_touchpoints, stored_ids

pytestmark = pytest.mark.slow

PLANS = (
    # The same batches at the same time, in opposite orders: each pair of requests writes
    # the same new ids from opposite ends.
    Plan(seed=None, singles=0, batch_size=100, paired=True),
    Plan(seed=None, singles=0, batch_size=100, reverse_batches=True, paired=True),
    Plan(seed=3, singles=10, batch_size=97),
    Plan(seed=4, singles=60, batch_size=150),
)


def test_clients_racing_on_the_same_ids_store_each_once_and_all_hear_success(
    database_url: str, tmp_path: Path
) -> None:
    spawn = multiprocessing.get_context("spawn")
    start = spawn.Barrier(len(PLANS))
    pair = spawn.Barrier(sum(plan.paired for plan in PLANS))
    results = spawn.Queue()
    with Served(database_url, tmp_path / "serve.log", workers=2) as server:
        clients = [
            spawn.Process(
                target=race, args=(server.base_url, plan, start, pair, results), daemon=True
            )
            for plan in PLANS
        ]
        for client in clients:
            client.start()
        answered = dict(results.get(timeout=240) for _ in clients)
        for client in clients:
            client.join(timeout=60)
        log = server.log

    created: Counter[str] = Counter()
    for plan, answers in answered.items():
        assert isinstance(answers, list), f"client {plan} failed: {answers}"
        for answer in answers:
            if answer.single:
                assert answer.status_code in (200, 201), f"client {plan}: {answer}"
                if answer.status_code == 201:
                    created[answer.ids[0]] += 1
                continue
            assert answer.status_code == 200, f"client {plan}: {answer}"
            assert answer.body["errors"] == [], f"client {plan}: {answer.body['errors']}"
            statuses = {item["id"]: item["status"] for item in answer.body["items"]}
            assert sorted(statuses) == sorted(answer.ids)
            assert set(statuses.values()) <= {"created", "duplicate"}
            created.update(id_ for id_, status in statuses.items() if status == "created")

    every_id = {raced_touchpoint(number)["id"] for number in range(RACED_TOUCHPOINTS)}
    # Exactly one client was told "created" for each id; all the others, "duplicate".
    assert created == dict.fromkeys(every_id, 1)
    assert stored_ids(database_url) == dict.fromkeys(every_id, 1)
    assert counted_touchpoints(database_url) == RACED_TOUCHPOINTS
    assert "Traceback" not in log, log
