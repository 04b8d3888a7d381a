"""The effect of an improvement action on a moment's negative rate: before and after, and
net of what happened to the other moments of its scale family over the same periods.

Pure functions over counts; no database, HTTP or other I/O. A "rate" is a share of
negative ratings, between 0 and 1; a change is after minus before, so a fall is negative.

Windows are whole UTC days. With the action on day D (UTC), a window length of L days and
a washout of W days:

- before = [D - L, D): the L whole days before the day of the action;
- after = [D + 1 + W, D + 1 + W + L): L days, starting once the day of the action (part
  before, part after it) and W more days have passed. The washout leaves out the days
  while the change is being rolled out and people get used to it; 7 days by default.

Each window's negative rate gets the Jeffreys posterior Beta(k + 1/2, n - k + 1/2): the
objective prior of a binomial rate, so that the figure is the moment's own data and not
shrunk towards a baseline that itself moves with the season (the ranking's empirical prior
would pull both windows towards the family's rate of the day).

The change's interval and the probability that it improved come from Monte Carlo draws
of the posteriors (seeded: the same counts always give the same figures). Difference in
differences: the other moments of the same scale family, pooled, over the same two
windows, give the change that happened anyway (a season, a holiday, a system outage);
net change = (after - before) - (others after - others before), its interval from draws
of all four posteriors.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from app.insights.special import special
from app.insights.stats import CREDIBLE_LOWER, CREDIBLE_UPPER, Counts

JEFFREYS = 0.5
"""Both shapes of the Jeffreys prior Beta(1/2, 1/2)."""
DRAWS = 20_000
"""Monte Carlo draws per posterior: the 5% and 95% quantiles of a change then move by
about 1% of the interval's width from one seed to another."""
SEED = 29
MIN_RESPONSES = 20
"""Fewest rated responses (of the moment's scale family) in each window for an effect."""
DEFAULT_WASHOUT_DAYS = 7
MAX_WASHOUT_DAYS = 90
DEFAULT_WINDOW_DAYS = 28
MIN_WINDOW_DAYS = 7
MAX_WINDOW_DAYS = 182


class Unavailable(StrEnum):
    """Why an action has no effect figures."""

    after_window_incomplete = "after_window_incomplete"
    too_few_responses = "too_few_responses"


class Verdict(StrEnum):
    """Did it help: judged on the net change where there are other moments to compare."""

    improved = "improved"
    worsened = "worsened"
    unclear = "unclear"


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Windows:
    """The two windows of an action, as [start, end) UTC midnights."""

    before_start: datetime
    before_end: datetime
    after_start: datetime
    after_end: datetime

    def complete(self, now: datetime) -> bool:
        """Whether the after window's last day is over."""
        return self.after_end <= now


def windows(done_at: datetime, *, washout_days: int, window_days: int) -> Windows:
    """before = [D - L, D), after = [D + 1 + W, D + 1 + W + L), D the UTC day of the action."""
    if washout_days < 0 or window_days < 1:
        raise ValueError(f"need washout >= 0 and window >= 1, got {washout_days}, {window_days}")
    day = done_at.astimezone(UTC).date()
    after = day + timedelta(days=1 + washout_days)
    return Windows(
        before_start=_midnight(day - timedelta(days=window_days)),
        before_end=_midnight(day),
        after_start=_midnight(after),
        after_end=_midnight(after + timedelta(days=window_days)),
    )


@dataclass(frozen=True, slots=True)
class Rate:
    """One window's counts and the Jeffreys posterior Beta(k + 1/2, n - k + 1/2) of its rate."""

    responses: int
    negatives: int
    observed: float | None
    """k / n; None without responses."""
    mean: float
    """Posterior mean (k + 1/2) / (n + 1)."""
    lower: float
    upper: float


def rate(counts: Counts) -> Rate:
    """The window's rate: equal-tailed 90% interval from the Beta quantiles 0.05 and 0.95."""
    a, b = _shapes(counts)
    n, k = counts.responses, counts.negatives
    return Rate(
        responses=n,
        negatives=k,
        observed=k / n if n else None,
        mean=a / (a + b),
        lower=float(special().betaincinv(a, b, CREDIBLE_LOWER)),
        upper=float(special().betaincinv(a, b, CREDIBLE_UPPER)),
    )


def _shapes(counts: Counts) -> tuple[float, float]:
    return JEFFREYS + counts.negatives, JEFFREYS + counts.responses - counts.negatives


@dataclass(frozen=True, slots=True)
class Comparison:
    """The other moments of the family, pooled, over the same windows."""

    moments: int
    before: Rate
    after: Rate
    change: float
    lower: float
    upper: float


@dataclass(frozen=True, slots=True)
class Effect:
    before: Rate
    after: Rate
    change: float
    """Posterior mean of after - before: the difference of the two posterior means."""
    lower: float
    upper: float
    prob_improved: float
    """P(after < before) under the posteriors."""
    others: Comparison | None
    """None when no other moment of the family was answered enough in both windows."""
    net_change: float | None
    net_lower: float | None
    net_upper: float | None
    prob_improved_net: float | None
    verdict: Verdict


def enough(counts: Counts) -> bool:
    """Whether a window holds enough responses to be compared."""
    return counts.responses >= MIN_RESPONSES


def effect(
    before: Counts,
    after: Counts,
    *,
    others_before: Counts | None = None,
    others_after: Counts | None = None,
    others_moments: int = 0,
) -> Effect:
    """The change after - before with its 90% credible interval, P(improved), and the same
    change net of the others' (difference in differences).

    With theta ~ Beta(k + 1/2, n - k + 1/2) independently per window and group:
    change = E[theta_after - theta_before] (exact), its interval the 5% and 95% quantiles
    of `DRAWS` draws of the difference, prob_improved = P(theta_after < theta_before) as the
    share of draws where it holds; net = (theta_after - theta_before) - (others_after -
    others_before) likewise, from the same draws of the moment's two posteriors and draws
    of the others' two. The others are left out (None) unless both of their windows have
    at least `MIN_RESPONSES`.
    """
    generator = np.random.default_rng(SEED)
    b_rate, a_rate = rate(before), rate(after)
    b_draws = generator.beta(*_shapes(before), DRAWS)
    a_draws = generator.beta(*_shapes(after), DRAWS)
    difference = a_draws - b_draws
    lower, upper = _interval(difference)
    change = a_rate.mean - b_rate.mean
    prob_improved = float(np.mean(a_draws < b_draws))

    others = None
    net_change = net_lower = net_upper = prob_improved_net = None
    if others_before is not None and others_after is not None:
        if enough(others_before) and enough(others_after):
            ob_rate, oa_rate = rate(others_before), rate(others_after)
            others_difference = generator.beta(*_shapes(others_after), DRAWS) - generator.beta(
                *_shapes(others_before), DRAWS
            )
            others_lower, others_upper = _interval(others_difference)
            others = Comparison(
                moments=others_moments,
                before=ob_rate,
                after=oa_rate,
                change=oa_rate.mean - ob_rate.mean,
                lower=others_lower,
                upper=others_upper,
            )
            net = difference - others_difference
            net_change = change - others.change
            net_lower, net_upper = _interval(net)
            prob_improved_net = float(np.mean(net < 0))

    judged = (lower, upper) if net_lower is None or net_upper is None else (net_lower, net_upper)
    return Effect(
        before=b_rate,
        after=a_rate,
        change=change,
        lower=lower,
        upper=upper,
        prob_improved=prob_improved,
        others=others,
        net_change=net_change,
        net_lower=net_lower,
        net_upper=net_upper,
        prob_improved_net=prob_improved_net,
        verdict=verdict(*judged),
    )


def _interval(draws: npt.NDArray[np.float64]) -> tuple[float, float]:
    low, high = np.quantile(draws, [CREDIBLE_LOWER, CREDIBLE_UPPER])
    return float(low), float(high)


def verdict(lower: float, upper: float) -> Verdict:
    """Improved when the whole 90% interval of the change lies below 0, worsened when above."""
    if upper < 0:
        return Verdict.improved
    if lower > 0:
        return Verdict.worsened
    return Verdict.unclear
