"""The CSV cells themselves: figures rounded for people, text kept from running as a formula."""

import csv
import io

import pytest
from pydantic import BaseModel

from app.csv_response import csv_response, figure, neutralised


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (0.123456, "0.1235"),
        (12.3456789, "12.3457"),
        (100.0, "100"),
        (0.1, "0.1"),
        (-0.05, "-0.05"),
        (-0.00001, "-1e-05"),
        (0.0, "0"),
        (-0.0, "0"),
        (3.14159e-7, "3.1e-07"),
        (1234567.891, "1234567.891"),
    ],
)
def test_figures_are_rounded_to_four_decimals_and_tiny_ones_kept_apart_from_zero(
    value: float, shown: str
) -> None:
    assert figure(value) == shown
    assert float(shown) == pytest.approx(value, rel=0.05, abs=5e-5)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("a=1", "a=1"),
        ("Отдел продаж", "Отдел продаж"),
        ("", ""),
    ],
)
def test_text_that_a_spreadsheet_would_run_gets_a_quote(text: str, shown: str) -> None:
    assert neutralised(text) == shown


class _Row(BaseModel):
    name: str
    change: float
    count: int
    tags: list[str]


def test_rows_parse_back_with_the_byte_order_mark_stripped() -> None:
    rows = [
        _Row(name="=cmd|' /C calc'!A0", change=-0.123456, count=-3, tags=["-a", "b"]),
        _Row(name="Жалоба, «срочно»\nвторая строка", change=0.5, count=2, tags=[]),
    ]
    response = csv_response(_Row, rows, filename="rows.csv", leading={"group": ["x", "+y"]})
    body = bytes(response.body)
    assert body.startswith("\ufeff".encode())
    parsed = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert parsed == [
        ["group", "name", "change", "count", "tags"],
        ["x", "'=cmd|' /C calc'!A0", "-0.1235", "-3", "'-a;b"],
        ["'+y", "Жалоба, «срочно»\nвторая строка", "0.5", "2", ""],
    ]
