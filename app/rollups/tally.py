"""Counts of touchpoints and ratings, and every figure derived from them.

A `Tally` is what a rollup row holds: touchpoints, complaints and how many ratings were
given per scale value. Sentiments, scores and per-family counts are derived here, so
rollups, pending deltas and raw touchpoints yield the same figures.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from operator import itemgetter
from typing import TypeVar

from app.scales import SCALES, ScaleFamily, ScaleName, Sentiment


@dataclass(frozen=True, slots=True)
class RatingKey:
    scale: ScaleName
    value: int

    @property
    def column(self) -> str:
        """Name of the rollup column counting this rating."""
        return f"{self.scale.value}_{self.value}"


RATING_KEYS: tuple[RatingKey, ...] = tuple(
    RatingKey(scale.name, value)
    for scale in SCALES.values()
    for value in range(scale.low, scale.high + 1)
)
COUNT_COLUMNS: tuple[str, ...] = ("touchpoints", "complaints", *(k.column for k in RATING_KEYS))
_TOUCHPOINTS, _COMPLAINTS = 0, 1
_POSITION = {(key.scale.value, key.value): 2 + index for index, key in enumerate(RATING_KEYS)}
_FAMILY = [SCALES[key.scale].family for key in RATING_KEYS]
_SENTIMENT = [SCALES[key.scale].sentiment(key.value) for key in RATING_KEYS]
_SCORE = [SCALES[key.scale].score(key.value) for key in RATING_KEYS]


# Per scale: (value, position in COUNT_COLUMNS) of each of its values.
_SCALE_POSITIONS = {
    name: [(key.value, 2 + i) for i, key in enumerate(RATING_KEYS) if key.scale is name]
    for name in SCALES
}


def _picker(positions: list[int]) -> Callable[[list[int]], tuple[int, ...]]:
    """The counts at `positions`, always as a tuple (itemgetter's is one for two or more)."""
    if len(positions) == 1:
        (only,) = positions
        return lambda counts: (counts[only],)
    return itemgetter(*positions)


# Per scale family: pickers of its ratings' counts, and of its negative ones'. `families`
# runs for every moment of every window of a ranking: itemgetter keeps it out of Python.
_FAMILY_PICKERS = tuple(
    (
        family,
        _picker([2 + i for i, of in enumerate(_FAMILY) if of is family]),
        _picker(
            [
                2 + i
                for i, of in enumerate(_FAMILY)
                if of is family and _SENTIMENT[i] is Sentiment.negative
            ]
        ),
    )
    for family in dict.fromkeys(_FAMILY)
)


class Tally:
    """Counts in `COUNT_COLUMNS` order; add touchpoints or other tallies to it."""

    __slots__ = ("counts",)

    def __init__(self, counts: Iterable[int] | None = None) -> None:
        self.counts = [0] * len(COUNT_COLUMNS) if counts is None else list(counts)

    def add_touchpoint(
        self, *, complaint: bool, scale: str | None, value: int | None, times: int = 1
    ) -> None:
        self.counts[_TOUCHPOINTS] += times
        if complaint:
            self.counts[_COMPLAINTS] += times
        if scale is not None and value is not None:
            self.add_rating(scale, value, times=times)

    def add_counts(
        self,
        *,
        touchpoints: int,
        complaints: int,
        scale: str | None,
        value: int | None,
        ratings: int,
    ) -> None:
        """Add the sums of count deltas: touchpoints, complaints and ratings of one value."""
        self.counts[_TOUCHPOINTS] += touchpoints
        self.counts[_COMPLAINTS] += complaints
        if scale is not None and value is not None and ratings:
            self.add_rating(scale, value, times=ratings)

    def add_rating(self, scale: str, value: int, *, times: int = 1) -> None:
        """Count `times` ratings of `value` (negative `times` takes a replaced rating off)."""
        self.counts[_POSITION[(scale, value)]] += times

    def merge(self, other: "Tally") -> None:
        self.merge_counts(other.counts)

    def merge_counts(self, counts: Iterable[int]) -> None:
        """Add counts in `COUNT_COLUMNS` order."""
        mine = self.counts
        for i, count in enumerate(counts):
            mine[i] += count

    def is_empty(self) -> bool:
        return not any(self.counts)

    @property
    def touchpoints(self) -> int:
        return self.counts[_TOUCHPOINTS]

    @property
    def complaints(self) -> int:
        return self.counts[_COMPLAINTS]

    def _ratings(self) -> Iterable[tuple[int, int]]:
        """(position in RATING_KEYS, count) of every rating value given at least once."""
        return ((i, count) for i, count in enumerate(self.counts[2:]) if count)

    @property
    def responses(self) -> int:
        return sum(self.counts[2:])

    @property
    def negatives(self) -> int:
        return sum(count for i, count in self._ratings() if _SENTIMENT[i] is Sentiment.negative)

    def sentiments(self) -> dict[Sentiment, int]:
        """Answers per sentiment, every sentiment listed."""
        found = dict.fromkeys(Sentiment, 0)
        for i, count in self._ratings():
            found[_SENTIMENT[i]] += count
        return found

    def mean_score(self) -> float | None:
        """Mean 0-100 score of the ratings; None when there are none."""
        responses = self.responses
        if responses == 0:
            return None
        return sum(_SCORE[i] * count for i, count in self._ratings()) / responses

    def families(self) -> dict[ScaleFamily, tuple[int, int]]:
        """(rated, negative) responses per scale family, families with ratings only."""
        counts = self.counts
        found: dict[ScaleFamily, tuple[int, int]] = {}
        for family, rated_at, negative_at in _FAMILY_PICKERS:
            rated = sum(rated_at(counts))
            if rated:
                found[family] = (rated, sum(negative_at(counts)))
        return found

    def value_counts(self, scale: ScaleName) -> dict[int, int]:
        """Answers per value of one scale, every value of the scale listed."""
        counts = self.counts
        return {value: counts[position] for value, position in _SCALE_POSITIONS[scale]}


Key = TypeVar("Key")


def tally_at(tallies: dict[Key, Tally], key: Key) -> Tally:
    """The tally kept under `key`, an empty one added if there is none yet."""
    tally = tallies.get(key)
    if tally is None:
        tally = tallies[key] = Tally()
    return tally


def total(tallies: Iterable[Tally]) -> Tally:
    combined = Tally()
    for tally in tallies:
        combined.merge(tally)
    return combined
