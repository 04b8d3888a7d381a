"""Statistics behind the moment ranking: empirical-Bayes shrinkage, confidence, trend,
consistency across teams, native survey figures and the reasons a moment is listed.

Pure functions and frozen dataclasses over counts; no database, HTTP or other I/O.
A "rate" is always a share of negative ratings, between 0 and 1.
"""

import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from fractions import Fraction
from typing import Literal

from scipy import special

from app.touchpoints.scales import ScaleFamily

KAPPA_MIN = 5.0
KAPPA_MAX = 200.0
KAPPA_FEW_MOMENTS = 20.0
"""Prior strength used when too few moments were rated to estimate their spread."""
MIN_MOMENTS_FOR_KAPPA = 8
CREDIBLE_LOWER = 0.05
CREDIBLE_UPPER = 0.95
Q_THRESHOLD = 0.10
LOW_DATA_RESPONSES = 30
TREND_MIN_RESPONSES = 20
TEAM_MIN_RESPONSES = 10
FUNNEL_LIMIT_SD = 3.0
Z95 = 1.96
COMPLAINTS_MIN = 3


# --- scipy wrappers: the special functions are ufuncs, fast on scalars (the distribution
# objects of scipy.stats cost ~100 us a call, too slow for hundreds of moments a request);
# scipy is untyped, so every call is narrowed to a plain float here ---


def _beta_quantile(probability: float, a: float, b: float) -> float:
    return float(special.betaincinv(a, b, probability))


def _beta_survival(x: float, a: float, b: float) -> float:
    return float(special.betaincc(a, b, x))


def _normal_survival(z: float) -> float:
    return float(special.ndtr(-z))


def _chi2_survival(statistic: float, df: int) -> float:
    return float(special.chdtrc(df, statistic))


# --- inputs ---


def _check_counts(responses: int, negatives: int) -> None:
    if responses < 0 or not 0 <= negatives <= responses:
        raise ValueError(
            f"need 0 <= negatives <= responses, got negatives={negatives}, responses={responses}"
        )


@dataclass(frozen=True, slots=True)
class Counts:
    """Rated responses (n) and how many of them were negative (k)."""

    responses: int
    negatives: int

    def __post_init__(self) -> None:
        _check_counts(self.responses, self.negatives)


@dataclass(frozen=True, slots=True)
class FamilyCounts:
    """A moment's rated (n) and negative (k) responses on the scales of one family."""

    family: ScaleFamily
    responses: int
    negatives: int

    def __post_init__(self) -> None:
        _check_counts(self.responses, self.negatives)


@dataclass(frozen=True, slots=True)
class MomentInput:
    """One moment in a window: touchpoints (V), its counts per scale family, its target."""

    key: str
    touchpoints: int
    families: tuple[FamilyCounts, ...] = ()
    target_negative_rate: float | None = None

    def __post_init__(self) -> None:
        if self.touchpoints < 0:
            raise ValueError(f"touchpoints must be >= 0, got {self.touchpoints}")
        names = [cell.family for cell in self.families]
        if len(set(names)) != len(names):
            raise ValueError(f"moment {self.key!r} lists a scale family twice")
        target = self.target_negative_rate
        if target is not None and not 0.0 <= target <= 1.0:
            raise ValueError(f"target_negative_rate must be within [0, 1], got {target}")

    @property
    def responses(self) -> int:
        return sum(cell.responses for cell in self.families)

    @property
    def negatives(self) -> int:
        return sum(cell.negatives for cell in self.families)


@dataclass(frozen=True, slots=True)
class TeamCounts:
    """One team's rated (n) and negative (k) responses on a moment."""

    team: str
    responses: int
    negatives: int

    def __post_init__(self) -> None:
        _check_counts(self.responses, self.negatives)


# --- steps 1-2: baselines and prior strength ---


@dataclass(frozen=True, slots=True)
class FamilyPrior:
    """Baseline rate (mu) and prior strength (kappa) of one scale family in a window."""

    family: ScaleFamily
    baseline: float
    kappa: float
    responses: int
    """N: rated responses in the family."""
    moments: int
    """J: moments with at least one rated response in the family."""


@dataclass(frozen=True, slots=True)
class Prior:
    """Beta prior of one moment: mean `baseline` (mu), strength `kappa`."""

    baseline: float
    kappa: float


def pooled_rate(cells: Sequence[Counts]) -> float | None:
    """Pooled negative rate mu = sum(k) / sum(n); None when nothing was rated."""
    responses = sum(cell.responses for cell in cells)
    if responses == 0:
        return None
    return sum(cell.negatives for cell in cells) / responses


def prior_strength(cells: Sequence[Counts]) -> float:
    """Beta prior strength kappa = mu(1-mu)/tau2 - 1 by the method of moments (Kleinman 1973).

    tau2 = sum(n_i/N * (k_i/n_i - mu)^2) - J*mu*(1-mu)/N over the J moments with n_i > 0.
    Returns 20 when J < 8 (including N = 0), 200 when tau2 <= 0 (including mu = 0 or 1,
    where every moment sits exactly on the baseline), else kappa clamped to [5, 200].
    """
    rated = [cell for cell in cells if cell.responses > 0]
    if len(rated) < MIN_MOMENTS_FOR_KAPPA:
        return KAPPA_FEW_MOMENTS
    total = sum(cell.responses for cell in rated)
    mu = Fraction(sum(cell.negatives for cell in rated), total)
    if mu in (0, 1):
        return KAPPA_MAX
    tau2 = _between_moment_variance(rated, mu=mu, total=total)
    if tau2 <= 0:
        return KAPPA_MAX
    kappa = mu * (1 - mu) / tau2 - 1
    return float(min(max(kappa, Fraction(KAPPA_MIN)), Fraction(KAPPA_MAX)))


def _between_moment_variance(rated: Sequence[Counts], *, mu: Fraction, total: int) -> Fraction:
    # Exact arithmetic: whether tau2 is <= 0 decides between two very different priors,
    # so the boundary must not depend on rounding.
    observed = sum(
        (Fraction(cell.responses, total) * (Fraction(cell.negatives, cell.responses) - mu) ** 2)
        for cell in rated
    )
    binomial_noise = len(rated) * mu * (1 - mu) / total
    return Fraction(observed) - binomial_noise


def family_priors(moments: Sequence[MomentInput]) -> dict[ScaleFamily, FamilyPrior]:
    """Per scale family: baseline mu = sum(k)/sum(n) and kappa by `prior_strength`; rated only."""
    cells: dict[ScaleFamily, list[Counts]] = {}
    for moment in moments:
        for cell in moment.families:
            cells.setdefault(cell.family, []).append(Counts(cell.responses, cell.negatives))
    priors: dict[ScaleFamily, FamilyPrior] = {}
    for family, family_cells in cells.items():
        baseline = pooled_rate(family_cells)
        if baseline is None:
            continue
        priors[family] = FamilyPrior(
            family=family,
            baseline=baseline,
            kappa=prior_strength(family_cells),
            responses=sum(cell.responses for cell in family_cells),
            moments=sum(1 for cell in family_cells if cell.responses > 0),
        )
    return priors


def moment_prior(moment: MomentInput, priors: Mapping[ScaleFamily, FamilyPrior]) -> Prior:
    """Mix of the family priors weighted by the moment's responses: mu = sum(n_f*mu_f)/sum(n_f).

    kappa is mixed the same way. A moment without rated responses weighs its listed families
    equally; listing none, it takes the pooled rate over all families and kappa = 20; with
    nothing rated in the whole window, mu = 0 (a point mass at 0: never a problem).
    """
    weights = {
        cell.family: float(cell.responses) for cell in moment.families if cell.family in priors
    }
    if sum(weights.values()) == 0:
        weights = dict.fromkeys(weights, 1.0)
    if not weights:
        return _window_prior(priors)
    total = sum(weights.values())
    return Prior(
        baseline=sum(w * priors[f].baseline for f, w in weights.items()) / total,
        kappa=sum(w * priors[f].kappa for f, w in weights.items()) / total,
    )


def _window_prior(priors: Mapping[ScaleFamily, FamilyPrior]) -> Prior:
    responses = sum(prior.responses for prior in priors.values())
    if responses == 0:
        return Prior(baseline=0.0, kappa=KAPPA_FEW_MOMENTS)
    negatives = sum(prior.baseline * prior.responses for prior in priors.values())
    return Prior(baseline=negatives / responses, kappa=KAPPA_FEW_MOMENTS)


# --- steps 3-5: posterior, reference, priority ---


@dataclass(frozen=True, slots=True)
class Posterior:
    """Beta(a, b) posterior of a moment's negative rate, its mean and 90% credible interval."""

    a: float
    b: float
    rate: float
    lower: float
    upper: float


def posterior(prior: Prior, *, responses: int, negatives: int) -> Posterior:
    """Conjugate Beta-binomial update a = mu*kappa + k, b = (1-mu)*kappa + n - k (Gelman BDA ch.2).

    The interval is the equal-tailed 90% interval, Beta(a, b) quantiles 0.05 and 0.95.
    a = 0 (mu = 0, k = 0) or b = 0 (mu = 1, k = n) is a point mass at 0 or 1 (interval too).
    """
    _check_counts(responses, negatives)
    if not 0.0 <= prior.baseline <= 1.0 or prior.kappa <= 0:
        raise ValueError(f"need 0 <= baseline <= 1 and kappa > 0, got {prior}")
    a = prior.baseline * prior.kappa + negatives
    b = (1.0 - prior.baseline) * prior.kappa + responses - negatives
    if _is_point_mass(a, b):
        point = 0.0 if a < b else 1.0
        return Posterior(a=a, b=b, rate=point, lower=point, upper=point)
    return Posterior(
        a=a,
        b=b,
        rate=a / (a + b),
        lower=_beta_quantile(CREDIBLE_LOWER, a, b),
        upper=_beta_quantile(CREDIBLE_UPPER, a, b),
    )


def prob_worse(post: Posterior, *, reference: float) -> float:
    """P(true rate > reference) = Beta(a, b).sf(reference), the posterior survival function."""
    if _is_point_mass(post.a, post.b):
        return 1.0 if post.rate > reference else 0.0
    return _beta_survival(reference, post.a, post.b)


def _is_point_mass(a: float, b: float) -> bool:
    # A shape of 0 is a point mass by definition; subnormal shapes (a tiny baseline times
    # kappa) overflow scipy's Beta functions and are point masses to double precision anyway.
    return min(a, b) < sys.float_info.min


def reference_rate(*, target: float | None, baseline: float) -> float:
    """Rate a moment is judged against: its target negative rate if set, else its baseline."""
    return baseline if target is None else target


def effective_volume(touchpoints: int, *, responses: int) -> int:
    """V used for priority: touchpoints, or n when touchpoints are 0 or fewer than n."""
    # Ratings can arrive without their touchpoints being counted; n is then a floor on V.
    return max(touchpoints, responses)


def priority(*, volume: int, rate: float, reference: float) -> float:
    """Expected excess negative experiences: priority = V * (rate - reference)."""
    return volume * (rate - reference)


# --- step 6: confidence ---


def bayesian_q_values(prob_worse_values: Sequence[float]) -> list[float]:
    """Bayesian FDR (Newton et al. 2004): q = mean(1 - prob_worse) over moments at least as likely.

    Moments are taken in descending prob_worse; tied moments share the q of their whole group.
    Returned in input order.
    """
    order = sorted(range(len(prob_worse_values)), key=lambda i: -prob_worse_values[i])
    q_values = [0.0] * len(order)
    running = 0.0
    position = 0
    while position < len(order):
        group_end = position
        level = prob_worse_values[order[position]]
        while group_end < len(order) and prob_worse_values[order[group_end]] == level:
            running += 1.0 - level
            group_end += 1
        for index in order[position:group_end]:
            q_values[index] = running / group_end
        position = group_end
    return q_values


# --- steps 1-6 together ---


@dataclass(frozen=True, slots=True)
class RankedMoment:
    """A moment's adjusted rate, confidence and priority in one window."""

    key: str
    touchpoints: int
    volume: int
    """V used in the priority: touchpoints, or n when they are 0 or fewer than n."""
    responses: int
    negatives: int
    target_negative_rate: float | None
    prior: Prior
    reference: float
    posterior: Posterior
    prob_worse: float
    priority: float
    q_value: float
    confident_problem: bool
    low_data: bool

    @property
    def rate(self) -> float:
        return self.posterior.rate


def rank(
    moments: Sequence[MomentInput], priors: Mapping[ScaleFamily, FamilyPrior] | None = None
) -> list[RankedMoment]:
    """Empirical-Bayes ranking: priority = V * (posterior mean - reference), highest first.

    `priors` are `family_priors(moments)`, computed here unless the caller already has them.
    """
    keys = [moment.key for moment in moments]
    if len(set(keys)) != len(keys):
        raise ValueError("moment keys must be unique")
    if priors is None:
        priors = family_priors(moments)
    scored = [_score(moment, priors) for moment in moments]
    q_values = bayesian_q_values([item.prob_worse for item in scored])
    ranked = [
        _with_confidence(item, q_value) for item, q_value in zip(scored, q_values, strict=True)
    ]
    return sorted(ranked, key=lambda item: (-item.priority, -item.prob_worse, item.key))


def _score(moment: MomentInput, priors: Mapping[ScaleFamily, FamilyPrior]) -> RankedMoment:
    prior = moment_prior(moment, priors)
    responses, negatives = moment.responses, moment.negatives
    post = posterior(prior, responses=responses, negatives=negatives)
    reference = reference_rate(target=moment.target_negative_rate, baseline=prior.baseline)
    volume = effective_volume(moment.touchpoints, responses=responses)
    return RankedMoment(
        key=moment.key,
        touchpoints=moment.touchpoints,
        volume=volume,
        responses=responses,
        negatives=negatives,
        target_negative_rate=moment.target_negative_rate,
        prior=prior,
        reference=reference,
        posterior=post,
        prob_worse=prob_worse(post, reference=reference),
        priority=priority(volume=volume, rate=post.rate, reference=reference),
        q_value=1.0,
        confident_problem=False,
        low_data=responses < LOW_DATA_RESPONSES,
    )


def _with_confidence(item: RankedMoment, q_value: float) -> RankedMoment:
    return replace(item, q_value=q_value, confident_problem=q_value <= Q_THRESHOLD)


# --- step 7: trend ---


def two_proportion_z(current: Counts, previous: Counts) -> float:
    """Pooled two-proportion z = (p1 - p0) / sqrt(p(1-p)(1/n1 + 1/n0)) (e.g. Agresti 2013).

    When the pooled proportion is 0 or 1 both rates are equal, so z = 0 (one-sided p = 0.5).
    """
    if current.responses == 0 or previous.responses == 0:
        raise ValueError("both windows need rated responses")
    pooled = (current.negatives + previous.negatives) / (current.responses + previous.responses)
    variance = pooled * (1 - pooled) * (1 / current.responses + 1 / previous.responses)
    if variance == 0:
        return 0.0
    difference = current.negatives / current.responses - previous.negatives / previous.responses
    return difference / math.sqrt(variance)


def upper_tail_p(z: float) -> float:
    """One-sided p-value p = 1 - Phi(z) of a standard normal statistic."""
    return _normal_survival(z)


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg (1995) q-values: q_(i) = min over j >= i of m*p_(j)/j, capped at 1."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    q_values = [1.0] * m
    running_min = 1.0
    for rank_from_top, index in enumerate(reversed(order)):
        position = m - rank_from_top
        p_value = p_values[index]
        # m/position >= 1, so q >= p; max() keeps that true when m*p/m rounds below p.
        running_min = min(running_min, max(p_value, m * p_value / position))
        q_values[index] = running_min
    return q_values


def benjamini_hochberg_where_tested(p_values: Sequence[float | None]) -> list[float | None]:
    """Benjamini-Hochberg (1995) q-values over the entries with a p-value; None stays None."""
    tested = [index for index, p in enumerate(p_values) if p is not None]
    adjusted = benjamini_hochberg([p for p in p_values if p is not None])
    q_values: list[float | None] = [None] * len(p_values)
    for index, q_value in zip(tested, adjusted, strict=True):
        q_values[index] = q_value
    return q_values


@dataclass(frozen=True, slots=True)
class TrendInput:
    """A moment's counts and adjusted rates in the current and the previous window."""

    key: str
    current: Counts
    previous: Counts
    current_rate: float
    previous_rate: float | None


@dataclass(frozen=True, slots=True)
class Trend:
    """Change of a moment's adjusted rate and whether its raw rate significantly rose."""

    key: str
    change: float | None
    tested: bool
    z: float | None
    p_value: float | None
    q_value: float | None
    worsening: bool


def trend_inputs(
    current: Sequence[RankedMoment], previous: Sequence[RankedMoment]
) -> list[TrendInput]:
    """Pairs each current moment with the same key in the previous window (empty if absent)."""
    before = {item.key: item for item in previous}
    return [_trend_input(item, before.get(item.key)) for item in current]


def _trend_input(item: RankedMoment, earlier: RankedMoment | None) -> TrendInput:
    return TrendInput(
        key=item.key,
        current=Counts(item.responses, item.negatives),
        previous=Counts(0, 0) if earlier is None else Counts(earlier.responses, earlier.negatives),
        current_rate=item.rate,
        previous_rate=None if earlier is None else earlier.rate,
    )


def trends(items: Sequence[TrendInput]) -> list[Trend]:
    """One-sided pooled z-test per moment with n >= 20 in both windows, BH across (1995) at 0.10."""
    z_values = [_trend_z(item) for item in items]
    p_values = [None if z is None else upper_tail_p(z) for z in z_values]
    q_values = benjamini_hochberg_where_tested(p_values)
    return [
        Trend(
            key=item.key,
            change=None if item.previous_rate is None else item.current_rate - item.previous_rate,
            tested=z is not None,
            z=z,
            p_value=p,
            q_value=q,
            worsening=q is not None and q <= Q_THRESHOLD,
        )
        for item, z, p, q in zip(items, z_values, p_values, q_values, strict=True)
    ]


def _trend_z(item: TrendInput) -> float | None:
    enough = min(item.current.responses, item.previous.responses) >= TREND_MIN_RESPONSES
    return two_proportion_z(item.current, item.previous) if enough else None


# --- step 8: consistency across teams ---


@dataclass(frozen=True, slots=True)
class TeamOutlier:
    """A team outside the funnel limits, with its z-score and which side it falls on."""

    team: str
    z: float
    direction: Literal["worse", "better"]


@dataclass(frozen=True, slots=True)
class TeamConsistency:
    """Pearson chi-square test that teams share one negative rate, and funnel-plot outliers."""

    teams: int
    """J: teams with at least 10 rated responses, the only ones tested."""
    pooled_rate: float
    statistic: float
    df: int
    dispersion: float
    """phi = X2 / (J - 1); above 1 the teams vary more than chance alone explains."""
    p_value: float
    funnel_limit: float
    """|z| above which a team is an outlier: 3 * sqrt(max(phi, 1))."""
    outliers: tuple[TeamOutlier, ...]


def team_consistency(teams: Sequence[TeamCounts]) -> TeamConsistency | None:
    """Pearson X2 = sum (k_j - n_j p)^2 / (n_j p(1-p)), J-1 df; funnel limits (Spiegelhalter 2005).

    None when fewer than two teams have 10+ responses or the pooled rate is 0 or 1:
    then the teams cannot differ and there is nothing to test.
    """
    eligible = [team for team in teams if team.responses >= TEAM_MIN_RESPONSES]
    responses = sum(team.responses for team in eligible)
    negatives = sum(team.negatives for team in eligible)
    if len(eligible) < 2 or negatives in (0, responses):
        return None
    pooled = negatives / responses
    spread = pooled * (1 - pooled)
    statistic = sum(
        (team.negatives - team.responses * pooled) ** 2 / (team.responses * spread)
        for team in eligible
    )
    df = len(eligible) - 1
    dispersion = statistic / df
    # Funnel limits widen with over-dispersion so that ordinary team-to-team variation
    # does not flag half the teams; they never narrow below the binomial limits.
    limit = FUNNEL_LIMIT_SD * math.sqrt(max(dispersion, 1.0))
    z_scores = {team.team: _funnel_z(team, pooled=pooled) for team in eligible}
    outliers = [
        TeamOutlier(team, z, "worse" if z > 0 else "better")
        for team, z in z_scores.items()
        if abs(z) > limit
    ]
    return TeamConsistency(
        teams=len(eligible),
        pooled_rate=pooled,
        statistic=statistic,
        df=df,
        dispersion=dispersion,
        p_value=_chi2_survival(statistic, df),
        funnel_limit=limit,
        outliers=tuple(sorted(outliers, key=lambda outlier: -abs(outlier.z))),
    )


def _funnel_z(team: TeamCounts, *, pooled: float) -> float:
    standard_error = math.sqrt(pooled * (1 - pooled) / team.responses)
    return (team.negatives / team.responses - pooled) / standard_error


def consistency_q_values(results: Sequence[TeamConsistency | None]) -> list[float | None]:
    """Benjamini-Hochberg (1995) q-values of the consistency p-values across moments."""
    return benjamini_hochberg_where_tested(
        [None if result is None else result.p_value for result in results]
    )


# --- step 9: native figures ---


@dataclass(frozen=True, slots=True)
class Interval:
    lower: float
    upper: float


@dataclass(frozen=True, slots=True)
class Estimate:
    """A survey figure in its native unit with its 95% interval."""

    value: float
    lower: float
    upper: float
    responses: int


CSAT_VALUES = range(1, 6)
CSAT_TOP_TWO = (4, 5)
NPS_VALUES = range(0, 11)
NPS_PROMOTER_MIN = 9
NPS_DETRACTOR_MAX = 6
CES_VALUES = range(1, 8)


def wilson_interval(successes: int, trials: int, *, z: float = Z95) -> Interval:
    """Wilson score interval (Wilson 1927): (p + z²/2n ± z*sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)."""
    if trials <= 0 or not 0 <= successes <= trials:
        raise ValueError(f"need 0 <= successes <= trials and trials > 0, got {successes}/{trials}")
    share = successes / trials
    z2 = z * z
    denominator = 1 + z2 / trials
    centre = (share + z2 / (2 * trials)) / denominator
    half_width = z * math.sqrt(share * (1 - share) / trials + z2 / (4 * trials**2)) / denominator
    return Interval(lower=max(0.0, centre - half_width), upper=min(1.0, centre + half_width))


def nps_adjusted_wald(*, promoters: int, detractors: int, responses: int) -> Estimate:
    """NPS = 100(P - D)/n, adjusted-Wald 95% interval adding 3/4 to each group (Rocks 2016)."""
    if responses <= 0 or promoters < 0 or detractors < 0 or promoters + detractors > responses:
        raise ValueError(
            f"need promoters + detractors <= responses, responses > 0; got {promoters}, "
            f"{detractors}, {responses}"
        )
    adjusted_n = responses + 3
    promoter_share = (promoters + 0.75) / adjusted_n
    detractor_share = (detractors + 0.75) / adjusted_n
    adjusted_nps = promoter_share - detractor_share
    se = math.sqrt((promoter_share + detractor_share - adjusted_nps**2) / adjusted_n)
    return Estimate(
        value=100 * (promoters - detractors) / responses,
        lower=max(-100.0, 100 * (adjusted_nps - Z95 * se)),
        upper=min(100.0, 100 * (adjusted_nps + Z95 * se)),
        responses=responses,
    )


def _checked_total(value_counts: Mapping[int, int], allowed: range, scale: str) -> int:
    for value, count in value_counts.items():
        if value not in allowed or count < 0:
            raise ValueError(f"{scale}: bad value {value} or count {count}")
    return sum(value_counts.values())


def csat_top_two_box(value_counts: Mapping[int, int]) -> Estimate | None:
    """CSAT top-2-box: share of csat5 answers 4-5, with the Wilson (1927) 95% interval."""
    responses = _checked_total(value_counts, CSAT_VALUES, "csat5")
    if responses == 0:
        return None
    top = sum(value_counts.get(value, 0) for value in CSAT_TOP_TWO)
    interval = wilson_interval(top, responses)
    return Estimate(
        value=top / responses, lower=interval.lower, upper=interval.upper, responses=responses
    )


def net_promoter_score(value_counts: Mapping[int, int]) -> Estimate | None:
    """Net Promoter Score (Reichheld 2003) of nps11 answers: promoters 9-10, detractors 0-6."""
    responses = _checked_total(value_counts, NPS_VALUES, "nps11")
    if responses == 0:
        return None
    promoters = sum(count for value, count in value_counts.items() if value >= NPS_PROMOTER_MIN)
    detractors = sum(count for value, count in value_counts.items() if value <= NPS_DETRACTOR_MAX)
    return nps_adjusted_wald(promoters=promoters, detractors=detractors, responses=responses)


def ces_mean(value_counts: Mapping[int, int]) -> float | None:
    """Customer Effort Score (Dixon et al. 2010): mean of ces7 answers, 7 = very easy."""
    responses = _checked_total(value_counts, CES_VALUES, "ces7")
    if responses == 0:
        return None
    return sum(value * count for value, count in value_counts.items()) / responses


# --- step 10: reasons ---


class Reason(StrEnum):
    high_volume = "high_volume"
    over_target = "over_target"
    confident_problem = "confident_problem"
    worsening = "worsening"
    inconsistent_teams = "inconsistent_teams"
    low_response_rate = "low_response_rate"
    many_complaints = "many_complaints"


@dataclass(frozen=True, slots=True)
class WindowShares:
    """Window-wide figures the reasons compare a moment with."""

    volume_upper_quartile: float | None
    response_rate: float | None
    """sum(n) / sum(V) over moments with V > 0."""
    complaint_share: float | None
    """sum(complaints) / sum(volume) over moments with volume > 0."""


def upper_quartile(values: Sequence[float]) -> float | None:
    """75th percentile by linear interpolation between order statistics (Hyndman-Fan type 7)."""
    if not values:
        return None
    ordered = sorted(values)
    position = 0.75 * (len(ordered) - 1)
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (position - below) * (ordered[above] - ordered[below])


def window_shares(
    *, touchpoints: Sequence[int], responses: Sequence[int], complaints: Sequence[int]
) -> WindowShares:
    """Upper quartile of volume, response rate sum(n)/sum(V), complaint share sum(c)/sum(volume)."""
    with_touchpoints = [(v, n) for v, n in zip(touchpoints, responses, strict=True) if v > 0]
    total_touchpoints = sum(v for v, _ in with_touchpoints)
    volumes = [
        effective_volume(v, responses=n) for v, n in zip(touchpoints, responses, strict=True)
    ]
    total_volume = sum(volumes)
    return WindowShares(
        volume_upper_quartile=upper_quartile([float(v) for v in volumes]),
        response_rate=(
            sum(n for _, n in with_touchpoints) / total_touchpoints if total_touchpoints else None
        ),
        complaint_share=sum(complaints) / total_volume if total_volume else None,
    )


def reasons(
    *,
    touchpoints: int,
    responses: int,
    complaints: int,
    rate: float,
    target: float | None,
    confident_problem: bool,
    worsening: bool,
    consistency_q: float | None,
    window: WindowShares,
) -> list[Reason]:
    """Why a moment is listed, in fixed order; thresholds as in the ranking method, step 10."""
    volume = effective_volume(touchpoints, responses=responses)
    checks = (
        (Reason.high_volume, _is_high_volume(volume, window)),
        (Reason.over_target, target is not None and rate > target),
        (Reason.confident_problem, confident_problem),
        (Reason.worsening, worsening),
        (Reason.inconsistent_teams, consistency_q is not None and consistency_q <= Q_THRESHOLD),
        (Reason.low_response_rate, _is_low_response_rate(touchpoints, responses, window)),
        (Reason.many_complaints, _has_many_complaints(volume, complaints, window)),
    )
    return [reason for reason, applies in checks if applies]


def _is_high_volume(volume: int, window: WindowShares) -> bool:
    quartile = window.volume_upper_quartile
    return quartile is not None and volume > 0 and volume >= quartile


def _is_low_response_rate(touchpoints: int, responses: int, window: WindowShares) -> bool:
    overall = window.response_rate
    return overall is not None and touchpoints > 0 and responses / touchpoints < overall / 2


def _has_many_complaints(volume: int, complaints: int, window: WindowShares) -> bool:
    overall = window.complaint_share
    return (
        overall is not None
        and volume > 0
        and complaints >= COMPLAINTS_MIN
        and complaints / volume > 2 * overall
    )
