"""Procedural deadlines in working days of the secretariat's (Chinese official) calendar.

Official data comes from ``chinese_calendar`` (holidays off, 调休 weekends on); for years
it does not cover, the ``holidays`` package's China calendar is used and results are
marked provisional.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import chinese_calendar
from holidays import HolidayBase, country_holidays

FORMAL_REVIEW_WORKING_DAYS = 10
CONFIDENTIALITY_DECISION_WORKING_DAYS = 3
SECRETARIAT_TIMEZONE = ZoneInfo("Asia/Shanghai")

_ONE_DAY = timedelta(days=1)


@dataclass(frozen=True)
class Deadline:
    """A due date and whether any day examined came from the fallback calendar."""

    due: date
    provisional: bool


@lru_cache(maxsize=256)
def _official_calendar_knows(year: int) -> bool:
    """Whether chinese_calendar has the official schedule for ``year``."""
    try:
        chinese_calendar.is_workday(date(year, 1, 1))
    except NotImplementedError:
        return False
    return True


@lru_cache(maxsize=256)
def _fallback_calendar(year: int) -> HolidayBase:
    """The holidays package's China calendar covering ``year`` (and next year's swaps)."""
    return country_holidays("CN", years=(year, year + 1), expand=False)


def is_working_day(day: date) -> tuple[bool, bool]:
    """Return (is a working day, answer came from the provisional fallback calendar)."""
    if _official_calendar_knows(day.year):
        return bool(chinese_calendar.is_workday(day)), False
    return _fallback_calendar(day.year).is_working_day(day), True


def add_working_days(start: date, days: int) -> Deadline:
    """Return the ``days``-th working day after ``start`` (``start`` itself not counted)."""
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    day, counted, provisional = start, 0, False
    while counted < days:
        day += _ONE_DAY
        working, fallback = is_working_day(day)
        provisional = provisional or fallback
        counted += int(working)
    return Deadline(due=day, provisional=provisional)


def receipt_date(received_at: datetime) -> date:
    """Return the calendar date of an aware receipt time in the secretariat's time zone."""
    if received_at.tzinfo is None or received_at.utcoffset() is None:
        raise ValueError("received_at must be timezone-aware")
    return received_at.astimezone(SECRETARIAT_TIMEZONE).date()


def formal_review_deadline(received_at: datetime) -> Deadline:
    """Return the last day for the formal review (形式审查) of a filing."""
    return add_working_days(receipt_date(received_at), FORMAL_REVIEW_WORKING_DAYS)


def confidentiality_decision_deadline(received_at: datetime) -> Deadline:
    """Return the last day for deciding a confidentiality request (保密申请)."""
    return add_working_days(receipt_date(received_at), CONFIDENTIALITY_DECISION_WORKING_DAYS)


def _count_working_days(after: date, until: date) -> int:
    """Count working days in the interval (``after``, ``until``]."""
    count, day = 0, after
    while day < until:
        day += _ONE_DAY
        count += int(is_working_day(day)[0])
    return count


def working_days_between(today: date, due: date) -> int:
    """Signed working days from ``today`` (excl.) to ``due`` (incl.); 0 only when equal."""
    if today == due:
        return 0
    if today < due:
        return max(1, _count_working_days(today, due))
    return -max(1, _count_working_days(due, today))
