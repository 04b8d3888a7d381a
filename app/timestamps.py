"""Timestamps as the API accepts them: RFC 3339 text with an offset, within a sane range.

Pydantic alone would also read a bare number (`0.5`) as seconds since 1970 and a naive
time as local to nobody; both are refused so that what is stored is what the caller meant.
"""

import re
import time
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BeforeValidator
from pydantic_core import PydanticCustomError

_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?([Zz]|[+-]\d{2}:?\d{2})?"
)
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
# Posting systems' clocks drift; further ahead than this is a bug, not skew.
FUTURE_TOLERANCE_SECONDS = 3600


def _rfc3339_text(value: Any) -> Any:
    # A missing offset passes here and is refused next, as `timezone_aware`.
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        raise PydanticCustomError(
            "datetime_format",
            "must be an RFC 3339 date-time with a timezone offset, e.g. 2026-11-23T09:30:00Z",
        )
    return value


def _within_range(value: datetime) -> datetime:
    if not EARLIEST <= value < LATEST:
        raise PydanticCustomError(
            "datetime_range", f"must lie between {EARLIEST.year} and {LATEST.year}"
        )
    return value.astimezone(UTC)


def _not_in_future(value: datetime) -> datetime:
    # Compared as POSIX seconds: cheaper than building aware datetimes per item.
    if value.timestamp() > time.time() + FUTURE_TOLERANCE_SECONDS:
        raise PydanticCustomError(
            "datetime_future", "lies in the future (more than one hour ahead of the server clock)"
        )
    return value


Timestamp = Annotated[AwareDatetime, BeforeValidator(_rfc3339_text), AfterValidator(_within_range)]
"""Any point in time (a window bound, a promised date), returned in UTC."""

PastTimestamp = Annotated[Timestamp, AfterValidator(_not_in_future)]
"""Something that happened: at most an hour ahead of the server clock, for clock skew."""
