"""Statistics of what answers said beyond their rating: how often each factor is picked,
shrunk like the ranking, and the time clients lost. Pure computation, no I/O.

A factor's share in a moment is the answers of a sentiment that picked it, out of all the
moment's answers of that sentiment. Shares are shrunk towards the factor's share over every
moment that offers it (answers of the same sentiment): the beta-binomial empirical Bayes of
the ranking (`stats.prior_strength`, `stats.posterior`), with one prior per factor key.

Lost time is summarised from the count of answers per minutes value, so every figure is
exact: the mean with a Student t interval, the median with the distribution-free interval
between two order statistics (binomial with p = 1/2).
"""

import math
from collections.abc import Collection, Hashable, Mapping
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from app.insights import stats
from app.insights.special import special

LOST_TIME_LEVEL = 0.95
"""Confidence of the lost-time intervals, as for the native survey figures."""

Moment = TypeVar("Moment", bound=Hashable)


@dataclass(frozen=True, slots=True)
class FactorShare:
    """One factor of one moment: how many of its answers of the sentiment picked it."""

    key: str
    picked: int
    answers: int
    """The moment's answers of the factor's sentiment."""
    prior: stats.Prior
    """Beta prior: the factor's pooled share over the moments offering it, and kappa."""

    @property
    def share(self) -> float | None:
        """picked / answers; None without answers."""
        return self.picked / self.answers if self.answers else None

    @property
    def adjusted_share(self) -> float:
        """Posterior mean (mu*kappa + k) / (kappa + n), shrunk towards the prior share."""
        prior = self.prior
        return (prior.baseline * prior.kappa + self.picked) / (prior.kappa + self.answers)

    def interval(self) -> tuple[float, float]:
        """The 90% equal-tailed credible interval, as the ranking's (`stats.posterior`).

        Computed on demand: a window lists hundreds of factors, and a Beta quantile costs
        far more than the mean."""
        post = stats.posterior(self.prior, responses=self.answers, negatives=self.picked)
        return post.lower, post.upper


def shrunk_shares(
    picked: Mapping[Moment, Mapping[str, int]],
    answers: Mapping[Moment, int],
    offered: Mapping[Moment, list[str]],
    *,
    of: Collection[Moment] | None = None,
) -> dict[Moment, list[FactorShare]]:
    """Every factor each moment offers (of the moments in `of`, if given), with its share
    shrunk towards the factor's pooled share over all the moments offering it.

    `picked[m][key]` counts the answers of moment m that picked the factor, `answers[m]` the
    moment's answers of the factor's sentiment (all factors given are of one sentiment),
    `offered[m]` its factor keys in their order. For a key: mu = sum(k_i) / sum(n_i) and
    kappa by `stats.prior_strength` over the moments offering it with n_i > 0; a moment's
    share is Beta(mu*kappa + k, (1-mu)*kappa + n - k). A key nobody answered for has no
    prior: its moments list it with mu = 0, a point mass (nothing is known against it).
    """
    cells: dict[str, list[stats.Counts]] = {}
    for moment, keys in offered.items():
        n = answers.get(moment, 0)
        for key in keys:
            k = min(picked.get(moment, {}).get(key, 0), n)
            cells.setdefault(key, []).append(stats.Counts(n, k))
    priors = {
        key: stats.Prior(stats.pooled_rate(counts) or 0.0, stats.prior_strength(counts))
        for key, counts in cells.items()
    }
    return {
        moment: [
            FactorShare(
                key=key,
                picked=min(picked.get(moment, {}).get(key, 0), answers.get(moment, 0)),
                answers=answers.get(moment, 0),
                prior=priors[key],
            )
            for key in keys
        ]
        for moment, keys in offered.items()
        if of is None or moment in of
    }


def leading(shares: list[FactorShare], *, at_most: int = 3) -> list[FactorShare]:
    """The factors picked at least once, by adjusted share (then by times picked), first
    `at_most`."""
    chosen = [share for share in shares if share.picked > 0]
    chosen.sort(key=lambda share: (-share.adjusted_share, -share.picked, share.key))
    return chosen[:at_most]


@dataclass(frozen=True, slots=True)
class LostTime:
    """Minutes lost per answer that said so: mean and median with their intervals."""

    responses: int
    mean: float
    median: float
    mean_lower: float | None
    mean_upper: float | None
    """Student t interval of the mean; None with a single answer (or with no spread the
    interval is the mean itself)."""
    median_lower: float
    median_upper: float
    """Order statistics x(l) and x(n+1-l) with l the largest rank whose interval still
    covers the median with at least `LOST_TIME_LEVEL` (binomial, p = 1/2); with fewer than
    six answers no interval reaches 95%, and it is the whole range."""

    def hours_lost(self, touchpoints: int) -> float:
        """Hours lost by every client of the moment: touchpoints x mean minutes / 60."""
        return touchpoints * self.mean / 60


def _at_rank(counts: list[tuple[int, int]], rank: int) -> int:
    """The rank-th smallest value (1-based) of values given with their counts, ascending."""
    seen = 0
    for value, count in counts:
        seen += count
        if seen >= rank:
            return value
    raise ValueError(f"rank {rank} beyond {seen} values")


def lost_time(minutes: Mapping[int, int]) -> LostTime | None:
    """Mean, median and intervals of the minutes lost, from answers per minutes value;
    None when no answer gave any."""
    counts = sorted((value, count) for value, count in minutes.items() if count > 0)
    n = sum(count for _, count in counts)
    if n == 0:
        return None
    mean = sum(value * count for value, count in counts) / n
    middle = (n + 1) // 2
    median = (_at_rank(counts, middle) + _at_rank(counts, n // 2 + 1)) / 2
    mean_lower = mean_upper = None
    if n > 1:
        variance = sum(count * (value - mean) ** 2 for value, count in counts) / (n - 1)
        half = float(special().stdtrit(n - 1, (1 + LOST_TIME_LEVEL) / 2)) * math.sqrt(variance / n)
        mean_lower, mean_upper = max(0.0, mean - half), mean + half
    # Largest l with P(B <= l - 1) <= alpha/2, B ~ Binomial(n, 1/2): [x(l), x(n+1-l)]
    # then covers the median with probability 1 - 2 P(B <= l - 1) >= LOST_TIME_LEVEL.
    tail = (1 - LOST_TIME_LEVEL) / 2
    # l is the first of 1 .. middle - 1 with P(B <= l) > alpha/2, else middle: one vectorised
    # call over the candidates instead of one per rank.
    beyond = np.flatnonzero(special().bdtr(np.arange(1, middle), n, 0.5) > tail)
    rank = int(beyond[0]) + 1 if beyond.size else middle
    return LostTime(
        responses=n,
        mean=mean,
        median=median,
        mean_lower=mean_lower,
        mean_upper=mean_upper,
        median_lower=_at_rank(counts, rank),
        median_upper=_at_rank(counts, n + 1 - rank),
    )
