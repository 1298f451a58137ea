"""Deadline rules checked against the published Chinese holiday schedules.

Expected dates were counted by hand against chinese_calendar 1.11.0's own data
(``chinese_calendar.holidays`` / ``chinese_calendar.workdays``), which matches
the State Council notices:

* 2025 National Day + Mid-Autumn: off 1-8 Oct; working Sun 28 Sep and Sat 11 Oct.
* 2026 National Day: off 1-7 Oct; working Sun 20 Sep and Sat 10 Oct.
  2026 Mid-Autumn: off Fri 25 Sep.
* 2025 Spring Festival: off 28 Jan - 4 Feb; working Sun 26 Jan and Sat 8 Feb.
* 2026 Spring Festival: off 15-23 Feb; working Sat 14 Feb and Sat 28 Feb.

Years beyond the package's data use the ``holidays`` package (2099 is used so
the tests stay valid when chinese_calendar publishes further years).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from intake.deadlines import (
    CONFIDENTIALITY_DECISION_WORKING_DAYS,
    FORMAL_REVIEW_WORKING_DAYS,
    SECRETARIAT_TIMEZONE,
    Deadline,
    add_working_days,
    confidentiality_decision_deadline,
    formal_review_deadline,
    is_working_day,
    receipt_date,
    working_days_between,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")


def shanghai(year: int, month: int, day: int, hour: int = 10) -> datetime:
    """An aware receipt time in Shanghai local time."""
    return datetime(year, month, day, hour, tzinfo=SHANGHAI)


def test_rule_constants() -> None:
    assert FORMAL_REVIEW_WORKING_DAYS == 10
    assert CONFIDENTIALITY_DECISION_WORKING_DAYS == 3
    assert SECRETARIAT_TIMEZONE.key == "Asia/Shanghai"


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2026, 10, 1), (False, False)),  # National Day, Thursday
        (date(2026, 10, 7), (False, False)),  # last day of Golden Week, Wednesday
        (date(2026, 10, 10), (True, False)),  # adjusted working Saturday
        (date(2026, 9, 20), (True, False)),  # adjusted working Sunday
        (date(2026, 9, 25), (False, False)),  # Mid-Autumn Festival, Friday
        (date(2026, 2, 14), (True, False)),  # adjusted working Saturday (Spring Festival)
        (date(2026, 2, 23), (False, False)),  # Spring Festival holiday, Monday
        (date(2026, 3, 7), (False, False)),  # ordinary Saturday
        (date(2026, 3, 9), (True, False)),  # ordinary Monday
    ],
)
def test_is_working_day_follows_official_calendar(day: date, expected: tuple[bool, bool]) -> None:
    assert is_working_day(day) == expected


def test_national_day_2026_skips_golden_week_and_counts_adjusted_saturday() -> None:
    received = shanghai(2026, 9, 30)
    # Working days after 30 Sep: 8, 9, 10 (Sat, 调休), 12-16, 19, 20 Oct.
    assert formal_review_deadline(received) == Deadline(date(2026, 10, 20), provisional=False)
    assert confidentiality_decision_deadline(received) == Deadline(date(2026, 10, 10), False)


def test_national_day_2025_eight_day_holiday_with_mid_autumn() -> None:
    received = shanghai(2025, 9, 30)
    # Working days after 30 Sep: 9, 10, 11 (Sat, 调休), 13-17, 20, 21 Oct.
    assert formal_review_deadline(received) == Deadline(date(2025, 10, 21), provisional=False)
    assert confidentiality_decision_deadline(received) == Deadline(date(2025, 10, 11), False)


def test_adjusted_working_sunday_before_national_day_2026_counts() -> None:
    received = shanghai(2026, 9, 18)  # Friday
    # 20 Sep (Sun, 调休), 21, 22 | 23, 24, (25 Mid-Autumn off), 28, 29, 30, (1-7 Oct off), 8, 9.
    assert confidentiality_decision_deadline(received) == Deadline(date(2026, 9, 22), False)
    assert formal_review_deadline(received) == Deadline(date(2026, 10, 9), False)


def test_spring_festival_2026_counts_both_adjusted_saturdays() -> None:
    received = shanghai(2026, 2, 13)  # Friday before the holiday
    # 14 Feb (Sat, 调休), (15-23 Feb off), 24, 25, 26, 27, 28 (Sat, 调休), 2, 3, 4, 5 Mar.
    assert confidentiality_decision_deadline(received) == Deadline(date(2026, 2, 25), False)
    assert formal_review_deadline(received) == Deadline(date(2026, 3, 5), False)


def test_spring_festival_2025_skips_holiday() -> None:
    received = shanghai(2025, 1, 27)  # Monday, the working day before the holiday
    # (28 Jan - 4 Feb off), 5, 6, 7, 8 (Sat, 调休), 10, 11, 12, 13, 14, 17 Feb.
    assert confidentiality_decision_deadline(received) == Deadline(date(2025, 2, 7), False)
    assert formal_review_deadline(received) == Deadline(date(2025, 2, 17), False)


def test_friday_filing_without_holidays_is_due_two_weeks_later_on_friday() -> None:
    received = shanghai(2026, 3, 6)  # Friday
    deadline = formal_review_deadline(received)
    assert deadline == Deadline(date(2026, 3, 20), provisional=False)
    assert deadline.due.weekday() == 4
    assert confidentiality_decision_deadline(received) == Deadline(date(2026, 3, 11), False)


def test_receipt_date_uses_shanghai_date() -> None:
    assert receipt_date(datetime(2026, 9, 30, 20, 0, tzinfo=UTC)) == date(2026, 10, 1)
    assert receipt_date(datetime(2026, 9, 30, 15, 59, tzinfo=UTC)) == date(2026, 9, 30)
    assert receipt_date(datetime(2026, 9, 30, 16, 0, tzinfo=UTC)) == date(2026, 10, 1)
    new_york = ZoneInfo("America/New_York")
    assert receipt_date(datetime(2026, 3, 5, 12, 0, tzinfo=new_york)) == date(2026, 3, 6)


def test_late_evening_utc_receipt_counts_from_next_shanghai_day() -> None:
    # 8 Oct 2026 17:00 UTC is Friday 9 Oct 01:00 in Shanghai; 9 Oct is not counted.
    received = datetime(2026, 10, 8, 17, 0, tzinfo=UTC)
    # 10 Oct (Sat, 调休), 12, 13 Oct.
    assert confidentiality_decision_deadline(received) == Deadline(date(2026, 10, 13), False)
    # Same instant read as a UTC date (8 Oct) would have given 12 Oct.
    assert confidentiality_decision_deadline(shanghai(2026, 10, 8)).due == date(2026, 10, 12)


def test_naive_receipt_time_is_rejected() -> None:
    with pytest.raises(ValueError):
        receipt_date(datetime(2026, 3, 6, 10, 0))
    with pytest.raises(ValueError):
        formal_review_deadline(datetime(2026, 3, 6, 10, 0))


@pytest.mark.parametrize("days", [0, -1])
def test_add_working_days_requires_at_least_one_day(days: int) -> None:
    with pytest.raises(ValueError):
        add_working_days(date(2026, 3, 6), days)


def test_add_working_days_does_not_count_start_day() -> None:
    assert add_working_days(date(2026, 3, 9), 1) == Deadline(date(2026, 3, 10), False)
    assert add_working_days(date(2026, 3, 6), 1) == Deadline(date(2026, 3, 9), False)


def test_year_beyond_package_data_is_provisional_and_skips_new_year() -> None:
    assert is_working_day(date(2099, 1, 1)) == (False, True)  # New Year's Day, Thursday
    assert is_working_day(date(2099, 1, 3)) == (False, True)  # Saturday
    assert is_working_day(date(2099, 1, 2)) == (True, True)  # Friday
    received = shanghai(2098, 12, 31)  # Wednesday
    # (1 Jan off), 2, 5, 6 | 7, 8, 9, 12, 13, 14, 15 Jan.
    assert confidentiality_decision_deadline(received) == Deadline(date(2099, 1, 6), True)
    assert formal_review_deadline(received) == Deadline(date(2099, 1, 15), True)


def test_fallback_calendar_skips_spring_festival() -> None:
    # holidays.China: 20-23 Jan 2099 (Tue-Fri) are Spring Festival holidays.
    assert add_working_days(date(2099, 1, 19), 3) == Deadline(date(2099, 1, 28), True)


@pytest.mark.parametrize(
    ("today", "expected"),
    [
        (date(2026, 9, 30), 10),  # filing day: 8, 9, 10, 12-16, 19, 20 Oct
        (date(2026, 10, 4), 10),  # inside Golden Week
        (date(2026, 10, 16), 2),  # 19, 20 Oct
        (date(2026, 10, 18), 2),  # Sunday: 19, 20 Oct
        (date(2026, 10, 19), 1),
        (date(2026, 10, 20), 0),  # due today
        (date(2026, 10, 21), -1),
        (date(2026, 10, 24), -3),  # Saturday: 21, 22, 23 Oct past due
        (date(2026, 10, 26), -4),
    ],
)
def test_working_days_between(today: date, expected: int) -> None:
    assert working_days_between(today, date(2026, 10, 20)) == expected


def test_working_days_between_overdue_on_weekend_right_after_due() -> None:
    # Due Friday 20 Mar 2026; on Saturday it is overdue although no working day has passed.
    assert working_days_between(date(2026, 3, 21), date(2026, 3, 20)) == -1
    assert working_days_between(date(2026, 3, 23), date(2026, 3, 20)) == -1
    assert working_days_between(date(2026, 3, 24), date(2026, 3, 20)) == -2
