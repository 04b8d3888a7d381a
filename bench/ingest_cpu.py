"""Python time per item on the batch ingest path, in-process, without HTTP or a database.

Times the steps `POST /v1/touchpoints/batch` runs over a body of 1,000 realistic items
(200 moments, 30 teams, 5 channels, 2/3 rated on csat5, some comments and attributes):
JSON decoding, validation of the items, their content hashes, the rows they are stored as,
the count deltas of those rows and the answer. Prints µs per item (µs per item times
1,000 is ms per batch), the best of several rounds (the least disturbed by other work on
the machine).

    python -m bench.ingest_cpu [--items 1000] [--rounds 30]
"""

import argparse
import json
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from app.inputs import may_hold_nul
from app.rollups import details as rollup_details
from app.rollups import service as rollups
from app.touchpoints import service
from app.touchpoints.schemas import ItemStatus

CHANNELS = ["call", "email", "portal", "chat", "visit"]


def make_items(count: int, seed: int = 1) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    start = datetime(2026, 6, 1, tzinfo=UTC)
    items = []
    for i in range(count):
        item: dict[str, Any] = {
            "id": f"bench-{i:08d}",
            "moment": f"bench.moment-{rng.randrange(200):03d}",
            "channel": rng.choice(CHANNELS),
            "occurred_at": (start + timedelta(seconds=i * 37)).isoformat(),
            "client_ref": f"c-{rng.randint(1, 50_000):06d}",
            "team": f"team-{rng.randrange(30):02d}",
            "agent": f"agent-{rng.randrange(300):03d}",
            "source": "bench",
        }
        if rng.random() < 2 / 3:
            item["rating"] = {"scale": "csat5", "value": rng.randint(1, 5)}
        if rng.random() < 0.2:
            item["comment"] = "The advisor was friendly but it took three calls. " * 2
        if rng.random() < 0.1:
            item["complaint"] = True
        if rng.random() < 0.3:
            item["attributes"] = {"region": "north", "vip": rng.random() < 0.1, "case": i}
        items.append(item)
    return items


def best_per_item(step: Callable[[], object], *, items: int, rounds: int) -> float:
    """Best µs per item over `rounds` runs of `step`."""
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - started)
    return best / items * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    body = json.dumps({"touchpoints": make_items(args.items)}).encode()
    raw_items = json.loads(body)["touchpoints"]
    assert not may_hold_nul(body)
    valid, report = service.validate_items(raw_items, may_hold_nul=False)
    assert not report.errors, report.errors[:3]
    assert len(valid) == args.items
    models = [item for _index, item in valid]

    def timed(step: Callable[[], object]) -> float:
        return best_per_item(step, items=args.items, rounds=args.rounds)

    received_at = datetime.now(UTC)
    hashes = [service.content_hash(item) for item in models]

    def stored_rows() -> list[Any]:
        return [
            service.stored_row(
                item,
                external_id=item.id or f"generated-{i}",
                content_hash=hashes[i],
                moment_id=1 + i % 200,
                default_channel="call",
                received_at=received_at,
            )
            for i, item in enumerate(models)
        ]

    rows = stored_rows()
    answered = service.IngestReport(
        results=[
            service.ItemOutcome(i, row.external_id, ItemStatus.created)
            for i, row in enumerate(rows)
        ]
    )

    figures = {
        "json.loads": timed(lambda: json.loads(body)),
        "NUL search": timed(lambda: may_hold_nul(body)),
        "validation": timed(lambda: service.validate_items(raw_items, may_hold_nul=False)),
        # What a body that may hold a NUL costs: the models' own validators, item by item.
        "validation, NUL check per field": timed(lambda: service.validate_items(raw_items)),
        "content_hash": timed(lambda: [service.content_hash(item) for item in models]),
        "rows": timed(stored_rows),
        "count deltas": timed(lambda: (rollups.added(rows), rollup_details.added(rows))),
        "answer": timed(answered.as_json),
    }
    print(f"{args.items} items, best of {args.rounds} rounds, µs per item:")
    for name, figure in figures.items():
        print(f"  {name:<34} {figure:6.2f}")


if __name__ == "__main__":
    main()
