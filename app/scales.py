"""Rating scales: allowed values, sentiment bands and the 0-100 score (PRODUCT.md, "Scales")."""

from dataclasses import dataclass
from enum import StrEnum


class ScaleName(StrEnum):
    csat5 = "csat5"
    nps11 = "nps11"
    ces7 = "ces7"
    smiley4 = "smiley4"
    thumbs = "thumbs"


class Sentiment(StrEnum):
    negative = "negative"
    neutral = "neutral"
    positive = "positive"


class ScaleFamily(StrEnum):
    """Scales whose normal share of bad answers is comparable share one baseline."""

    satisfaction = "satisfaction"
    nps = "nps"
    effort = "effort"


@dataclass(frozen=True, slots=True)
class Scale:
    name: ScaleName
    low: int
    high: int
    negative_max: int
    """Highest value that counts as negative."""
    positive_min: int
    """Lowest value that counts as positive; values in between are neutral."""
    family: ScaleFamily

    def score(self, value: int) -> float:
        """Linear map of the scale onto 0..100."""
        return (value - self.low) / (self.high - self.low) * 100

    def sentiment(self, value: int) -> Sentiment:
        if value <= self.negative_max:
            return Sentiment.negative
        if value >= self.positive_min:
            return Sentiment.positive
        return Sentiment.neutral

    @property
    def range_text(self) -> str:
        return f"{self.low}..{self.high}"


SCALES: dict[ScaleName, Scale] = {
    scale.name: scale
    for scale in (
        Scale(ScaleName.csat5, 1, 5, 2, 4, ScaleFamily.satisfaction),
        Scale(ScaleName.nps11, 0, 10, 6, 9, ScaleFamily.nps),
        Scale(ScaleName.ces7, 1, 7, 3, 5, ScaleFamily.effort),
        Scale(ScaleName.smiley4, 1, 4, 2, 3, ScaleFamily.satisfaction),
        Scale(ScaleName.thumbs, 0, 1, 0, 1, ScaleFamily.satisfaction),
    )
}


@dataclass(frozen=True, slots=True)
class NormalisedRating:
    scale: ScaleName
    value: int
    score: float
    sentiment: Sentiment


# Every rating there can be, computed once: ingestion normalises thousands a second.
_NORMALISED = {
    (scale.name, value): NormalisedRating(
        scale.name, value, scale.score(value), scale.sentiment(value)
    )
    for scale in SCALES.values()
    for value in range(scale.low, scale.high + 1)
}


def normalise(scale_name: ScaleName, value: int) -> NormalisedRating:
    """Score and sentiment of a value; raises ValueError naming the allowed range."""
    rating = _NORMALISED.get((scale_name, value))
    if rating is None:
        scale = SCALES[scale_name]
        raise ValueError(
            f"value {value} is outside scale {scale_name.value} (allowed {scale.range_text})"
        )
    return rating
