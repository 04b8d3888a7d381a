"""Statistics behind the moment ranking: empirical-Bayes shrinkage, confidence, trend,
consistency across teams, native survey figures and the reasons a moment is listed.

Pure functions and frozen dataclasses over counts; no database, HTTP or other I/O.
A "rate" is always a share of negative ratings, between 0 and 1.
"""

import functools
import math
import sys
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from enum import StrEnum
from fractions import Fraction
from itertools import compress, repeat
from typing import Any, Literal, TypeVar

import numpy as np
import numpy.typing as npt

from app.insights.special import special
from app.scales import ScaleFamily

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
TEAM_ALPHA = 0.05
"""Holm-adjusted p-value at or under which a team is named as worse or better."""
CHI2_MIN_EXPECTED = 5.0
"""Below this expected count anywhere, X2's p-value comes from Monte Carlo, not chi-square."""
MONTE_CARLO_DRAWS = 2000
MONTE_CARLO_SEED = 13
Z95 = 1.96
COMPLAINTS_MIN = 3


# --- scipy wrappers: the special functions are ufuncs, so one call covers every moment of a
# window (the distribution objects of scipy.stats cost ~100 us a call, and even a ufunc costs
# a few us a call on a scalar); scipy is untyped, so every result is narrowed here ---

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]


def _beta_quantiles(probability: float, a: Floats, b: Floats) -> Floats:
    return np.asarray(special().betaincinv(a, b, probability), dtype=np.float64)


def _beta_survivals(x: Floats, a: Floats, b: Floats) -> Floats:
    # P(Beta(a, b) > x) = I_{1-x}(b, a). scipy's betaincc evaluates it in extended precision at
    # about six times the cost of betainc in double, which agrees with it within 6e-13 relative
    # while a + b <= 10^4, x >= 10^-3 and the result lies in [1e-30, 1 - 1e-12]. The other
    # moments, which are few, keep betaincc: double precision loses more at larger a + b
    # (5e-12 at 10^6), 1 - x drops the digits of a small x, and near 0 and 1 a last-bit
    # difference (1e-307 rounded to 0, 1 - 1e-16 to 1) makes or breaks a tie: tied moments
    # share one q-value, and equal priorities are ordered by prob_worse.
    survival = np.asarray(special().betainc(b, a, 1.0 - x), dtype=np.float64)
    slow = (a + b > 1e4) | ((x < 1e-3) & (x != 0.0))
    slow |= (survival < 1e-30) | (survival > 1.0 - 1e-12)
    if slow.any():
        survival[slow] = special().betaincc(a[slow], b[slow], x[slow])
    return survival


def _beta_quantile(probability: float, a: float, b: float) -> float:
    return float(special().betaincinv(a, b, probability))


def _beta_survival(x: float, a: float, b: float) -> float:
    return float(_beta_survivals(np.array([x]), np.array([a]), np.array([b]))[0])


# --- rows of results: frozen dataclasses built a column at a time ---

_Row = TypeVar("_Row")


_SLOT_SETTERS: dict[type, dict[str, Callable[[object, object], None]]] = {}


def _slot_setters(cls: type) -> dict[str, Callable[[object, object], None]]:
    if cls not in _SLOT_SETTERS:
        _SLOT_SETTERS[cls] = {field.name: cls.__dict__[field.name].__set__ for field in fields(cls)}
    return _SLOT_SETTERS[cls]


def _assemble(cls: type[_Row], **columns: Sequence[Any]) -> list[_Row]:
    """Instances of a frozen slotted dataclass, row i from the i-th value of every column.

    A frozen dataclass's __init__ sets each field through object.__setattr__: for the
    hundreds of rows of a ranking that cost more than the statistics. The slots' own setters,
    mapped over a column, do the same about three times faster. __init__ and __post_init__
    are skipped: only for values valid by construction. Every field must be given.
    """
    setters = _slot_setters(cls)
    if columns.keys() != setters.keys():
        raise TypeError(f"{cls.__name__} needs the columns {sorted(setters)}")
    sizes = {len(values) for values in columns.values()}
    if len(sizes) > 1:
        raise ValueError(f"columns of different lengths for {cls.__name__}: {sorted(sizes)}")
    rows: list[_Row] = list(map(cls.__new__, repeat(cls, sizes.pop() if sizes else 0)))
    for name, values in columns.items():
        deque(map(setters[name], rows, values), maxlen=0)
    return rows


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
    return _prior_strength([cell.responses for cell in cells], [cell.negatives for cell in cells])


def _prior_strength(responses: Sequence[int], negatives: Sequence[int]) -> float:
    rated = [(n, k) for n, k in zip(responses, negatives, strict=True) if n > 0]
    moments = len(rated)
    if moments < MIN_MOMENTS_FOR_KAPPA:
        return KAPPA_FEW_MOMENTS
    total = sum(n for n, _ in rated)
    bad = sum(k for _, k in rated)
    if bad in (0, total):
        return KAPPA_MAX
    # Exact arithmetic: whether tau2 is <= 0 decides between two very different priors,
    # so the boundary must not depend on rounding. In integers: with N = total, K = bad and
    # d_i = N*k_i - K*n_i (so k_i/n_i - mu = d_i / (N n_i)), N^3 tau2 = sum(d_i^2/n_i) - J*K*(N-K)
    # and kappa + 1 = mu(1-mu)/tau2 = N*K*(N-K) / (N^3 tau2); times the least common multiple
    # L of the n_i every term is an integer (summing Fractions one by one cost 10-70 times more).
    common = math.lcm(*(n for n, _ in rated))
    scaled_tau2 = sum((total * k - bad * n) ** 2 * (common // n) for n, k in rated)
    scaled_tau2 -= moments * bad * (total - bad) * common
    if scaled_tau2 <= 0:
        return KAPPA_MAX
    kappa = Fraction(total * bad * (total - bad) * common - scaled_tau2, scaled_tau2)
    return float(min(max(kappa, Fraction(KAPPA_MIN)), Fraction(KAPPA_MAX)))


def family_priors(moments: Sequence[MomentInput]) -> dict[ScaleFamily, FamilyPrior]:
    """Per scale family: baseline mu = sum(k)/sum(n) and kappa by `prior_strength`; rated only."""
    cells: dict[ScaleFamily, tuple[list[int], list[int]]] = {}
    for moment in moments:
        for cell in moment.families:
            responses, negatives = cells.setdefault(cell.family, ([], []))
            responses.append(cell.responses)
            negatives.append(cell.negatives)
    priors: dict[ScaleFamily, FamilyPrior] = {}
    for family, (responses, negatives) in cells.items():
        total = sum(responses)
        if total == 0:
            continue
        priors[family] = FamilyPrior(
            family=family,
            baseline=sum(negatives) / total,
            kappa=_prior_strength(responses, negatives),
            responses=total,
            moments=sum(1 for n in responses if n > 0),
        )
    return priors


def moment_prior(moment: MomentInput, priors: Mapping[ScaleFamily, FamilyPrior]) -> Prior:
    """Mix of the family priors weighted by the moment's responses: mu = sum(n_f*mu_f)/sum(n_f).

    kappa is mixed the same way. A moment without rated responses weighs its listed families
    equally; listing none, it takes the pooled rate over all families and kappa = 20; with
    nothing rated in the whole window, mu = 0 (a point mass at 0: never a problem).
    """
    return Prior(*_mixed_prior(moment, priors))


def _mixed_prior(
    moment: MomentInput, priors: Mapping[ScaleFamily, FamilyPrior]
) -> tuple[float, float]:
    weights = {
        cell.family: float(cell.responses) for cell in moment.families if cell.family in priors
    }
    if sum(weights.values()) == 0:
        weights = dict.fromkeys(weights, 1.0)
    if not weights:
        return _window_prior(priors)
    total = sum(weights.values())
    return (
        sum(w * priors[f].baseline for f, w in weights.items()) / total,
        sum(w * priors[f].kappa for f, w in weights.items()) / total,
    )


def _window_prior(priors: Mapping[ScaleFamily, FamilyPrior]) -> tuple[float, float]:
    responses = sum(prior.responses for prior in priors.values())
    if responses == 0:
        return 0.0, KAPPA_FEW_MOMENTS
    negatives = sum(prior.baseline * prior.responses for prior in priors.values())
    return negatives / responses, KAPPA_FEW_MOMENTS


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
    q_values: list[float] = _bayesian_q_values(
        np.asarray(prob_worse_values, dtype=np.float64)
    ).tolist()
    return q_values


def _bayesian_q_values(prob_worse_values: Floats) -> Floats:
    if prob_worse_values.size == 0:
        return prob_worse_values
    order = np.argsort(-prob_worse_values, kind="stable")
    descending = prob_worse_values[order]
    running = np.cumsum(1.0 - descending)
    # Each moment takes the running mean at the last member of its group of ties.
    group_ends = np.flatnonzero(np.append(descending[1:] != descending[:-1], True))
    ends = np.repeat(group_ends, np.diff(group_ends, prepend=-1))
    q_values = np.empty_like(prob_worse_values)
    q_values[order] = running[ends] / (ends + 1)
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
    Each figure is the one `posterior`, `prob_worse`, `reference_rate`, `effective_volume`,
    `priority` and `bayesian_q_values` give, computed for all moments at once.
    """
    keys = [moment.key for moment in moments]
    if len(set(keys)) != len(keys):
        raise ValueError("moment keys must be unique")
    if priors is None:
        priors = family_priors(moments)
    columns = _RankColumns(moments, priors)
    post = columns.posteriors()
    q_values = _bayesian_q_values(post.prob_worse)
    ranked = _assemble(
        RankedMoment,
        key=keys,
        touchpoints=[moment.touchpoints for moment in moments],
        volume=columns.volumes,
        responses=columns.responses,
        negatives=columns.negatives,
        target_negative_rate=[moment.target_negative_rate for moment in moments],
        prior=_assemble(Prior, baseline=columns.baselines, kappa=columns.kappas),
        reference=columns.references,
        posterior=_assemble(
            Posterior,
            a=post.a.tolist(),
            b=post.b.tolist(),
            rate=post.rate.tolist(),
            lower=post.lower.tolist(),
            upper=post.upper.tolist(),
        ),
        prob_worse=post.prob_worse.tolist(),
        priority=post.priority.tolist(),
        q_value=q_values.tolist(),
        confident_problem=(q_values <= Q_THRESHOLD).tolist(),
        low_data=[n < LOW_DATA_RESPONSES for n in columns.responses],
    )
    # By key first, then stably by priority and prob_worse, both descending: the order of
    # (-priority, -prob_worse, key).
    by_key = np.array(sorted(range(len(keys)), key=keys.__getitem__), dtype=np.intp)
    order = by_key[np.lexsort((-post.prob_worse[by_key], -post.priority[by_key]))]
    return [ranked[i] for i in order.tolist()]


@dataclass(frozen=True, slots=True)
class AdjustedMoment:
    """A moment's counts and adjusted (posterior mean) negative rate in one window."""

    key: str
    responses: int
    negatives: int
    rate: float


def adjust(
    moments: Sequence[MomentInput], priors: Mapping[ScaleFamily, FamilyPrior]
) -> list[AdjustedMoment]:
    """The adjusted rate of each moment, as `rank` computes it, without intervals,
    confidence or priority: what an earlier window is compared with."""
    columns = _RankColumns(moments, priors)
    return _assemble(
        AdjustedMoment,
        key=[moment.key for moment in moments],
        responses=columns.responses,
        negatives=columns.negatives,
        rate=columns.rates(),
    )


class _RankColumns:
    """The moments of a window as columns: counts, volume, prior and reference of each."""

    def __init__(
        self, moments: Sequence[MomentInput], priors: Mapping[ScaleFamily, FamilyPrior]
    ) -> None:
        rows = []
        for moment in moments:
            cells = moment.families
            if len(cells) == 1 and (prior := priors.get(cells[0].family)) is not None:
                # The common case of `_mixed_prior`, in its operations: (w * mu) / w, w = n or 1.
                responses, negatives = cells[0].responses, cells[0].negatives
                weight = float(responses) or 1.0
                baseline = weight * prior.baseline / weight
                kappa = weight * prior.kappa / weight
            else:
                responses, negatives = moment.responses, moment.negatives
                baseline, kappa = _mixed_prior(moment, priors)
            target = moment.target_negative_rate
            # V as in `effective_volume`, the reference as in `reference_rate`.
            volume = max(moment.touchpoints, responses)
            reference = baseline if target is None else target
            rows.append((responses, negatives, volume, baseline, kappa, reference))
        self.responses: list[int] = [row[0] for row in rows]
        self.negatives: list[int] = [row[1] for row in rows]
        self.volumes: list[int] = [row[2] for row in rows]
        self.baselines: list[float] = [row[3] for row in rows]
        self.kappas: list[float] = [row[4] for row in rows]
        self.references: list[float] = [row[5] for row in rows]

    def shapes(self) -> tuple[Floats, Floats]:
        """The posterior Beta(a, b) of every moment, as arrays."""
        baseline = np.array(self.baselines, dtype=np.float64)
        kappa = np.array(self.kappas, dtype=np.float64)
        valid = (baseline >= 0.0) & (baseline <= 1.0) & (kappa > 0)
        if not valid.all():
            invalid = int(np.argmin(valid))
            prior = Prior(self.baselines[invalid], self.kappas[invalid])
            raise ValueError(f"need 0 <= baseline <= 1 and kappa > 0, got {prior}")
        responses = np.array(self.responses, dtype=np.float64)
        negatives = np.array(self.negatives, dtype=np.float64)
        a = baseline * kappa + negatives
        b = (1.0 - baseline) * kappa + responses - negatives
        return a, b

    def rates(self) -> list[float]:
        """Every moment's posterior mean: `posterior(...).rate` without the rest."""
        a, b = self.shapes()
        rate = np.where(a < b, 0.0, 1.0)  # point masses, see `_is_point_mass`
        regular = np.minimum(a, b) >= sys.float_info.min
        rate[regular] = a[regular] / (a[regular] + b[regular])
        rates: list[float] = rate.tolist()
        return rates

    def posteriors(self) -> "_Posteriors":
        """`posterior`, `prob_worse` and `priority` of every moment, as arrays."""
        a, b = self.shapes()
        reference = np.array(self.references, dtype=np.float64)
        regular = np.minimum(a, b) >= sys.float_info.min
        if regular.all():
            rate = a / (a + b)
            lower = _beta_quantiles(CREDIBLE_LOWER, a, b)
            upper = _beta_quantiles(CREDIBLE_UPPER, a, b)
            prob_worse = _beta_survivals(reference, a, b)
        else:
            # Point masses (see `_is_point_mass`) first; the other moments overwrite theirs.
            rate = np.where(a < b, 0.0, 1.0)
            lower, upper = rate.copy(), rate.copy()
            prob_worse = (rate > reference).astype(np.float64)
            a_r, b_r = a[regular], b[regular]
            rate[regular] = a_r / (a_r + b_r)
            lower[regular] = _beta_quantiles(CREDIBLE_LOWER, a_r, b_r)
            upper[regular] = _beta_quantiles(CREDIBLE_UPPER, a_r, b_r)
            prob_worse[regular] = _beta_survivals(reference[regular], a_r, b_r)
        volume = np.array(self.volumes, dtype=np.float64)
        return _Posteriors(
            a=a,
            b=b,
            rate=rate,
            lower=lower,
            upper=upper,
            prob_worse=prob_worse,
            priority=volume * (rate - reference),
        )


@dataclass(frozen=True, slots=True)
class _Posteriors:
    a: Floats
    b: Floats
    rate: Floats
    lower: Floats
    upper: Floats
    prob_worse: Floats
    priority: Floats


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


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg (1995) q-values: q_(i) = min over j >= i of m*p_(j)/j, capped at 1."""
    q_values: list[float] = _benjamini_hochberg(np.asarray(p_values, dtype=np.float64)).tolist()
    return q_values


def _benjamini_hochberg(p_values: Floats) -> Floats:
    m = p_values.size
    order = np.argsort(p_values, kind="stable")
    ascending = p_values[order]
    # m/position >= 1, so q >= p; the maximum keeps that true when m*p/m rounds below p.
    scaled = np.maximum(ascending, m * ascending / np.arange(1, m + 1))
    q_values = np.empty_like(p_values)
    q_values[order] = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
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
    """Descriptive only: the pooled two-proportion z of the raw rates."""
    p_value: float | None
    """One-sided p-value of the conditional exact test (`rise_p_value`)."""
    q_value: float | None
    worsening: bool


def trend_inputs(
    current: Sequence[RankedMoment], previous: Sequence[RankedMoment | AdjustedMoment]
) -> list[TrendInput]:
    """Pairs each current moment with the same key in the previous window (empty if absent)."""
    before = {item.key: item for item in previous}
    earlier = [before.get(item.key) for item in current]
    # The counts come from ranked moments, whose inputs were checked: valid by construction.
    return _assemble(
        TrendInput,
        key=[item.key for item in current],
        current=_assemble(
            Counts,
            responses=[item.responses for item in current],
            negatives=[item.negatives for item in current],
        ),
        previous=_assemble(
            Counts,
            responses=[0 if item is None else item.responses for item in earlier],
            negatives=[0 if item is None else item.negatives for item in earlier],
        ),
        current_rate=[item.rate for item in current],
        previous_rate=[None if item is None else item.rate for item in earlier],
    )


def rise_p_value(current: Counts, previous: Counts) -> float:
    """One-sided conditional exact test that the current rate exceeds the previous one.

    Given the K = k1 + k0 negatives of both windows, the current window's negatives are
    Hypergeometric(n1 + n0, K, n1) when both share one rate; p = P(X >= k1), i.e. one-sided
    Fisher (Agresti 2013, 3.5). Exact, so calibrated at small counts, and conservative.
    """
    if current.responses == 0 or previous.responses == 0:
        raise ValueError("both windows need rated responses")
    return float(
        _rise_p_values(
            np.array([current.negatives]),
            np.array([current.responses]),
            np.array([previous.negatives]),
            np.array([previous.responses]),
        )[0]
    )


def trends(items: Sequence[TrendInput]) -> list[Trend]:
    """One-sided exact test per moment with n >= 20 in both windows, BH across (1995) at 0.10."""
    windows = [(item.current, item.previous) for item in items]
    counts = np.array(
        [(now.negatives, now.responses, then.negatives, then.responses) for now, then in windows],
        dtype=np.int64,
    ).reshape(-1, 4)
    tested = np.minimum(counts[:, 1], counts[:, 3]) >= TREND_MIN_RESPONSES
    chosen = counts[tested]
    z_tested = _two_proportion_z(*chosen.astype(np.float64).T)
    p_tested = _rise_p_values(*chosen.T)
    q_tested = _benjamini_hochberg(p_tested)
    z_values: list[float | None] = [None] * len(items)
    p_values: list[float | None] = [None] * len(items)
    q_values: list[float | None] = [None] * len(items)
    for index, z, p, q in zip(
        np.flatnonzero(tested).tolist(),
        z_tested.tolist(),
        p_tested.tolist(),
        q_tested.tolist(),
        strict=True,
    ):
        z_values[index], p_values[index], q_values[index] = z, p, q
    return _assemble(
        Trend,
        key=[item.key for item in items],
        change=[
            None if item.previous_rate is None else item.current_rate - item.previous_rate
            for item in items
        ],
        tested=tested.tolist(),
        z=z_values,
        p_value=p_values,
        q_value=q_values,
        worsening=[q is not None and q <= Q_THRESHOLD for q in q_values],
    )


def _two_proportion_z(
    negatives: Floats, responses: Floats, negatives_before: Floats, responses_before: Floats
) -> Floats:
    # `two_proportion_z` over arrays, in the same operations.
    pooled = (negatives + negatives_before) / (responses + responses_before)
    variance = pooled * (1 - pooled) * (1 / responses + 1 / responses_before)
    difference = negatives / responses - negatives_before / responses_before
    z = np.zeros_like(difference)
    np.divide(difference, np.sqrt(variance), out=z, where=variance != 0)
    return z


def _rise_p_values(
    negatives: Ints, responses: Ints, negatives_before: Ints, responses_before: Ints
) -> Floats:
    # `rise_p_value` over arrays: P(X >= k1), X ~ Hypergeom(n1 + n0, k1 + k0, n1).
    support = _HypergeometricSupports(
        population=responses + responses_before,
        good=negatives + negatives_before,
        draws=responses,
        observed=negatives,
    )
    return support.upper_tail()


# --- exact tests: hypergeometric distributions, every support at once ---


class _HypergeometricSupports:
    """Hypergeometric(population, good, draws) for many parameter sets, each with an observed
    count: the points of each support that carry probability, flattened into one array,
    with each point's probability.

    scipy.stats.hypergeom costs ~12 us a point of its tails (2.4 ms for the trends of 200
    moments); here four gammaln calls cover every point. The distribution is log-concave, so
    the points within e^-60 of its mode's probability form one interval, found by bisection;
    points outside it are left out (together under 1e-23, below any p-value a test reports
    apart from 0), except that the interval always reaches the observed count and, beyond
    it, the end of the support: a tail beyond an observed count is summed whole.
    Probabilities are normalised by their own sum, so the constant log C(population, draws)
    and its rounding drop out.
    """

    _SPAN = 60.0
    """How far below the mode, in log probability, a point is still kept."""

    def __init__(self, *, population: Ints, good: Ints, draws: Ints, observed: Ints) -> None:
        population, good, draws, observed = (
            np.asarray(v, dtype=np.int64) for v in (population, good, draws, observed)
        )
        self._parameters = (good, draws, population - good - draws)
        low = np.maximum(0, draws - (population - good))
        high = np.minimum(draws, good)
        mode = np.clip((draws + 1) * (good + 1) // (population + 2), low, high)
        floor = self._log_weights(mode, np.arange(mode.size)) - self._SPAN
        first = self._bisect(low, mode, floor, rising=True)
        last = self._bisect(mode, high, floor, rising=False)
        first = np.where(observed < first, low, first)
        last = np.where(observed > last, high, last)
        self.low = first
        widths = last - first + 1
        self.starts = np.cumsum(widths) - widths
        self.owner = np.repeat(np.arange(widths.size), widths)
        x = np.arange(int(widths.sum()), dtype=np.int64) - self.starts[self.owner]
        x += first[self.owner]
        self.x = x
        log = self._log_weights(x, self.owner)
        if x.size:
            log -= np.maximum.reduceat(log, self.starts)[self.owner]
        pmf = np.exp(log)
        if x.size:
            pmf /= np.add.reduceat(pmf, self.starts)[self.owner]
        self.pmf: Floats = pmf
        self._observed = observed

    def _log_weights(self, x: Ints, owner: Ints) -> Floats:
        """log C(good, x) + log C(population - good, draws - x), without its constant terms."""
        good, draws, rest = (values[owner] for values in self._parameters)
        return np.asarray(
            -(
                special().gammaln(x + 1.0)
                + special().gammaln((good - x) + 1.0)
                + special().gammaln((draws - x) + 1.0)
                + special().gammaln(rest + x + 1.0)
            ),
            dtype=np.float64,
        )

    def _bisect(self, start: Ints, end: Ints, floor: Floats, *, rising: bool) -> Ints:
        """Per distribution, the point of [start, end] nearest the far end from the mode whose
        log weight is still >= floor: the log weights rise towards the mode (at `end` when
        `rising`, else at `start`)."""
        lo, hi = start.copy(), end.copy()
        owner = np.arange(lo.size)
        while (open_ := lo < hi).any():
            if rising:
                middle = (lo + hi) // 2
                kept = self._log_weights(middle, owner) >= floor
                hi = np.where(open_ & kept, middle, hi)
                lo = np.where(open_ & ~kept, middle + 1, lo)
            else:
                middle = (lo + hi + 1) // 2
                kept = self._log_weights(middle, owner) >= floor
                lo = np.where(open_ & kept, middle, lo)
                hi = np.where(open_ & ~kept, middle - 1, hi)
        return lo

    def _sums(self, chosen: npt.NDArray[np.bool_]) -> Floats:
        if not self.x.size:
            return np.zeros(0, dtype=np.float64)
        sums = np.add.reduceat(np.where(chosen, self.pmf, 0.0), self.starts)
        return np.asarray(np.clip(sums, 0.0, 1.0), dtype=np.float64)

    def upper_tail(self) -> Floats:
        """P(X >= observed) of each distribution."""
        return self._sums(self.x >= self._observed[self.owner])

    def two_sided(self) -> Floats:
        """P(pmf(X) <= pmf(observed)): the two-sided exact p-value of Fisher's test as scipy
        and R define it, with a relative tolerance of 1e-7 for ties of equal probability."""
        at_observed = self.pmf[self.starts + (self._observed - self.low)]
        return self._sums(self.pmf <= (at_observed * (1.0 + 1e-7))[self.owner])


# --- step 8: consistency across teams ---


@dataclass(frozen=True, slots=True)
class TeamOutlier:
    """A team whose rate differs from the other teams' pooled rate (exact test, Holm)."""

    team: str
    direction: Literal["worse", "better"]
    responses: int
    negatives: int
    rate: float
    others_responses: int
    others_negatives: int
    others_rate: float
    p_value: float
    """Two-sided exact (Fisher) p-value of the team against the other teams pooled."""
    adjusted_p_value: float
    """Holm-adjusted across the moment's tested teams."""


ConsistencyTest = Literal["chi-square", "monte-carlo"]


@dataclass(frozen=True, slots=True)
class TeamConsistency:
    """Test that teams share one negative rate, and the teams that stand out."""

    teams: int
    """J: teams with at least 10 rated responses, the only ones tested."""
    pooled_rate: float
    statistic: float
    """Pearson X2."""
    df: int
    dispersion: float
    """phi = X2 / (J - 1); above 1 the teams vary more than chance alone explains."""
    min_expected: float
    """Smallest expected count, negative or not, of any team under one shared rate."""
    test: ConsistencyTest
    """How `p_value` was found: chi-square distribution, or Monte Carlo given the margins."""
    p_value: float
    outliers: tuple[TeamOutlier, ...]
    """Teams with a Holm-adjusted p <= 0.05, most significant first."""


def team_consistency(teams: Sequence[TeamCounts]) -> TeamConsistency | None:
    """`team_consistencies` of one moment."""
    return team_consistencies([teams])[0]


def team_consistencies(per_moment: Sequence[Sequence[TeamCounts]]) -> list[TeamConsistency | None]:
    """Per moment: Pearson X2 = sum (k_j - n_j p)^2 / (n_j p(1-p)) over the teams with 10+
    responses, and each of them against the others pooled.

    The p-value of X2 comes from the chi-square distribution with J-1 df when every expected
    count (n_j p and n_j (1-p)) is at least 5, else from `monte_carlo_p_value` (conditional on
    the margins). Each team is compared with the other teams pooled by the two-sided exact
    (Fisher) test, Holm (1979) across the moment's teams; leave-one-out, so that a bad team
    does not dilute the rate it is judged against, and no widening by phi, which a bad team
    inflates. None when fewer than two teams have 10+ responses or the pooled rate is 0 or 1.
    """
    tested: list[tuple[int, list[TeamCounts]]] = []
    for index, teams in enumerate(per_moment):
        eligible = [team for team in teams if team.responses >= TEAM_MIN_RESPONSES]
        if len(eligible) < 2:
            continue
        responses = sum([team.responses for team in eligible])
        negatives = sum([team.negatives for team in eligible])
        if negatives in (0, responses):
            continue
        tested.append((index, eligible))
    results: list[TeamConsistency | None] = [None] * len(per_moment)
    if not tested:
        return results
    sizes = np.array([len(eligible) for _, eligible in tested], dtype=np.int64)
    starts = np.cumsum(sizes) - sizes
    owner = np.repeat(np.arange(sizes.size), sizes)
    n = np.array([t.responses for _, eligible in tested for t in eligible], dtype=np.int64)
    k = np.array([t.negatives for _, eligible in tested for t in eligible], dtype=np.int64)
    total_n = np.add.reduceat(n, starts)
    total_k = np.add.reduceat(k, starts)
    pooled = total_k / total_n
    expected = n * pooled[owner]
    spread = pooled * (1.0 - pooled)
    statistic = np.add.reduceat((k - expected) ** 2 / (n * spread[owner]), starts)
    min_expected = np.minimum.reduceat(np.minimum(expected, n - expected), starts)
    df = sizes - 1
    chi2_p = np.asarray(special().chdtrc(df, statistic), dtype=np.float64)
    # Each team against the others pooled: its negatives are Hypergeom(N, K, n_j) given the
    # margins of the 2 x 2 table (team or not, negative or not).
    team_p = _HypergeometricSupports(
        population=total_n[owner], good=total_k[owner], draws=n, observed=k
    ).two_sided()
    worse = k * (total_n[owner] - n) > (total_k[owner] - k) * n
    for position, (index, eligible) in enumerate(tested):
        start, size = int(starts[position]), int(sizes[position])
        small = bool(min_expected[position] < CHI2_MIN_EXPECTED)
        p_value = monte_carlo_p_value(eligible) if small else float(chi2_p[position])
        total_r, total_neg = int(total_n[position]), int(total_k[position])
        p_teams = team_p[start : start + size].tolist()
        adjusted = holm(p_teams)
        outliers = []
        for team, p, p_adjusted, is_worse in zip(
            eligible, p_teams, adjusted, worse[start : start + size].tolist(), strict=True
        ):
            if p_adjusted > TEAM_ALPHA:
                continue
            others_n, others_k = total_r - team.responses, total_neg - team.negatives
            outliers.append(
                TeamOutlier(
                    team=team.team,
                    direction="worse" if is_worse else "better",
                    responses=team.responses,
                    negatives=team.negatives,
                    rate=team.negatives / team.responses,
                    others_responses=others_n,
                    others_negatives=others_k,
                    others_rate=others_k / others_n,
                    p_value=p,
                    adjusted_p_value=p_adjusted,
                )
            )
        outliers.sort(key=lambda outlier: (outlier.adjusted_p_value, outlier.p_value, outlier.team))
        results[index] = TeamConsistency(
            teams=size,
            pooled_rate=float(pooled[position]),
            statistic=float(statistic[position]),
            df=size - 1,
            dispersion=float(statistic[position]) / (size - 1),
            min_expected=float(min_expected[position]),
            test="monte-carlo" if small else "chi-square",
            p_value=p_value,
            outliers=tuple(outliers),
        )
    return results


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm (1979) step-down adjusted p-values: max over j <= i of min(1, (m-j+1) p_(j))."""
    m = len(p_values)
    adjusted = [0.0] * m
    running = 0.0
    for position, index in enumerate(sorted(range(m), key=p_values.__getitem__)):
        running = max(running, min(1.0, (m - position) * p_values[index]))
        adjusted[index] = running
    return adjusted


def monte_carlo_p_value(teams: Sequence[TeamCounts]) -> float:
    """Monte Carlo p-value of Pearson's X2 given the margins (Hope 1968; R's chisq.test).

    MONTE_CARLO_DRAWS tables with the teams' response counts and the total of negatives,
    drawn by multivariate hypergeometric sampling from a generator seeded with
    MONTE_CARLO_SEED, so that the same counts always give the same answer;
    p = (1 + #{X2_sim >= X2_obs}) / (draws + 1), never 0.
    """
    responses = tuple(team.responses for team in teams)
    negatives = np.array([team.negatives for team in teams], dtype=np.int64)
    simulated = _simulated_statistics(responses, int(negatives.sum()))
    observed = float(_ordering_statistics(negatives[np.newaxis, :], np.array(responses))[0])
    # Equal tables give equal statistics up to rounding: R's tolerance, 64 ulps.
    threshold = observed * (1.0 - 64 * sys.float_info.epsilon)
    exceeding = simulated.size - int(np.searchsorted(simulated, threshold, side="left"))
    return (1 + exceeding) / (MONTE_CARLO_DRAWS + 1)


@functools.lru_cache(maxsize=256)
def _simulated_statistics(responses: tuple[int, ...], negatives: int) -> Floats:
    # Sorted, read-only; cached since a dashboard asks the same window again and again.
    generator = np.random.default_rng(MONTE_CARLO_SEED)
    sizes = np.array(responses, dtype=np.int64)
    # numpy draws a table either value by value (cost in the responses) or team by team
    # (cost in the teams, about as much as 900 responses each): whichever is cheaper. The
    # choice depends on the counts alone, so the same counts still give the same draws.
    method: Literal["count", "marginals"] = (
        "count" if sizes.sum() <= 500 * sizes.size else "marginals"
    )
    tables = generator.multivariate_hypergeometric(
        sizes, negatives, size=MONTE_CARLO_DRAWS, method=method
    )
    statistics = np.sort(_ordering_statistics(tables, sizes))
    statistics.setflags(write=False)
    return statistics


def _ordering_statistics(negatives: Ints, responses: Ints) -> Floats:
    # T = sum_j k_j^2 / n_j of each row of tables (negatives[i, j] of responses[j] per team).
    # With the margins fixed, X2 = (T - K^2/N) / (p (1 - p)) rises with T, so T orders the
    # tables as X2 does, at a fraction of the cost; and T >= K^2/N > 0, so a tolerance
    # relative to it is never lost to cancellation near X2 = 0.
    return np.asarray((negatives.astype(np.float64) ** 2) @ (1.0 / responses), dtype=np.float64)


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


Z998 = 3.09
"""The normal quantile of the outer (99.8%) funnel limits, as in Spiegelhalter (2005)."""


def funnel_limits(pooled_rate: float, responses: int, z: float = Z95) -> Interval:
    """Control limits of a funnel plot: where a member's raw negative rate falls, with
    probability about the coverage of `z`, when its `responses` share the `pooled_rate`.

    Normal approximation to the binomial (not exact binomial quantiles):
    pooled_rate ± z * sqrt(pooled_rate * (1 - pooled_rate) / responses), clipped to [0, 1].
    """
    if responses <= 0:
        raise ValueError(f"need responses > 0, got {responses}")
    if not 0.0 <= pooled_rate <= 1.0:
        raise ValueError(f"need 0 <= pooled_rate <= 1, got {pooled_rate}")
    half_width = z * math.sqrt(pooled_rate * (1 - pooled_rate) / responses)
    return Interval(
        lower=max(0.0, pooled_rate - half_width), upper=min(1.0, pooled_rate + half_width)
    )


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


class WeakSpotReason(StrEnum):
    """Why a moment ranks among the weak spots."""

    high_volume = "high_volume"
    over_target = "over_target"
    confident_problem = "confident_problem"
    worsening = "worsening"
    inconsistent_teams = "inconsistent_teams"
    low_response_rate = "low_response_rate"
    many_complaints = "many_complaints"


_REASONS_IN_ORDER = tuple(WeakSpotReason)
"""The fixed order of the reasons, read once (reading an enum member costs ~0.2 us)."""


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
) -> list[WeakSpotReason]:
    """Why a moment is listed, in fixed order; thresholds as in the ranking method, step 10."""
    volume = effective_volume(touchpoints, responses=responses)
    checks = (  # one per reason, in the order of `WeakSpotReason`
        _is_high_volume(volume, window),  # high_volume
        target is not None and rate > target,  # over_target
        confident_problem,
        worsening,
        consistency_q is not None and consistency_q <= Q_THRESHOLD,  # inconsistent_teams
        _is_low_response_rate(touchpoints, responses, window),
        _has_many_complaints(volume, complaints, window),
    )
    return list(compress(_REASONS_IN_ORDER, checks))


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
