"""Limits on what comes in, per sender and per address, that a flood cannot retry its way past.

`Throttle` keeps, per key, the time its next request is due (the generic cell rate algorithm):
N per minute, up to N at once. `admit` answers at once (the web chat's 429, with how long to
wait); `delay` books the next slot and says how long to wait for it (a messaging sender's
messages are stored and answered 200, then processed no faster than the limit). A refused
request books nothing, so retrying early gains nothing and costs the flooder nothing either.

The limits live in the process: with several instances behind a load balancer each one counts
for itself (docs/security.md). Keys that have caught up with the clock are dropped, so a flood
from many addresses cannot grow the memory without end.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

MAX_KEYS = 100_000


class Throttle:
    """Per-key rate limits on a clock (monotonic seconds), safe to share between threads."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._due: dict[str, float] = {}
        self._lock = threading.Lock()

    def admit(self, key: str, per_minute: int) -> float:
        """0 when one more request under `key` is within the limit (and count it), else the
        seconds until it would be."""
        with self._lock:
            now = self.clock()
            wait = self._wait(key, per_minute, now)
            if wait <= 0:
                self._book(key, per_minute, now)
            return max(wait, 0.0)

    def exceeded(self, key: str, per_minute: int) -> float:
        """The seconds until `key` is within its limit again (0: it is); counts nothing."""
        with self._lock:
            return max(self._wait(key, per_minute, self.clock()), 0.0)

    def count(self, key: str, per_minute: int) -> None:
        """Count one event under `key` (a refused webhook request) whatever the limit says."""
        with self._lock:
            self._book(key, per_minute, self.clock())

    def delay(self, key: str, per_minute: int) -> float:
        """Book the next slot under `key`: the seconds to wait for it (0: go now)."""
        with self._lock:
            now = self.clock()
            wait = max(self._wait(key, per_minute, now), 0.0)
            self._book(key, per_minute, now + wait)
            return wait

    def _wait(self, key: str, per_minute: int, now: float) -> float:
        interval = 60.0 / per_minute
        due = self._due.get(key, now)
        return due - (per_minute - 1) * interval - now

    def _book(self, key: str, per_minute: int, at: float) -> None:
        if len(self._due) >= MAX_KEYS:
            self._forget_idle(at)
        self._due[key] = max(self._due.get(key, at), at) + 60.0 / per_minute

    def _forget_idle(self, now: float) -> None:
        for key in [key for key, due in self._due.items() if due <= now]:
            del self._due[key]
