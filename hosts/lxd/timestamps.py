"""LXD's timestamps: RFC 3339 with up to nanoseconds, in any zone, and Go's zero time
("0001-01-01T00:00:00Z") for "never".

Go trims trailing zeros from the fraction, so the strings do not sort: compare what
`timestamp_ns` returns, and show what `parse_time` returns.
"""

from __future__ import annotations

import datetime as dt
import re

_RFC3339 = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)?$")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _parts(text: str | None) -> tuple[dt.datetime, int] | None:
    """(the time to the second, aware; the fraction in nanoseconds), or None for Go's zero
    time, an empty value or anything unreadable."""
    match = _RFC3339.match((text or "").strip())
    if not match or match.group(1).startswith("0001-01-01"):
        return None
    seconds, fraction, zone = match.groups()
    zone = "+00:00" if zone in (None, "Z") else zone
    try:
        when = dt.datetime.fromisoformat(seconds + zone)
    except ValueError:
        return None
    return when, int((fraction or "0").ljust(9, "0"))


def parse_time(text: str | None) -> dt.datetime | None:
    """An aware datetime (microseconds: Python keeps no more), None for "never"."""
    parts = _parts(text)
    if parts is None:
        return None
    when, nanoseconds = parts
    return when.replace(microsecond=nanoseconds // 1000)


def timestamp_ns(text: str | None) -> int:
    """Nanoseconds since the epoch, for ordering events exactly; 0 when there is none."""
    parts = _parts(text)
    if parts is None:
        return 0
    when, nanoseconds = parts
    return (when - _EPOCH) // dt.timedelta(seconds=1) * 1_000_000_000 + nanoseconds
