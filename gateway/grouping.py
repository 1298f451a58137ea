"""Group commit: work items that arrive while a group is being committed are committed
together, in one transaction, right after it.

Under load this turns one transaction per item (each taking the database's write lock, a
thread hop and a commit) into one per group; alone, an item is committed at once, as before.
The group's function runs in a thread pool of `concurrency` threads and returns one outcome per
item, in order: a result, or the exception that item's caller gets. `max_group` bounds a group
(and so how long one transaction holds the database's write lock); the rest waits for the next.
Every item submitted gets an answer: its outcome, or an error, never silence.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")
log = logging.getLogger(__name__)


class GroupCommitter(Generic[T, R]):
    """Runs `commit_group` on the items waiting, a group at a time, in threads of its own."""

    def __init__(self, commit_group: Callable[[list[T]], Sequence[R | BaseException]],
                 concurrency: int = 1, thread_name: str = "group-commit",
                 max_group: int | None = None) -> None:
        if max_group is not None and max_group < 1:
            raise ValueError("max_group must be at least 1")
        self._commit_group = commit_group
        self._concurrency = concurrency
        self._max_group = max_group
        self._executor = ThreadPoolExecutor(concurrency, thread_name_prefix=thread_name)
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        self._runners: set[asyncio.Task[None]] = set()
        self._closed = False

    async def submit(self, item: T) -> R:
        """Commit `item` with the group it joins; its outcome (or its exception)."""
        if self._closed:
            raise RuntimeError("group commit is closed")
        waiter: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, waiter))
        if len(self._runners) < self._concurrency:
            self._runners.add(asyncio.create_task(self._run_waiting()))
        return await waiter

    async def _run_waiting(self) -> None:
        try:
            await self._commit_waiting()
        finally:
            # Here, in the step that found nothing waiting, not in a done-callback: one runs
            # later, and an item submitted before it would wait for a runner that had ended.
            self._runners.discard(asyncio.current_task())  # type: ignore[arg-type]

    async def _commit_waiting(self) -> None:
        loop = asyncio.get_running_loop()
        while self._waiting:
            cut = self._max_group or len(self._waiting)
            group, self._waiting = self._waiting[:cut], self._waiting[cut:]
            outcomes: Sequence[R | BaseException]
            try:
                outcomes = await loop.run_in_executor(self._executor, self._commit_group,
                                                      [item for item, _ in group])
                if len(outcomes) != len(group):
                    raise RuntimeError(f"{len(outcomes)} outcomes for a group of {len(group)}")
            except Exception as error:  # noqa: BLE001 - every item of the group fails
                outcomes = [error] * len(group)
            except BaseException as error:
                # This runner is cancelled or the process is stopping: no caller, of this
                # group or waiting for the next, is left waiting for an answer never coming.
                stranded, self._waiting = group + self._waiting, []
                for _, waiter in stranded:
                    _answer(waiter, error)
                raise
            for (_, waiter), outcome in zip(group, outcomes, strict=True):
                _answer(waiter, outcome)

    async def drain(self) -> None:
        """Wait until every item submitted has been committed, those whose callers stopped
        waiting (were cancelled) included; before `close`, for a graceful stop."""
        while self._runners:
            await asyncio.wait(set(self._runners))

    def close(self) -> None:
        """Take no more items; the group under way finishes, and the items still waiting
        (unless `drain` was awaited first) fail with RuntimeError."""
        self._closed = True
        self._executor.shutdown(wait=True)


def _answer(waiter: asyncio.Future[R], outcome: R | BaseException) -> None:
    if waiter.done():  # its caller was cancelled: nobody else would hear of a failure
        if isinstance(outcome, Exception):
            log.error("committing an item whose caller had stopped waiting failed",
                      exc_info=outcome)
    elif isinstance(outcome, asyncio.CancelledError):
        waiter.cancel()
    elif isinstance(outcome, BaseException):
        waiter.set_exception(outcome)
    else:
        waiter.set_result(outcome)


def each_alone(commit: Callable[[list[T]], Sequence[R]], group: list[T],
               together: tuple[type[Exception], ...] = ()) -> list[R | BaseException]:
    """`commit` of the whole group; if that fails, of each item on its own, so an item that
    cannot be committed fails alone and the others are still committed. An error of a kind in
    `together` (the database is unavailable) fails the whole group at once."""
    try:
        return list(commit(group))
    except together as error:
        return [error] * len(group)
    except Exception:  # noqa: BLE001 - tried one by one below, where it fails alone
        if len(group) == 1:
            raise
    outcomes: list[R | BaseException] = []
    for item in group:
        try:
            outcomes.extend(commit([item]))
        except Exception as error:  # noqa: BLE001 - handed to that item's caller
            outcomes.append(error)
    return outcomes
