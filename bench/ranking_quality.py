"""Ranking quality: does the weak-spot ranking find the moments that truly need work?

Each seed plants a portfolio of moments with known true negative rates and very different
volumes, then puts it through a real `mot serve` on a fresh database:

- a few truly bad high-volume moments (thousands of touchpoints, true rate 7-14 points
  over normal);
- ordinary moments (150-3,000 touchpoints, true rate within -4..+5 points of normal);
- many small moments (3-5 responses) whose true rate is exactly normal; 18 of the 26
  drew an unlucky sample of 2-3 negative answers, the rest a sample drawn at that rate.

Every moment is rated on one scale family: satisfaction (csat5, smiley4, thumbs; normal
negative rate 8%), nps (nps11; 22%) or effort (ces7; 12%). A rating is bad with the
moment's true rate; a bad rating takes a value of the scale's negative band, any other
a value above it, so the negative share on every scale is the planted rate. Only a share
of the touchpoints is rated (response rate 8-30%): V touchpoints give n < V responses.

Reference. Moments are registered through `POST /v1/moments` with
`target_negative_rate: null`, so mot compares each with its family's baseline, which it
estimates from the data. The truth compares each with the planted normal rate of its
family: `excess = V * (true rate - normal rate)`, the number of clients beyond normal
who had a bad experience of the moment. mot's baseline pools every moment of the family,
the bad ones included, so it sits above the planted normal rate: an ordinary moment a few
points over normal can fall under it. That is the price of ranking without targets, and
it is left in the score rather than hidden by handing mot the planted rates as targets.

The touchpoints go through `POST /v1/touchpoints/batch` (1,000 a request), all inside a
fixed 30-day window that ended at the last UTC midnight, and the ranking comes from
`GET /v1/insights/weak-spots` over that window. Two rankings are scored against the truth:

- mot: the order of `data` (priority, highest first);
- mean score: the `mean_score` of the same response, lowest first (ties by key).

precision@5 is the share of the true top 5 (by excess) among a method's first five.
NDCG@10 uses linear gains max(excess, 0), discounted by log2(position + 1), over the ideal
order's DCG. The response's counts (V, n, k) are checked against what was posted.

    python -m bench.ranking_quality [--seeds 5] [--backends sqlite,postgresql]

The ranking does not depend on the backend; both are supported to check it end to end.
"""

import argparse
import asyncio
import json
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from statistics import mean
from typing import Any

import httpx

from app.scales import SCALES, ScaleFamily, ScaleName
from bench.common import AUTH, DEFAULT_POSTGRES_URL, fresh_database, running_service

NORMAL_RATE = {ScaleFamily.satisfaction: 0.08, ScaleFamily.nps: 0.22, ScaleFamily.effort: 0.12}
FAMILY_SCALES = {
    ScaleFamily.satisfaction: (ScaleName.csat5, ScaleName.smiley4, ScaleName.thumbs),
    ScaleFamily.nps: (ScaleName.nps11,),
    ScaleFamily.effort: (ScaleName.ces7,),
}
FAMILY_WEIGHTS = {ScaleFamily.satisfaction: 0.5, ScaleFamily.nps: 0.25, ScaleFamily.effort: 0.25}
BAD_FAMILIES = (
    ScaleFamily.satisfaction,
    ScaleFamily.nps,
    ScaleFamily.effort,
    ScaleFamily.satisfaction,
)
ORDINARY_MOMENTS = 30
SMALL_MOMENTS = 26
UNLUCKY_MOMENTS = 18
"""Small moments whose sample holds 2-3 negative answers although their true rate is normal."""
WINDOW_DAYS = 30
BATCH_SIZE = 1000
TOP_K = 5
NDCG_K = 10
METHODS = ("mot (priority)", "mean score (lowest first)")


@dataclass(frozen=True, slots=True)
class PlantedMoment:
    """A moment with its planted truth and the touchpoints sampled from it."""

    key: str
    kind: str
    family: ScaleFamily
    true_rate: float
    touchpoints: list[dict[str, Any]]
    responses: int
    negatives: int

    @property
    def excess(self) -> float:
        """Clients beyond normal with a bad experience: V * (true rate - normal rate)."""
        return len(self.touchpoints) * (self.true_rate - NORMAL_RATE[self.family])


@dataclass(frozen=True, slots=True)
class Score:
    """precision@5 and NDCG@10 of one ranking."""

    precision: float
    ndcg: float


@dataclass(frozen=True, slots=True)
class Window:
    """The analysed window: start inclusive, end exclusive, both UTC."""

    start: datetime
    end: datetime


def last_window() -> Window:
    """The 30 days that ended at the last UTC midnight."""
    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return Window(end - timedelta(days=WINDOW_DAYS), end)


def answer(rng: random.Random, scale: ScaleName, *, bad: bool) -> int:
    """A value of the scale's negative band (up to `negative_max`, the very bound the service
    classifies by) when bad, else one of the values above it."""
    spec = SCALES[scale]
    if bad:
        return rng.randint(spec.low, spec.negative_max)
    return rng.randint(spec.negative_max + 1, spec.high)


def sample_touchpoints(
    rng: random.Random,
    *,
    key: str,
    scales: Sequence[ScaleName],
    window: Window,
    bad_flags: Sequence[bool | None],
) -> list[dict[str, Any]]:
    """One touchpoint per flag: unrated for None, else rated bad or not on one of `scales`."""
    seconds = int((window.end - window.start).total_seconds())
    items = []
    for index, bad in enumerate(bad_flags):
        occurred_at = window.start + timedelta(seconds=rng.randrange(seconds))
        item: dict[str, Any] = {
            "id": f"{key}-{index:05d}",
            "moment": key,
            "occurred_at": occurred_at.isoformat(),
            "source": "bench-ranking",
        }
        if bad is not None:
            scale = rng.choice(scales)
            item["rating"] = {"scale": scale.value, "value": answer(rng, scale, bad=bad)}
        items.append(item)
    return items


def planted_moment(
    rng: random.Random,
    *,
    key: str,
    kind: str,
    family: ScaleFamily,
    true_rate: float,
    bad_flags: list[bool | None],
    window: Window,
) -> PlantedMoment:
    """Sample the moment's touchpoints from its flags, on one or two scales of its family."""
    choices = FAMILY_SCALES[family]
    scales = rng.sample(choices, k=min(len(choices), rng.randint(1, 2)))
    rated = [flag for flag in bad_flags if flag is not None]
    return PlantedMoment(
        key=key,
        kind=kind,
        family=family,
        true_rate=true_rate,
        touchpoints=sample_touchpoints(
            rng, key=key, scales=scales, window=window, bad_flags=bad_flags
        ),
        responses=len(rated),
        negatives=sum(rated),
    )


def bernoulli_flags(
    rng: random.Random, *, volume: int, response_rate: float, true_rate: float
) -> list[bool | None]:
    """Each touchpoint rated with the response rate; each rating bad with the true rate."""
    return [
        (rng.random() < true_rate) if rng.random() < response_rate else None for _ in range(volume)
    ]


def small_flags(rng: random.Random, *, true_rate: float, unlucky: bool) -> list[bool | None]:
    """3-5 responses at a 10-25% response rate; an unlucky sample holds 2-3 negatives."""
    responses = rng.randint(3, 5)
    volume = responses * rng.randint(4, 10)
    if unlucky:
        negatives = rng.randint(2, min(3, responses - 1))
        answers = [True] * negatives + [False] * (responses - negatives)
    else:
        answers = [rng.random() < true_rate for _ in range(responses)]
    flags: list[bool | None] = [None] * volume
    for position, bad in zip(rng.sample(range(volume), responses), answers, strict=True):
        flags[position] = bad
    return flags


def random_family(rng: random.Random) -> ScaleFamily:
    families = list(FAMILY_WEIGHTS)
    return rng.choices(families, weights=[FAMILY_WEIGHTS[f] for f in families])[0]


def plant(seed: int, window: Window) -> list[PlantedMoment]:
    """The seed's portfolio: bad high-volume, ordinary and small moments, keys shuffled."""
    rng = random.Random(seed)
    specs: list[tuple[str, ScaleFamily, float, list[bool | None]]] = []
    for family in BAD_FAMILIES:
        rate = NORMAL_RATE[family] + rng.uniform(0.07, 0.14)
        volume = rng.randint(4000, 6500)
        flags = bernoulli_flags(
            rng, volume=volume, response_rate=rng.uniform(0.10, 0.25), true_rate=rate
        )
        specs.append(("bad", family, rate, flags))
    for _ in range(ORDINARY_MOMENTS):
        family = random_family(rng)
        rate = max(0.01, NORMAL_RATE[family] + rng.uniform(-0.04, 0.05))
        volume = round(math.exp(rng.uniform(math.log(150), math.log(3000))))
        flags = bernoulli_flags(
            rng, volume=volume, response_rate=rng.uniform(0.08, 0.30), true_rate=rate
        )
        specs.append(("ordinary", family, rate, flags))
    for index in range(SMALL_MOMENTS):
        family = random_family(rng)
        unlucky = index < UNLUCKY_MOMENTS
        rate = NORMAL_RATE[family]
        flags = small_flags(rng, true_rate=rate, unlucky=unlucky)
        specs.append(("unlucky" if unlucky else "small", family, rate, flags))
    # Keys carry no hint of the kind, so ties broken by key favour no kind.
    keys = [f"rank{seed}.m{i:02d}" for i in range(len(specs))]
    rng.shuffle(keys)
    return [
        planted_moment(
            rng, key=key, kind=kind, family=family, true_rate=rate, bad_flags=flags, window=window
        )
        for key, (kind, family, rate, flags) in zip(keys, specs, strict=True)
    ]


async def post_json(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> Any:
    """POST a JSON body; raise on any status but 200/201."""
    response = await client.post(path, content=json.dumps(body).encode())
    if response.status_code not in (200, 201):
        raise RuntimeError(f"{path} answered {response.status_code}: {response.text[:300]}")
    return response.json()


async def load(base_url: str, moments: list[PlantedMoment], seed: int) -> None:
    """Register the moments without a target, then post every touchpoint in batches."""
    headers = {"content-type": "application/json", **AUTH}
    # No kept-alive connections: each request is accepted by whichever worker is free.
    limits = httpx.Limits(max_connections=4, max_keepalive_connections=0)
    async with httpx.AsyncClient(
        base_url=base_url, timeout=120, limits=limits, headers=headers
    ) as client:
        await asyncio.gather(
            *(
                post_json(client, "/v1/moments", {"key": m.key, "target_negative_rate": None})
                for m in moments
            )
        )
        items = [item for m in moments for item in m.touchpoints]
        random.Random(seed).shuffle(items)
        gate = asyncio.Semaphore(4)

        async def post_batch(batch: list[dict[str, Any]]) -> None:
            async with gate:
                result = await post_json(client, "/v1/touchpoints/batch", {"touchpoints": batch})
            if result["rejected"] or result["accepted"] != len(batch):
                raise RuntimeError(f"batch not fully accepted: {json.dumps(result)[:300]}")

        await asyncio.gather(
            *(
                post_batch(items[start : start + BATCH_SIZE])
                for start in range(0, len(items), BATCH_SIZE)
            )
        )


def weak_spots(base_url: str, window: Window) -> list[dict[str, Any]]:
    """The ranked moments of the window, as `GET /v1/insights/weak-spots` returns them."""
    params = {"from": window.start.isoformat(), "to": window.end.isoformat(), "limit": "500"}
    response = httpx.get(
        f"{base_url}/v1/insights/weak-spots", params=params, timeout=120, headers=AUTH
    )
    response.raise_for_status()
    body = response.json()
    data: list[dict[str, Any]] = body["data"]
    if body["insufficient_data"]:
        raise RuntimeError("moments were set apart as insufficient data")
    return data


def check_counts(moments: list[PlantedMoment], spots: list[dict[str, Any]]) -> None:
    """The service must count exactly the V, n and k that were posted."""
    found = {spot["moment"]: spot for spot in spots}
    for m in moments:
        spot = found.get(m.key)
        posted = (len(m.touchpoints), m.responses, m.negatives)
        seen = (spot["touchpoints"], spot["responses"], spot["negatives"]) if spot else None
        if seen != posted:
            raise RuntimeError(f"{m.key}: posted (V, n, k) = {posted}, service reports {seen}")


def precision_at(ranking: Sequence[str], relevant: set[str], k: int) -> float:
    """Share of the first k of a ranking that are relevant."""
    return len(set(ranking[:k]) & relevant) / k


def ndcg_at(ranking: Sequence[str], gains: dict[str, float], k: int) -> float:
    """DCG of the first k (linear gains, log2 discount) over the DCG of the ideal order."""

    def dcg(values: Sequence[float]) -> float:
        return sum(g / math.log2(position + 2) for position, g in enumerate(values[:k]))

    ideal = dcg(sorted(gains.values(), reverse=True))
    return dcg([gains.get(key, 0.0) for key in ranking]) / ideal if ideal > 0 else 0.0


def rankings(spots: list[dict[str, Any]]) -> dict[str, list[str]]:
    """mot's order as returned, and the moments by mean score, lowest first."""
    rated = [spot for spot in spots if spot["mean_score"] is not None]
    by_mean = sorted(rated, key=lambda spot: (spot["mean_score"], spot["moment"]))
    return {
        METHODS[0]: [spot["moment"] for spot in spots],
        METHODS[1]: [spot["moment"] for spot in by_mean],
    }


def score(moments: list[PlantedMoment], ranking: Sequence[str]) -> Score:
    """precision@5 and NDCG@10 of a ranking against the planted excess."""
    truth = sorted(moments, key=lambda m: m.excess, reverse=True)
    relevant = {m.key for m in truth[:TOP_K]}
    gains = {m.key: max(m.excess, 0.0) for m in moments}
    return Score(precision_at(ranking, relevant, TOP_K), ndcg_at(ranking, gains, NDCG_K))


def run_seed(backend: str, seed: int, *, postgres_url: str, workers: int) -> dict[str, Score]:
    """Plant, post and rank one seed on a fresh database; print and return its scores."""
    window = last_window()
    moments = plant(seed, window)
    with fresh_database(backend, postgres_url=postgres_url, name="mot_bench_ranking") as url:
        with running_service(url, workers=workers) as service:
            asyncio.run(load(service.url, moments, seed))
            spots = weak_spots(service.url, window)
    check_counts(moments, spots)
    orders = rankings(spots)
    scores = {method: score(moments, order) for method, order in orders.items()}
    print_seed(backend, seed, moments, orders, scores)
    return scores


def print_seed(
    backend: str,
    seed: int,
    moments: list[PlantedMoment],
    orders: dict[str, list[str]],
    scores: dict[str, Score],
) -> None:
    """The seed's table, the kinds of moment each method puts first, where it puts the truth."""
    kinds = {m.key: m.kind for m in moments}
    truth = sorted(moments, key=lambda m: m.excess, reverse=True)
    touchpoints = sum(len(m.touchpoints) for m in moments)
    responses = sum(m.responses for m in moments)
    print(
        f"\nseed {seed} ({backend}): {len(moments)} moments, {touchpoints:,} touchpoints, "
        f"{responses:,} responses"
    )
    print(f"  true top {TOP_K}: " + ", ".join(f"{m.kind} {m.excess:.0f}" for m in truth[:TOP_K]))
    print_table(scores)
    for method, order in orders.items():
        position = {key: index for index, key in enumerate(order, start=1)}
        print(
            f"  {method}: its top {TOP_K} are "
            + ", ".join(kinds[key] for key in order[:TOP_K])
            + f"; it ranks the true top {TOP_K} at "
            + ", ".join(str(position.get(m.key, "-")) for m in truth[:TOP_K])
        )


def print_table(scores: dict[str, Score]) -> None:
    print(f"  {'method':<28}{'precision@5':>12}{'NDCG@10':>10}")
    for method, result in scores.items():
        print(f"  {method:<28}{result.precision:>12.2f}{result.ndcg:>10.3f}")


def mean_scores(results: list[dict[str, Score]]) -> dict[str, Score]:
    """Each method's scores averaged over seeds."""
    return {
        method: Score(
            mean(r[method].precision for r in results), mean(r[method].ndcg for r in results)
        )
        for method in METHODS
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeds 1..N, one portfolio each")
    parser.add_argument("--backends", default="sqlite")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    started = time.perf_counter()
    for backend in args.backends.split(","):
        results = [
            run_seed(backend, seed, postgres_url=args.postgres_url, workers=args.workers)
            for seed in range(1, args.seeds + 1)
        ]
        print(f"\nmean over {args.seeds} seeds ({backend}):")
        print_table(mean_scores(results))
    print(f"\n{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
