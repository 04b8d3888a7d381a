"""The figures as people read them: one decimal, signed changes, bars and ranges in scale."""

import pytest

from app.ui import views


@pytest.mark.parametrize(
    ("share", "shown"), [(None, "–"), (0.0, "0.0%"), (0.12345, "12.3%"), (1.0, "100.0%")]
)
def test_percentages_have_one_decimal(share: float | None, shown: str) -> None:
    assert views.percent(share) == shown


def test_changes_are_signed_percentage_points() -> None:
    assert views.points(0.021) == "+2.1 pp"
    assert views.points(-0.004) == "-0.4 pp"
    assert views.points(None) == "–"


def test_a_priority_rounded_to_zero_has_no_minus_sign() -> None:
    assert views._one_decimal(-0.04) == "0.0"
    assert views._one_decimal(-0.05) == "-0.1"
    assert views._one_decimal(199.26) == "199.3"


def test_bars_diverge_from_one_zero_line_in_proportion() -> None:
    worse, none, better = views._bars([30.0, 0.0, -10.0])
    assert worse.zero == none.zero == better.zero == pytest.approx(views.BAR_WIDTH / 4)
    assert worse.x == pytest.approx(worse.zero)
    assert worse.width == pytest.approx(3 * better.width)
    assert better.negative
    assert better.x + better.width == pytest.approx(better.zero)
    assert none.width == 0
    assert views._bars([5.0])[0].zero == 0
