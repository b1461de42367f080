"""Cron schedules as crontab(5) writes them: `minute hour day-of-month month day-of-week`.

Each field takes `*`, numbers, ranges `a-b`, steps `*/n` and `a-b/n`, and lists `a,b-c`;
months and weekdays also take names (jan, mon).  Day of week 0 or 7 is Sunday.  As in
cron, when both day fields are restricted a day matches if either does.  Also the
shorthands @hourly, @daily (@midnight), @weekly, @monthly, @yearly (@annually).

Times are whole minutes in UTC (the dashboard's TIME_ZONE).  No dependency: the few lines
here are easier to check than a library's rules.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

SHORTHANDS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
MONTHS = {
    m: i
    for i, m in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], start=1
    )
}
DAYS = {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}
FIELDS = (  # name, low, high, names
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, MONTHS),
    ("day of week", 0, 7, DAYS),
)
SEARCH_DAYS = 366 * 5  # far enough back or ahead for "29 2 *" (Feb 29th)


class CronError(ValueError):
    pass


def _number(text: str, names: dict[str, int], name: str) -> int:
    value = names.get(text.lower())
    if value is not None:
        return value
    if not text.isdigit():
        raise CronError(f"{text!r} is not a number in the {name} field")
    return int(text)


def _field(text: str, index: int) -> tuple[frozenset[int], bool]:
    """(the values, whether the field was restricted at all)."""
    name, low, high, names = FIELDS[index]
    values: set[int] = set()
    for part in text.split(","):
        if not part:
            raise CronError(f"an empty item in the {name} field")
        base, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise CronError(f"{step_text!r} is not a step in the {name} field")
            step = int(step_text)
        if base == "*":
            start, end = low, high if index != 4 else 6
        elif "-" in base:
            a, _, b = base.partition("-")
            start, end = _number(a, names, name), _number(b, names, name)
        else:
            start = _number(base, names, name)
            end = high if step_text else start
        if not (low <= start <= high and low <= end <= high) or start > end:
            raise CronError(f"{part!r} is outside {low}-{high} in the {name} field")
        values.update(range(start, end + 1, step))
    if index == 4 and 7 in values:
        values = (values - {7}) | {0}
    return frozenset(values), text != "*"


@dataclass(frozen=True)
class Cron:
    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    days_restricted: bool
    weekdays_restricted: bool

    @classmethod
    def parse(cls, text: str) -> Cron:
        spec = " ".join((text or "").split())
        expanded = SHORTHANDS.get(spec.lower(), spec)
        parts = expanded.split(" ")
        if len(parts) != 5:
            raise CronError(
                f"{spec!r} is not a cron schedule: give five fields, minute hour day-of-month month "
                "day-of-week (e.g. 30 2 * * * for 02:30 every day), or @daily, @weekly ..."
            )
        fields = [_field(part, i) for i, part in enumerate(parts)]
        return cls(
            spec,
            fields[0][0],
            fields[1][0],
            fields[2][0],
            fields[3][0],
            fields[4][0],
            fields[2][1],
            fields[4][1],
        )

    def day_matches(self, day: dt.date) -> bool:
        if day.month not in self.months:
            return False
        in_month = day.day in self.days
        in_week = (day.isoweekday() % 7) in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return in_month or in_week
        return in_month and in_week

    def matches(self, when: dt.datetime) -> bool:
        return self.day_matches(when.date()) and when.hour in self.hours and when.minute in self.minutes

    def latest(self, at_or_before: dt.datetime) -> dt.datetime | None:
        """The last matching minute at or before this time (None if there is none in years)."""
        limit = at_or_before.replace(second=0, microsecond=0)
        day = limit.date()
        for _ in range(SEARCH_DAYS):
            if self.day_matches(day):
                for hour in sorted(self.hours, reverse=True):
                    for minute in sorted(self.minutes, reverse=True):
                        when = dt.datetime.combine(day, dt.time(hour, minute), tzinfo=limit.tzinfo)
                        if when <= limit:
                            return when
            day -= dt.timedelta(days=1)
        return None

    def next_after(self, after: dt.datetime) -> dt.datetime | None:
        """The first matching minute strictly after this time."""
        start = after.replace(second=0, microsecond=0)
        day = start.date()
        for _ in range(SEARCH_DAYS):
            if self.day_matches(day):
                for hour in sorted(self.hours):
                    for minute in sorted(self.minutes):
                        when = dt.datetime.combine(day, dt.time(hour, minute), tzinfo=start.tzinfo)
                        if when > after:
                            return when
            day += dt.timedelta(days=1)
        return None
