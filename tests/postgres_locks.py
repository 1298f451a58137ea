"""Waiting, in a test, until a PostgreSQL transaction blocks on a row lock."""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import text

from gateway.runtime import Runtime


def lock_waited_or_done(runtime: Runtime, done: Callable[[], bool]) -> None:
    """Until a transaction of this database waits for a row lock, or `done` (at most 10 s)."""
    deadline = time.monotonic() + 10
    while not done() and time.monotonic() < deadline:
        with runtime.database.connect() as connection:
            if connection.scalar(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND datname = current_database()")):
                return
        time.sleep(0.02)
