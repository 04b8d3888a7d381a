"""Properties that must hold for any input: rating scales and the ranking statistics."""

from dataclasses import replace
from random import Random

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from app.insights.stats import (
    FamilyCounts,
    MomentInput,
    family_priors,
    moment_prior,
    posterior,
    prob_worse,
    rank,
)
from app.scales import SCALES, ScaleFamily, ScaleName, Sentiment, normalise

SENTIMENT_ORDER = {Sentiment.negative: 0, Sentiment.neutral: 1, Sentiment.positive: 2}
SAT = ScaleFamily.satisfaction

scales = st.sampled_from(list(ScaleName))


@given(scales, st.data())
def test_a_higher_answer_never_scores_or_feels_worse(scale: ScaleName, data: st.DataObject) -> None:
    spec = SCALES[scale]
    low = data.draw(st.integers(spec.low, spec.high))
    high = data.draw(st.integers(low, spec.high))
    lower, higher = normalise(scale, low), normalise(scale, high)
    assert 0.0 <= lower.score <= higher.score <= 100.0
    assert SENTIMENT_ORDER[lower.sentiment] <= SENTIMENT_ORDER[higher.sentiment]


@given(scales, st.integers())
def test_an_answer_outside_its_scale_is_always_refused(scale: ScaleName, value: int) -> None:
    spec = SCALES[scale]
    assume(not spec.low <= value <= spec.high)
    with pytest.raises(ValueError, match=f"outside scale {scale.value}"):
        normalise(scale, value)


@given(scales)
def test_the_ends_of_a_scale_are_0_and_100(scale: ScaleName) -> None:
    spec = SCALES[scale]
    assert normalise(scale, spec.low).score == 0.0
    assert normalise(scale, spec.high).score == 100.0


# --- the ranking ---


@st.composite
def windows(draw: st.DrawFn) -> list[MomentInput]:
    """A window of 2-12 moments on the satisfaction family, with or without targets."""
    moments = []
    for index in range(draw(st.integers(2, 12))):
        responses = draw(st.integers(0, 400))
        negatives = draw(st.integers(0, responses))
        touchpoints = draw(st.integers(responses, responses * 5 + 10))
        target = draw(st.none() | st.floats(0.0, 0.5))
        moments.append(
            MomentInput(
                f"m{index}", touchpoints, (FamilyCounts(SAT, responses, negatives),), target
            )
        )
    return moments


def _by_key(moments: list[MomentInput]) -> dict[str, float]:
    return {item.key: item.rate for item in rank(moments)}


@settings(max_examples=200)
@given(windows(), st.data())
def test_turning_a_good_answer_into_a_bad_one_never_lowers_the_adjusted_rate(
    moments: list[MomentInput], data: st.DataObject
) -> None:
    # The whole ranking is recomputed: the baseline and the prior strength move too.
    chosen = data.draw(st.integers(0, len(moments) - 1))
    cell = moments[chosen].families[0]
    assume(cell.negatives < cell.responses)
    worse = list(moments)
    worse[chosen] = replace(
        moments[chosen], families=(replace(cell, negatives=cell.negatives + 1),)
    )
    key = moments[chosen].key
    assert _by_key(worse)[key] >= _by_key(moments)[key] - 1e-12


@given(windows(), st.data())
def test_a_moment_answered_worse_than_another_with_as_many_answers_ranks_no_better(
    moments: list[MomentInput], data: st.DataObject
) -> None:
    # Same responses, same volume, same target, more negatives: higher rate and priority.
    first = moments[0]
    cell = first.families[0]
    extra = data.draw(st.integers(1, max(1, cell.responses - cell.negatives)))
    assume(cell.negatives + extra <= cell.responses)
    twin = replace(first, key="twin", families=(replace(cell, negatives=cell.negatives + extra),))
    ranked = {item.key: item for item in rank([*moments, twin])}
    assert ranked["twin"].rate >= ranked[first.key].rate
    assert ranked["twin"].priority >= ranked[first.key].priority - 1e-9
    assert ranked["twin"].prob_worse >= ranked[first.key].prob_worse - 1e-9


@given(windows(), st.randoms())
def test_the_ranking_does_not_depend_on_the_order_moments_are_given_in(
    moments: list[MomentInput], random: Random
) -> None:
    shuffled = list(moments)
    random.shuffle(shuffled)
    assert [item.key for item in rank(shuffled)] == [item.key for item in rank(moments)]


@given(windows())
def test_adjusted_rates_lie_between_the_observed_rate_and_the_baseline(
    moments: list[MomentInput],
) -> None:
    priors = family_priors(moments)
    for moment in moments:
        prior = moment_prior(moment, priors)
        post = posterior(prior, responses=moment.responses, negatives=moment.negatives)
        if moment.responses == 0:
            assert abs(post.rate - prior.baseline) < 1e-9
            continue
        observed = moment.negatives / moment.responses
        low, high = sorted((observed, prior.baseline))
        assert low - 1e-9 <= post.rate <= high + 1e-9
        assert 0.0 <= prob_worse(post, reference=prior.baseline) <= 1.0
