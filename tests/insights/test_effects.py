"""The effect of an improvement action, as plain numbers: its windows, the Jeffreys rates,
the change and the difference in differences, checked against scipy computed otherwise
(numerical integration of the two Beta densities, and draws of scipy's own)."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from scipy import integrate, optimize
from scipy import stats as scipy_stats

from app.insights import effects
from app.insights.stats import Counts


def test_windows_are_whole_utc_days_around_the_day_of_the_action() -> None:
    # 01:00 at +02:00 is still the previous day in UTC.
    done_at = datetime.fromisoformat("2026-09-11T01:00:00+02:00")
    found = effects.windows(done_at, washout_days=7, window_days=28)
    assert found.before_start == datetime(2026, 8, 13, tzinfo=UTC)
    assert found.before_end == datetime(2026, 9, 10, tzinfo=UTC)
    # The day of the action and 7 more are skipped.
    assert found.after_start == datetime(2026, 9, 18, tzinfo=UTC)
    assert found.after_end == datetime(2026, 10, 16, tzinfo=UTC)
    no_washout = effects.windows(done_at, washout_days=0, window_days=7)
    assert (no_washout.after_start, no_washout.after_end) == (
        datetime(2026, 9, 11, tzinfo=UTC),
        datetime(2026, 9, 18, tzinfo=UTC),
    )


def test_the_after_window_is_complete_once_its_last_day_is_over() -> None:
    found = effects.windows(datetime(2026, 9, 10, 12, tzinfo=UTC), washout_days=7, window_days=28)
    assert not found.complete(found.after_end - timedelta(microseconds=1))
    assert found.complete(found.after_end)


def test_a_window_rate_is_the_jeffreys_posterior() -> None:
    found = effects.rate(Counts(200, 80))
    posterior = scipy_stats.beta(80.5, 120.5)
    assert found.observed == pytest.approx(0.4)
    assert found.mean == pytest.approx(80.5 / 201)
    assert found.lower == pytest.approx(posterior.ppf(0.05), rel=1e-9)
    assert found.upper == pytest.approx(posterior.ppf(0.95), rel=1e-9)
    empty = effects.rate(Counts(0, 0))
    assert empty.observed is None
    assert empty.mean == pytest.approx(0.5)


def _difference_cdf(d: float, before: Counts, after: Counts) -> float:
    """P(theta_after - theta_before <= d) by integrating the before density against the
    after distribution function."""
    b = scipy_stats.beta(before.negatives + 0.5, before.responses - before.negatives + 0.5)
    a = scipy_stats.beta(after.negatives + 0.5, after.responses - after.negatives + 0.5)
    value, _ = integrate.quad(lambda x: b.pdf(x) * a.cdf(x + d), 0, 1, limit=200, points=[b.mean()])
    return float(value)


def _difference_quantile(p: float, before: Counts, after: Counts) -> float:
    return float(optimize.brentq(lambda d: _difference_cdf(d, before, after) - p, -1, 1))


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (Counts(200, 80), Counts(200, 20)),
        (Counts(40, 6), Counts(25, 5)),
        (Counts(500, 60), Counts(300, 33)),
    ],
)
def test_the_change_agrees_with_numerical_integration(before: Counts, after: Counts) -> None:
    found = effects.effect(before, after)
    expected_change = (after.negatives + 0.5) / (after.responses + 1) - (before.negatives + 0.5) / (
        before.responses + 1
    )
    assert found.change == pytest.approx(expected_change, abs=1e-12)
    # P(theta_after < theta_before) = P(difference < 0).
    assert found.prob_improved == pytest.approx(_difference_cdf(0.0, before, after), abs=0.01)
    width = _difference_quantile(0.95, before, after) - _difference_quantile(0.05, before, after)
    assert found.lower == pytest.approx(_difference_quantile(0.05, before, after), abs=0.03 * width)
    assert found.upper == pytest.approx(_difference_quantile(0.95, before, after), abs=0.03 * width)


def test_the_net_change_agrees_with_scipy_draws() -> None:
    before, after = Counts(300, 90), Counts(280, 40)
    others_before, others_after = Counts(900, 180), Counts(950, 150)
    found = effects.effect(
        before, after, others_before=others_before, others_after=others_after, others_moments=3
    )
    generator = np.random.default_rng(2024)

    def draws(counts: Counts) -> np.typing.NDArray[np.float64]:
        shapes = (counts.negatives + 0.5, counts.responses - counts.negatives + 0.5)
        return np.asarray(scipy_stats.beta(*shapes).rvs(200_000, random_state=generator))

    net = (draws(after) - draws(before)) - (draws(others_after) - draws(others_before))
    means = [
        (c.negatives + 0.5) / (c.responses + 1)
        for c in (before, after, others_before, others_after)
    ]
    assert found.net_change == pytest.approx(
        (means[1] - means[0]) - (means[3] - means[2]), abs=1e-12
    )
    assert found.net_lower == pytest.approx(float(np.quantile(net, 0.05)), abs=0.003)
    assert found.net_upper == pytest.approx(float(np.quantile(net, 0.95)), abs=0.003)
    assert found.prob_improved_net == pytest.approx(float(np.mean(net < 0)), abs=0.01)
    assert found.others is not None
    assert found.others.moments == 3
    assert found.others.change == pytest.approx(means[3] - means[2])


def test_the_same_counts_give_the_same_figures() -> None:
    first = effects.effect(
        Counts(60, 20), Counts(70, 12), others_before=Counts(90, 20), others_after=Counts(80, 15)
    )
    again = effects.effect(
        Counts(60, 20), Counts(70, 12), others_before=Counts(90, 20), others_after=Counts(80, 15)
    )
    assert first == again


def test_others_with_too_few_responses_give_no_net_change() -> None:
    found = effects.effect(
        Counts(100, 40), Counts(100, 10), others_before=Counts(19, 5), others_after=Counts(100, 20)
    )
    assert found.others is None
    assert found.net_change is None
    assert found.net_lower is None
    assert found.prob_improved_net is None
    # Judged on the change alone, then.
    assert found.verdict is effects.Verdict.improved


def test_the_verdict_follows_the_interval() -> None:
    assert effects.verdict(-0.2, -0.01) is effects.Verdict.improved
    assert effects.verdict(0.01, 0.2) is effects.Verdict.worsened
    assert effects.verdict(-0.1, 0.1) is effects.Verdict.unclear


def test_a_seasonal_dip_shared_by_the_others_nets_out() -> None:
    found = effects.effect(
        Counts(200, 80),
        Counts(200, 20),
        others_before=Counts(400, 160),
        others_after=Counts(400, 40),
    )
    assert found.verdict is effects.Verdict.unclear
    assert found.net_lower is not None
    assert found.net_upper is not None
    assert found.net_lower < 0 < found.net_upper
    assert found.change == pytest.approx(-0.3, abs=0.01)
