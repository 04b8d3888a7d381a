"""The ranking statistics against a slow, plain reference on random windows.

The reference below computes each figure one moment at a time, straight from the formulas of
the ranking method (PRODUCT.md, "Ranking"): exact fractions for the prior strength, scipy's
distribution objects for the Beta, normal and chi-square tails, q-values by their definition.
`app.insights.stats` computes whole windows at once; both must give the same figures to
floating-point tolerance, and the same booleans and orderings exactly.
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as distributions

from app.insights import stats
from app.insights.stats import (
    Counts,
    FamilyCounts,
    MomentInput,
    RankedMoment,
    TeamConsistency,
    TeamCounts,
    Trend,
)
from app.scales import ScaleFamily

SAT, NPS, EFFORT = ScaleFamily.satisfaction, ScaleFamily.nps, ScaleFamily.effort
REL = 1e-12
# Probabilities are also compared absolutely: q-values are built from 1 - p, which keeps only
# p's absolute precision, and a tail of 1e-30 has no relative precision left to keep.
ABS = 1e-13


def _close(actual: float | None, expected: float | None, *, abs_tol: float = 0.0) -> bool:
    if actual is None or expected is None:
        return actual is expected
    return math.isclose(actual, expected, rel_tol=REL, abs_tol=abs_tol)


# --- the reference ---


@dataclass(frozen=True)
class RefPrior:
    baseline: float
    kappa: float
    responses: int
    moments: int


def ref_kappa(cells: Sequence[tuple[int, int]]) -> float:
    """kappa = mu(1-mu)/tau2 - 1 in exact fractions; 20 for J < 8, 200 for tau2 <= 0."""
    rated = [(n, k) for n, k in cells if n > 0]
    if len(rated) < 8:
        return 20.0
    total = sum(n for n, _ in rated)
    mu = Fraction(sum(k for _, k in rated), total)
    tau2 = sum(Fraction(n, total) * (Fraction(k, n) - mu) ** 2 for n, k in rated)
    tau2 -= len(rated) * mu * (1 - mu) / total
    if mu in (0, 1) or tau2 <= 0:
        return 200.0
    return float(min(max(mu * (1 - mu) / tau2 - 1, Fraction(5)), Fraction(200)))


def ref_family_priors(moments: Sequence[MomentInput]) -> dict[ScaleFamily, RefPrior]:
    cells: dict[ScaleFamily, list[tuple[int, int]]] = {}
    for moment in moments:
        for cell in moment.families:
            cells.setdefault(cell.family, []).append((cell.responses, cell.negatives))
    priors = {}
    for family, pairs in cells.items():
        responses = sum(n for n, _ in pairs)
        if responses:
            priors[family] = RefPrior(
                baseline=sum(k for _, k in pairs) / responses,
                kappa=ref_kappa(pairs),
                responses=responses,
                moments=sum(1 for n, _ in pairs if n > 0),
            )
    return priors


def ref_moment_prior(
    moment: MomentInput, priors: Mapping[ScaleFamily, RefPrior]
) -> tuple[float, float]:
    """Family priors mixed by responses (equally if none; the window rate if no family)."""
    weights = {c.family: float(c.responses) for c in moment.families if c.family in priors}
    if sum(weights.values()) == 0:
        weights = dict.fromkeys(weights, 1.0)
    if not weights:
        responses = sum(p.responses for p in priors.values())
        if responses == 0:
            return 0.0, 20.0
        return sum(p.baseline * p.responses for p in priors.values()) / responses, 20.0
    total = sum(weights.values())
    return (
        sum(w * priors[f].baseline for f, w in weights.items()) / total,
        sum(w * priors[f].kappa for f, w in weights.items()) / total,
    )


@dataclass(frozen=True)
class RefRanked:
    key: str
    volume: int
    responses: int
    negatives: int
    baseline: float
    kappa: float
    reference: float
    a: float
    b: float
    rate: float
    lower: float
    upper: float
    prob_worse: float
    priority: float
    q_value: float
    confident_problem: bool
    low_data: bool


def ref_q_values(prob: Sequence[float]) -> list[float]:
    """q_i = mean of (1 - p_j) over every j with p_j >= p_i."""
    q = []
    for p in prob:
        at_least = [1.0 - other for other in sorted(prob, reverse=True) if other >= p]
        running = 0.0
        for value in at_least:
            running += value
        q.append(running / len(at_least))
    return q


def ref_rank(moments: Sequence[MomentInput]) -> list[RefRanked]:
    priors = ref_family_priors(moments)
    rows = []
    for moment in moments:
        mu, kappa = ref_moment_prior(moment, priors)
        n, k = moment.responses, moment.negatives
        a = mu * kappa + k
        b = (1.0 - mu) * kappa + n - k
        reference = mu if moment.target_negative_rate is None else moment.target_negative_rate
        if min(a, b) < 2.2250738585072014e-308:
            rate = lower = upper = 0.0 if a < b else 1.0
            worse = 1.0 if rate > reference else 0.0
        else:
            beta = distributions.beta(a, b)
            rate = a / (a + b)
            lower, upper = (float(x) for x in beta.ppf([0.05, 0.95]))
            worse = float(beta.sf(reference))
        volume = max(moment.touchpoints, n)
        rows.append((moment, n, k, mu, kappa, reference, a, b, rate, lower, upper, worse, volume))
    q_values = ref_q_values([row[11] for row in rows])
    ranked = [
        RefRanked(
            key=moment.key,
            volume=volume,
            responses=n,
            negatives=k,
            baseline=mu,
            kappa=kappa,
            reference=reference,
            a=a,
            b=b,
            rate=rate,
            lower=lower,
            upper=upper,
            prob_worse=worse,
            priority=volume * (rate - reference),
            q_value=q,
            confident_problem=q <= 0.10,
            low_data=n < 30,
        )
        for (moment, n, k, mu, kappa, reference, a, b, rate, lower, upper, worse, volume), q in zip(
            rows, q_values, strict=True
        )
    ]
    return sorted(ranked, key=lambda r: (-r.priority, -r.prob_worse, r.key))


def ref_benjamini_hochberg(p: Sequence[float]) -> list[float]:
    """q_(i) = min over j >= i of m p_(j) / j, capped at 1 (and never below p_(i))."""
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    q = [1.0] * m
    for position, index in enumerate(order, start=1):
        later = [max(p[j], m * p[j] / rank) for rank, j in enumerate(order, 1) if rank >= position]
        q[index] = min([1.0, *later])
    return q


def ref_where_tested(p: Sequence[float | None]) -> list[float | None]:
    tested = [value for value in p if value is not None]
    adjusted = iter(ref_benjamini_hochberg(tested))
    return [None if value is None else next(adjusted) for value in p]


def ref_trends(
    pairs: Sequence[tuple[str, Counts, Counts, float, float | None]],
) -> list[tuple[str, float | None, float | None, float | None, float | None, bool]]:
    z_values: list[float | None] = []
    for _, now, before, _, _ in pairs:
        if min(now.responses, before.responses) < 20:
            z_values.append(None)
            continue
        pooled = (now.negatives + before.negatives) / (now.responses + before.responses)
        variance = pooled * (1 - pooled) * (1 / now.responses + 1 / before.responses)
        difference = now.negatives / now.responses - before.negatives / before.responses
        z_values.append(0.0 if variance == 0 else difference / math.sqrt(variance))
    p_values = [None if z is None else float(distributions.norm.sf(z)) for z in z_values]
    q_values = ref_where_tested(p_values)
    return [
        (
            key,
            None if rate_before is None else rate_now - rate_before,
            z,
            p,
            q,
            q is not None and q <= 0.10,
        )
        for (key, _, _, rate_now, rate_before), z, p, q in zip(
            pairs, z_values, p_values, q_values, strict=True
        )
    ]


@dataclass(frozen=True)
class RefConsistency:
    teams: int
    pooled_rate: float
    statistic: float
    df: int
    dispersion: float
    p_value: float
    funnel_limit: float
    outliers: list[tuple[str, float, str]]


def ref_team_consistency(teams: Sequence[TeamCounts]) -> RefConsistency | None:
    eligible = [t for t in teams if t.responses >= 10]
    n = sum(t.responses for t in eligible)
    k = sum(t.negatives for t in eligible)
    if len(eligible) < 2 or k in (0, n):
        return None
    p = k / n
    statistic = sum(
        (t.negatives - t.responses * p) ** 2 / (t.responses * p * (1 - p)) for t in eligible
    )
    df = len(eligible) - 1
    limit = 3.0 * math.sqrt(max(statistic / df, 1.0))
    outliers = []
    for t in eligible:
        z = (t.negatives / t.responses - p) / math.sqrt(p * (1 - p) / t.responses)
        if abs(z) > limit:
            outliers.append((t.team, z, "worse" if z > 0 else "better"))
    return RefConsistency(
        teams=len(eligible),
        pooled_rate=p,
        statistic=statistic,
        df=df,
        dispersion=statistic / df,
        p_value=float(distributions.chi2.sf(statistic, df)),
        funnel_limit=limit,
        outliers=sorted(outliers, key=lambda o: -abs(o[1])),
    )


# --- comparisons ---


def assert_same_priors(moments: Sequence[MomentInput]) -> None:
    actual = stats.family_priors(moments)
    expected = ref_family_priors(moments)
    assert actual.keys() == expected.keys()
    for family, prior in actual.items():
        ref = expected[family]
        assert prior.family == family
        assert (prior.responses, prior.moments) == (ref.responses, ref.moments)
        assert prior.baseline == ref.baseline
        assert _close(prior.kappa, ref.kappa), (prior.kappa, ref.kappa)


def assert_same_ranking(actual: Sequence[RankedMoment], expected: Sequence[RefRanked]) -> None:
    assert [item.key for item in actual] == [ref.key for ref in expected]
    for item, ref in zip(actual, expected, strict=True):
        assert (item.volume, item.responses, item.negatives) == (
            ref.volume,
            ref.responses,
            ref.negatives,
        )
        assert (item.confident_problem, item.low_data) == (ref.confident_problem, ref.low_data)
        assert item.rate == item.posterior.rate
        pairs = {
            "baseline": (item.prior.baseline, ref.baseline, 0.0),
            "kappa": (item.prior.kappa, ref.kappa, 0.0),
            "reference": (item.reference, ref.reference, 0.0),
            "a": (item.posterior.a, ref.a, 0.0),
            "b": (item.posterior.b, ref.b, 0.0),
            "rate": (item.posterior.rate, ref.rate, 0.0),
            "lower": (item.posterior.lower, ref.lower, ABS),
            "upper": (item.posterior.upper, ref.upper, ABS),
            "prob_worse": (item.prob_worse, ref.prob_worse, ABS),
            # V * (rate - reference) can be V times a rounding error of the rate.
            "priority": (item.priority, ref.priority, ABS * ref.volume),
            "q_value": (item.q_value, ref.q_value, ABS),
        }
        for name, (value, expected_value, abs_tol) in pairs.items():
            assert _close(value, expected_value, abs_tol=abs_tol), (
                item.key,
                name,
                value,
                expected_value,
            )


def assert_same_window(moments: Sequence[MomentInput]) -> list[RankedMoment]:
    assert_same_priors(moments)
    ranked = stats.rank(moments)
    assert_same_ranking(ranked, ref_rank(moments))
    assert_same_ranking(stats.rank(moments, stats.family_priors(moments)), ref_rank(moments))
    # An earlier window is only adjusted, not ranked: the same counts and rates, bit for bit.
    adjusted = stats.adjust(moments, stats.family_priors(moments))
    assert sorted((a.key, a.responses, a.negatives, a.rate) for a in adjusted) == sorted(
        (r.key, r.responses, r.negatives, r.rate) for r in ranked
    )
    return ranked


def assert_same_trends(current: Sequence[RankedMoment], previous: Sequence[RankedMoment]) -> None:
    inputs = stats.trend_inputs(current, previous)
    before = {item.key: item for item in previous}
    pairs = []
    for item in current:
        earlier = before.get(item.key)
        pairs.append(
            (
                item.key,
                Counts(item.responses, item.negatives),
                Counts(0, 0) if earlier is None else Counts(earlier.responses, earlier.negatives),
                item.rate,
                None if earlier is None else earlier.rate,
            )
        )
    assert [
        (i.key, i.current, i.previous, i.current_rate, i.previous_rate) for i in inputs
    ] == pairs
    actual: list[Trend] = stats.trends(inputs)
    for trend, (key, change, z, p, q, worsening) in zip(actual, ref_trends(pairs), strict=True):
        assert (trend.key, trend.tested, trend.worsening) == (key, z is not None, worsening)
        assert _close(trend.change, change, abs_tol=ABS)
        assert _close(trend.z, z)
        assert _close(trend.p_value, p, abs_tol=ABS)
        assert _close(trend.q_value, q, abs_tol=ABS)


def assert_same_consistency(per_moment: Sequence[Sequence[TeamCounts]]) -> None:
    actual: list[TeamConsistency | None] = [stats.team_consistency(t) for t in per_moment]
    expected = [ref_team_consistency(t) for t in per_moment]
    for result, ref in zip(actual, expected, strict=True):
        if ref is None:
            assert result is None
            continue
        assert result is not None
        assert (result.teams, result.df) == (ref.teams, ref.df)
        assert result.pooled_rate == ref.pooled_rate
        assert _close(result.statistic, ref.statistic)
        assert _close(result.dispersion, ref.dispersion)
        assert _close(result.funnel_limit, ref.funnel_limit)
        assert _close(result.p_value, ref.p_value, abs_tol=ABS)
        assert [(o.team, o.direction) for o in result.outliers] == [
            (team, direction) for team, _, direction in ref.outliers
        ]
        for outlier, (_, z, _) in zip(result.outliers, ref.outliers, strict=True):
            assert _close(outlier.z, z)
    q_values = stats.consistency_q_values(actual)
    expected_q = ref_where_tested([None if ref is None else ref.p_value for ref in expected])
    assert len(q_values) == len(expected_q)
    for value, ref_value in zip(q_values, expected_q, strict=True):
        assert _close(value, ref_value, abs_tol=ABS)


# --- random windows ---


@st.composite
def counts(draw: st.DrawFn) -> tuple[int, int]:
    n = draw(
        st.sampled_from([0, 1, 5])
        | st.integers(0, 60)
        | st.integers(0, 4000)
        | st.integers(9_000, 200_000)
    )
    k = draw(st.sampled_from([0, n]) | st.integers(0, n) | st.integers(0, min(n, 10)))
    return n, k


@st.composite
def moment_inputs(draw: st.DrawFn, key: str, families: Sequence[ScaleFamily]) -> MomentInput:
    listed = draw(st.lists(st.sampled_from(families), unique=True, max_size=len(families)))
    cells = tuple(FamilyCounts(family, *draw(counts())) for family in listed)
    n = sum(cell.responses for cell in cells)
    touchpoints = draw(st.sampled_from([0, n]) | st.integers(0, 6 * n + 10))
    target = draw(st.none() | st.sampled_from([0.0, 0.1, 1.0]) | st.floats(0.0, 1.0))
    return MomentInput(key, touchpoints, cells, target)


@st.composite
def windows(draw: st.DrawFn, *, max_moments: int = 30) -> list[MomentInput]:
    families = draw(st.sampled_from([(SAT,), (SAT, NPS), (SAT, NPS, EFFORT)]))
    size = draw(st.integers(0, max_moments))
    return [draw(moment_inputs(f"m{index:02d}", families)) for index in range(size)]


@st.composite
def team_lists(draw: st.DrawFn) -> list[TeamCounts]:
    size = draw(st.integers(0, 12))
    rate = draw(st.floats(0.0, 1.0))
    teams = []
    for index in range(size):
        n = draw(st.integers(0, 8) | st.integers(10, 400))
        typical = round(n * rate)
        k = draw(st.integers(max(0, typical - 3), min(n, typical + 3)) | st.integers(0, n))
        teams.append(TeamCounts(f"t{index}", n, k))
    return teams


@settings(max_examples=100, deadline=None)
@given(windows(), windows())
def test_ranking_and_trends_match_the_reference(
    current: list[MomentInput], previous: list[MomentInput]
) -> None:
    ranked = assert_same_window(current)
    previous_ranked = assert_same_window(previous)
    assert_same_trends(ranked, previous_ranked)


@settings(max_examples=100, deadline=None)
@given(st.lists(team_lists(), max_size=12))
def test_team_consistency_matches_the_reference(per_moment: list[list[TeamCounts]]) -> None:
    assert_same_consistency(per_moment)


# --- edge cases, each compared the same way ---


def _sat(key: str, touchpoints: int, n: int, k: int, target: float | None = None) -> MomentInput:
    return MomentInput(key, touchpoints, (FamilyCounts(SAT, n, k),), target)


def _spread(prefix: str, size: int, *, rate: float) -> list[MomentInput]:
    return [
        _sat(
            f"{prefix}{i:02d}",
            50 + 37 * i,
            20 + 11 * i,
            round((20 + 11 * i) * rate * (1 + (i % 3) / 3)),
        )
        for i in range(size)
    ]


EDGE_WINDOWS = {
    "empty": [],
    "one moment": [_sat("only", 100, 40, 5)],
    "fewer than 8 moments": _spread("few", 7, rate=0.1),
    "no responses anywhere": [_sat(f"quiet{i}", 10 * i, 0, 0) for i in range(10)],
    "some moments without responses": [
        *_spread("s", 9, rate=0.1),
        *(_sat(f"z{i}", 5 * i, 0, 0) for i in range(4)),
    ],
    "moments listing no family": [
        *_spread("s", 9, rate=0.2),
        MomentInput("bare", 30),
        MomentInput("bare2", 0),
    ],
    "all negative": [_sat(f"bad{i}", 40, 10 + i, 10 + i) for i in range(10)],
    "all positive": [_sat(f"good{i}", 40, 10 + i, 0) for i in range(10)],
    "targets set": [
        _sat(f"t{i}", 100 + i, 30 + 5 * i, 3 + i, target=0.05 * (i % 4)) for i in range(12)
    ],
    "one family only, many moments": _spread("one", 40, rate=0.15),
    "identical moments": [_sat(f"same{i}", 200, 80, 8) for i in range(9)],
    "every rate on the baseline": [_sat(f"flat{i}", 100, 10, 1) for i in range(8)],
    "kappa clamped below": [_sat(f"wild{i}", 10, 10, 10 * (i % 2)) for i in range(8)],
    "two families mixed": [
        *_spread("s", 10, rate=0.1),
        *(MomentInput(f"n{i}", 60, (FamilyCounts(NPS, 30 + i, 5 + i),)) for i in range(9)),
        MomentInput("both", 80, (FamilyCounts(SAT, 40, 4), FamilyCounts(NPS, 20, 9)), 0.2),
        MomentInput("both-empty", 80, (FamilyCounts(SAT, 0, 0), FamilyCounts(NPS, 0, 0))),
        MomentInput("unknown-family", 80, (FamilyCounts(EFFORT, 0, 0),)),
    ],
    "large counts": [
        _sat(f"big{i}", 10**6, 300_000 + 7_919 * i, 30_000 + 1_013 * i * i) for i in range(12)
    ],
}


@pytest.mark.parametrize("name", EDGE_WINDOWS)
def test_edge_windows_match_the_reference(name: str) -> None:
    window = EDGE_WINDOWS[name]
    ranked = assert_same_window(window)
    assert_same_trends(ranked, assert_same_window(window[::2]))
    assert_same_trends(ranked, [])


EDGE_TEAMS = {
    "no teams": [],
    "one team": [TeamCounts("a", 50, 5)],
    "teams under 10 responses": [TeamCounts("a", 9, 5), TeamCounts("b", 9, 0)],
    "nothing negative": [TeamCounts("a", 50, 0), TeamCounts("b", 40, 0)],
    "everything negative": [TeamCounts("a", 50, 50), TeamCounts("b", 40, 40)],
    "one team far worse": [
        TeamCounts("bad", 100, 25),
        *(TeamCounts(f"ok{i}", 100, 10) for i in range(4)),
    ],
    "one team far better": [
        TeamCounts("good", 400, 0),
        *(TeamCounts(f"ok{i}", 400, 80) for i in range(6)),
    ],
    "thirty teams": [
        TeamCounts(f"t{i:02d}", 40 + 13 * i, (40 + 13 * i) * (i % 5) // 20) for i in range(30)
    ],
}


def test_edge_team_lists_match_the_reference() -> None:
    assert_same_consistency(list(EDGE_TEAMS.values()))
