import pytest

from app.scales import SCALES, ScaleName, Sentiment, normalise

# (scale, value, score, sentiment): every band edge of every scale.
BOUNDARIES = [
    (ScaleName.csat5, 1, 0.0, Sentiment.negative),
    (ScaleName.csat5, 2, 25.0, Sentiment.negative),
    (ScaleName.csat5, 3, 50.0, Sentiment.neutral),
    (ScaleName.csat5, 4, 75.0, Sentiment.positive),
    (ScaleName.csat5, 5, 100.0, Sentiment.positive),
    (ScaleName.nps11, 0, 0.0, Sentiment.negative),
    (ScaleName.nps11, 6, 60.0, Sentiment.negative),
    (ScaleName.nps11, 7, 70.0, Sentiment.neutral),
    (ScaleName.nps11, 8, 80.0, Sentiment.neutral),
    (ScaleName.nps11, 9, 90.0, Sentiment.positive),
    (ScaleName.nps11, 10, 100.0, Sentiment.positive),
    (ScaleName.ces7, 1, 0.0, Sentiment.negative),
    (ScaleName.ces7, 3, 100 / 3, Sentiment.negative),
    (ScaleName.ces7, 4, 50.0, Sentiment.neutral),
    (ScaleName.ces7, 5, 200 / 3, Sentiment.positive),
    (ScaleName.ces7, 7, 100.0, Sentiment.positive),
    (ScaleName.smiley4, 1, 0.0, Sentiment.negative),
    (ScaleName.smiley4, 2, 100 / 3, Sentiment.negative),
    (ScaleName.smiley4, 3, 200 / 3, Sentiment.positive),
    (ScaleName.smiley4, 4, 100.0, Sentiment.positive),
    (ScaleName.thumbs, 0, 0.0, Sentiment.negative),
    (ScaleName.thumbs, 1, 100.0, Sentiment.positive),
]


@pytest.mark.parametrize(("scale", "value", "score", "sentiment"), BOUNDARIES)
def test_band_edges_map_to_the_documented_score_and_sentiment(
    scale: ScaleName, value: int, score: float, sentiment: Sentiment
) -> None:
    rating = normalise(scale, value)
    assert rating.score == pytest.approx(score)
    assert rating.sentiment is sentiment


@pytest.mark.parametrize("scale", list(ScaleName))
def test_values_just_outside_a_scale_are_refused_with_the_allowed_range(scale: ScaleName) -> None:
    spec = SCALES[scale]
    for value in (spec.low - 1, spec.high + 1):
        with pytest.raises(ValueError, match=rf"outside scale {scale.value} \(allowed "):
            normalise(scale, value)


def test_scales_without_a_neutral_band_never_answer_neutral() -> None:
    for scale in (ScaleName.smiley4, ScaleName.thumbs):
        spec = SCALES[scale]
        sentiments = {normalise(scale, v).sentiment for v in range(spec.low, spec.high + 1)}
        assert Sentiment.neutral not in sentiments
