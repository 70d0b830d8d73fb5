"""PingSource schedules: robfig/cron grammar with optional seconds, descriptors, time zones (e)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from local.eventing.cron import CronError, parse_schedule


def fires(schedule, start, count=3, tz=None):
    parsed = parse_schedule(schedule, tz)
    times, moment = [], start
    for _ in range(count):
        moment = parsed.next_after(moment)
        times.append(moment.astimezone(UTC).replace(tzinfo=None))
    return times


def test_six_fields_have_leading_seconds():
    assert fires("*/5 * * * * *", datetime(2026, 1, 1, 0, 0, 3, tzinfo=UTC)) == [
        datetime(2026, 1, 1, 0, 0, 5),
        datetime(2026, 1, 1, 0, 0, 10),
        datetime(2026, 1, 1, 0, 0, 15),
    ]
    assert fires("* * * * * *", datetime(2026, 1, 1, 0, 0, 0, 500000, tzinfo=UTC), count=2) == [
        datetime(2026, 1, 1, 0, 0, 1),
        datetime(2026, 1, 1, 0, 0, 2),
    ]


def test_five_fields_fire_at_second_zero():
    assert fires("*/15 * * * *", datetime(2026, 1, 1, 0, 7, 30, tzinfo=UTC), count=2) == [
        datetime(2026, 1, 1, 0, 15),
        datetime(2026, 1, 1, 0, 30),
    ]
    assert fires("0 3 * * *", datetime(2026, 1, 1, 4, tzinfo=UTC), count=1) == [datetime(2026, 1, 2, 3)]


def test_names_question_marks_and_steps():
    assert fires("0 0 12 ? * MON-FRI", datetime(2026, 1, 2, 13, tzinfo=UTC), count=2) == [  # Fri → Mon
        datetime(2026, 1, 5, 12),
        datetime(2026, 1, 6, 12),
    ]
    assert fires("3/20 * * * * *", datetime(2026, 1, 1, tzinfo=UTC), count=3) == [
        datetime(2026, 1, 1, 0, 0, 3),
        datetime(2026, 1, 1, 0, 0, 23),
        datetime(2026, 1, 1, 0, 0, 43),
    ]


@pytest.mark.parametrize(
    ("descriptor", "expected"),
    [
        ("@hourly", datetime(2026, 1, 1, 1)),
        ("@daily", datetime(2026, 1, 2)),
        ("@midnight", datetime(2026, 1, 2)),
        ("@weekly", datetime(2026, 1, 4)),
        ("@monthly", datetime(2026, 2, 1)),
        ("@yearly", datetime(2027, 1, 1)),
    ],
)
def test_descriptors(descriptor, expected):
    assert fires(descriptor, datetime(2026, 1, 1, 0, 30, tzinfo=UTC), count=1) == [expected]


def test_timezone_is_honoured():
    # 09:00 in New York is 14:00 UTC in winter and 13:00 UTC in summer
    assert fires("0 9 * * *", datetime(2026, 1, 1, tzinfo=UTC), count=1, tz="America/New_York") == [
        datetime(2026, 1, 1, 14)
    ]
    assert fires("0 9 * * *", datetime(2026, 7, 1, tzinfo=UTC), count=1, tz="America/New_York") == [
        datetime(2026, 7, 1, 13)
    ]
    assert parse_schedule("0 9 * * *", "Asia/Tokyo").zone == ZoneInfo("Asia/Tokyo")


def test_cron_tz_prefix_in_the_schedule():
    assert parse_schedule("CRON_TZ=Europe/Berlin 0 9 * * *").zone == ZoneInfo("Europe/Berlin")
    with pytest.raises(CronError, match="also set"):
        parse_schedule("CRON_TZ=Europe/Berlin 0 9 * * *", "Asia/Tokyo")


def test_default_schedule_is_every_minute():
    assert parse_schedule(None).six_fields == "0 * * * * *"


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ("@every 5s", "@every"),
        ("@often", "unknown descriptor"),
        ("* * * *", "4 fields"),
        ("* * * * * * *", "7 fields"),
        ("61 * * * *", "outside 0-59"),
        ("* * * * 7", "outside 0-6"),
        ("* * 0 * *", "outside 1-31"),
        ("* * * 13 *", "outside 1-12"),
        ("0 0 L * *", "not valid"),
        ("0 0 * * 1#2", "not valid"),
        ("H * * * *", "not valid"),
        ("5-1 * * * *", "backwards"),
        ("*/0 * * * *", "positive"),
        ("", "empty"),
    ],
)
def test_invalid_schedules_are_rejected(schedule, message):
    with pytest.raises(CronError, match=message):
        parse_schedule(schedule)


def test_unknown_timezone_is_rejected():
    with pytest.raises(CronError, match="Mars/Olympus"):
        parse_schedule("* * * * *", "Mars/Olympus")
