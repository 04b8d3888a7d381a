"""Factor shares and lost time as pure functions: hand-worked figures, and scipy/numpy on
random answers."""

from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as scipy_stats

from app.insights import details

minutes = st.lists(st.integers(0, 480), min_size=1, max_size=60)


@settings(max_examples=200, deadline=None)
@given(values=minutes)
def test_lost_time_agrees_with_numpy_and_scipy_on_the_answers_themselves(
    values: list[int],
) -> None:
    lost = details.lost_time(Counter(values))
    assert lost is not None
    assert lost.responses == len(values)
    assert lost.mean == pytest.approx(np.mean(values))
    assert lost.median == pytest.approx(np.median(values))
    if len(values) == 1:
        assert (lost.mean_lower, lost.mean_upper) == (None, None)
    elif np.std(values) > 0:
        low, high = scipy_stats.t.interval(
            0.95, len(values) - 1, loc=np.mean(values), scale=scipy_stats.sem(values)
        )
        assert lost.mean_upper == pytest.approx(high)
        assert lost.mean_lower == pytest.approx(max(0.0, low), abs=1e-9)
    ordered = sorted(values)
    assert ordered[0] <= lost.median_lower <= lost.median <= lost.median_upper <= ordered[-1]


@pytest.mark.parametrize("n", [1, 5, 6, 10, 25, 100, 101])
def test_the_median_interval_is_the_narrowest_order_statistics_covering_95_percent(
    n: int,
) -> None:
    # Values 1..n: the interval's bounds are its ranks.
    lost = details.lost_time(dict.fromkeys(range(1, n + 1), 1))
    assert lost is not None
    low, high = int(lost.median_lower), int(lost.median_upper)
    assert high == n + 1 - low
    coverage = 1 - 2 * scipy_stats.binom.cdf(low - 1, n, 0.5)
    if n < 6:
        assert (low, high) == (1, n)  # no pair of order statistics reaches 95%
    else:
        assert coverage >= 0.95
        # One rank further in either crosses the middle or covers less than 95%.
        narrower = 1 - 2 * scipy_stats.binom.cdf(low, n, 0.5)
        assert 2 * (low + 1) > n + 1 or narrower < 0.95


def test_no_answer_with_lost_time_gives_none() -> None:
    assert details.lost_time({}) is None
    assert details.lost_time({30: 0}) is None


def test_shares_shrink_towards_the_factor_share_over_the_moments_offering_it() -> None:
    # Three moments offer "slow" (fewer than 8: kappa = 20), only "a" offers "rude".
    picked = {"a": {"slow": 8, "rude": 1}, "b": {"slow": 2}, "c": {}}
    answers = {"a": 10, "b": 10, "c": 20}
    offered = {"a": ["slow", "rude"], "b": ["slow"], "c": ["slow"]}
    shares = details.shrunk_shares(picked, answers, offered)
    slow = shares["a"][0]
    mu = 10 / 40
    assert slow.prior.baseline == pytest.approx(mu)
    assert slow.prior.kappa == 20.0
    assert slow.adjusted_share == pytest.approx((mu * 20 + 8) / (20 + 10))
    a, b = mu * 20 + 8, (1 - mu) * 20 + 2
    expected = scipy_stats.beta.ppf([0.05, 0.95], a, b)
    assert slow.interval() == pytest.approx(tuple(expected))
    assert shares["a"][1].prior.baseline == pytest.approx(0.1)
    assert shares["c"][0].share == 0.0
    assert shares["c"][0].adjusted_share == pytest.approx(mu * 20 / 40)
    assert [s.key for s in details.leading(shares["a"])] == ["slow", "rude"]
    assert details.leading(shares["c"]) == []


def test_a_factor_nobody_picked_is_known_to_be_rare() -> None:
    shares = details.shrunk_shares({}, {"a": 5}, {"a": ["slow"]})
    assert shares["a"][0].adjusted_share == 0.0
    assert shares["a"][0].interval() == (0.0, 0.0)
    # A moment without answers of the sentiment is listed at its prior.
    shares = details.shrunk_shares(
        {"a": {"slow": 1}}, {"a": 4, "b": 0}, {"a": ["slow"], "b": ["slow"]}
    )
    assert shares["b"][0].share is None
    assert shares["b"][0].adjusted_share == pytest.approx(0.25)
