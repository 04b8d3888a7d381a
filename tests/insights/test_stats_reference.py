"""The ranking statistics against a slow, plain reference on random windows.

The reference below computes each figure one moment at a time, straight from the formulas of
the ranking method (PRODUCT.md, "Ranking"): exact fractions for the prior strength, scipy's
distribution objects for the Beta and chi-square tails, scipy's Fisher exact tests for the
trend and for each team against the others, q-values and Holm's adjustment by their
definition.
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
EXACT_REL = 1e-9
"""Exact tests: scipy sums its hypergeometric tails one way, `stats` another (7e-13 apart)."""


def _close(
    actual: float | None, expected: float | None, *, abs_tol: float = 0.0, rel_tol: float = REL
) -> bool:
    if actual is None or expected is None:
        return actual is expected
    return math.isclose(actual, expected, rel_tol=rel_tol, abs_tol=abs_tol)


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
    p_values = [
        None
        if z is None
        else float(
            distributions.fisher_exact(
                [
                    [now.negatives, now.responses - now.negatives],
                    [before.negatives, before.responses - before.negatives],
                ],
                alternative="greater",
            ).pvalue
        )
        for (_, now, before, _, _), z in zip(pairs, z_values, strict=True)
    ]
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
    min_expected: float
    chi_square_p: float | None
    """None where an expected count is under 5: then the p-value comes from Monte Carlo."""
    outliers: list[tuple[str, str, float, float]]
    """(team, direction, p, Holm-adjusted p) of the teams named, most significant first."""


def ref_holm(p: Sequence[float]) -> list[float]:
    """Holm (1979) by its definition: the i-th smallest times (m - i + 1), made monotone."""
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    adjusted = [0.0] * m
    for rank, i in enumerate(order):
        adjusted[i] = min(1.0, max((m - r) * p[order[r]] for r in range(rank + 1)))
    return adjusted


def ref_team_consistency(teams: Sequence[TeamCounts]) -> RefConsistency | None:
    eligible = [t for t in teams if t.responses >= 10]
    n = sum(t.responses for t in eligible)
    k = sum(t.negatives for t in eligible)
    if len(eligible) < 2 or k in (0, n):
        return None
    table = [[t.negatives, t.responses - t.negatives] for t in eligible]
    chi2 = distributions.chi2_contingency(table, correction=False)
    expected = min(min(row) for row in chi2.expected_freq)
    df = len(eligible) - 1
    p_values = []
    for t in eligible:
        others = [k - t.negatives, n - t.responses - (k - t.negatives)]
        p_values.append(
            float(distributions.fisher_exact([table[eligible.index(t)], others]).pvalue)
        )
    adjusted = ref_holm(p_values)
    outliers = [
        (
            t.team,
            "worse"
            if t.negatives / t.responses > (k - t.negatives) / (n - t.responses)
            else "better",
            p_value,
            p_adjusted,
        )
        for t, p_value, p_adjusted in zip(eligible, p_values, adjusted, strict=True)
        if p_adjusted <= 0.05
    ]
    return RefConsistency(
        teams=len(eligible),
        pooled_rate=k / n,
        statistic=float(chi2.statistic),
        df=df,
        dispersion=float(chi2.statistic) / df,
        min_expected=float(expected),
        chi_square_p=float(chi2.pvalue) if expected >= 5 else None,
        outliers=sorted(outliers, key=lambda o: (o[3], o[2], o[0])),
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
        assert _close(trend.p_value, p, abs_tol=ABS, rel_tol=EXACT_REL)
        assert _close(trend.q_value, q, abs_tol=ABS, rel_tol=EXACT_REL)


def assert_same_consistency(per_moment: Sequence[Sequence[TeamCounts]]) -> None:
    actual: list[TeamConsistency | None] = [stats.team_consistency(t) for t in per_moment]
    expected = [ref_team_consistency(t) for t in per_moment]
    for teams, result, ref in zip(per_moment, actual, expected, strict=True):
        if ref is None:
            assert result is None
            continue
        assert result is not None
        assert (result.teams, result.df) == (ref.teams, ref.df)
        assert result.pooled_rate == ref.pooled_rate
        assert _close(result.statistic, ref.statistic, rel_tol=1e-9)
        assert _close(result.dispersion, ref.dispersion, rel_tol=1e-9)
        assert _close(result.min_expected, ref.min_expected)
        if ref.chi_square_p is None:
            assert result.test == "monte-carlo"
            assert result.p_value == stats.monte_carlo_p_value(
                [t for t in teams if t.responses >= 10]
            )
        else:
            assert result.test == "chi-square"
            assert _close(result.p_value, ref.chi_square_p, abs_tol=ABS, rel_tol=1e-9)
        # Compared by team: p-values under 1e-308 are 0 here and not in scipy, which can
        # reorder the most significant teams; the order itself is checked on its own.
        named = sorted(result.outliers, key=lambda o: o.team)
        assert [(o.team, o.direction) for o in named] == [
            (team, direction) for team, direction, _, _ in sorted(ref.outliers)
        ]
        for outlier, (_, _, p, p_adjusted) in zip(named, sorted(ref.outliers), strict=True):
            assert _close(outlier.p_value, p, abs_tol=ABS, rel_tol=EXACT_REL)
            assert _close(outlier.adjusted_p_value, p_adjusted, abs_tol=ABS, rel_tol=EXACT_REL)
        ordered = [(o.adjusted_p_value, o.p_value, o.team) for o in result.outliers]
        assert ordered == sorted(ordered)
    q_values = stats.consistency_q_values(actual)
    expected_q = ref_where_tested([None if r is None else r.p_value for r in actual])
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


# --- Monte Carlo against exact enumeration; named teams against best and worst ---


def _exact_conditional_p(teams: Sequence[TeamCounts]) -> float:
    """P(X2 >= observed) over every table with the teams' sizes and the total of negatives,
    each weighted by its multivariate hypergeometric probability prod C(n_j, k_j) / C(N, K)."""
    sizes = [t.responses for t in teams]
    total, negatives = sum(sizes), sum(t.negatives for t in teams)
    rate = negatives / total

    def x2(counts: Sequence[int]) -> float:
        return sum(
            (k - n * rate) ** 2 / (n * rate * (1 - rate))
            for n, k in zip(sizes, counts, strict=True)
        )

    observed = x2([t.negatives for t in teams])
    extreme = Fraction(0)

    def walk(prefix: list[int], left: int) -> None:
        nonlocal extreme
        if len(prefix) == len(sizes) - 1:
            if left <= sizes[-1]:
                counts = [*prefix, left]
                if x2(counts) >= observed * (1 - 1e-9):
                    ways = math.prod(math.comb(n, k) for n, k in zip(sizes, counts, strict=True))
                    extreme += Fraction(ways, math.comb(total, negatives))
            return
        for k in range(min(left, sizes[len(prefix)]) + 1):
            walk([*prefix, k], left - k)

    walk([], negatives)
    return float(extreme)


@st.composite
def small_tables(draw: st.DrawFn) -> list[TeamCounts]:
    size = draw(st.integers(2, 4))
    teams = []
    for index in range(size):
        n = draw(st.integers(10, 25))
        teams.append(TeamCounts(f"t{index}", n, draw(st.integers(0, min(n, 4)))))
    return teams


@settings(max_examples=40, deadline=None)
@given(small_tables())
def test_monte_carlo_p_value_is_close_to_the_exact_conditional_p(
    teams: list[TeamCounts],
) -> None:
    if sum(t.negatives for t in teams) == 0:
        return
    exact = _exact_conditional_p(teams)
    draws = stats.MONTE_CARLO_DRAWS
    estimate = stats.monte_carlo_p_value(teams)
    # (1 + hits) / (draws + 1) with hits ~ Binomial(draws, exact): within 4.5 standard errors.
    error = 4.5 * math.sqrt(exact * (1 - exact) / draws) + 2 / (draws + 1)
    assert abs(estimate - exact) <= error


@settings(max_examples=100, deadline=None)
@given(team_lists())
def test_a_team_named_worse_is_never_the_best_team_nor_one_named_better_the_worst(
    teams: list[TeamCounts],
) -> None:
    result = stats.team_consistency(teams)
    if result is None:
        return
    eligible = [t for t in teams if t.responses >= 10]
    by_rate = sorted(eligible, key=lambda t: (t.negatives / t.responses, t.team))
    best, worst = by_rate[0].team, by_rate[-1].team
    for outlier in result.outliers:
        assert (outlier.direction == "worse") == (outlier.rate > outlier.others_rate)
        assert not (outlier.direction == "worse" and outlier.team == best)
        assert not (outlier.direction == "better" and outlier.team == worst)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), max_size=30))
def test_benjamini_hochberg_matches_scipy(p_values: list[float]) -> None:
    if not p_values:
        return
    expected = distributions.false_discovery_control(p_values, method="bh")
    for actual, reference in zip(stats.benjamini_hochberg(p_values), expected, strict=True):
        assert math.isclose(actual, float(reference), rel_tol=1e-12, abs_tol=1e-15)
