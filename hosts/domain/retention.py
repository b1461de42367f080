"""Which backups a schedule keeps: last N, daily D, weekly W, monthly M.

A backup is kept if any rule keeps it:
- last N: the N newest;
- daily D: the newest backup of each of the D calendar days ending today (today counts);
- weekly W: the newest of each of the W ISO weeks (Monday to Sunday) ending with this week;
- monthly M: the newest of each of the M calendar months ending with this month.
Days, weeks and months are those of `now` in UTC (the dashboard's TIME_ZONE).  A period with
no backup keeps nothing (it is not filled from an older period): after a pause, `last N`
is what keeps the latest backups.  Nothing newer than `now` is ever pruned (a clock that
went back must not delete what it cannot place).

Pure: `now` is passed in, so the rules are tested with a fake clock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Rules:
    last: int = 0
    daily: int = 0
    weekly: int = 0
    monthly: int = 0


def _day(when: dt.datetime) -> Hashable:
    return when.date()


def _week(when: dt.datetime) -> Hashable:
    year, week, _ = when.isocalendar()
    return (year, week)


def _month(when: dt.datetime) -> Hashable:
    return (when.year, when.month)


def _recent_periods(now: dt.datetime, count: int, period: Callable, step: dt.timedelta) -> set:
    """The `count` periods ending with the one `now` is in."""
    found: list = []
    when = now
    while len(found) < count:
        key = period(when)
        if key not in found:
            found.append(key)
        when -= step
    return set(found)


def to_keep(items: Iterable[T], when: Callable[[T], dt.datetime], rules: Rules, now: dt.datetime) -> list[T]:
    """The items the rules keep, newest first."""
    ordered = sorted(items, key=when, reverse=True)
    utc = dt.UTC
    now = now.astimezone(utc)
    kept: dict[int, T] = {}
    past = 0  # the rules count only what is not in the future
    for index, item in enumerate(ordered):
        if when(item).astimezone(utc) > now:
            kept[index] = item
        else:
            if past < rules.last:
                kept[index] = item
            past += 1
    for count, period, step in (
        (rules.daily, _day, dt.timedelta(days=1)),
        (rules.weekly, _week, dt.timedelta(days=7)),
        (rules.monthly, _month, dt.timedelta(days=28)),
    ):
        if count <= 0:
            continue
        wanted = _recent_periods(now, count, period, step)
        seen: set = set()
        for index, item in enumerate(ordered):
            key = period(when(item).astimezone(utc))
            if key in wanted and key not in seen:
                seen.add(key)
                kept[index] = item
    return [kept[i] for i in sorted(kept)]


def to_prune(items: Iterable[T], when: Callable[[T], dt.datetime], rules: Rules, now: dt.datetime) -> list[T]:
    """The rest, oldest first."""
    items = list(items)
    keep = {id(item) for item in to_keep(items, when, rules, now)}
    return sorted((item for item in items if id(item) not in keep), key=when)
