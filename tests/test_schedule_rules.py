"""The rules of scheduled backups that need no daemon: cron schedules and retention, with a
fake clock (`now` passed in), never sleeps."""

from __future__ import annotations

import datetime as dt

import pytest

from hosts.domain.cron import Cron, CronError
from hosts.domain.retention import Rules, to_keep, to_prune

UTC = dt.UTC


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("spec", "now", "latest", "following"),
    [
        ("30 2 * * *", "2026-03-10 02:29", "2026-03-09 02:30", "2026-03-10 02:30"),
        ("30 2 * * *", "2026-03-10 02:30", "2026-03-10 02:30", "2026-03-11 02:30"),
        ("*/15 * * * *", "2026-03-10 10:44", "2026-03-10 10:30", "2026-03-10 10:45"),
        ("0 0 * * sun", "2026-03-31 12:00", "2026-03-29 00:00", "2026-04-05 00:00"),
        ("0 0 * * 7", "2026-03-31 12:00", "2026-03-29 00:00", "2026-04-05 00:00"),
        ("@monthly", "2026-03-31 12:00", "2026-03-01 00:00", "2026-04-01 00:00"),
        ("0 12 29 2 *", "2026-03-01 00:00", "2024-02-29 12:00", "2028-02-29 12:00"),
        ("0 6-18/6 * jan-mar mon-fri", "2026-03-07 23:00", "2026-03-06 18:00", "2026-03-09 06:00"),
    ],
)
def test_cron_finds_the_last_and_the_next_slot(spec, now, latest, following):
    cron = Cron.parse(spec)
    assert cron.latest(at(now)) == at(latest)
    assert cron.next_after(at(now)) == at(following)


def test_cron_day_of_month_or_day_of_week_when_both_are_given():
    cron = Cron.parse("0 0 13 * fri")  # the 13th, and every Friday (as cron reads it)
    assert cron.matches(at("2026-03-13 00:00"))  # a Friday the 13th
    assert cron.matches(at("2026-04-13 00:00"))  # a Monday: the 13th
    assert cron.matches(at("2026-04-17 00:00"))  # a Friday
    assert not cron.matches(at("2026-04-14 00:00"))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("* * * *", "give five fields"),
        ("60 * * * *", "outside 0-59 in the minute field"),
        ("* 24 * * *", "outside 0-23 in the hour field"),
        ("*/0 * * * *", "is not a step"),
        ("1,,2 * * * *", "an empty item"),
        ("* * * foo *", "is not a number in the month field"),
        ("5-1 * * * *", "outside"),
    ],
)
def test_a_bad_cron_schedule_says_what_is_wrong(spec, message):
    with pytest.raises(CronError) as error:
        Cron.parse(spec)
    assert message in str(error.value)


def daily_backups(first: str, last: str, hour: int = 2) -> list[dt.datetime]:
    day, end = at(first).replace(hour=hour), at(last).replace(hour=hour)
    out = []
    while day <= end:
        out.append(day)
        day += dt.timedelta(days=1)
    return out


def test_retention_keeps_last_daily_weekly_and_monthly_exactly():
    backups = daily_backups("2025-12-01 00:00", "2026-03-31 00:00")
    rules = Rules(last=2, daily=3, weekly=2, monthly=3)
    kept = to_keep(backups, lambda t: t, rules, now=at("2026-03-31 02:00"))
    assert kept == [
        at("2026-03-31 02:00"),  # last, daily, this week, this month
        at("2026-03-30 02:00"),  # last, daily
        at("2026-03-29 02:00"),  # daily, last week (Sunday: the week's newest)
        at("2026-02-28 02:00"),  # February's newest
        at("2026-01-31 02:00"),  # January's newest
    ]
    assert len(to_prune(backups, lambda t: t, rules, now=at("2026-03-31 02:00"))) == len(backups) - 5


def test_pruning_day_by_day_with_a_fake_clock_ends_where_a_single_prune_does():
    """What the scheduler does: a backup each night, then a prune, for four months."""
    rules = Rules(last=2, daily=3, weekly=2, monthly=3)
    kept: list[dt.datetime] = []
    for night in daily_backups("2025-12-01 00:00", "2026-03-31 00:00"):
        kept.append(night)
        gone = set(to_prune(kept, lambda t: t, rules, now=night))
        kept = [t for t in kept if t not in gone]
    assert sorted(kept, reverse=True) == to_keep(
        daily_backups("2025-12-01 00:00", "2026-03-31 00:00"), lambda t: t, rules, at("2026-03-31 02:00")
    )


def test_a_period_without_backups_keeps_nothing_and_last_n_still_holds():
    backups = daily_backups("2026-01-01 00:00", "2026-01-10 00:00")
    rules = Rules(last=2, daily=7)
    kept = to_keep(backups, lambda t: t, rules, now=at("2026-03-01 12:00"))  # a long pause
    assert kept == [at("2026-01-10 02:00"), at("2026-01-09 02:00")]


def test_nothing_newer_than_now_is_pruned():
    backups = daily_backups("2026-01-01 00:00", "2026-01-05 00:00")
    kept = to_keep(backups, lambda t: t, Rules(last=1), now=at("2026-01-03 00:00"))
    # the three "future" ones stay, and last=1 is the newest of the rest
    assert kept == [
        at("2026-01-05 02:00"),
        at("2026-01-04 02:00"),
        at("2026-01-03 02:00"),
        at("2026-01-02 02:00"),
    ]
