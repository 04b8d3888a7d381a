"""GET /v1/insights/weak-spots: figures checked against hand computations on small data sets.

Notation as in PRODUCT.md, "Ranking": V touchpoints, n rated responses, k negative ones;
mu the family baseline, kappa the prior strength; a = mu*kappa + k, b = (1-mu)*kappa + n-k.
"""

import math
from datetime import timedelta
from typing import Any

import httpx
import pytest
from scipy import special

from tests.insights.builders import (
    CSV_ROUNDING,
    add_moment,
    get_json,
    listed,
    post,
    rated,
    read_csv,
    touchpoint,
    window,
)

pytestmark = pytest.mark.anyio

WEAK_SPOTS = "/v1/insights/weak-spots"
WEEK = window("2026-10-05T00:00:00Z", "2026-10-12T00:00:00Z")
Z95 = 1.96


def beta_interval(a: float, b: float) -> tuple[float, float]:
    """Equal-tailed 90% interval of Beta(a, b)."""
    return float(special.betaincinv(a, b, 0.05)), float(special.betaincinv(a, b, 0.95))


def beta_survival(x: float, a: float, b: float) -> float:
    """P(X > x) for X ~ Beta(a, b)."""
    return float(special.betaincc(a, b, x))


async def _two_satisfaction_moments(client: httpx.AsyncClient) -> None:
    # alpha: V=10, csat5 answers 1,1,1,1,3,5,5,5 and two unrated: n=8, k=4 (3 is neutral).
    # beta: V=20, target 0.10, csat5 answers 2 and eleven 4-5, eight unrated: n=12, k=1.
    await add_moment(client, "m.alpha")
    await add_moment(client, "m.beta", target_negative_rate=0.10)
    alpha = [1, 1, 1, 1, 3, 5, 5, 5, None, None]
    beta = [2, *[4] * 5, *[5] * 6, *[None] * 8]
    await post(
        client,
        rated("m.alpha", "2026-10-06T09:00:00Z", "csat5", alpha)
        + rated("m.beta", "2026-10-06T09:00:00Z", "csat5", beta),
    )


async def test_adjusted_rate_interval_and_priority_match_hand_computation(
    client: httpx.AsyncClient,
) -> None:
    await _two_satisfaction_moments(client)
    result = await get_json(client, WEAK_SPOTS, WEEK)

    # Satisfaction family: N = 8 + 12 = 20, K = 4 + 1 = 5, mu = 0.25; J = 2 < 8 so kappa = 20.
    # mu*kappa = 5, (1-mu)*kappa = 15.
    assert result["method"]["baselines"] == [
        {
            "family": "satisfaction",
            "baseline": 0.25,
            "prior_strength": 20.0,
            "responses": 20,
            "moments": 2,
        }
    ]
    method = result["method"]
    assert method["name"] == "empirical-bayes-beta-binomial"
    assert method["credible_level"] == pytest.approx(0.90)
    assert method["q_threshold"] == pytest.approx(0.10)
    assert method["low_data_responses"] == 30
    assert method["trend_min_responses"] == 20
    assert method["team_min_responses"] == 10
    assert method["previous_baselines"] == []  # nothing before Oct 5
    items = listed(result)
    alpha, beta = items["m.alpha"], items["m.beta"]

    # alpha: a = 5 + 4 = 9, b = 15 + 4 = 19, rate = 9/28; no target: reference = mu = 0.25;
    # priority = V * (rate - reference) = 10 * (9/28 - 7/28) = 5/7.
    assert (alpha["touchpoints"], alpha["responses"], alpha["negatives"]) == (10, 8, 4)
    assert alpha["response_rate"] == pytest.approx(0.8)
    assert alpha["negative_rate"] == pytest.approx(0.5)
    assert alpha["baseline"] == pytest.approx(0.25)
    assert alpha["prior_strength"] == pytest.approx(20.0)
    assert alpha["adjusted_negative_rate"] == pytest.approx(9 / 28)
    lower, upper = beta_interval(9, 19)
    assert alpha["interval"] == {"lower": pytest.approx(lower), "upper": pytest.approx(upper)}
    assert lower < 9 / 28 < upper
    assert alpha["target_negative_rate"] is None
    assert alpha["reference"] == pytest.approx(0.25)
    assert alpha["priority"] == pytest.approx(5 / 7)
    # Scores 0 (x4), 50 and 100 (x3) over 8 answers.
    assert alpha["mean_score"] == pytest.approx(350 / 8)

    # beta: a = 5 + 1 = 6, b = 15 + 11 = 26, rate = 6/32 = 0.1875; reference = target 0.10;
    # priority = 20 * (0.1875 - 0.10) = 1.75.
    assert (beta["touchpoints"], beta["responses"], beta["negatives"]) == (20, 12, 1)
    assert beta["adjusted_negative_rate"] == pytest.approx(0.1875)
    lower, upper = beta_interval(6, 26)
    assert beta["interval"] == {"lower": pytest.approx(lower), "upper": pytest.approx(upper)}
    assert beta["reference"] == pytest.approx(0.10)
    assert beta["baseline"] == pytest.approx(0.25)
    assert beta["priority"] == pytest.approx(1.75)

    # Ranked by priority: beta (1.75) before alpha (0.714), though alpha's rate is higher.
    assert [item["moment"] for item in result["data"]] == ["m.beta", "m.alpha"]
    assert [item["rank"] for item in result["data"]] == [1, 2]
    assert result["moments_ranked"] == 2


async def test_prob_worse_q_values_and_reasons_follow_from_the_posteriors(
    client: httpx.AsyncClient,
) -> None:
    await _two_satisfaction_moments(client)
    items = listed(await get_json(client, WEAK_SPOTS, WEEK))

    worse_beta = beta_survival(0.10, 6, 26)  # about 0.917
    worse_alpha = beta_survival(0.25, 9, 19)  # about 0.786
    assert items["m.beta"]["prob_worse"] == pytest.approx(worse_beta)
    assert items["m.alpha"]["prob_worse"] == pytest.approx(worse_alpha)
    # q = running mean of 1 - prob_worse in descending prob_worse: beta first, then alpha.
    q_beta = 1 - worse_beta
    q_alpha = ((1 - worse_beta) + (1 - worse_alpha)) / 2
    assert items["m.beta"]["q_value"] == pytest.approx(q_beta)
    assert items["m.alpha"]["q_value"] == pytest.approx(q_alpha)
    assert items["m.beta"]["confident_problem"] is (q_beta <= 0.10) is True
    assert items["m.alpha"]["confident_problem"] is (q_alpha <= 0.10) is False
    assert items["m.beta"]["low_data"] is True  # n = 12 < 30
    # Volumes 10 and 20: upper quartile 10 + 0.75 * 10 = 17.5, so only beta is high-volume;
    # beta's 0.1875 is over its 0.10 target; alpha has no target.
    assert items["m.beta"]["reasons"] == ["high_volume", "over_target", "confident_problem"]
    assert items["m.alpha"]["reasons"] == []


async def test_a_moment_on_two_scale_families_takes_the_response_weighted_mix_of_baselines(
    client: httpx.AsyncClient,
) -> None:
    for key in ("m.sat", "m.nps", "m.mix"):
        await add_moment(client, key)
    day = "2026-10-07T10:00:00Z"
    await post(
        client,
        rated("m.sat", day, "csat5", [1, 1, *[5] * 8])  # n=10, k=2
        + rated("m.nps", day, "nps11", [*[3] * 6, *[10] * 4])  # n=10, k=6
        + rated("m.mix", day, "csat5", [1, 1, 5, 5])  # satisfaction n=4, k=2
        + rated("m.mix", "2026-10-07T11:00:00Z", "nps11", [*[5] * 8, *[10] * 8]),  # nps n=16, k=8
    )
    result = await get_json(client, WEAK_SPOTS, WEEK)

    mu_sat = (2 + 2) / (10 + 4)  # 2/7
    mu_nps = (6 + 8) / (10 + 16)  # 7/13
    assert result["method"]["baselines"] == [
        {"family": "nps", "baseline": pytest.approx(mu_nps), "prior_strength": 20.0}
        | {"responses": 26, "moments": 2},
        {"family": "satisfaction", "baseline": pytest.approx(mu_sat), "prior_strength": 20.0}
        | {"responses": 14, "moments": 2},
    ]
    mix = listed(result)["m.mix"]
    mu_mix = (4 * mu_sat + 16 * mu_nps) / 20  # 0.4879
    a, b = mu_mix * 20 + 10, (1 - mu_mix) * 20 + 10
    assert (mix["responses"], mix["negatives"]) == (20, 10)
    assert mix["baseline"] == pytest.approx(mu_mix)
    assert mix["adjusted_negative_rate"] == pytest.approx(a / (a + b))
    assert mix["priority"] == pytest.approx(20 * (a / (a + b) - mu_mix))
    nps = listed(result)["m.nps"]
    assert nps["adjusted_negative_rate"] == pytest.approx((mu_nps * 20 + 6) / 30)


@pytest.mark.parametrize(
    ("negatives", "kappa"),
    [
        # mu = 16/80 = 0.2; sum (n_i/N)(p_i - mu)^2 = (1/8)(4*0.04 + 4*0.01) = 0.025;
        # J*mu*(1-mu)/N = 8*0.16/80 = 0.016; tau2 = 0.009; kappa = 0.16/0.009 - 1 = 151/9.
        ([0, 0, 1, 1, 3, 3, 4, 4], 151 / 9),
        # mu = 0.15; observed spread (1/8)(4*0.0225 + 4*0.0025) = 0.0125 < noise 0.01275:
        # tau2 <= 0, kappa = 200.
        ([0, 0, 1, 1, 2, 2, 3, 3], 200.0),
        # mu = 0.5; spread 0.25 - noise 0.025 = 0.225; 0.25/0.225 - 1 = 0.11, clamped to 5.
        ([0, 0, 0, 0, 10, 10, 10, 10], 5.0),
    ],
)
async def test_prior_strength_by_the_method_of_moments_with_eight_rated_moments(
    client: httpx.AsyncClient, negatives: list[int], kappa: float
) -> None:
    items = []
    for position, k in enumerate(negatives):
        await add_moment(client, f"m.k{position}")
        items += rated(f"m.k{position}", "2026-10-08T08:00:00Z", "thumbs", [0] * k + [1] * (10 - k))
    await post(client, items)
    result = await get_json(client, WEAK_SPOTS, WEEK)

    mu = sum(negatives) / 80
    (baseline,) = result["method"]["baselines"]
    assert baseline["moments"] == 8
    assert baseline["baseline"] == pytest.approx(mu)
    assert baseline["prior_strength"] == pytest.approx(kappa)
    last = listed(result)["m.k7"]
    assert last["prior_strength"] == pytest.approx(kappa)
    k = negatives[-1]
    assert last["adjusted_negative_rate"] == pytest.approx((mu * kappa + k) / (kappa + 10))


def _rise_by_hand(*, now: tuple[int, int], before: tuple[int, int]) -> float:
    """One-sided Fisher: P(X >= k1), X ~ Hypergeom(n1 + n0, k1 + k0, n1), in integers."""
    (n1, k1), (n0, k0) = now, before
    total = k1 + k0
    ways = sum(
        math.comb(total, x) * math.comb(n1 + n0 - total, n1 - x) for x in range(k1, total + 1)
    )
    return ways / math.comb(n1 + n0, n1)


async def test_trend_compares_with_the_previous_window_and_flags_a_significant_rise(
    client: httpx.AsyncClient,
) -> None:
    for key in ("m.worse", "m.steady", "m.small"):
        await add_moment(client, key)
    now, before = "2026-10-08T00:00:00Z", "2026-10-07T23:00:00Z"
    second = {"spacing": timedelta(seconds=1)}
    items = (
        # current window [Oct 8, Oct 15): worse 10/20, steady 4/20, small 5/20 negative
        rated("m.worse", now, "thumbs", [0] * 10 + [1] * 10)
        + rated("m.steady", now, "thumbs", [0] * 4 + [1] * 16)
        + rated("m.small", now, "thumbs", [0] * 5 + [1] * 15)
        # previous window [Oct 1, Oct 8): worse 2/20, steady 4/20, small 0/5
        + rated("m.worse", before, "thumbs", [0] * 2 + [1] * 18, **second)
        + rated("m.steady", before, "thumbs", [0] * 4 + [1] * 16, **second)
        + rated("m.small", before, "thumbs", [1] * 5, **second)
        # before the previous window: counted in neither
        + rated("m.worse", "2026-09-30T23:59:55Z", "thumbs", [0] * 5, **second)
    )
    await post(client, items)
    result = await get_json(client, WEAK_SPOTS, window(now, "2026-10-15T00:00:00Z"))

    assert result["window"] == {
        "from": "2026-10-08T00:00:00Z",
        "to": "2026-10-15T00:00:00Z",
        "previous_from": "2026-10-01T00:00:00Z",
        "previous_to": "2026-10-08T00:00:00Z",
    }
    # kappa = 20 in both windows (3 moments). Now: mu = 19/60, mu*kappa = 19/3.
    # Before: mu = 6/45, mu*kappa = 8/3.
    items_now = listed(result)
    worse, steady, small = items_now["m.worse"], items_now["m.steady"], items_now["m.small"]

    # worse: rate now (19/3 + 10)/40 = 49/120, before (8/3 + 2)/40 = 14/120.
    assert worse["trend"]["previous_responses"] == 20
    assert worse["trend"]["previous_negatives"] == 2
    assert worse["trend"]["previous_adjusted_negative_rate"] == pytest.approx(14 / 120)
    assert worse["trend"]["change"] == pytest.approx(35 / 120)
    # z = (0.5 - 0.1)/sqrt(0.3*0.7*(1/20 + 1/20)) = 0.4/sqrt(0.021) = 2.760, descriptive.
    z = 0.4 / math.sqrt(0.021)
    # The test is exact: of the 12 negatives of both windows, at least 10 in the current
    # 20 of 40 responses: P = sum over x >= 10 of C(12, x) C(28, 20 - x) / C(40, 20).
    p_worse = _rise_by_hand(now=(20, 10), before=(20, 2))  # 0.00658
    assert worse["trend"]["tested"] is True
    assert worse["trend"]["z"] == pytest.approx(z)
    assert worse["trend"]["p_value"] == pytest.approx(p_worse, rel=1e-9)
    # steady: 4/20 in both windows; X ~ Hypergeom(40, 8, 20) is symmetric about 4, so
    # P(X >= 4) = (1 + P(X = 4)) / 2 = 0.6507.
    p_steady = _rise_by_hand(now=(20, 4), before=(20, 4))
    assert p_steady == pytest.approx(
        0.5 + 0.5 * math.comb(8, 4) * math.comb(32, 16) / math.comb(40, 20)
    )
    # BH over the two tested moments: q = (2 p_worse / 1, 2 p_steady / 2).
    assert worse["trend"]["q_value"] == pytest.approx(2 * p_worse, rel=1e-9)
    assert worse["trend"]["worsening"] is True
    assert "worsening" in worse["reasons"]

    # steady: rates 31/120 and 20/120.
    assert steady["trend"]["change"] == pytest.approx(11 / 120)
    assert steady["trend"]["z"] == pytest.approx(0.0)
    assert steady["trend"]["q_value"] == pytest.approx(p_steady, rel=1e-9)
    assert steady["trend"]["worsening"] is False
    assert "worsening" not in steady["reasons"]

    # small: only 5 responses before, so not tested; change still given:
    # (19/3 + 5)/40 - (8/3 + 0)/25 = 34/120 - 8/75.
    assert small["trend"]["tested"] is False
    assert (small["trend"]["z"], small["trend"]["p_value"], small["trend"]["q_value"]) == (
        None,
        None,
        None,
    )
    assert small["trend"]["change"] == pytest.approx(34 / 120 - 8 / 75)
    assert small["trend"]["worsening"] is False
    assert [b["responses"] for b in result["method"]["previous_baselines"]] == [45]


async def test_a_moment_new_in_the_window_has_no_previous_rate(client: httpx.AsyncClient) -> None:
    await post(client, rated("m.new", "2026-10-06T12:00:00Z", "thumbs", [0, 1]))
    trend = listed(await get_json(client, WEAK_SPOTS, WEEK))["m.new"]["trend"]
    assert trend["previous_responses"] == 0
    assert trend["previous_adjusted_negative_rate"] is None
    assert trend["change"] is None
    assert trend["tested"] is False


async def test_native_csat_nps_and_ces_figures(client: httpx.AsyncClient) -> None:
    day = "2026-10-09T08:00:00Z"
    await post(
        client,
        rated("m.native", day, "csat5", [5, 5, 4, 3, 2, 1, 4, 5])
        + rated("m.native", day, "nps11", [10, 9, 9, 8, 7, 6, 3, 10, 0, 9])
        + rated("m.native", day, "ces7", [7, 6, 5, 4, 1])
        + rated("m.thumbs", day, "thumbs", [0, 1]),
    )
    items = listed(await get_json(client, WEAK_SPOTS, WEEK))
    native = items["m.native"]["native"]

    # CSAT top-2-box: answers 4-5 are 5 of 8 = 0.625, Wilson 95% interval.
    p, n = 5 / 8, 8
    centre = (p + Z95**2 / (2 * n)) / (1 + Z95**2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n**2)) / (1 + Z95**2 / n)
    assert native["csat"] == {
        "value": pytest.approx(0.625),
        "lower": pytest.approx(centre - half),
        "upper": pytest.approx(centre + half),
        "responses": 8,
    }
    # NPS: promoters 10,9,9,10,9 = 5, detractors 6,3,0 = 3 of 10: 100 * (5 - 3)/10 = 20.
    # Adjusted Wald: n' = 13, P' = 5.75/13, D' = 3.75/13.
    promoters, detractors = 5.75 / 13, 3.75 / 13
    adjusted = promoters - detractors
    se = math.sqrt((promoters + detractors - adjusted**2) / 13)
    assert native["nps"] == {
        "value": pytest.approx(20.0),
        "lower": pytest.approx(100 * (adjusted - Z95 * se)),
        "upper": pytest.approx(100 * (adjusted + Z95 * se)),
        "responses": 10,
    }
    # CES: (7 + 6 + 5 + 4 + 1)/5 = 4.6.
    assert native["ces"] == {"mean": pytest.approx(4.6), "responses": 5}
    assert items["m.thumbs"]["native"] == {"csat": None, "nps": None, "ces": None}


async def test_moments_under_min_responses_are_listed_apart_and_ranked_the_same_way(
    client: httpx.AsyncClient,
) -> None:
    day = "2026-10-06T15:00:00Z"
    for key in ("m.a", "m.b", "m.c", "m.d"):
        await add_moment(client, key)
    await post(
        client,
        rated("m.a", day, "thumbs", [0] * 6 + [1] * 6)  # n=12, k=6
        + rated("m.b", day, "thumbs", [0] * 3)  # n=3, k=3
        + rated("m.c", day, "thumbs", [0] + [1] * 14)  # n=15, k=1
        + rated("m.d", day, "thumbs", [1] * 2),  # n=2, k=0
    )
    # mu = 10/32, kappa = 20: mu*kappa = 6.25, (1-mu)*kappa = 13.75. Priorities:
    # a: 12 * (12.25/32 - 0.3125) = 0.84; b: 3 * (9.25/23 - 0.3125) = 0.27;
    # d: 2 * (6.25/22 - 0.3125) = -0.057; c: 15 * (7.25/35 - 0.3125) = -1.58.
    expected_priority = {
        "m.a": 12 * (12.25 / 32 - 0.3125),
        "m.b": 3 * (9.25 / 23 - 0.3125),
        "m.c": 15 * (7.25 / 35 - 0.3125),
        "m.d": 2 * (6.25 / 22 - 0.3125),
    }
    result = await get_json(client, WEAK_SPOTS, {**WEEK, "min_responses": 10})

    assert result["moments_ranked"] == 4
    assert [(i["moment"], i["rank"]) for i in result["data"]] == [("m.a", 1), ("m.c", 4)]
    assert [(i["moment"], i["rank"]) for i in result["insufficient_data"]] == [
        ("m.b", 2),
        ("m.d", 3),
    ]
    for key, item in listed(result).items():
        assert item["priority"] == pytest.approx(expected_priority[key])

    everything = await get_json(client, WEAK_SPOTS, WEEK)
    assert [i["moment"] for i in everything["data"]] == ["m.a", "m.b", "m.d", "m.c"]
    assert everything["insufficient_data"] == []
    # The split changes where a moment is listed, never its figures.
    assert listed(everything) == listed(result)

    first = await get_json(client, WEAK_SPOTS, {**WEEK, "min_responses": 10, "limit": 1})
    assert [i["moment"] for i in first["data"]] == ["m.a"]
    assert [i["moment"] for i in first["insufficient_data"]] == ["m.b"]


async def test_late_ratings_and_re_ratings_change_the_counts(client: httpx.AsyncClient) -> None:
    await add_moment(client, "m.late")
    await post(
        client,
        [
            touchpoint("m.late", f"2026-10-06T1{i}:00:00Z", id=f"late-{i}", team="red")
            for i in range(6)
        ],
    )

    async def figures(**scope: str) -> tuple[int, int, int]:
        item = listed(await get_json(client, WEAK_SPOTS, {**WEEK, **scope}))["m.late"]
        return item["touchpoints"], item["responses"], item["negatives"]

    async def rate(touchpoint_id: str, value: int) -> None:
        path = f"/v1/touchpoints/{touchpoint_id}/rating"
        response = await client.put(path, json={"scale": "csat5", "value": value})
        assert response.status_code == 200, response.text

    assert await figures() == (6, 0, 0)
    await rate("late-0", 1)
    await rate("late-1", 2)
    await rate("late-2", 5)
    assert await figures() == (6, 3, 2)
    await rate("late-0", 5)  # negative -> positive
    assert await figures() == (6, 3, 1)
    await rate("late-2", 1)  # positive -> negative
    await rate("late-2", 1)  # the same answer again changes nothing
    assert await figures() == (6, 3, 2)
    # Team and channel together are counted from the touchpoints, team alone from rollups:
    # both see the late ratings.
    assert await figures(team="red") == (6, 3, 2)
    assert await figures(team="red", channel="call") == (6, 3, 2)
    item = listed(await get_json(client, WEAK_SPOTS, WEEK))["m.late"]
    # Answers 5, 2, 1: scores 100, 25, 0.
    assert item["mean_score"] == pytest.approx(125 / 3)
    assert item["native"]["csat"]["value"] == pytest.approx(1 / 3)


# --- CSV ---

CSV_HEADER = [
    "listed",
    "rank",
    "moment",
    "name",
    "stage",
    "owner_team",
    "touchpoints",
    "responses",
    "negatives",
    "response_rate",
    "negative_rate",
    "adjusted_negative_rate",
    "interval_lower",
    "interval_upper",
    "baseline",
    "prior_strength",
    "target_negative_rate",
    "reference",
    "priority",
    "prob_worse",
    "q_value",
    "confident_problem",
    "low_data",
    "mean_score",
    "complaints",
    "trend_previous_responses",
    "trend_previous_negatives",
    "trend_previous_adjusted_negative_rate",
    "trend_change",
    "trend_tested",
    "trend_z",
    "trend_p_value",
    "trend_q_value",
    "trend_worsening",
    "consistency_teams",
    "consistency_chi_square",
    "consistency_df",
    "consistency_phi",
    "consistency_min_expected",
    "consistency_test",
    "consistency_p_value",
    "consistency_q_value",
    "consistency_inconsistent_teams",
    "consistency_outliers",
    "native_csat_value",
    "native_csat_lower",
    "native_csat_upper",
    "native_csat_responses",
    "native_nps_value",
    "native_nps_lower",
    "native_nps_upper",
    "native_nps_responses",
    "native_ces_mean",
    "native_ces_responses",
    "reasons",
    "top_factors",
    "lost_time_responses",
    "lost_time_mean_minutes",
    "lost_time_mean_interval_lower",
    "lost_time_mean_interval_upper",
    "lost_time_median_minutes",
    "lost_time_median_interval_lower",
    "lost_time_median_interval_upper",
    "lost_time_hours_lost",
]


def flatten(item: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A JSON item's leaves keyed as CSV columns: nested objects joined with `_`."""
    flat: dict[str, Any] = {}
    for name, value in item.items():
        if isinstance(value, dict):
            flat |= flatten(value, f"{prefix}{name}_")
        else:
            flat[f"{prefix}{name}"] = value
    return flat


def assert_cell_equals(cell: str, value: Any, column: str) -> None:
    if value is None:
        assert cell == "", column
    elif isinstance(value, bool):
        assert cell == ("true" if value else "false"), column
    elif isinstance(value, list):
        assert (cell.split(";") if cell else []) == [str(v) for v in value], column
    elif isinstance(value, int | float):
        # Rounded for people: 4 decimals, or 2 significant digits for a tiny figure.
        assert float(cell) == pytest.approx(value, rel=0.05, abs=CSV_ROUNDING), column
    else:
        assert cell == str(value), column


async def test_csv_has_one_row_per_moment_with_the_json_values(client: httpx.AsyncClient) -> None:
    await _two_satisfaction_moments(client)
    await post(client, rated("m.tiny", "2026-10-06T09:00:00Z", "nps11", [0, 10]))
    params: dict[str, Any] = {**WEEK, "min_responses": 5}
    as_json = await get_json(client, WEAK_SPOTS, params)

    response = await client.get(WEAK_SPOTS, params={**params, "format": "csv"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "weak-spots.csv" in response.headers["content-disposition"]
    fieldnames, rows = read_csv(response)

    assert fieldnames == CSV_HEADER
    assert len(rows) == 3
    expected = [("ranked", i) for i in as_json["data"]]
    expected += [("insufficient_data", i) for i in as_json["insufficient_data"]]
    assert [row["moment"] for row in rows] == ["m.beta", "m.alpha", "m.tiny"]
    for row, (listing, item) in zip(rows, expected, strict=True):
        assert row["listed"] == listing
        flat = flatten(item)
        for column in CSV_HEADER[1:]:
            assert_cell_equals(row[column], flat.get(column), column)
    assert rows[0]["reasons"] == "high_volume;over_target;confident_problem"
    assert rows[0]["target_negative_rate"] == "0.1"
    assert rows[1]["target_negative_rate"] == ""


async def test_accept_text_csv_asks_for_csv_unless_format_says_json(
    client: httpx.AsyncClient,
) -> None:
    await _two_satisfaction_moments(client)
    accept = {"accept": "text/csv"}
    by_header = await client.get(WEAK_SPOTS, params=WEEK, headers=accept)
    assert by_header.headers["content-type"].startswith("text/csv")
    _fieldnames, rows = read_csv(by_header)
    assert [(r["rank"], r["moment"]) for r in rows] == [("1", "m.beta"), ("2", "m.alpha")]
    assert float(rows[0]["priority"]) == pytest.approx(1.75)
    assert rows[1]["priority"] == "0.7143"  # 5/7, rounded for people

    as_json = await client.get(WEAK_SPOTS, params={**WEEK, "format": "json"}, headers=accept)
    assert as_json.headers["content-type"].startswith("application/json")
    assert [i["moment"] for i in as_json.json()["data"]] == ["m.beta", "m.alpha"]
