"""Ranking statistics speed: the pure statistics of one weak-spots call, without I/O.

Builds a synthetic window with a fixed seed (default 200 moments, 30 teams, about 82,000
touchpoints, the 30-day share of a year of 1,000,000; volumes Pareto-distributed between
moments, a third of the touchpoints rated, one scale family per moment) and its previous
window, then times what `weak_spots` computes from the counts: `family_priors` of both
windows, `rank` of this one and `adjust` of the previous one, `trends`, `team_consistencies`
of every moment at once (the Monte Carlo draws uncached: counts that changed since the
last call), `consistency_q_values`,
`window_shares` and `reasons`. Each part and the whole are timed N times; medians shown, of the
CPU time (what the statistics cost) and of the wall clock (what a shared machine adds).

For scale on a noisy machine it also times, right after each call, a plain Python loop over
the same inputs that only computes raw negative rates (per moment, per team, both windows):
read the ratio, the median over the runs of the two CPU times' quotient.

    python -m bench.ranking_speed [--moments 200] [--teams 30] [--runs 200] [--seed 7]
"""

import argparse
import gc
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from app.insights import stats
from app.scales import ScaleFamily

FAMILIES = (ScaleFamily.satisfaction, ScaleFamily.nps, ScaleFamily.effort)
WINDOW_TOUCHPOINTS = 1_000_000 * 30 // 365
RATED_SHARE = 0.35
COMPLAINT_SHARE = 0.01


@dataclass(frozen=True, slots=True)
class Window:
    moments: list[stats.MomentInput]
    previous: list[stats.MomentInput]
    teams: list[list[stats.TeamCounts]]
    complaints: list[int]


def synthetic_window(*, moments: int, teams: int, seed: int) -> Window:
    """Counts of a current and a previous window drawn from fixed true rates per moment."""
    rng = np.random.default_rng(seed)
    weights = rng.pareto(1.2, moments) + 1.0
    weights /= weights.sum()
    families = rng.choice(len(FAMILIES), moments)
    bad = rng.beta(2, 12, moments)
    targets = [0.1 if i % 10 == 0 else None for i in range(moments)]
    keys = [f"bench.stage-{i % 8}.moment-{i:03d}" for i in range(moments)]

    def draw() -> tuple[list[stats.MomentInput], list[list[stats.TeamCounts]], list[int]]:
        volumes = rng.multinomial(WINDOW_TOUCHPOINTS, weights)
        inputs, team_counts, complaints = [], [], []
        for m in range(moments):
            per_team = rng.multinomial(int(volumes[m]), np.full(teams, 1.0 / teams))
            rated = rng.binomial(per_team, RATED_SHARE)
            negative = rng.binomial(rated, bad[m])
            n, k = int(rated.sum()), int(negative.sum())
            inputs.append(
                stats.MomentInput(
                    keys[m],
                    int(volumes[m]),
                    (stats.FamilyCounts(FAMILIES[families[m]], n, k),),
                    targets[m],
                )
            )
            team_counts.append(
                [
                    stats.TeamCounts(f"team-{j:02d}", int(rated[j]), int(negative[j]))
                    for j in range(teams)
                ]
            )
            complaints.append(int(rng.binomial(volumes[m], COMPLAINT_SHARE)))
        return inputs, team_counts, complaints

    current, team_counts, complaints = draw()
    previous, _, _ = draw()
    return Window(current, previous, team_counts, complaints)


def ranking_statistics(window: Window) -> Callable[[], object]:
    """The statistics `weak_spots` runs on its counts, in its order."""
    teams_by_key = {m.key: t for m, t in zip(window.moments, window.teams, strict=True)}
    complaints_by_key = {m.key: c for m, c in zip(window.moments, window.complaints, strict=True)}

    def run() -> object:
        priors = stats.family_priors(window.moments)
        previous_priors = stats.family_priors(window.previous)
        ranked = stats.rank(window.moments, priors)
        previous = stats.adjust(window.previous, previous_priors)
        trends = {t.key: t for t in stats.trends(stats.trend_inputs(ranked, previous))}
        stats._simulated_statistics.cache_clear()
        consistency = stats.team_consistencies([teams_by_key[item.key] for item in ranked])
        consistency_q = stats.consistency_q_values(consistency)
        shares = stats.window_shares(
            touchpoints=[item.touchpoints for item in ranked],
            responses=[item.responses for item in ranked],
            complaints=[complaints_by_key[item.key] for item in ranked],
        )
        return [
            stats.reasons(
                touchpoints=item.touchpoints,
                responses=item.responses,
                complaints=complaints_by_key[item.key],
                rate=item.rate,
                target=item.target_negative_rate,
                confident_problem=item.confident_problem,
                worsening=trends[item.key].worsening,
                consistency_q=q_value,
                window=shares,
            )
            for item, q_value in zip(ranked, consistency_q, strict=True)
        ]

    return run


def parts(window: Window) -> dict[str, Callable[[], object]]:
    """The heavier steps alone, on the same inputs."""
    priors = stats.family_priors(window.moments)
    ranked = stats.rank(window.moments, priors)
    previous_ranked = stats.rank(window.previous)
    trend_inputs = stats.trend_inputs(ranked, previous_ranked)
    consistency = stats.team_consistencies(window.teams)

    def uncached_team_tests() -> object:
        stats._simulated_statistics.cache_clear()
        return stats.team_consistencies(window.teams)

    return {
        "family_priors (one window)": lambda: stats.family_priors(window.moments),
        "rank (one window)": lambda: stats.rank(window.moments, priors),
        "trend_inputs + trends": lambda: stats.trends(stats.trend_inputs(ranked, previous_ranked)),
        "trends": lambda: stats.trends(trend_inputs),
        "team_consistencies (all moments)": uncached_team_tests,
        "consistency_q_values": lambda: stats.consistency_q_values(consistency),
    }


def raw_rates(window: Window) -> Callable[[], object]:
    """Yardstick: raw negative rates per moment and per team, both windows, plain Python."""

    def rates(moments: Sequence[stats.MomentInput]) -> list[float | None]:
        found: list[float | None] = []
        for moment in moments:
            n = sum(cell.responses for cell in moment.families)
            k = sum(cell.negatives for cell in moment.families)
            found.append(k / n if n else None)
        return found

    def run() -> object:
        team_rates = [
            [team.negatives / team.responses if team.responses else None for team in teams]
            for teams in window.teams
        ]
        return rates(window.moments), rates(window.previous), team_rates

    return run


@dataclass(frozen=True, slots=True)
class Timing:
    cpu: float
    """Median CPU time of one call, in seconds (of this thread: waits for a core left out)."""
    wall: float
    """Median wall-clock time of one call, in seconds."""
    ratio: float
    """Median over the runs of CPU time / the yardstick's CPU time in the same run."""


def cpu_and_wall(function: Callable[[], object]) -> tuple[float, float]:
    start_cpu, start_wall = time.thread_time(), time.perf_counter()
    function()
    return time.thread_time() - start_cpu, time.perf_counter() - start_wall


def measure(function: Callable[[], object], yardstick: Callable[[], object], runs: int) -> Timing:
    """Times `function` and, right after it in each run, the yardstick: both see one machine."""
    function()
    yardstick()
    cpu, wall, ratios = [], [], []
    for _ in range(runs):
        spent, elapsed = cpu_and_wall(function)
        reference, _ = cpu_and_wall(yardstick)
        cpu.append(spent)
        wall.append(elapsed)
        ratios.append(spent / reference)
    return Timing(statistics.median(cpu), statistics.median(wall), statistics.median(ratios))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moments", type=int, default=200)
    parser.add_argument("--teams", type=int, default=30)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    window = synthetic_window(moments=args.moments, teams=args.teams, seed=args.seed)
    rated = sum(m.responses for m in window.moments)
    print(
        f"{args.moments} moments, {args.teams} teams, "
        f"{sum(m.touchpoints for m in window.moments):,} touchpoints, {rated:,} rated; "
        f"median of {args.runs} runs"
    )
    gc.collect()
    gc.freeze()
    yardstick = raw_rates(window)
    print(f"{'part':<34}{'CPU ms':>9}{'x raw-rate loop':>17}{'wall ms':>10}")
    timings = {label: measure(f, yardstick, args.runs) for label, f in parts(window).items()}
    timings["all statistics of one ranking"] = measure(
        ranking_statistics(window), yardstick, args.runs
    )
    timings["raw-rate loop (yardstick)"] = measure(yardstick, yardstick, args.runs)
    for label, timing in timings.items():
        print(
            f"{label:<34}{timing.cpu * 1000:>9.3f}{timing.ratio:>17.1f}{timing.wall * 1000:>10.3f}"
        )


if __name__ == "__main__":
    main()
