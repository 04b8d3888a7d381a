"""Ranking statistics against figures worked out by hand (shown in the comments).

Expected values come from exact arithmetic or closed forms, never from the code under test;
scipy appears only where a closed form is stated next to it.
"""

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.insights import stats
from app.insights.stats import (
    Counts,
    FamilyCounts,
    FamilyPrior,
    MomentInput,
    Posterior,
    Prior,
    TeamCounts,
    TrendInput,
    WeakSpotReason,
    WindowShares,
    bayesian_q_values,
    benjamini_hochberg,
    benjamini_hochberg_where_tested,
    ces_mean,
    consistency_q_values,
    csat_top_two_box,
    effective_volume,
    family_priors,
    funnel_limits,
    holm,
    moment_prior,
    monte_carlo_p_value,
    net_promoter_score,
    nps_adjusted_wald,
    pooled_rate,
    posterior,
    prior_strength,
    priority,
    prob_worse,
    rank,
    reasons,
    reference_rate,
    rise_p_value,
    team_consistency,
    trend_inputs,
    trends,
    two_proportion_z,
    upper_quartile,
    wilson_interval,
    window_shares,
)
from app.scales import ScaleFamily

SAT = ScaleFamily.satisfaction
NPS = ScaleFamily.nps


def _binomial_cdf(trials: int, p: float, at_most: int) -> float:
    return sum(math.comb(trials, i) * p**i * (1 - p) ** (trials - i) for i in range(at_most + 1))


def _beta_sf_integer(a: int, b: int, x: float) -> float:
    # For integer a, b: P(Beta(a, b) > x) = P(Binomial(a + b - 1, x) <= a - 1).
    return _binomial_cdf(a + b - 1, x, a - 1)


def _normal_sf(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2))


def _moment(
    key: str, touchpoints: int, n: int, k: int, *, target: float | None = None
) -> MomentInput:
    return MomentInput(key, touchpoints, (FamilyCounts(SAT, n, k),), target)


# --- steps 1-2: baselines and prior strength ---


def test_pooled_rate_is_total_negatives_over_total_responses() -> None:
    # (1 + 3 + 0) / (10 + 20 + 10) = 4/40
    assert pooled_rate([Counts(10, 1), Counts(20, 3), Counts(10, 0)]) == pytest.approx(0.1)
    assert pooled_rate([Counts(0, 0)]) is None


def test_kappa_is_20_when_fewer_than_8_moments_are_rated() -> None:
    # Wildly spread rates, but only 7 moments with responses (the 3 empty ones do not count).
    cells = [Counts(10, 0)] * 4 + [Counts(10, 10)] * 3 + [Counts(0, 0)] * 3
    assert prior_strength(cells) == 20
    assert prior_strength([]) == 20


def test_kappa_is_200_when_the_spread_is_no_more_than_binomial_noise() -> None:
    # mu = 8/80 = 0.1, every rate is 0.1: tau2 = 0 - 8 * 0.09 / 80 < 0.
    assert prior_strength([Counts(10, 1)] * 8) == 200


def test_kappa_is_200_when_the_baseline_is_0_or_1() -> None:
    assert prior_strength([Counts(10, 0)] * 8) == 200
    assert prior_strength([Counts(10, 10)] * 8) == 200


def test_kappa_by_the_method_of_moments_inside_the_clamp() -> None:
    # N = 1600, mu = 160/1600 = 1/10; rates 13/200 = 0.065 and 27/200 = 0.135, both 0.035 off.
    # sum n_i/N (r_i - mu)^2 = 0.035^2 = 49/40000; J mu(1-mu)/N = 8 * 0.09 / 1600 = 18/40000
    # tau2 = 31/40000; kappa = (3600/40000) / (31/40000) - 1 = 3569/31 = 115.129...
    cells = [Counts(200, 13)] * 4 + [Counts(200, 27)] * 4
    assert prior_strength(cells) == pytest.approx(3569 / 31)


def test_kappa_is_clamped_to_200_above() -> None:
    # Rates 0.075 and 0.125: observed 625/10^6 = 25/40000, tau2 = 7/40000,
    # kappa = 3600/7 - 1 = 513.3 -> 200.
    cells = [Counts(200, 15)] * 4 + [Counts(200, 25)] * 4
    assert prior_strength(cells) == 200


def test_kappa_is_clamped_to_5_below() -> None:
    # mu = 0.5; rates 0 and 1: observed 0.25, noise 8 * 0.25 / 80 = 0.025, tau2 = 0.225,
    # kappa = 0.25 / 0.225 - 1 = 1/9 -> 5.
    cells = [Counts(10, 0)] * 4 + [Counts(10, 10)] * 4
    assert prior_strength(cells) == 5


def test_family_priors_pool_each_family_separately() -> None:
    moments = [
        MomentInput("a", 100, (FamilyCounts(SAT, 40, 4), FamilyCounts(NPS, 10, 5))),
        MomentInput("b", 100, (FamilyCounts(SAT, 60, 16),)),
        MomentInput("c", 100, (FamilyCounts(ScaleFamily.effort, 0, 0),)),
    ]
    priors = family_priors(moments)
    # satisfaction: 20/100; nps: 5/10; effort has nothing rated and gets no prior.
    assert priors == {
        SAT: FamilyPrior(SAT, baseline=0.2, kappa=20, responses=100, moments=2),
        NPS: FamilyPrior(NPS, baseline=0.5, kappa=20, responses=10, moments=1),
    }


_PRIORS = {
    SAT: FamilyPrior(SAT, baseline=0.1, kappa=20, responses=300, moments=10),
    NPS: FamilyPrior(NPS, baseline=0.4, kappa=100, responses=100, moments=9),
}


def test_moment_on_two_families_mixes_their_priors_by_its_responses() -> None:
    moment = MomentInput("m", 50, (FamilyCounts(SAT, 30, 3), FamilyCounts(NPS, 10, 4)))
    # mu = (30 * 0.1 + 10 * 0.4) / 40 = 7/40; kappa = (30 * 20 + 10 * 100) / 40 = 40
    prior = moment_prior(moment, _PRIORS)
    assert (prior.baseline, prior.kappa) == pytest.approx((0.175, 40))


def test_moment_without_responses_weighs_its_families_equally() -> None:
    moment = MomentInput("m", 50, (FamilyCounts(SAT, 0, 0), FamilyCounts(NPS, 0, 0)))
    # mu = (0.1 + 0.4) / 2; kappa = (20 + 100) / 2
    prior = moment_prior(moment, _PRIORS)
    assert (prior.baseline, prior.kappa) == pytest.approx((0.25, 60))


def test_moment_without_families_takes_the_window_rate_and_kappa_20() -> None:
    # (0.1 * 300 + 0.4 * 100) / 400 = 70/400
    prior = moment_prior(MomentInput("m", 50), _PRIORS)
    assert (prior.baseline, prior.kappa) == pytest.approx((0.175, 20))
    assert moment_prior(MomentInput("m", 50), {}) == Prior(0.0, 20)


# --- steps 3-5 ---


def test_posterior_shrinks_towards_the_baseline() -> None:
    # a = 0.1 * 20 + 9 = 11; b = 0.9 * 20 + 30 - 9 = 39; rate = 11/50 (raw 9/30 = 0.3)
    post = posterior(Prior(0.1, 20), responses=30, negatives=9)
    assert (post.a, post.b, post.rate) == pytest.approx((11, 39, 0.22))


def test_uniform_posterior_interval_is_its_own_quantiles() -> None:
    # Beta(1, 1) is uniform: quantile q is q; P(X > 0.3) = 0.7.
    post = posterior(Prior(0.5, 2), responses=0, negatives=0)
    assert (post.a, post.b) == (1, 1)
    assert (post.lower, post.upper) == pytest.approx((0.05, 0.95))
    assert prob_worse(post, reference=0.3) == pytest.approx(0.7)


def test_beta_2_8_interval_matches_the_closed_form_cdf() -> None:
    # Beta(2, 8): F(x) = 1 - (1-x)^9 - 9x(1-x)^8; solving F = 0.05 and 0.95 by bisection
    # gives 0.0410232 and 0.4291355.
    post = posterior(Prior(0.2, 10), responses=0, negatives=0)
    assert (post.a, post.b, post.rate) == pytest.approx((2, 8, 0.2))
    assert (post.lower, post.upper) == pytest.approx((0.0410232, 0.4291355), abs=1e-6)

    def cdf(x: float) -> float:
        return 1 - (1 - x) ** 9 - 9 * x * (1 - x) ** 8

    assert (cdf(post.lower), cdf(post.upper)) == pytest.approx((0.05, 0.95))


def test_prob_worse_is_the_posterior_survival_function() -> None:
    # P(Beta(2, 8) > 0.1) = P(Bin(9, 0.1) <= 1) = 0.9^9 + 9 * 0.1 * 0.9^8 = 0.774840978
    post = posterior(Prior(0.2, 10), responses=0, negatives=0)
    assert prob_worse(post, reference=0.1) == pytest.approx(0.774840978)


def test_posterior_with_zero_baseline_and_no_negatives_is_a_point_mass_at_zero() -> None:
    post = posterior(Prior(0.0, 20), responses=10, negatives=0)
    assert post == Posterior(a=0.0, b=30.0, rate=0.0, lower=0.0, upper=0.0)
    assert prob_worse(post, reference=0.0) == 0


def test_reference_is_the_target_else_the_baseline() -> None:
    assert reference_rate(target=0.05, baseline=0.2) == 0.05
    assert reference_rate(target=None, baseline=0.2) == 0.2


def test_volume_falls_back_to_responses() -> None:
    assert effective_volume(0, responses=40) == 40
    assert effective_volume(10, responses=40) == 40
    assert effective_volume(100, responses=40) == 100


def test_priority_is_volume_times_excess_rate() -> None:
    # 1000 * (0.25 - 0.10) = 150; below the reference the priority is negative.
    assert priority(volume=1000, rate=0.25, reference=0.1) == pytest.approx(150)
    assert priority(volume=200, rate=0.05, reference=0.1) == pytest.approx(-10)


# --- step 6 and rank ---


def test_q_values_are_running_means_of_one_minus_prob_worse() -> None:
    # Descending order 0.99, 0.97, 0.95, 0.50; 1 - p = 0.01, 0.03, 0.05, 0.50;
    # running means 0.01, 0.02, 0.03, 0.1475 (given back in input order).
    q = bayesian_q_values([0.99, 0.5, 0.95, 0.97])
    assert q == pytest.approx([0.01, 0.1475, 0.03, 0.02])


def test_tied_prob_worse_share_one_q_value() -> None:
    # Ties form one group: (0.1 + 0.1 + 0.3) / 3 for the last; (0.1 + 0.1) / 2 for the pair.
    assert bayesian_q_values([0.9, 0.7, 0.9]) == pytest.approx([0.1, 0.5 / 3, 0.1])


def test_rank_orders_by_priority_with_hand_computed_figures() -> None:
    moments = [_moment("quiet", 200, 50, 5), _moment("busy", 1000, 50, 15)]
    # mu = 20/100 = 0.2; two moments (J < 8), so kappa = 20: prior Beta(4, 16).
    # busy: Beta(19, 51), rate 19/70; priority 1000 * (19/70 - 14/70) = 500/7
    # quiet: Beta(9, 61), rate 9/70; priority 200 * (9/70 - 14/70) = -100/7
    # prob_worse by the binomial identity: P(Bin(69, 0.2) <= 18) and P(Bin(69, 0.2) <= 8).
    busy_worse = _beta_sf_integer(19, 51, 0.2)
    quiet_worse = _beta_sf_integer(9, 61, 0.2)
    assert busy_worse == pytest.approx(0.917776, abs=1e-6)
    busy, quiet = rank(moments)
    assert (busy.key, quiet.key) == ("busy", "quiet")
    assert (busy.prior.baseline, busy.prior.kappa) == pytest.approx((0.2, 20))
    assert (busy.posterior.a, busy.posterior.b) == pytest.approx((19, 51))
    assert (quiet.posterior.a, quiet.posterior.b) == pytest.approx((9, 61))
    assert busy.rate == pytest.approx(19 / 70)
    assert busy.priority == pytest.approx(500 / 7)
    assert quiet.priority == pytest.approx(-100 / 7)
    assert busy.prob_worse == pytest.approx(busy_worse)
    assert quiet.prob_worse == pytest.approx(quiet_worse)
    # q: busy 1 - 0.917776 = 0.082224 <= 0.10; quiet (0.082224 + 0.951038) / 2 = 0.516631
    assert busy.q_value == pytest.approx(1 - busy_worse)
    assert quiet.q_value == pytest.approx((2 - busy_worse - quiet_worse) / 2)
    assert (busy.confident_problem, quiet.confident_problem) == (True, False)
    assert (busy.low_data, quiet.low_data) == (False, False)


def test_rank_judges_against_the_target_and_flags_low_data() -> None:
    # mu = 2/10, kappa = 20: a = 4 + 2 = 6, b = 16 + 8 = 24, rate 0.2. V = 0 falls back to n.
    (item,) = rank([_moment("m", 0, 10, 2, target=0.1)])
    assert item.reference == 0.1
    assert item.volume == 10
    assert item.priority == pytest.approx(10 * (0.2 - 0.1))
    assert item.low_data


def test_rank_refuses_duplicate_keys() -> None:
    with pytest.raises(ValueError, match="unique"):
        rank([_moment("m", 10, 10, 1), _moment("m", 10, 10, 1)])


# --- step 7: trend ---


def test_two_proportion_z_with_pooled_proportion() -> None:
    # p1 = 0.3, p0 = 0.2, pooled 50/200 = 0.25; se = sqrt(0.25 * 0.75 * (1/100 + 1/100))
    # = sqrt(0.00375) = 0.0612372; z = 0.1 / 0.0612372 = 1.632993
    z = two_proportion_z(Counts(100, 30), Counts(100, 20))
    assert z == pytest.approx(1.632993, abs=1e-6)


def _rise_by_hand(current: Counts, previous: Counts) -> float:
    """P(X >= k1), X ~ Hypergeom(n1 + n0, k1 + k0, n1), summed in exact integers."""
    n1, k1, n0, k0 = current.responses, current.negatives, previous.responses, previous.negatives
    total = k1 + k0
    ways = sum(
        math.comb(total, x) * math.comb(n1 + n0 - total, n1 - x) for x in range(k1, total + 1)
    )
    return float(Fraction(ways, math.comb(n1 + n0, n1)))


def test_rise_p_value_is_the_one_sided_fisher_tail() -> None:
    # 3 of 4 negative now, 0 of 4 before: K = 3 of 8, X ~ Hypergeom(8, 3, 4);
    # P(X >= 3) = C(3,3) C(5,1) / C(8,4) = 5/70.
    assert rise_p_value(Counts(4, 3), Counts(4, 0)) == pytest.approx(1 / 14, rel=1e-12)
    # Nothing can rise when every negative is already in the earlier window: P(X >= 0) = 1.
    assert rise_p_value(Counts(4, 0), Counts(4, 3)) == pytest.approx(1.0)
    # The z-test's case of few negatives (3 of 279 before, 13 of 330 now): exact p is larger.
    now, before = Counts(330, 13), Counts(279, 3)
    assert rise_p_value(now, before) == pytest.approx(_rise_by_hand(now, before), rel=1e-10)
    assert rise_p_value(now, before) > _normal_sf(two_proportion_z(now, before))


def test_two_proportion_z_is_zero_when_nothing_or_everything_was_negative() -> None:
    assert two_proportion_z(Counts(50, 0), Counts(40, 0)) == 0
    assert two_proportion_z(Counts(50, 50), Counts(40, 40)) == 0


def test_benjamini_hochberg_small_example() -> None:
    # Sorted 0.01, 0.03, 0.04, 0.20 (m = 4): m p / i = 0.04, 0.06, 0.0533, 0.20;
    # minimum from the top: 0.04, 0.0533, 0.0533, 0.20.
    assert benjamini_hochberg([0.01, 0.04, 0.03, 0.20]) == pytest.approx(
        [0.04, 0.16 / 3, 0.16 / 3, 0.2]
    )
    assert benjamini_hochberg([]) == []
    assert benjamini_hochberg([0.9, 0.8]) == pytest.approx([0.9, 0.9])


def test_benjamini_hochberg_worked_example_from_the_1995_paper() -> None:
    # Benjamini & Hochberg (1995), section 4: 15 p-values, four rejected at 0.05.
    p = [0.0001, 0.0004, 0.0019, 0.0095, 0.0201, 0.0278, 0.0298, 0.0344, 0.0459]
    p += [0.3240, 0.4262, 0.5719, 0.6528, 0.7590, 1.0000]
    # 15 p_(i) / i, then running minimum from the top (q7 = 15 * 0.0298 / 7 caps q6).
    expected = [0.0015, 0.003, 0.0095, 0.035625, 0.0603, 0.447 / 7, 0.447 / 7, 0.0645]
    expected += [0.0765, 0.486, 6.393 / 11, 0.714875, 9.792 / 13, 11.385 / 14, 1.0]
    q = benjamini_hochberg(p)
    assert q == pytest.approx(expected)
    assert sum(value <= 0.05 for value in q) == 4


def test_benjamini_hochberg_where_tested_leaves_gaps() -> None:
    assert benjamini_hochberg_where_tested([None, 0.02, None, 0.04]) == pytest.approx(
        [None, 0.04, None, 0.04]
    )


def test_trends_test_only_moments_with_20_responses_in_both_windows() -> None:
    items = [
        TrendInput("x", Counts(100, 30), Counts(100, 20), current_rate=0.28, previous_rate=0.2),
        TrendInput("y", Counts(100, 40), Counts(100, 10), current_rate=0.35, previous_rate=0.12),
        TrendInput("z", Counts(19, 19), Counts(100, 0), current_rate=0.5, previous_rate=None),
    ]
    x, y, z = trends(items)
    # BH over two tests: q_y = 2 p_y, q_x = 2 p_x / 2 (p_x > p_y).
    p_x = _rise_by_hand(Counts(100, 30), Counts(100, 20))
    p_y = _rise_by_hand(Counts(100, 40), Counts(100, 10))
    assert (x.tested, y.tested, z.tested) == (True, True, False)
    assert y.z == pytest.approx(4.8989795)  # 0.3 / 0.0612372, descriptive
    assert x.p_value == pytest.approx(p_x, rel=1e-10)
    assert x.q_value == pytest.approx(p_x, rel=1e-10)
    assert y.q_value == pytest.approx(2 * p_y, rel=1e-10)
    # x (30% against 20%): exact p = 0.0706, over the z-test's 0.0512 but under 0.10.
    assert p_x == pytest.approx(0.07060, abs=1e-4)
    assert (x.worsening, y.worsening, z.worsening) == (True, True, False)
    assert x.change == pytest.approx(0.08)
    assert (z.z, z.p_value, z.q_value, z.change) == (None, None, None, None)


def test_trend_inputs_pair_windows_by_key() -> None:
    current = rank([_moment("a", 100, 40, 8), _moment("b", 100, 40, 4)])
    previous = rank([_moment("a", 100, 30, 3)])
    by_key = {item.key: item for item in trend_inputs(current, previous)}
    assert by_key["a"].previous == Counts(30, 3)
    assert by_key["a"].previous_rate == previous[0].rate
    assert by_key["b"].previous == Counts(0, 0)
    assert by_key["b"].previous_rate is None


# --- step 8: consistency across teams ---


def test_team_consistency_chi_square_by_hand() -> None:
    teams = [
        TeamCounts("a", 40, 4),
        TeamCounts("b", 40, 12),
        TeamCounts("c", 20, 4),
        TeamCounts("tiny", 9, 9),  # under 10 responses: left out
    ]
    # p = 20/100 = 0.2, p(1-p) = 0.16; expected k: 8, 8, 4
    # X2 = 16/6.4 + 16/6.4 + 0/3.2 = 5; df = 2; phi = 2.5; P(chi2_2 > 5) = exp(-5/2)
    result = team_consistency(teams)
    assert result is not None
    assert result.teams == 3
    assert result.pooled_rate == pytest.approx(0.2)
    assert result.statistic == pytest.approx(5.0)
    assert result.df == 2
    assert result.dispersion == pytest.approx(2.5)
    assert result.min_expected == pytest.approx(4.0)  # team c: 20 * 0.2 negatives expected
    assert result.test == "monte-carlo"
    assert result.outliers == ()


def test_chi_square_distribution_only_when_every_expected_count_is_at_least_five() -> None:
    # p = 0.2: expected negatives 10, 10, 5 and non-negatives 40, 40, 20.
    teams = [TeamCounts("a", 50, 5), TeamCounts("b", 50, 15), TeamCounts("c", 25, 5)]
    result = team_consistency(teams)
    assert result is not None
    # X2 = 25/8 + 25/8 + 0 = 6.25, df 2: P(chi2_2 > 6.25) = exp(-3.125)
    assert result.test == "chi-square"
    assert result.min_expected == pytest.approx(5.0)
    assert result.p_value == pytest.approx(math.exp(-3.125))


def test_monte_carlo_p_value_is_seeded_and_never_zero() -> None:
    teams = [TeamCounts("a", 10, 0), TeamCounts("b", 10, 0), TeamCounts("c", 12, 6)]
    first = monte_carlo_p_value(teams)
    assert monte_carlo_p_value(list(teams)) == first
    draws = stats.MONTE_CARLO_DRAWS
    # (1 + exceedances) / (draws + 1): a multiple of 1 / (draws + 1), at least that much.
    assert round(first * (draws + 1), 6) == round(first * (draws + 1))
    assert 1 / (draws + 1) <= first < 0.01
    # Every table but the observed one's mirror images is less extreme when all agree.
    alike = [TeamCounts("a", 10, 2), TeamCounts("b", 10, 2), TeamCounts("c", 10, 2)]
    assert monte_carlo_p_value(alike) == 1.0


def test_holm_small_example() -> None:
    # Sorted 0.01, 0.03, 0.04, 0.20 (m = 4): 4 x 0.01, 3 x 0.03, 2 x 0.04, 1 x 0.20 = 0.04,
    # 0.09, 0.08, 0.20; made non-decreasing: 0.04, 0.09, 0.09, 0.20.
    assert holm([0.01, 0.04, 0.03, 0.20]) == pytest.approx([0.04, 0.09, 0.09, 0.2])
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])
    assert holm([]) == []


def test_a_team_is_compared_with_the_other_teams_pooled_by_an_exact_test() -> None:
    # Team a: 6 of 10 negative; the others 0 of 10. X ~ Hypergeom(20, 6, 10) is symmetric
    # about 3, so p = P(X = 6) + P(X = 0) = 2 C(14, 4) / C(20, 10) = 2002 / 184756.
    result = team_consistency([TeamCounts("a", 10, 6), TeamCounts("b", 10, 0)])
    assert result is not None
    p = 2002 / 184756
    # Holm over two teams, whose tables are the same one seen from either side: 2p each.
    named = {(o.team, o.direction): o for o in result.outliers}
    assert set(named) == {("a", "worse"), ("b", "better")}
    assert named["a", "worse"].p_value == pytest.approx(p, rel=1e-10)
    assert named["a", "worse"].adjusted_p_value == pytest.approx(2 * p, rel=1e-10)
    assert (named["a", "worse"].rate, named["a", "worse"].others_rate) == (0.6, 0.0)
    assert named["b", "better"].others_responses == 10


def test_one_worse_team_of_twenty_is_named_and_the_others_are_not() -> None:
    # 19 teams 10/100 and one 30/100. phi = 2.04 would have widened funnel limits; the
    # leave-one-out test compares the bad team with 190/1900 = 10%, undiluted by itself.
    teams = [TeamCounts(f"t{i}", 100, 10) for i in range(19)] + [TeamCounts("bad", 100, 30)]
    result = team_consistency(teams)
    assert result is not None
    assert result.statistic == pytest.approx(38.8151, abs=1e-4)
    assert result.dispersion == pytest.approx(2.04290, abs=1e-5)
    (outlier,) = result.outliers
    assert (outlier.team, outlier.direction) == ("bad", "worse")
    assert (outlier.rate, outlier.others_rate) == (0.3, 0.1)
    assert outlier.adjusted_p_value <= 0.05


def test_one_better_team_of_twenty_is_named_better() -> None:
    teams = [TeamCounts(f"t{i}", 100, 30) for i in range(19)] + [TeamCounts("good", 100, 10)]
    result = team_consistency(teams)
    assert result is not None
    (outlier,) = result.outliers
    assert (outlier.team, outlier.direction) == ("good", "better")


def test_the_product_example_of_one_team_of_five_at_25_percent_is_named() -> None:
    teams = [TeamCounts(f"t{i}", 100, 10) for i in range(4)] + [TeamCounts("bad", 100, 25)]
    result = team_consistency(teams)
    assert result is not None
    assert [(o.team, o.direction) for o in result.outliers] == [("bad", "worse")]


def test_team_consistency_is_none_when_there_is_nothing_to_test() -> None:
    assert team_consistency([TeamCounts("a", 50, 5), TeamCounts("b", 9, 1)]) is None
    assert team_consistency([TeamCounts("a", 50, 0), TeamCounts("b", 20, 0)]) is None
    assert team_consistency([TeamCounts("a", 50, 50), TeamCounts("b", 20, 20)]) is None


def test_consistency_q_values_skip_untested_moments() -> None:
    tested = team_consistency([TeamCounts("a", 40, 4), TeamCounts("b", 40, 12)])
    assert tested is not None
    assert consistency_q_values([None, tested]) == [None, tested.p_value]


# --- step 9: native figures ---


def test_wilson_interval_8_of_10() -> None:
    # centre (0.8 + 1.96^2/20) / (1 + 1.96^2/10) = 0.716738
    # half 1.96 sqrt(0.016 + 0.009604) / 1.384160 = 0.226582 -> (0.490157, 0.943319)
    interval = wilson_interval(8, 10)
    assert (interval.lower, interval.upper) == pytest.approx((0.490157, 0.943319), abs=1e-6)


def test_csat_top_two_box_counts_4_and_5() -> None:
    estimate = csat_top_two_box({5: 5, 4: 3, 3: 1, 1: 1})
    assert estimate is not None
    assert estimate.value == pytest.approx(0.8)
    assert (estimate.lower, estimate.upper) == pytest.approx((0.490157, 0.943319), abs=1e-6)
    assert csat_top_two_box({}) is None
    with pytest.raises(ValueError, match="csat5"):
        csat_top_two_box({6: 1})


def test_nps_adjusted_wald_small_example() -> None:
    # n = 10, 5 promoters, 2 detractors: NPS = 30. n' = 13, P' = 5.75/13, D' = 2.75/13,
    # NPS' = 3/13 = 0.230769; se = sqrt((8.5/13 - (3/13)^2) / 13) = 0.214941;
    # interval 100 (0.230769 -+ 1.96 * 0.214941) = (-19.0514, 65.2052)
    estimate = nps_adjusted_wald(promoters=5, detractors=2, responses=10)
    assert estimate.value == pytest.approx(30)
    assert (estimate.lower, estimate.upper) == pytest.approx((-19.0514, 65.2052), abs=1e-4)


def test_nps_interval_is_clipped_to_100() -> None:
    # 100 promoters of 100: NPS' = 100/103 = 0.970874, se = 0.020394; upper 101.08 -> 100
    estimate = nps_adjusted_wald(promoters=100, detractors=0, responses=100)
    assert estimate.value == 100
    assert estimate.lower == pytest.approx(93.0901, abs=1e-4)
    assert estimate.upper == 100


def test_net_promoter_score_from_answers() -> None:
    # promoters 9-10: 3 + 2; passives 7-8: 3; detractors 0-6: 1 + 1
    estimate = net_promoter_score({10: 3, 9: 2, 8: 2, 7: 1, 6: 1, 0: 1})
    assert estimate == nps_adjusted_wald(promoters=5, detractors=2, responses=10)
    assert net_promoter_score({}) is None


def test_ces_mean() -> None:
    # (7 * 2 + 5 + 1) / 4 = 5
    assert ces_mean({7: 2, 5: 1, 1: 1}) == pytest.approx(5)
    assert ces_mean({}) is None


# --- step 10: reasons ---


def test_window_shares() -> None:
    shares = window_shares(
        touchpoints=[100, 200, 300, 400, 0],
        responses=[50, 20, 30, 40, 10],
        complaints=[0, 10, 3, 1, 0],
    )
    # volumes 100, 200, 300, 400, 10 -> sorted position 0.75 * 4 = 3 -> 300
    # response rate 140/1000 (the V = 0 moment is left out); complaints 14 / 1010
    assert shares.volume_upper_quartile == 300
    assert shares.response_rate == pytest.approx(0.14)
    assert shares.complaint_share == pytest.approx(14 / 1010)


def test_upper_quartile_interpolates() -> None:
    # position 0.75 * 3 = 2.25 between 300 and 400
    assert upper_quartile([400, 100, 300, 200]) == pytest.approx(325)
    assert upper_quartile([]) is None


_WINDOW = WindowShares(volume_upper_quartile=325, response_rate=0.14, complaint_share=0.014)


def test_all_reasons_in_fixed_order() -> None:
    found = reasons(
        touchpoints=400,
        responses=20,  # 20/400 = 0.05 < 0.14 / 2
        complaints=20,  # 20/400 = 0.05 > 2 * 0.014
        rate=0.3,
        target=0.1,
        confident_problem=True,
        worsening=True,
        consistency_q=0.05,
        window=_WINDOW,
    )
    assert found == [
        "high_volume",
        "over_target",
        "confident_problem",
        "worsening",
        "inconsistent_teams",
        "low_response_rate",
        "many_complaints",
    ]
    assert found[0] is WeakSpotReason.high_volume


def test_no_reasons_for_an_unremarkable_moment() -> None:
    found = reasons(
        touchpoints=200,
        responses=20,  # 0.10, not below 0.07
        complaints=2,  # over twice the share but fewer than 3
        rate=0.3,
        target=None,
        confident_problem=False,
        worsening=False,
        consistency_q=None,
        window=_WINDOW,
    )
    assert found == []


def test_reason_boundaries() -> None:
    # A rate equal to its target is not over it; q = 0.10 counts as inconsistent;
    # 3 complaints of 200 do not exceed 2 * 0.014 * 200 = 5.6.
    at_limits = reasons(
        touchpoints=200,
        responses=20,
        complaints=3,
        rate=0.1,
        target=0.1,
        confident_problem=False,
        worsening=False,
        consistency_q=0.1,
        window=_WINDOW,
    )
    assert at_limits == [WeakSpotReason.inconsistent_teams]
    # V = 0: no response rate to judge, even with a single response.
    no_touchpoints = reasons(
        touchpoints=0,
        responses=1,
        complaints=0,
        rate=0.1,
        target=None,
        confident_problem=False,
        worsening=False,
        consistency_q=None,
        window=_WINDOW,
    )
    assert no_touchpoints == []


# --- properties ---

baselines = st.floats(min_value=0.0, max_value=1.0)
kappas = st.floats(min_value=5.0, max_value=200.0)


@given(baselines, kappas, st.integers(1, 500), st.data())
def test_more_negative_answers_never_lower_the_adjusted_rate(
    mu: float, kappa: float, n: int, data: st.DataObject
) -> None:
    k = data.draw(st.integers(0, n - 1))
    prior = Prior(mu, kappa)
    rate = posterior(prior, responses=n, negatives=k).rate
    assert posterior(prior, responses=n, negatives=k + 1).rate >= rate
    assert posterior(prior, responses=n + 1, negatives=k + 1).rate >= rate


@given(st.floats(0.01, 0.99), kappas, st.integers(0, 2000), st.data())
def test_credible_interval_contains_the_posterior_mean(
    mu: float, kappa: float, n: int, data: st.DataObject
) -> None:
    # Restricted to mu*kappa >= 0.05: see the next test for why.
    k = data.draw(st.integers(0, n))
    post = posterior(Prior(mu, kappa), responses=n, negatives=k)
    assert post.lower <= post.rate <= post.upper


def test_equal_tailed_interval_misses_the_mean_when_a_is_tiny() -> None:
    # A known limit of equal-tailed intervals: Beta(0.005, 4.995) (mu = 0.001, kappa = 5,
    # no responses) has mean 0.001 but almost all mass below 1e-5, so the 95% quantile
    # sits under the mean. That takes min(a, b) below about 0.014 (the limit as b grows).
    post = posterior(Prior(0.001, 5), responses=0, negatives=0)
    assert post.upper < post.rate


@given(st.lists(st.floats(0.0, 1.0), max_size=30))
def test_q_values_do_not_decrease_in_prob_worse_order(prob: list[float]) -> None:
    q = bayesian_q_values(prob)
    ordered = [q[i] for i in sorted(range(len(prob)), key=lambda i: -prob[i])]
    assert all(0.0 <= value <= 1.0 for value in q)
    # 1e-12: running means of floats can differ from exact ones in the last bit.
    assert all(a <= b + 1e-12 for a, b in zip(ordered, ordered[1:], strict=False))


@given(st.lists(st.floats(0.0, 1.0), max_size=30))
def test_benjamini_hochberg_q_values_are_bounded_and_monotone(p: list[float]) -> None:
    q = benjamini_hochberg(p)
    assert all(0.0 <= value <= 1.0 for value in q)
    assert all(q_i >= p_i for q_i, p_i in zip(q, p, strict=True))
    ordered = [q[i] for i in sorted(range(len(p)), key=lambda i: p[i])]
    assert all(a <= b for a, b in zip(ordered, ordered[1:], strict=False))


def test_fractions_confirm_the_unclamped_kappa() -> None:
    # The same figure as above, recomputed with exact fractions as a guard on the comment.
    mu = Fraction(1, 10)
    tau2 = Fraction(35, 1000) ** 2 - 8 * mu * (1 - mu) / 1600
    assert mu * (1 - mu) / tau2 - 1 == Fraction(3569, 31)


# --- calibration: seeded simulations of moments whose true rate did not change ---


def test_the_trend_test_raises_false_alarms_at_no_more_than_the_nominal_rate() -> None:
    # 4,000 moments, both windows drawn from one true rate (1% to 20%, 20 to 300 responses
    # a window, so many with a handful of negatives): the exact p-value is at most 0.10
    # for no more than 10% of them, and BH over batches of 20 such moments flags a
    # worsening in no more than 10% of the batches (all null, FDR = family-wise error).
    rng = np.random.default_rng(2026)
    moments, batch = 4000, 20
    rates = rng.uniform(0.01, 0.20, moments)
    now_n, before_n = rng.integers(20, 301, moments), rng.integers(20, 301, moments)
    now_k, before_k = rng.binomial(now_n, rates), rng.binomial(before_n, rates)
    items = [
        TrendInput(
            f"m{i}",
            Counts(int(now_n[i]), int(now_k[i])),
            Counts(int(before_n[i]), int(before_k[i])),
            current_rate=0.0,
            previous_rate=0.0,
        )
        for i in range(moments)
    ]
    p_values = np.array([t.p_value for t in trends(items)])
    assert np.mean(p_values <= 0.10) <= 0.10
    alarms = [
        any(t.worsening for t in trends(items[start : start + batch]))
        for start in range(0, moments, batch)
    ]
    assert np.mean(alarms) <= 0.10
    # Calibrated, not merely conservative: it still rejects a fair share under the null.
    assert np.mean(p_values <= 0.10) >= 0.04


def test_five_alike_teams_are_rarely_named_or_flagged() -> None:
    # 300 moments of five teams of 100 sharing one rate: Holm keeps naming any team to
    # 5% of the moments, the chi-square (or Monte Carlo) p-value under 0.05 to about 5%.
    rng = np.random.default_rng(13)
    named = flagged = 0
    for _ in range(300):
        rate = rng.uniform(0.02, 0.3)
        negatives = rng.binomial(100, rate, 5)
        result = team_consistency(
            [TeamCounts(f"t{j}", 100, int(k)) for j, k in enumerate(negatives)]
        )
        if result is None:
            continue
        named += bool(result.outliers)
        flagged += result.p_value <= 0.05
    assert named / 300 <= 0.05 + 0.03
    assert flagged / 300 <= 0.05 + 0.03


def test_funnel_limits_by_hand() -> None:
    # 10% of 100: sd = sqrt(0.1 * 0.9 / 100) = 0.03; 1.96 * 0.03 = 0.0588, 3.09 * 0.03 = 0.0927.
    inner = funnel_limits(0.1, 100, 1.96)
    assert (inner.lower, inner.upper) == pytest.approx((0.0412, 0.1588))
    outer = funnel_limits(0.1, 100, 3.09)
    assert (outer.lower, outer.upper) == pytest.approx((0.0073, 0.1927))
    # 50% of 4: sd = 0.25, 1.96 * 0.25 = 0.49.
    small = funnel_limits(0.5, 4)
    assert (small.lower, small.upper) == pytest.approx((0.01, 0.99))
    # 2% of 10: sd = sqrt(0.0196 / 10) = 0.044272; the lower limit is cut at 0.
    clipped = funnel_limits(0.02, 10)
    assert clipped.lower == 0.0
    assert clipped.upper == pytest.approx(0.02 + 1.96 * 0.0442719)
    # More responses, narrower limits; a rate of 0 has none to spread.
    assert funnel_limits(0.1, 400).upper - funnel_limits(0.1, 400).lower == pytest.approx(0.0588)
    assert funnel_limits(0.0, 50) == funnel_limits(0.0, 50, 3.09)
    assert (funnel_limits(0.0, 50).lower, funnel_limits(0.0, 50).upper) == (0.0, 0.0)


@pytest.mark.parametrize(("rate", "responses"), [(0.1, 0), (0.1, -3), (1.5, 10), (-0.1, 10)])
def test_funnel_limits_refuse_what_is_not_a_rate_over_responses(
    rate: float, responses: int
) -> None:
    with pytest.raises(ValueError, match="need"):
        funnel_limits(rate, responses)
